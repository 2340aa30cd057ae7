// Where a SQLite append commits. Handing a request to the writer thread and
// its answer back costs two thread wake-ups, about a millisecond on a quiet
// 2-core host, which is most of a lone append's latency (a gateway recording
// one decision before it lets a command run). So a small request that finds
// the log idle commits at once on the calling thread, through the store's own
// connection; everything else goes to the writer thread, which keeps the
// event loop free under load. Lone commits block the event loop for their
// fsync, so they are rationed: a budget of blocked time that refills at a
// share of the time passing, up to a burst. The burst lets a governed run's
// two records, a few milliseconds apart, both commit here; steady appending
// beyond the share goes to the thread. A request that comes while the thread
// works, or while another process holds the write lock, goes to the thread
// too, so appends stay in the order they were made.
import type { DatabaseSync } from 'node:sqlite';
import type { AppendRequest, AppendResult, WriterConfig } from './batch.ts';
import { BatchWriter } from './sqlite-write.ts';
import type { AppendRole, SqliteWriter } from './sqlite-writer.ts';

/** Requests of at most this many records may commit on the calling thread… */
const LONE_RECORDS = 16;
/** …while such commits block it for at most this share of the time… */
const CALLER_SHARE = 0.2;
/** …and at most this many milliseconds in a burst. */
const BURST_MS = 4;

export class SqliteAppendRouter {
  readonly #thread: SqliteWriter;
  readonly #here: BatchWriter;
  readonly #config: WriterConfig;
  /** Milliseconds of blocking left to spend here, as of #budgetAt (performance.now()); at or below 0, requests go to the thread. */
  #budget = BURST_MS;
  #budgetAt = performance.now();

  /** `db` is the store's connection (WAL, synchronous=FULL); `thread` the writer thread on the same file. */
  constructor(db: DatabaseSync, where: string, thread: SqliteWriter, config: WriterConfig) {
    this.#thread = thread;
    this.#config = config;
    this.#here = new BatchWriter(db, where);
    // The checkpointer thread copies the log into the file; SQLite's own
    // checkpoint, run by whichever commit crosses its threshold, would
    // otherwise fall to a lone commit here now and then, on the event loop.
    db.exec('PRAGMA wal_autocheckpoint = 8192');
  }

  /**
   * Resolves once `request` is durably committed, here or by the thread.
   * @throws AuditError as the writer thread (AUDIT_STORE_UNAVAILABLE,
   *   AUDIT_STORE_FOREIGN, AUDIT_CLOSED).
   */
  append(request: AppendRequest): Promise<AppendResult> {
    const start = performance.now();
    this.#budget = Math.min(BURST_MS, this.#budget + (start - this.#budgetAt) * CALLER_SHARE);
    this.#budgetAt = start;
    if (request.bodies.length <= LONE_RECORDS && !this.#thread.busy && this.#budget > 0) {
      let result: AppendResult | undefined;
      try {
        result = this.#here.appendNow(request, this.#config);
      } catch (error) {
        return Promise.reject(error);
      }
      if (result) {
        const end = performance.now();
        this.#budget -= end - start;
        this.#budgetAt = end;
        if (request.bodies.length > 0) this.#thread.committedElsewhere(request.bodies.length);
        return Promise.resolve(result);
      }
    }
    return this.#thread.append(request);
  }

  get role(): AppendRole {
    return this.#thread.role;
  }

  close(): Promise<void> {
    return this.#thread.close();
  }
}
