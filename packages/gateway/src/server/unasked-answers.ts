// A peer's answers to requests the gateway never sent it: a node's
// node.invoke.result for an invoke id of its own making, or for another
// node's invoke. Each is ignored; this counts them, lets one log line a
// window through, and says when a peer has sent too many to be a mistake.
import { TokenBucket } from './token-bucket.ts';

/**
 * Such answers one connection may send at once before it is cut off, then
 * UNASKED_ANSWERS_PER_MINUTE. An honest node sends one now and then: a
 * result the gateway stopped waiting for (a prepare whose caller left), or
 * one for an invoke of the gateway it was connected to before a restart.
 */
export const UNASKED_ANSWERS_BURST = 10;
export const UNASKED_ANSWERS_PER_MINUTE = 10;
/** A connection's first such answer of each window is logged, with how many were left out before it. */
export const UNASKED_ANSWERS_LOG_WINDOW_MS = 60_000;

/** What to do with one more unasked answer. */
export interface UnaskedVerdict {
  /** How many this connection has sent, this one included. */
  count: number;
  /** Whether this one's line is written (the first of its window), and how many were not since the last. */
  log: boolean;
  suppressed: number;
  /** Whether the connection has now sent more than its allowance: it is cut off. */
  tooMany: boolean;
}

export class UnaskedAnswers {
  readonly #allowance: TokenBucket;
  readonly #now: () => number;
  #count = 0;
  #suppressed = 0;
  #loggedAt: number | undefined;

  constructor(now: () => number) {
    this.#now = now;
    this.#allowance = new TokenBucket(UNASKED_ANSWERS_PER_MINUTE / 60, UNASKED_ANSWERS_BURST, now);
  }

  /** Counts one more. */
  add(): UnaskedVerdict {
    this.#count += 1;
    const tooMany = !this.#allowance.take();
    const now = this.#now();
    // A clock that steps back starts a new window rather than silencing the log.
    const log = tooMany || this.#loggedAt === undefined || now - this.#loggedAt >= UNASKED_ANSWERS_LOG_WINDOW_MS || now < this.#loggedAt;
    if (!log) {
      this.#suppressed += 1;
      return { count: this.#count, log, suppressed: 0, tooMany };
    }
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    this.#loggedAt = now;
    return { count: this.#count, log, suppressed, tooMany };
  }
}
