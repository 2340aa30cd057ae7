// Hex hashes to and from the bytes the stores keep, and the rows both stores
// read back (same columns in SQLite and PostgreSQL) as the package's types.
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { AuditError } from '../errors.ts';
import type { LogHead, StoredRecord } from './store.ts';

/** A row as a driver returns it: column name to value. */
export type Row = Record<string, unknown>;

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

/** The head row (the chain tip, the tree's right edge, the last checkpoint). @throws AuditError AUDIT_STORE_FOREIGN when there is none. */
export function headFromRow(row: Row | undefined, where: string): LogHead {
  if (!row) throw new AuditError('AUDIT_STORE_FOREIGN', `${where} has no audit_head row`);
  return {
    size: Number(row.size),
    lastHash: toHex(row.last_hash as Uint8Array),
    frontier: bytesToHashes(row.frontier as Uint8Array),
    checkpointSize: Number(row.checkpoint_size),
    checkpointTimeMs: Number(row.checkpoint_time),
  };
}

/** A row of audit_checkpoints. */
export function checkpointFromRow(row: Row): SignedCheckpoint {
  return { size: Number(row.size), root: toHex(row.root as Uint8Array), time: String(row.time), keyId: String(row.key_id), signature: String(row.signature) };
}

/** A row of audit_records. */
export function recordFromRow(row: Row): StoredRecord {
  return {
    seq: Number(row.seq),
    timeMs: Number(row.time_ms),
    prev: toHex(row.prev as Uint8Array),
    hash: toHex(row.hash as Uint8Array),
    nodes: bytesToHashes(row.nodes as Uint8Array),
    body: String(row.body),
  };
}
