// A forwarding process's own connection to its log's appender, from the
// thread that appends (append-share.ts). The writer thread forwards too, but
// every batch it carries costs a structured clone there and back and two
// thread wake-ups; with eight processes appending to one log on a 2-core
// host, those processes' own CPU time left the appender's thread too little.
import { statSync } from 'node:fs';
import { AuditError } from '../errors.ts';
import { AppendForwarder, shareSocketPath, unknownCommit } from './append-share.ts';
import type { AppendRequest, AppendResult } from './batch.ts';

interface Waiting {
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

export class SqliteDirectForward {
  readonly #forwarder: AppendForwarder;
  readonly #waiting = new Map<number, Waiting>();
  #next = 0;
  #drained: (() => void)[] = [];

  private constructor(forwarder: AppendForwarder, where: string) {
    this.#forwarder = forwarder;
    forwarder.onReplies = (replies) => {
      for (const r of replies) {
        const w = this.#waiting.get(r.id);
        if (!w) continue;
        this.#waiting.delete(r.id);
        if ('result' in r) w.resolve(r.result);
        else w.reject(new AuditError(r.error.code, r.error.message));
      }
      this.#noteDrained();
    };
    forwarder.onEnd = () => {
      const unknown = unknownCommit(where);
      for (const w of this.#waiting.values()) w.reject(unknown);
      this.#waiting.clear();
      this.#noteDrained();
    };
  }

  /**
   * Connects to the appender of the log at `where`, whose checkpoints `keyId` signs.
   * @returns null when none takes this process now (none listens, or it
   *   refuses or is silent): the writer thread carries the appends then.
   */
  static async connect(where: string, keyId: string): Promise<SqliteDirectForward | null> {
    const socket = shareSocketPath(where);
    if (!socket) return null;
    try {
      const st = statSync(where, { bigint: true });
      const found = await AppendForwarder.connect(socket, { dev: String(st.dev), ino: String(st.ino), keyId });
      return typeof found === 'string' ? null : new SqliteDirectForward(found, where);
    } catch {
      return null;
    }
  }

  /** False once the appender is closing or gone: append() then refuses. */
  get usable(): boolean {
    return this.#forwarder.usable;
  }

  /** True while an append sent here is unanswered. */
  get busy(): boolean {
    return this.#waiting.size > 0;
  }

  /** Resolves once every append sent here is answered (or the connection ended). */
  drained(): Promise<void> {
    return this.busy ? new Promise((done) => this.#drained.push(done)) : Promise.resolve();
  }

  /**
   * Hands `request` to the appender; resolves once it answered that the request is durably committed.
   * @returns null (nothing sent) when this connection cannot take it (see AppendForwarder.send).
   */
  append(request: AppendRequest): Promise<AppendResult> | null {
    const id = this.#next;
    // Ids travel as 32-bit numbers (append-share-frames.ts); far fewer than 2^32 are ever outstanding.
    this.#next = (this.#next + 1) >>> 0;
    let waiting!: Waiting;
    const answered = new Promise<AppendResult>((resolve, reject) => (waiting = { resolve, reject }));
    if (!this.#forwarder.send(id, request)) return null;
    this.#waiting.set(id, waiting);
    return answered;
  }

  /** Ends the connection once every append sent here is answered. */
  close(): Promise<void> {
    return this.#forwarder.close();
  }

  #noteDrained(): void {
    if (this.busy) return;
    const waiting = this.#drained;
    this.#drained = [];
    for (const done of waiting) done();
  }
}
