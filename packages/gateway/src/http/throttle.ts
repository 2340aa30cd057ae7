// Failed sign-ins: after 5 failures for one username in 5 minutes that
// username is refused until the oldest failure leaves the window, whoever
// tries and whatever the password (unknown usernames are counted alike);
// after 30 failures from one address in 5 minutes, that address is refused
// for any username (guessing many names from one place). An IPv6 /64 counts
// as one address (one network holds all of it); an IPv4 address mapped into
// IPv6 counts as itself. A try counts from the moment it starts, so many sent
// at once are held to the same limits. The table is bounded; when full it
// drops the entries furthest from their limit first, lockouts last.
import { isIPv6 } from 'node:net';

const WINDOW_MS = 5 * 60_000;
const PER_USERNAME = 5;
const PER_ADDRESS = 30;
const MAX_KEYS = 10_000;

export class SignInThrottle {
  readonly #failures = new Map<string, number[]>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * A try at signing in as this username from this address: the seconds to
   * wait when it is refused, else 0, and the try is counted as a failure at
   * once (until succeed()), so that tries made at the same time count too.
   */
  attempt(username: string, address: string): number {
    const wait = Math.max(this.#wait(`user:${keyOf(username)}`, PER_USERNAME), this.#wait(`addr:${networkOf(address)}`, PER_ADDRESS));
    if (wait > 0) return wait;
    this.#add(`user:${keyOf(username)}`, PER_USERNAME);
    this.#add(`addr:${networkOf(address)}`, PER_ADDRESS);
    return 0;
  }

  /** A try that succeeded: the username's failures are forgotten, and the address's count drops the try. */
  succeed(username: string, address: string): void {
    this.#failures.delete(`user:${keyOf(username)}`);
    this.#failures.get(`addr:${networkOf(address)}`)?.pop();
  }

  #wait(key: string, max: number): number {
    const recent = this.#recent(key);
    if (recent.length < max) return 0;
    return Math.max(1, Math.ceil((recent[recent.length - max]! + WINDOW_MS - this.#now()) / 1000));
  }

  #add(key: string, max: number): void {
    if (!this.#failures.has(key) && this.#failures.size >= MAX_KEYS) this.#makeRoom();
    this.#failures.set(key, [...this.#recent(key), this.#now()].slice(-max));
  }

  /**
   * Forgets what left the window, then, if still full, a tenth of the
   * entries: those furthest from their own limit first (5 failures lock a
   * name, 30 an address), the newest first among equals; a locked-out entry
   * only after every other, the one whose lockout ends soonest first.
   * Dropping the oldest key instead let a flood of failures for fresh names
   * erase the count of the username it was guessing; ranking raw counts let
   * addresses short of their limit outrank a locked name, and dropping the
   * newest lockout first let whoever just locked a name out unlock it.
   */
  #makeRoom(): void {
    for (const key of this.#failures.keys()) if (this.#recent(key).length === 0) this.#failures.delete(key);
    if (this.#failures.size < MAX_KEYS) return;
    const ranked = [...this.#failures.keys()].map((key, order) => {
      const recent = this.#recent(key);
      const max = key.startsWith('user:') ? PER_USERNAME : PER_ADDRESS;
      const locked = recent.length >= max;
      return { key, share: Math.min(1, recent.length / max), endsAt: locked ? recent[recent.length - max]! : 0, order: locked ? order : -order };
    });
    ranked.sort((a, b) => a.share - b.share || a.endsAt - b.endsAt || a.order - b.order);
    for (const { key } of ranked.slice(0, MAX_KEYS / 10)) this.#failures.delete(key);
  }

  #recent(key: string): number[] {
    const since = this.#now() - WINDOW_MS;
    return (this.#failures.get(key) ?? []).filter((t) => t > since);
  }
}

const keyOf = (username: string) => username.toLowerCase().slice(0, 128);

/** What the per-address limit counts: an IPv4 address (mapped into IPv6 or not), or an IPv6 address's /64. */
function networkOf(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1]!;
  const bare = address.split('%')[0]!;
  if (!isIPv6(bare)) return address;
  const [head = '', tail] = bare.split('::');
  const front = head === '' ? [] : head.split(':');
  const back = tail === undefined || tail === '' ? [] : tail.split(':');
  // An embedded IPv4 tail (::a.b.c.d) fills two groups; only the first four count here.
  const width = back.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const groups = tail === undefined ? front : [...front, ...Array<string>(8 - front.length - width).fill('0'), ...back];
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}
