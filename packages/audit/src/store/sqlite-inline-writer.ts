// The SQLite writer for a process that appends a few records and exits
// (`corral run`): it appends on the calling thread, through the store's own
// connection, so opening the log starts no thread. Each commit is as durable
// as the writer thread's (WAL, synchronous=FULL, acknowledged after the
// fsync); what it gives up is throughput, since hashing, inserting and the
// fsync block this thread's event loop, and the WAL is copied into the
// database by SQLite's own automatic checkpoint and when the connection
// closes rather than by a checkpointer thread.
import type { DatabaseSync } from 'node:sqlite';
import { AuditError } from '../errors.ts';
import { MAX_TRANSACTION, type AppendRequest, type AppendResult, type WriterConfig } from './batch.ts';
import { BatchWriter, beginImmediateWithTimers } from './sqlite-write.ts';

interface Waiting {
  request: AppendRequest;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

export class SqliteInlineWriter {
  readonly #db: DatabaseSync;
  readonly #where: string;
  readonly #config: WriterConfig;
  readonly #writer: BatchWriter;
  #queue: Waiting[] = [];
  /** The commit under way (one at a time: the connection holds one transaction). */
  #running: Promise<void> | null = null;
  #closed = false;

  /** `db` is the store's connection, already initialised (WAL, synchronous=FULL). */
  constructor(db: DatabaseSync, where: string, config: WriterConfig) {
    this.#db = db;
    this.#where = where;
    this.#config = config;
    this.#writer = new BatchWriter(db, where);
  }

  /**
   * Resolves once `request` is durably committed. Requests that arrive while
   * a commit (or the wait for another process's lock) is under way share the
   * next one (group commit).
   * @throws AuditError AUDIT_CLOSED after close(); AUDIT_STORE_UNAVAILABLE or
   *   AUDIT_STORE_FOREIGN when the commit failed (nothing of it was written).
   */
  append(request: AppendRequest): Promise<AppendResult> {
    if (this.#closed) return Promise.reject(new AuditError('AUDIT_CLOSED', `the audit log ${this.#where} is closed`));
    return new Promise((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      this.#running ??= this.#drain();
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      let taken: Waiting[] = [];
      try {
        await beginImmediateWithTimers(this.#db, this.#where);
        // The lock is held: take what is queued now, up to one transaction's worth.
        let records = 0;
        let n = 0;
        while (n < this.#queue.length && (n === 0 || records + this.#queue[n]!.request.bodies.length <= MAX_TRANSACTION)) records += this.#queue[n++]!.request.bodies.length;
        taken = this.#queue.splice(0, n);
        const parts = this.#writer.inTransaction((head) => this.#writer.appendAll(head, taken.map((w) => w.request), this.#config));
        taken.forEach((w, i) => w.resolve(parts[i]!));
      } catch (error) {
        // The lock was not taken: every waiting request fails with it.
        if (taken.length === 0) taken = this.#queue.splice(0);
        for (const w of taken) w.reject(error);
      }
      // Let timers and I/O run before the next commit: the appends acknowledged
      // just now may queue more at once (they join it), and commits chained by
      // microtasks alone would starve the rest of the process.
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.#running = null;
  }

  /** Lets queued requests finish; later ones fail with AUDIT_CLOSED. The store closes the connection. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#running;
  }
}
