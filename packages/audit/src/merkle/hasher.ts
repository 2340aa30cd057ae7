// RFC 9162 section 2.1.1 hashing: leaves and interior nodes are hashed with
// distinct one-byte prefixes (0x00, 0x01) so a leaf can never pass for a node.
// Hashes travel as 64-character lowercase hex strings.
import { hash, timingSafeEqual } from 'node:crypto';

export interface MerkleHasher {
  /** Hash length in bytes. */
  readonly size: number;
  /** MTH({}) — the hash of an empty tree. */
  emptyRoot(): string;
  /** HASH(0x00 || data); a string is hashed as its UTF-8 bytes. */
  leaf(data: string | Uint8Array): string;
  /** HASH(0x01 || left || right). */
  node(left: string, right: string): string;
}

const scratch = Buffer.alloc(65);
const EMPTY = hash('sha256', Buffer.alloc(0), 'hex');

/** SHA-256 with the RFC 9162 prefixes. */
export const sha256Hasher: MerkleHasher = {
  size: 32,
  emptyRoot: () => EMPTY,
  leaf(data) {
    if (typeof data === 'string') return hash('sha256', `\u0000${data}`, 'hex');
    const input = Buffer.allocUnsafe(data.length + 1);
    input[0] = 0;
    input.set(data, 1);
    return hash('sha256', input, 'hex');
  },
  node(left, right) {
    scratch[0] = 1;
    scratch.write(left, 1, 32, 'hex');
    scratch.write(right, 33, 32, 'hex');
    return hash('sha256', scratch, 'hex');
  },
};

const HASH_HEX = /^[0-9a-f]{64}$/;

/** True when `h` is a well-formed hash: 64 lowercase hex characters. */
export function isHash(h: unknown): h is string {
  return typeof h === 'string' && HASH_HEX.test(h);
}

/** Compares two hex hashes in time independent of where they differ. */
export function hashesEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1'));
}
