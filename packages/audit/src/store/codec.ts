// Hex hashes to and from the bytes the stores keep, and the rows both stores
// read back (same columns in SQLite and PostgreSQL) as the package's types.
// A row is untrusted input: anyone with write access to the database can put
// text where a hash belongs (SQLite does not enforce column types) or a number
// JavaScript cannot hold. Every decoder checks each column's type and refuses
// with a coded error naming the table, the row and the column; no foreign
// exception (a TypeError, a RangeError) leaves this file.
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { AuditError } from '../errors.ts';
import type { ChainRow, LogHead, SeqSpan, StoredRecord } from './store.ts';

/** A row as a driver returns it: column name to value. */
export type Row = Record<string, unknown>;

/** Builds the error for a bad column of one row. */
type Refusal = (column: string, why: string) => AuditError;

const HASH_BYTES = 32;
const HEX_HASH = 2 * HASH_BYTES;

export function toBytes(hex: string): Buffer {
  return Buffer.from(hex, 'hex');
}

/** Hex of bytes the caller has checked are bytes (see hashColumn for a column read back). */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Concatenated 32-byte hashes. */
export function hashesToBytes(hashes: readonly string[]): Buffer {
  return Buffer.from(hashes.join(''), 'hex');
}

/** What a value is, for a message: never the value itself when it is long. */
function describe(value: unknown): string {
  if (value === null || value === undefined) return 'is null';
  if (value instanceof Uint8Array) return `is ${value.byteLength} bytes`;
  if (typeof value === 'string') return `is text (${value.length} characters)`;
  if (typeof value === 'bigint' || typeof value === 'number') return `is the number ${String(value)}`;
  return `is a ${typeof value}`;
}

function bytesColumn(row: Row, column: string, refuse: Refusal): Uint8Array {
  const value = row[column];
  if (!(value instanceof Uint8Array)) throw refuse(column, `${describe(value)}, not bytes`);
  return value;
}

/** One 32-byte hash, as hex. */
function hashColumn(row: Row, column: string, refuse: Refusal): string {
  const bytes = bytesColumn(row, column, refuse);
  if (bytes.byteLength !== HASH_BYTES) throw refuse(column, `${describe(bytes)}, not a ${HASH_BYTES}-byte hash`);
  return toHex(bytes);
}

/** Zero or more 32-byte hashes, concatenated. */
function hashesColumn(row: Row, column: string, refuse: Refusal): string[] {
  const bytes = bytesColumn(row, column, refuse);
  if (bytes.byteLength % HASH_BYTES !== 0) throw refuse(column, `${describe(bytes)}, not a whole number of ${HASH_BYTES}-byte hashes`);
  const hex = toHex(bytes);
  const out: string[] = [];
  for (let i = 0; i < hex.length; i += HEX_HASH) out.push(hex.slice(i, i + HEX_HASH));
  return out;
}

function textColumn(row: Row, column: string, refuse: Refusal): string {
  const value = row[column];
  if (typeof value !== 'string') throw refuse(column, `${describe(value)}, not text`);
  return value;
}

/** A safe integer whatever the driver gives: a number, a bigint (SQLite read with setReadBigInts), or decimal text (PostgreSQL's BIGINT). */
function integer(value: unknown): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : null;
  if (typeof value === 'bigint') return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : null;
  if (typeof value === 'string' && /^-?\d{1,16}$/.test(value)) {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : null;
  }
  return null;
}

function integerColumn(row: Row, column: string, refuse: Refusal, min: number): number {
  const value = row[column];
  const n = integer(value);
  if (n === null) throw refuse(column, `${describe(value)}, not an integer of at most 2^53 - 1`);
  if (n < min) throw refuse(column, `${describe(value)}, below ${min}`);
  return n;
}

/** A row's key for a message and for the error's `seq`/`checkpointSize`: exact when it is a safe integer, else as near as a number gets. */
function rowKey(value: unknown): { text: string; n: number | undefined } {
  const n = integer(value);
  if (n !== null) return { text: String(n), n };
  if (typeof value === 'bigint') return { text: String(value), n: Number(value) };
  return { text: typeof value === 'string' && value.length <= 24 ? value : describe(value).replace(/^is /, ''), n: undefined };
}

/**
 * The head row (the chain tip, the tree's right edge, the last checkpoint).
 * @throws AuditError AUDIT_STORE_FOREIGN when there is none or a column is not what a writer puts there.
 */
export function headFromRow(row: Row | undefined, where: string): LogHead {
  if (!row) throw new AuditError('AUDIT_STORE_FOREIGN', `${where} has no audit_head row`);
  const refuse: Refusal = (column, why) => new AuditError('AUDIT_STORE_FOREIGN', `${where}: the audit_head row is corrupt: column ${column} ${why}`);
  return {
    size: integerColumn(row, 'size', refuse, 0),
    lastHash: hashColumn(row, 'last_hash', refuse),
    frontier: hashesColumn(row, 'frontier', refuse),
    checkpointSize: integerColumn(row, 'checkpoint_size', refuse, 0),
    checkpointTimeMs: integerColumn(row, 'checkpoint_time', refuse, 0),
  };
}

/**
 * A row of audit_checkpoints. Checks types only; the signature check says whether it is genuine.
 * @throws AuditError AUDIT_CHECKPOINT_MALFORMED naming the row (size) and column, with `checkpointSize` when the size is a number.
 */
export function checkpointFromRow(row: Row, where: string): SignedCheckpoint {
  const key = rowKey(row.size);
  const refuse: Refusal = (column, why) =>
    new AuditError('AUDIT_CHECKPOINT_MALFORMED', `${where}: audit_checkpoints row size ${key.text}: column ${column} ${why}`, key.n === undefined ? {} : { checkpointSize: key.n });
  return {
    size: integerColumn(row, 'size', refuse, 0),
    root: hashColumn(row, 'root', refuse),
    time: textColumn(row, 'time', refuse),
    keyId: textColumn(row, 'key_id', refuse),
    signature: textColumn(row, 'signature', refuse),
  };
}

function recordRefusal(seq: unknown, where: string): Refusal {
  const key = rowKey(seq);
  return (column, why) => new AuditError('AUDIT_RECORD_MALFORMED', `${where}: audit_records row seq ${key.text}: column ${column} ${why}`, key.n === undefined ? {} : { seq: key.n });
}

/**
 * A row of audit_records.
 * @throws AuditError AUDIT_RECORD_MALFORMED naming the row (seq) and column, with `seq`.
 */
export function recordFromRow(row: Row, where: string): StoredRecord {
  const refuse = recordRefusal(row.seq, where);
  return {
    seq: integerColumn(row, 'seq', refuse, Number.MIN_SAFE_INTEGER),
    timeMs: integerColumn(row, 'time_ms', refuse, Number.MIN_SAFE_INTEGER),
    prev: hashColumn(row, 'prev', refuse),
    hash: hashColumn(row, 'hash', refuse),
    nodes: hashesColumn(row, 'nodes', refuse),
    body: textColumn(row, 'body', refuse),
  };
}

/**
 * What verification reads of a record, from the tuple a store selects:
 * [seq, hex of prev, hex of hash, body, time_ms, hex of nodes], where
 * PostgreSQL gives seq and time_ms as text; a hash column of the wrong length
 * or type reads as other text or null. The nodes are only checked to be text:
 * verification compares them with the ones the records make, and reports
 * any others (of whatever length) as damage at their seq. Returns `r` itself when it is already right (the hot path allocates nothing).
 * @throws AuditError AUDIT_RECORD_MALFORMED naming the row (seq) and column, with `seq`.
 */
export function chainRowFromTuple(r: unknown[], where: string): ChainRow {
  const [seq, prev, hash, body, timeMs, nodes] = r;
  if (typeof seq === 'number' && typeof prev === 'string' && prev.length === HEX_HASH && typeof hash === 'string' && hash.length === HEX_HASH && typeof body === 'string' && typeof nodes === 'string') {
    if (Number.isSafeInteger(seq) && Number.isSafeInteger(timeMs)) return r as unknown as ChainRow;
  }
  const refuse = recordRefusal(seq, where);
  const n = integer(seq);
  if (n === null) throw refuse('seq', `${describe(seq)}, not an integer of at most 2^53 - 1`);
  const hex = (value: unknown, column: string): string => {
    if (typeof value !== 'string' || value.length !== HEX_HASH) throw refuse(column, `is not a ${HASH_BYTES}-byte hash`);
    return value;
  };
  if (typeof body !== 'string') throw refuse('body', 'is not text');
  if (typeof nodes !== 'string') throw refuse('nodes', 'is not bytes');
  return [n, hex(prev, 'prev'), hex(hash, 'hash'), body, integerColumn({ time_ms: timeMs }, 'time_ms', refuse, Number.MIN_SAFE_INTEGER), nodes];
}

/**
 * The hash and tree nodes of a record row (what proofs read).
 * @throws AuditError AUDIT_RECORD_MALFORMED naming the row (seq) and column, with `seq`.
 */
export function treeNodesFromRow(row: Row, where: string): { hash: string; nodes: string[] } {
  const refuse = recordRefusal(row.seq, where);
  return { hash: hashColumn(row, 'hash', refuse), nodes: hashesColumn(row, 'nodes', refuse) };
}

/** The result of a count(*), min(seq), max(seq) query as a span, or null when it counted none. Reporting only: a seq beyond 2^53 - 1 is as near as a number gets. */
export function spanFromRow(row: Row | undefined): SeqSpan | null {
  if (!row) return null;
  const count = Number(row.n);
  if (!(count > 0)) return null;
  return { first: Number(row.lo), last: Number(row.hi), count };
}
