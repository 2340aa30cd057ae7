// The one interface both stores (SQLite, PostgreSQL) implement, and the one
// test suite (store.suite.ts) runs against both.
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import type { NodeId } from '../merkle/tree.ts';
import type { AppendRequest, AppendResult, WriterConfig } from './batch.ts';

/** Format version of the tables; a store of another version is refused. */
export const STORE_FORMAT = 1;

/** One record as stored: its parts, its leaf hash and the tree nodes it completed. */
export interface StoredRecord {
  seq: number;
  /** Predecessor's leaf hash (hex), as written into the record. */
  prev: string;
  /** Canonical JSON of the event. */
  body: string;
  /** Leaf hash of the record bytes (hex), as computed when appended. */
  hash: string;
  /** Interior nodes completed by this leaf, level 1 upward (hex). */
  nodes: string[];
  /** Event time in milliseconds since the epoch (for --since/--until). */
  timeMs: number;
}

/**
 * What verification reads of a record, as a tuple: millions of them are read
 * per verification, and a tuple straight from the driver saves an object each.
 * `timeMs` is the time the store keeps beside the record (StoredRecord.timeMs),
 * which verification checks against the event time in `body`; `nodes` the
 * interior nodes it stored (StoredRecord.nodes, concatenated hex), which
 * verification checks against the tree its records make: proofs and a
 * writer's next checkpoints are built on them.
 */
export type ChainRow = readonly [seq: number, prev: string, hash: string, body: string, timeMs: number, nodes: string];

/** The log's tip, read and written under the store's append lock. */
export interface LogHead {
  size: number;
  /** Leaf hash of seq size-1 (GENESIS_PREV when empty). */
  lastHash: string;
  /** Compact-range hashes of [0, size), largest subtree first. */
  frontier: string[];
  /** Size of the latest checkpoint, and when it was signed (ms). */
  checkpointSize: number;
  checkpointTimeMs: number;
}

/** Some rows, by seq: the first, the last and how many (they need not be contiguous). */
export interface SeqSpan {
  first: number;
  last: number;
  count: number;
}

/** What identifies a log: written once when the store is created. */
export interface LogMeta {
  format: number;
  keyId: string;
  createdAt: string;
}

export interface AuditStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Where the log lives, for messages (a path, or host/database). */
  readonly where: string;
  /**
   * Creates the tables and meta row if the store is empty; otherwise checks it
   * is a Corral audit log of this format signed by `keyId`.
   * @throws AuditError AUDIT_STORE_FOREIGN, AUDIT_STORE_UNAVAILABLE.
   */
  init(meta: LogMeta): Promise<LogMeta>;
  /** The meta row, or null when the store holds no audit log. @throws AUDIT_STORE_FOREIGN */
  readMeta(): Promise<LogMeta | null>;
  /**
   * Makes this store a writer: keeps the checkpoint key and policy (SQLite
   * also starts the thread that writes). Call once, before append().
   * @throws AuditError AUDIT_STORE_UNAVAILABLE.
   */
  openWriter(config: WriterConfig): Promise<void>;
  /**
   * Under the append lock, builds the request's records on the current head
   * (buildBatch) and durably writes them, the new head and a checkpoint when
   * one is due, in one transaction. Resolves only after the commit is
   * durable. Calls may overlap; each is its own transaction, in lock order.
   * @throws AuditError AUDIT_CLOSED before openWriter() or after close();
   *   AUDIT_STORE_UNAVAILABLE or AUDIT_STORE_FOREIGN when the commit failed
   *   (then nothing of the request was written); AUDIT_CHAIN_BROKEN
   *   (PostgreSQL) when a row no append made sits at a seq the request would
   *   take (nothing was written); AUDIT_COMMIT_UNKNOWN when the answer was
   *   lost: PostgreSQL's connection after the commit was sent, when the store
   *   could not be asked again whether it happened; SQLite's appender process
   *   (append-share.ts) ending before it answered; or when SQLite's COMMIT
   *   failed on a disk error, its records written to the write-ahead log
   *   (BatchWriter.inTransaction).
   */
  append(request: AppendRequest): Promise<AppendResult>;
  head(): Promise<LogHead>;
  /** The head, its last record and whether a record exists beyond it, read in one snapshot. */
  tip(): Promise<{ head: LogHead; last: StoredRecord | null; beyond: boolean }>;
  /** @throws AuditError AUDIT_RECORD_MALFORMED (naming seq and column) when the row is not what a writer puts there. */
  record(seq: number): Promise<StoredRecord | null>;
  /**
   * Rows no append made: those whose seq lies outside [0, size) (pass the
   * head's size), below 0 and at or beyond `size` — at any seq the store can
   * hold, past 2^53 - 1 too. Verification reads the log through the head;
   * these it would never see.
   */
  outside(size: number): Promise<{ before: SeqSpan | null; beyond: SeqSpan | null }>;
  /**
   * The parts verification needs (no tree nodes), from ≤ seq < to, in seq order, `batch` at a time.
   * @throws AuditError AUDIT_RECORD_MALFORMED (with `seq`) at the first row not what a writer puts there; the rows before it in its batch are not yielded.
   */
  scanChain(from: number, to: number, batch?: number): AsyncIterable<ChainRow[]>;
  /** Records with from ≤ seq < to, in seq order, `batch` at a time. */
  scan(from: number, to: number, batch?: number): AsyncIterable<StoredRecord[]>;
  /** First and last seq whose event time lies in [sinceMs, untilMs], or null. */
  seqRangeForTime(sinceMs: number, untilMs: number): Promise<{ from: number; to: number } | null>;
  /**
   * The smallest checkpoint of at least `size` records, or with exactly `size` when `exact`.
   * @throws AuditError AUDIT_CHECKPOINT_MALFORMED (with `checkpointSize`) when that row is not what a writer puts there.
   */
  checkpointFor(size: number, exact: boolean): Promise<SignedCheckpoint | null>;
  /** Every checkpoint, smallest size first. @throws AuditError AUDIT_CHECKPOINT_MALFORMED as checkpointFor(). */
  checkpoints(): Promise<SignedCheckpoint[]>;
  /** Hashes of perfect subtrees; only subtrees inside [0, size) exist. */
  nodes(ids: NodeId[]): Promise<Map<string, string>>;
  /** Bytes the store occupies on disk (for the bench), when known. */
  bytesOnDisk(): Promise<number | null>;
  close(): Promise<void>;
}

/** The record row holding perfect subtree (level, index) and its offset in `nodes`. */
export function nodeLocation(id: NodeId): { seq: number; offset: number } {
  return { seq: (id.index + 1) * 2 ** id.level - 1, offset: id.level - 1 };
}
