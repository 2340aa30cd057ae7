// Where a SQLite append commits. Handing a request to the writer thread and
// its answer back costs two thread wake-ups, about a millisecond on a quiet
// 2-core host, which is most of a lone append's latency (a gateway recording
// one decision before it lets a command run). So a small request that finds
// the log idle commits at once on the calling thread, through the store's own
// connection; everything else goes to the writer thread, which keeps the
// event loop free under load — or, once the writer thread hands this
// process's appends to another process's appender (append-share.ts), straight
// to that appender over a connection of this thread's own
// (sqlite-direct-forward.ts). Lone commits block the event loop for their
// fsync, so they are rationed: a budget of blocked time that refills at a
// share of the time passing, up to a burst. The burst lets a governed run's
// two records, a few milliseconds apart, both commit here; steady appending
// beyond the share goes to the thread. A request that comes while the thread
// or the appender works on earlier ones, or while another process holds the
// write lock, goes after them, so appends stay in the order they were made.
import type { DatabaseSync } from 'node:sqlite';
import type { AppendRequest, AppendResult, WriterConfig } from './batch.ts';
import { SqliteDirectForward } from './sqlite-direct-forward.ts';
import { BatchWriter } from './sqlite-write.ts';
import type { AppendRole, SqliteWriter } from './sqlite-writer.ts';

/** Requests of at most this many records may commit on the calling thread… */
const LONE_RECORDS = 16;
/** …while such commits block it for at most this share of the time… */
const CALLER_SHARE = 0.2;
/** …and at most this many milliseconds in a burst. */
const BURST_MS = 4;
/** After the appender would not take this thread's own connection, the writer thread carries the appends this long before it asks again. */
const RETRY_DIRECT_MS = 1000;

/** A request made while appends change lanes: sent once those ahead of it are answered. */
interface Held {
  request: AppendRequest;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

export class SqliteAppendRouter {
  readonly #thread: SqliteWriter;
  readonly #here: BatchWriter;
  readonly #where: string;
  readonly #config: WriterConfig;
  /** Milliseconds of blocking left to spend here, as of #budgetAt (performance.now()); at or below 0, requests go to the thread. */
  #budget = BURST_MS;
  #budgetAt = performance.now();
  /** This thread's own connection to the appender, while the writer thread forwards. */
  #direct: SqliteDirectForward | null = null;
  /** Where appends that do not commit here go now. */
  #lane: 'thread' | 'direct' = 'thread';
  /** Requests made while the lane changes, or null while it does not. */
  #held: Held[] | null = null;
  /** The opening of this thread's own connection to the appender, while one is under way: close() waits for it, and closes what it opened. */
  #connecting: Promise<void> | null = null;
  /** performance.now() before which no new connection to the appender is tried. */
  #retryAt = 0;

  /** `db` is the store's connection (WAL, synchronous=FULL); `thread` the writer thread on the same file. */
  constructor(db: DatabaseSync, where: string, thread: SqliteWriter, config: WriterConfig) {
    this.#thread = thread;
    this.#where = where;
    this.#config = config;
    this.#here = new BatchWriter(db, where);
    // The checkpointer thread copies the log into the file; SQLite's own
    // checkpoint, run by whichever commit crosses its threshold, would
    // otherwise fall to a lone commit here now and then, on the event loop.
    db.exec('PRAGMA wal_autocheckpoint = 8192');
  }

  /**
   * Resolves once `request` is durably committed, here, by the thread or by the appender.
   * @throws AuditError as the writer thread (AUDIT_STORE_UNAVAILABLE,
   *   AUDIT_STORE_FOREIGN, AUDIT_CLOSED), or AUDIT_COMMIT_UNKNOWN when the
   *   appender ended before answering.
   */
  append(request: AppendRequest): Promise<AppendResult> {
    const start = performance.now();
    this.#budget = Math.min(BURST_MS, this.#budget + (start - this.#budgetAt) * CALLER_SHARE);
    this.#budgetAt = start;
    if (request.bodies.length <= LONE_RECORDS && !this.#held && !this.#thread.busy && !this.#direct?.busy && this.#budget > 0) {
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
    if (!this.#held) this.#chooseLane(start);
    if (this.#held) return new Promise((resolve, reject) => this.#held!.push({ request, resolve, reject }));
    return this.#send(request);
  }

  /** Sends `request` down the current lane, changing lanes when the appender no longer takes it. */
  #send(request: AppendRequest): Promise<AppendResult> {
    if (this.#lane === 'direct') {
      const sent = this.#direct!.append(request);
      if (sent) return sent;
      this.#changeLane('thread');
      return new Promise((resolve, reject) => this.#held!.push({ request, resolve, reject }));
    }
    return this.#thread.append(request);
  }

  /**
   * Moves appends to this thread's own connection once the writer thread
   * forwards and one is open (opening one when none is), and back to the
   * thread once the appender is closing or gone.
   */
  #chooseLane(now: number): void {
    const forwarding = this.#thread.role === 'forwarding';
    if (this.#lane === 'direct') {
      if (!forwarding || !this.#direct!.usable) this.#changeLane('thread');
      return;
    }
    if (!forwarding) return;
    if (this.#direct?.usable) this.#changeLane('direct');
    else if (!this.#connecting && !this.#direct?.busy && now >= this.#retryAt) this.#connecting = this.#connect();
  }

  async #connect(): Promise<void> {
    this.#direct = null;
    this.#direct = await SqliteDirectForward.connect(this.#where, this.#config.keyId);
    this.#connecting = null;
    if (!this.#direct) this.#retryAt = performance.now() + RETRY_DIRECT_MS;
  }

  /** Holds new requests until the lane being left has answered everything sent down it, then sends them, in order, down `lane`. */
  #changeLane(lane: 'thread' | 'direct'): void {
    const from = this.#lane;
    this.#lane = lane;
    this.#held = [];
    void (from === 'thread' ? this.#thread.drained() : this.#direct!.drained()).then(() => {
      const held = this.#held!;
      this.#held = null;
      for (const h of held) {
        // A send that finds the appender gone starts another change: the rest wait behind it.
        const waiting = this.#held as Held[] | null;
        if (waiting) waiting.push(h);
        else this.#send(h.request).then(h.resolve, h.reject);
      }
    });
  }

  get role(): AppendRole {
    return this.#thread.role;
  }

  /** Where appends that do not commit on this thread go now: the writer thread, or this thread's own connection to the appender. */
  get lane(): 'thread' | 'direct' {
    return this.#lane;
  }

  /** Closes this thread's connection to the appender (once answered), then the writer thread. */
  async close(): Promise<void> {
    await this.#connecting;
    while (this.#held) await this.#thread.drained().then(() => this.#direct?.drained());
    await this.#direct?.close();
    return this.#thread.close();
  }
}
