// Appending to an open SQLite audit database: take the write lock, read the
// head under it, write one batch with prepared multi-row inserts, commit.
// The writer thread (sqlite-writer-thread.ts) runs this; the store's reads
// share the error mapping.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { AuditError } from '../errors.ts';
import { buildBatch, mergeRequests, splitResult, type AppendRequest, type AppendResult, type Batch, type WriterConfig } from './batch.ts';
import { headFromRow, type Row } from './codec.ts';
import type { LogHead } from './store.ts';

/** Reads the head row (the chain tip, the tree's right edge, the last checkpoint). */
export const HEAD_SQL = 'SELECT size, last_hash, frontier, checkpoint_size, checkpoint_time FROM audit_head WHERE id = 1';

const ROW = '(?, ?, unhex(?), unhex(?), unhex(?), ?)';
const ROWS_PER_INSERT = 64;
/**
 * How long a statement waits, in ms, for a lock another process holds a
 * moment: while it turns a new file to WAL, or as the last connection to
 * close copies the write-ahead log into the file (eight processes opening one
 * new log at once failed "database is locked" with 2 ms). The write lock
 * itself is only ever tried, without waiting (tryBeginImmediate): waiting for
 * it is the caller's, off the event loop or on a thread of its own.
 */
export const BUSY_MS = 5000;
/** How long a writer waits for another process's write lock before giving up. */
const LOCK_TIMEOUT_MS = 30_000;

/** A SQLite failure as the package's coded error: a file that is not (or no longer) an audit log, or one that cannot be used now. */
export function sqliteError(where: string, error: unknown): AuditError {
  if (error instanceof AuditError) return error;
  const message = (error as Error).message ?? String(error);
  if (/not a database|malformed|no such table|no such column|file is encrypted/i.test(message)) {
    return new AuditError('AUDIT_STORE_FOREIGN', `${where} is not a Corral audit log (or is corrupt): ${message}`, { cause: error });
  }
  if (isBusy(error)) {
    return new AuditError(
      'AUDIT_STORE_UNAVAILABLE',
      `audit log ${where} is locked: another connection has held its write lock longer than Corral waits for it. A Corral process may be stuck, or a tool (sqlite3, a backup) may hold the file in a transaction: find it with \`fuser ${where}\`, let it finish or stop it, and try again`,
      { cause: error },
    );
  }
  return new AuditError('AUDIT_STORE_UNAVAILABLE', `audit log ${where}: ${message}`, { cause: error });
}

/** True for SQLite's disk I/O errors (SQLITE_IOERR and its extended codes: a failed write, fsync, truncate…). */
function isIoError(error: unknown): boolean {
  const errcode = (error as { errcode?: unknown } | null)?.errcode;
  return typeof errcode === 'number' && (errcode & 0xff) === 10;
}

/**
 * A commit that failed on a disk error has written its frames, whole and with valid checksums, to the
 * write-ahead log; SQLite counts them as not committed, and the next commit writes over them. But should
 * every connection to the log end before another commit (the processes killed), the next open rebuilds its
 * index from that file and takes them as committed: measured, a record whose append failed "disk I/O error"
 * was in the log after a crash. Whether they are in it is not known until then.
 */
function commitUnknown(where: string, error: unknown): AuditError {
  return new AuditError(
    'AUDIT_COMMIT_UNKNOWN',
    `audit log ${where}: the disk failed while making a commit durable (${(error as Error).message}): its records are not in the log now, but they are written in its write-ahead log, and they will be in it if every process using the log ends before another commit is made. Take them as neither written nor lost; check the disk (dmesg) before trusting the log further`,
    { cause: error },
  );
}

/**
 * Tries once to take the write lock (BEGIN IMMEDIATE): false while another
 * connection holds it, until `deadline` (ms since the epoch) has passed.
 * @throws AuditError for any other failure, and when the deadline passed.
 */
export function tryBeginImmediate(db: DatabaseSync, where: string, deadline: number): boolean {
  // While other processes append, most attempts are refused, each with an
  // Error from node:sqlite; capturing its stack trace cost 7 µs against 1.8
  // for the whole attempt without one (this host). The refusal is expected
  // and dropped; any other failure becomes an AuditError with a stack of its
  // own, below, once the limit is back.
  let refusal: unknown;
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  db.exec('PRAGMA busy_timeout = 0');
  try {
    db.exec('BEGIN IMMEDIATE');
    return true;
  } catch (error) {
    refusal = error;
  } finally {
    Error.stackTraceLimit = limit;
    db.exec(`PRAGMA busy_timeout = ${BUSY_MS}`);
  }
  if (!isBusy(refusal) || Date.now() > deadline) throw sqliteError(where, refusal);
  return false;
}

/**
 * Takes the write lock like tryBeginImmediate, waiting with timers — 1, then
 * 2 ms at a time, up to LOCK_TIMEOUT_MS — while another process holds it, so
 * the event loop of this thread keeps running. SQLite does not signal the
 * lock's release: a one-shot writer beside a busy writer thread gets in only
 * when it tries between two of that writer's commits, so it tries often.
 */
export function beginImmediateWithTimers(db: DatabaseSync, where: string): Promise<void> {
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  return retryWithTimers(() => tryBeginImmediate(db, where, deadline), 2);
}

/** Calls `attempt` until it returns true (or throws), waiting with timers between tries: 1 ms, doubling up to `maxWaitMs`. */
export async function retryWithTimers(attempt: () => boolean, maxWaitMs: number): Promise<void> {
  for (let wait = 1; !attempt(); wait = Math.min(wait * 2, maxWaitMs)) await new Promise((resolve) => setTimeout(resolve, wait));
}

/** True when SQLite refused because another connection holds the lock (SQLITE_BUSY, or one of its extended codes such as BUSY_RECOVERY). */
export function isBusy(error: unknown): boolean {
  const errcode = (error as { errcode?: unknown } | null)?.errcode;
  return (typeof errcode === 'number' && (errcode & 0xff) === 5) || /database is locked/i.test((error as Error).message ?? '');
}

/** Writes batches through one connection: the writer thread's, or the calling thread's for lone and one-shot appends. */
export class BatchWriter {
  readonly #db: DatabaseSync;
  readonly #where: string;
  readonly #stmts = new Map<string, StatementSync>();
  readonly #pause = new Int32Array(new SharedArrayBuffer(4));

  constructor(db: DatabaseSync, where: string) {
    this.#db = db;
    this.#where = where;
  }

  #stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (!s) this.#stmts.set(sql, (s = this.#db.prepare(sql)));
    return s;
  }

  /**
   * Runs `work` inside a write transaction (BEGIN IMMEDIATE) and commits it;
   * rolls back when it throws. While another process holds the write lock,
   * waits 0.5, then 1 ms at a time (the writer thread does nothing else), up
   * to LOCK_TIMEOUT_MS. SQLite does not signal the lock's release, so it
   * lies idle until the first waiter wakes: with 8 writer processes on this
   * 2-core host the lock was held ~90 % of the time, and waits growing to
   * 4 ms left it idle for longer than waits kept at 1 ms, whose extra
   * attempts cost little (2 µs each): six alternating pairs of runs made
   * 80,400/s against 87,400/s on average; waits kept at 0.5 ms measured
   * worse again, their attempts slowing the holder's commit.
   */
  transaction<T>(work: (head: LogHead) => T): T {
    this.begin();
    return this.inTransaction(work);
  }

  /** Takes the write lock as transaction() does, for the caller to end with COMMIT or ROLLBACK. */
  begin(): void {
    const deadline = Date.now() + LOCK_TIMEOUT_MS;
    for (let wait = 0.5; !tryBeginImmediate(this.#db, this.#where, deadline); wait = 1) Atomics.wait(this.#pause, 0, 0, wait);
  }

  /**
   * Runs `work` on the head inside the write transaction the caller began, and commits it; rolls back when it throws.
   * @throws AuditError as sqliteError(), or AUDIT_COMMIT_UNKNOWN when COMMIT itself failed on a disk error (commitUnknown).
   */
  inTransaction<T>(work: (head: LogHead) => T): T {
    let committing = false;
    try {
      const head = this.#stmt(HEAD_SQL);
      head.setReadBigInts(true); // a size past 2^53 - 1 is for headFromRow to name, not for node:sqlite to refuse
      const out = work(headFromRow(head.get() as Row | undefined, this.#where));
      committing = true;
      this.#db.exec('COMMIT');
      return out;
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw committing && isIoError(error) ? commitUnknown(this.#where, error) : sqliteError(this.#where, error);
    }
  }

  /**
   * Appends `request` now, on this thread, when the write lock is free; undefined
   * (nothing written) when another connection holds it or this one is inside a transaction.
   * @throws AuditError as inTransaction().
   */
  appendNow(request: AppendRequest, config: WriterConfig): AppendResult | undefined {
    // A read the connection holds open (a scan between two batches) cannot become a write.
    if (this.#db.isTransaction || !tryBeginImmediate(this.#db, this.#where, Number.POSITIVE_INFINITY)) return undefined;
    return this.inTransaction((head) => this.appendAll(head, [request], config)[0]!);
  }

  /**
   * Group commit, inside a transaction: `requests` merged, built on `head`
   * and written; each request's share of the result, in order.
   */
  appendAll(head: LogHead, requests: readonly AppendRequest[], config: WriterConfig): AppendResult[] {
    const { batch, result } = buildBatch(head, mergeRequests(requests), config, Date.now());
    this.write(batch);
    return splitResult(result, requests);
  }

  /** Inserts the batch's rows, updates the head, adds the checkpoint (inside transaction()). */
  write(batch: Batch): void {
    const records = batch.records;
    // Nothing appended and nothing sealed (a timer found nothing due): a commit without writes needs no fsync.
    if (records.length === 0 && !batch.checkpoint) return;
    let i = 0;
    if (records.length >= ROWS_PER_INSERT) {
      const many = this.#stmt(`INSERT INTO audit_records (seq, time_ms, prev, hash, nodes, body) VALUES ${Array(ROWS_PER_INSERT).fill(ROW).join(',')}`);
      const args: (string | number)[] = new Array(ROWS_PER_INSERT * 6);
      for (; i + ROWS_PER_INSERT <= records.length; i += ROWS_PER_INSERT) {
        for (let j = 0, k = 0; j < ROWS_PER_INSERT; j++) {
          const r = records[i + j]!;
          args[k++] = r.seq;
          args[k++] = r.timeMs;
          args[k++] = r.prev;
          args[k++] = r.hash;
          args[k++] = r.nodes.length === 1 ? r.nodes[0]! : r.nodes.join('');
          args[k++] = r.body;
        }
        many.run(...args);
      }
    }
    const one = this.#stmt(`INSERT INTO audit_records (seq, time_ms, prev, hash, nodes, body) VALUES ${ROW}`);
    for (; i < records.length; i++) {
      const r = records[i]!;
      one.run(r.seq, r.timeMs, r.prev, r.hash, r.nodes.join(''), r.body);
    }
    const h = batch.head;
    this.#stmt('UPDATE audit_head SET size = ?, last_hash = unhex(?), frontier = unhex(?), checkpoint_size = ?, checkpoint_time = ? WHERE id = 1').run(
      h.size,
      h.lastHash,
      h.frontier.join(''),
      h.checkpointSize,
      h.checkpointTimeMs,
    );
    if (batch.checkpoint) {
      const c = batch.checkpoint;
      this.#stmt('INSERT INTO audit_checkpoints (size, root, time, key_id, signature) VALUES (?, unhex(?), ?, ?, ?)').run(c.size, c.root, c.time, c.keyId, c.signature);
    }
  }
}
