/**
 * How fast one channel refuses: a token bucket holding at most `burst` refusals, refilled at
 * `perSecond`. Each refused attempt spends a token, and may take the bucket below zero (a refusal
 * decided while others were: it is never undone); while the bucket holds less than one, every
 * new attempt waits its turn, first come first served, before it is decided at all. A contained
 * command that sends refused requests as fast as it can thus makes its channel decide, record and
 * answer them at `perSecond`, however many connections it spreads them over.
 */
export class RefusalBudget {
  readonly #burst: number;
  readonly #perMs: number;
  #tokens: number;
  #at = performance.now();
  readonly #waiting: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  /** Precondition: `burst` and `perSecond` are whole numbers above 0 (the proxy's options check them). */
  constructor(burst: number, perSecond: number) {
    this.#burst = burst;
    this.#perMs = perSecond / 1000;
    this.#tokens = burst;
  }

  /**
   * Calls `start` now when nothing waits and the bucket holds a token, else in its turn. Returns
   * `withdraw`: true when it took `start` out of the line before its turn (it will never run),
   * false when `start` has run or the budget is closed.
   */
  turn(start: () => void): () => boolean {
    if (this.#closed) return () => false;
    if (this.#waiting.length === 0 && this.#refill() >= 1) {
      start();
      return () => false;
    }
    this.#waiting.push(start);
    this.#schedule();
    return () => {
      const at = this.#waiting.indexOf(start);
      if (at === -1) return false;
      this.#waiting.splice(at, 1);
      return true;
    };
  }

  /** One attempt was refused. */
  spend(): void {
    this.#refill();
    this.#tokens--;
  }

  /** Drops every waiting turn without running it. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#waiting.length = 0;
  }

  #refill(): number {
    const now = performance.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#perMs);
    this.#at = now;
    return this.#tokens;
  }

  /**
   * Lets the first waiting turn go once the bucket holds a token, one turn per timer: the refusal a
   * turn makes (decided in the microtasks after it) is spent before the next turn is let go.
   */
  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    const wait = Math.max(0, (1 - this.#refill()) / this.#perMs);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      try {
        if (this.#refill() >= 1) this.#waiting.shift()?.();
      } finally {
        if (this.#waiting.length > 0) this.#schedule();
      }
    }, Math.ceil(wait));
  }
}
