// The two windows every throughput case counts in: the first `warmMs` after
// the start, in which a log just opened runs at about half its later rate
// (docs/audit.md), then `durationMs` of steady appending, which is what a log
// that has been running does.
export interface WindowCounts {
  first: { acked: number; ms: number };
  steady: { acked: number; ms: number };
}

export class Windows {
  readonly #t0 = performance.now();
  readonly #steadyAt: number;
  readonly #end: number;
  #acked = 0;
  #first: { acked: number; ms: number } | null = null;

  constructor(warmMs: number, durationMs: number) {
    this.#steadyAt = this.#t0 + warmMs;
    this.#end = this.#steadyAt + durationMs;
  }

  /** True until the steady window has ended. */
  open(): boolean {
    return performance.now() < this.#end;
  }

  /** Counts `n` acknowledged appends (rows); the first count past the warm window closes it. */
  count(n: number): void {
    this.#acked += n;
    if (this.#first === null) {
      const now = performance.now();
      if (now >= this.#steadyAt) this.#first = { acked: this.#acked, ms: now - this.#t0 };
    }
  }

  result(): WindowCounts {
    const ms = performance.now() - this.#t0;
    const first = this.#first ?? { acked: this.#acked, ms };
    return { first, steady: { acked: this.#acked - first.acked, ms: ms - first.ms } };
  }
}
