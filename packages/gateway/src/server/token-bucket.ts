// A budget that refills over time: what a peer may send, or cause to be
// recorded, at a steady rate with room for a burst. Shared by the inbound
// byte budget of a connection and the audit budget of a node.

export class TokenBucket {
  #rate: number;
  #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  /** Starts full: `burst` tokens, refilled by `perSecond` a second; `now` in milliseconds. */
  constructor(perSecond: number, burst: number, now: () => number) {
    this.#rate = perSecond;
    this.#burst = burst;
    this.#now = now;
    this.#tokens = burst;
    this.#at = now();
  }

  /** Puts the bucket under another rate and burst, full. */
  reset(perSecond: number, burst: number): void {
    this.#rate = perSecond;
    this.#burst = burst;
    this.#tokens = burst;
    this.#at = this.#now();
  }

  /** Spends `n` tokens, however many are left (the balance may go below zero); returns the balance. */
  spend(n: number): number {
    this.#refill();
    this.#tokens -= n;
    return this.#tokens;
  }

  /** Spends `n` tokens if that many are left; whether it did. */
  take(n = 1): boolean {
    this.#refill();
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }

  #refill(): void {
    const now = this.#now();
    // A clock that steps back refills nothing.
    this.#tokens = Math.min(this.#burst, this.#tokens + (Math.max(0, now - this.#at) * this.#rate) / 1000);
    this.#at = now;
  }
}
