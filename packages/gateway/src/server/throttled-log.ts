// Lines a peer can make the gateway write, within a budget: a peer (or a web
// page making a browser send request after request) refused again and again
// would otherwise have a line written for each, as fast as it is answered.
import type { GatewayLogEntry } from './server.ts';
import { TokenBucket } from './token-bucket.ts';

/**
 * Lines one budget may write: LOG_REFUSALS_BURST at once, then
 * LOG_REFUSALS_PER_SECOND a second; each line says how many were left out
 * before it (`suppressed`).
 */
export const LOG_REFUSALS_BURST = 20;
export const LOG_REFUSALS_PER_SECOND = 1;

export class ThrottledLog {
  readonly #write: (entry: GatewayLogEntry) => void;
  readonly #lines: TokenBucket;
  #suppressed = 0;

  constructor(write: (entry: GatewayLogEntry) => void, now: () => number) {
    this.#write = write;
    this.#lines = new TokenBucket(LOG_REFUSALS_PER_SECOND, LOG_REFUSALS_BURST, now);
  }

  /** Writes `entry` within the budget; past it, counts it, and the count goes with the next line written. */
  line(entry: GatewayLogEntry): void {
    if (!this.#lines.take()) {
      this.#suppressed += 1;
      return;
    }
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    this.#write(suppressed > 0 ? { ...entry, suppressed } : entry);
  }

  /** Lines left out since the last one written. */
  get suppressed(): number {
    return this.#suppressed;
  }
}
