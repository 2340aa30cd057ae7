// New audit records as they reach the log: the hook the live activity
// stream (and the running-command count) listen on. The gateway calls
// `notify` after each append it makes, so its own records arrive at once;
// `follow` also reads the log's head every second, so records another
// process appends to the same log (the `corral` CLI) arrive too. Each record
// is announced once; packages/audit is not involved.
import { AuditError, toAuditRecord, type AuditRecord, type AuditStore } from '@corral/audit';

const FOLLOW_INTERVAL_MS = 1000;
/** Most ticks between reads while reads keep failing (a log closed without stop() fails every read). */
const MAX_BACKOFF_TICKS = 32;

export class AuditFeed {
  readonly #listeners = new Set<(record: AuditRecord) => void>();
  /** Every record below `#cursor` was announced (or predates following); `#seen` holds those announced at or above it. */
  #cursor = 0;
  readonly #seen = new Set<number>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #polling = false;
  /** Reads failed in a row, and the ticks still to let pass before the next read. */
  #failures = 0;
  #idleTicks = 0;

  /** Calls `listener` with each record from now on; returns the unsubscribe function. */
  subscribe(listener: (record: AuditRecord) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** A record this gateway appended. */
  notify(record: AuditRecord): void {
    if (record.seq < this.#cursor || this.#seen.has(record.seq)) return;
    this.#seen.add(record.seq);
    for (const listener of this.#listeners) {
      try {
        listener(record);
      } catch {
        // One listener (a stream whose socket broke) never stops the others.
      }
    }
  }

  /**
   * Starts reading records other processes append to `store`, from its current
   * head on. Stops when the store says it is closed (AUDIT_CLOSED); a read that
   * fails otherwise is tried again, every tick at first, then up to 32 ticks apart.
   */
  async follow(store: AuditStore, everyMs = FOLLOW_INTERVAL_MS): Promise<void> {
    this.#cursor = Math.max(this.#cursor, (await store.head()).size);
    if (this.#stopped) return;
    this.#timer = setInterval(() => void this.#poll(store), everyMs);
    this.#timer.unref();
  }

  /** Stops following (the gateway stops, before it closes the log); for good, even if follow() has not got going yet. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  async #poll(store: AuditStore): Promise<void> {
    if (this.#polling) return;
    if (this.#idleTicks > 0) return void this.#idleTicks--;
    this.#polling = true;
    try {
      const head = await store.head();
      if (head.size <= this.#cursor) return;
      for await (const rows of store.scan(this.#cursor, head.size, 500)) for (const row of rows) this.notify(toAuditRecord(row));
      this.#cursor = head.size;
      for (const seq of this.#seen) if (seq < this.#cursor) this.#seen.delete(seq);
      this.#failures = 0;
    } catch (error) {
      // A closed log (the gateway stopping) is not read again. A failed read (a lost database connection, a
      // busy file) is tried again from the same cursor, so nothing appended meanwhile is missed: at once, then
      // less and less often while it keeps failing.
      if (error instanceof AuditError && error.code === 'AUDIT_CLOSED') return this.stop();
      this.#failures++;
      this.#idleTicks = Math.min(2 ** (this.#failures - 1), MAX_BACKOFF_TICKS) - 1;
    } finally {
      this.#polling = false;
    }
  }
}
