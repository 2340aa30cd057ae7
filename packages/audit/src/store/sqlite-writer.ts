// The process side of the SQLite writer thread (sqlite-writer-thread.ts):
// sends append requests, matches replies to them, and keeps the process
// alive only while a request is outstanding.
import { Worker } from 'node:worker_threads';
import { AuditError, type AuditErrorCode } from '../errors.ts';
import type { AppendRequest, AppendResult, WriterConfig } from './batch.ts';
import { newCommitCount, noteCommit, type CommitCount } from './sqlite-commit-count.ts';

/** A message to the writer thread: a request to append, or the last one, 'close'. */
export type WriterMessage = { id: number; request: AppendRequest } | 'close';

type ThreadError = { code: AuditErrorCode; message: string };

/**
 * How a writer thread appends (append-share.ts): it commits other processes'
 * appends with its own, it hands its own to another process that does, or it
 * commits its own alone (a socket it cannot use).
 */
export type AppendRole = 'appender' | 'forwarding' | 'alone';

/** A message from the writer thread: it opened the database (or not), how it appends now, or answers. */
export type WriterReply =
  | { ready: true; role: AppendRole }
  | { ready: false; error: ThreadError }
  | { role: AppendRole }
  | { replies: ({ id: number; result: AppendResult } | { id: number; error: ThreadError })[] };

interface Waiting {
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

/** The writer thread of one SQLite store. */
export class SqliteWriter {
  readonly #worker: Worker;
  readonly #where: string;
  readonly #waiting = new Map<number, Waiting>();
  /** Shared with the thread's checkpointer. */
  readonly #committed: CommitCount;
  #next = 0;
  #role: AppendRole;
  /** Called once no request sent to the thread is unanswered. */
  #drained: (() => void)[] = [];
  /** Set once the thread is gone: every later request fails with it. */
  #gone: AuditError | null = null;

  private constructor(worker: Worker, where: string, committed: CommitCount, role: AppendRole) {
    this.#worker = worker;
    this.#where = where;
    this.#committed = committed;
    this.#role = role;
    worker.on('message', (m: WriterReply) => {
      if ('role' in m) this.#role = m.role;
      if (!('replies' in m)) return;
      for (const r of m.replies) {
        const w = this.#waiting.get(r.id);
        if (!w) continue;
        this.#waiting.delete(r.id);
        if ('result' in r) w.resolve(r.result);
        else w.reject(new AuditError(r.error.code, r.error.message));
      }
      if (this.#waiting.size === 0) {
        worker.unref();
        this.#noteDrained();
      }
    });
    worker.on('error', (error) => this.#fail(new AuditError('AUDIT_STORE_UNAVAILABLE', `the writer of ${where} failed: ${error.message}`, { cause: error })));
    worker.on('exit', () => this.#fail(new AuditError('AUDIT_CLOSED', `the writer of ${where} is closed`)));
  }

  /**
   * Starts the writer thread on the database at `path` (created and
   * initialised already) and waits until it has opened it.
   * @throws AuditError AUDIT_STORE_UNAVAILABLE, AUDIT_STORE_FOREIGN.
   */
  static async start(path: string, config: WriterConfig): Promise<SqliteWriter> {
    const committed = newCommitCount();
    const worker = new Worker(new URL('./sqlite-writer-thread.ts', import.meta.url), { workerData: { path, config, committed } });
    const ready = await new Promise<WriterReply>((resolve) => {
      worker.once('message', resolve);
      worker.once('error', (error) => resolve({ ready: false, error: { code: 'AUDIT_STORE_UNAVAILABLE', message: `cannot start the writer of ${path}: ${error.message}` } }));
    });
    if (!('ready' in ready) || !ready.ready) {
      await worker.terminate();
      const error = 'error' in ready ? ready.error : { code: 'AUDIT_STORE_UNAVAILABLE' as const, message: `the writer of ${path} did not start` };
      throw new AuditError(error.code, error.message);
    }
    worker.unref();
    return new SqliteWriter(worker, path, committed, ready.role);
  }

  /** How the thread appends now; it changes when the appender it forwards to closes or ends. */
  get role(): AppendRole {
    return this.#role;
  }

  /** True while a request sent to the thread is unanswered. */
  get busy(): boolean {
    return this.#waiting.size > 0;
  }

  /** Resolves once every request sent to the thread is answered (or the thread is gone). */
  drained(): Promise<void> {
    return this.busy ? new Promise((done) => this.#drained.push(done)) : Promise.resolve();
  }

  /** Tells the thread's checkpointer about a commit of `records` through another connection of this process. */
  committedElsewhere(records: number): void {
    noteCommit(this.#committed, records);
  }

  /**
   * Sends `request` to the thread; resolves once its transaction is durable.
   * @throws AuditError as the thread reports it (AUDIT_STORE_UNAVAILABLE,
   *   AUDIT_STORE_FOREIGN), or AUDIT_CLOSED once the thread has ended.
   */
  append(request: AppendRequest): Promise<AppendResult> {
    if (this.#gone) return Promise.reject(this.#gone);
    const id = this.#next;
    // Ids travel as 32-bit numbers to a shared appender (append-share-frames.ts); far fewer than 2^32 are ever outstanding.
    this.#next = (this.#next + 1) >>> 0;
    if (this.#waiting.size === 0) this.#worker.ref();
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#worker.postMessage({ id, request } satisfies WriterMessage);
    });
  }

  /** Lets outstanding requests finish, then closes the connection and ends the thread. */
  async close(): Promise<void> {
    if (this.#gone) return;
    const exited = new Promise((resolve) => this.#worker.once('exit', resolve));
    this.#worker.ref();
    this.#worker.postMessage('close' satisfies WriterMessage);
    await exited;
  }

  #fail(error: AuditError): void {
    this.#gone ??= error;
    for (const w of this.#waiting.values()) w.reject(this.#gone.code === 'AUDIT_CLOSED' ? new AuditError('AUDIT_STORE_UNAVAILABLE', `the writer of ${this.#where} ended before answering`) : this.#gone);
    this.#waiting.clear();
    this.#noteDrained();
  }

  #noteDrained(): void {
    const waiting = this.#drained;
    this.#drained = [];
    for (const done of waiting) done();
  }
}
