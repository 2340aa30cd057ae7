// Hex hashes to and from the bytes the stores keep.
export function toBytes(hex: string): Buffer {
  return Buffer.from(hex, 'hex');
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Concatenated 32-byte hashes. */
export function hashesToBytes(hashes: readonly string[]): Buffer {
  return Buffer.from(hashes.join(''), 'hex');
}

export function bytesToHashes(bytes: Uint8Array | null | undefined): string[] {
  if (!bytes || bytes.byteLength === 0) return [];
  const hex = toHex(bytes);
  const out: string[] = [];
  for (let i = 0; i < hex.length; i += 64) out.push(hex.slice(i, i + 64));
  return out;
}
