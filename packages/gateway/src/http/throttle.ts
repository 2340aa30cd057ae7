// Failed sign-ins, counted per username: after 5 failures in 5 minutes that
// username is refused until the oldest failure leaves the window, whoever
// tries and whatever the password. Unknown usernames are counted alike.
const WINDOW_MS = 5 * 60_000;
const MAX_FAILURES = 5;
const MAX_KEYS = 10_000;

export class SignInThrottle {
  readonly #failures = new Map<string, number[]>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Seconds to wait before trying this username again, or 0 when a try is allowed. */
  retryAfterS(username: string): number {
    const recent = this.#recent(username);
    if (recent.length < MAX_FAILURES) return 0;
    return Math.max(1, Math.ceil((recent[0]! + WINDOW_MS - this.#now()) / 1000));
  }

  fail(username: string): void {
    const key = keyOf(username);
    if (!this.#failures.has(key) && this.#failures.size >= MAX_KEYS) this.#failures.delete(this.#failures.keys().next().value!);
    this.#failures.set(key, [...this.#recent(username), this.#now()].slice(-MAX_FAILURES));
  }

  succeed(username: string): void {
    this.#failures.delete(keyOf(username));
  }

  #recent(username: string): number[] {
    const since = this.#now() - WINDOW_MS;
    return (this.#failures.get(keyOf(username)) ?? []).filter((t) => t > since);
  }
}

const keyOf = (username: string) => username.toLowerCase().slice(0, 128);
