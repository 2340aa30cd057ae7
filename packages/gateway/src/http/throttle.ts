// Failed sign-ins: after 5 failures for one username in 5 minutes that
// username is refused until the oldest failure leaves the window, whoever
// tries and whatever the password (unknown usernames are counted alike);
// after 30 failures from one address in 5 minutes, that address is refused
// for any username (guessing many names from one place). An IPv6 /64 counts
// as one address (one network holds all of it); an IPv4 address mapped into
// IPv6 counts as itself. A try counts from the moment it starts, so many sent
// at once are held to the same limits. The table is bounded; when full it
// drops the entries furthest from their limit first, lockouts last.
//
// Those limits let anyone who can reach the console keep a person out (one
// wrong password a minute for `admin`; on loopback every try comes from one
// address). So a browser a person signed in from before holds a device token
// for their username, sealed by this process: its tries are counted for that
// device alone, 5 in 5 minutes, and no one else's failures hold it up. The
// console keeps the token in its own origin's storage and sends it in
// `x-corral-device`, never in a cookie: cookies are not port-scoped, so any
// web server on another port of this host would be sent it, and any page
// there could spend the device's tries from the browser (a site on another
// port is the same site to SameSite, and a custom header needs a preflight
// this gateway never grants).
//
// A device token vouches for a browser that knew the user's password, so it
// is sealed over the user's credential as it was then (deviceCredential: the
// user's id and last change, as a session is): once the password is set again,
// the user removed, or another user made under the name, it is no device and
// its tries count against the username and the address like anyone's. Before,
// tokens minted under an old password went on giving 5 tries each after a
// reset, past a locked username. And however many tokens one username's
// browsers hold, their tries together count toward PER_USERNAME_DEVICES: a
// token is minted at every sign-in, so whoever knows the password could
// otherwise bank a try budget per sign-in to spend after it is changed (or
// while it still holds, on a token copied from a browser).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIPv6 } from 'node:net';

const WINDOW_MS = 5 * 60_000;
const PER_USERNAME = 5;
const PER_ADDRESS = 30;
/** Tries from one device token, for its username. */
const PER_DEVICE = 5;
/**
 * Tries under all of one username's device tokens together: three devices'
 * worth, so a person's own browsers seldom hold one another up (failures
 * without a token count toward PER_USERNAME, never here); however many
 * tokens a name has, they add no more.
 */
const PER_USERNAME_DEVICES = 15;
const MAX_KEYS = 10_000;
/** The request header the console sends its device token in. */
export const DEVICE_HEADER = 'x-corral-device';
/** How long a device token vouches for its browser. */
const DEVICE_TTL_S = 30 * 24 * 3600;

/** The device token a sign-in request carries (none when absent or too long to be one). */
export function deviceTokens(request: IncomingMessage): string[] {
  const value = request.headers[DEVICE_HEADER];
  return typeof value === 'string' && value.length <= 200 ? [value] : [];
}

/**
 * What a local user's device tokens are bound to: their id and their
 * generation (LocalUser.generation: a password, roles, email address or name
 * set moves it on), which a session is tied to too. A user removed and made
 * again under the same name never has the generation its namesake had.
 */
export function deviceCredential(user: { readonly id: string; readonly generation: number }): string {
  return `${user.id}\n${user.generation}`;
}

/** The credential of the local user of this name now (deviceCredential), or undefined when there is none. */
export type CredentialOf = (username: string) => string | undefined;

export class SignInThrottle {
  readonly #failures = new Map<string, number[]>();
  readonly #now: () => number;
  readonly #credentialOf: CredentialOf;
  /** Seals the device tokens of this process: a restart ends them, as it ends sessions. */
  readonly #deviceKey = randomBytes(32);

  /** `credentialOf` is read whenever a token is checked: without one, no token is a device. */
  constructor(now: () => number = Date.now, credentialOf: CredentialOf = () => undefined) {
    this.#now = now;
    this.#credentialOf = credentialOf;
  }

  /**
   * A try at signing in as this username from this address, with the device
   * tokens the browser sent: the seconds to wait when it is refused, else 0,
   * and the try is counted as a failure at once (until succeed()), so that
   * tries made at the same time count too.
   */
  attempt(username: string, address: string, deviceTokens: readonly string[] = []): number {
    const keys = this.#keys(username, address, deviceTokens);
    const wait = Math.max(...keys.map(([key, max]) => this.#wait(key, max)));
    if (wait > 0) return wait;
    for (const [key, max] of keys) this.#add(key, max);
    return 0;
  }

  /**
   * A try that succeeded: the failures it was counted in are forgotten (an
   * address's, and all of the username's devices', only that try: the
   * others were not shown to know the password). Answers the device token
   * to give the browser, sealed over `credential`, the deviceCredential of
   * the user whose password was found right (not read again: a password set
   * meanwhile must end this token too).
   */
  succeed(username: string, address: string, credential: string, deviceTokens: readonly string[] = []): string {
    for (const [key] of this.#keys(username, address, deviceTokens)) {
      if (key.startsWith('addr:') || key.startsWith('devs:')) this.#failures.get(key)?.pop();
      else this.#failures.delete(key);
    }
    const id = randomBytes(12).toString('base64url');
    const issued = Math.floor(this.#now() / 1000);
    return `${id}.${issued}.${this.#seal(username, credential, id, issued)}`;
  }

  /**
   * A try whose password was never checked (the gateway was too busy to
   * hash it): it says nothing about the password, so it is no longer counted
   * where attempt() counted it. Counted, every retry of the people signing
   * in while someone kept the hasher full was a failure, and locked them out
   * for WINDOW_MS after, device and all.
   */
  unchecked(username: string, address: string, deviceTokens: readonly string[] = []): void {
    for (const [key] of this.#keys(username, address, deviceTokens)) this.#failures.get(key)?.pop();
  }

  /**
   * Where a try counts: the device a valid token names, and all of this
   * username's devices together; else the username and the address.
   */
  #keys(username: string, address: string, deviceTokens: readonly string[]): Array<[string, number]> {
    const device = this.#device(username, deviceTokens);
    return device !== undefined
      ? [
          [`dev:${device}`, PER_DEVICE],
          [`devs:${keyOf(username)}`, PER_USERNAME_DEVICES],
        ]
      : [
          [`user:${keyOf(username)}`, PER_USERNAME],
          [`addr:${networkOf(address)}`, PER_ADDRESS],
        ];
  }

  /**
   * The device named by the first of `tokens` that this process sealed, in
   * the last DEVICE_TTL_S, for `username` and the credential it has now. The
   * credential is read only once a token is well formed and in date.
   */
  #device(username: string, tokens: readonly string[]): string | undefined {
    let credential: string | undefined;
    for (const token of tokens) {
      const [id, issued, mac] = token.split('.');
      if (!id || !issued || !mac || !/^[A-Za-z0-9_-]{16}$/.test(id) || !/^\d{1,12}$/.test(issued)) continue;
      const age = this.#now() / 1000 - Number(issued);
      if (age < 0 || age > DEVICE_TTL_S) continue;
      credential ??= this.#credentialOf(username);
      // No such user now (removed, never made): no token is a device for the name.
      if (credential === undefined) return undefined;
      const expected = Buffer.from(this.#seal(username, credential, id, Number(issued)));
      const given = Buffer.from(mac);
      if (given.length === expected.length && timingSafeEqual(given, expected)) return id;
    }
    return undefined;
  }

  #seal(username: string, credential: string, id: string, issued: number): string {
    // Read unambiguously: the id and time are of fixed form, and a credential is found only for a username without a newline.
    return createHmac('sha256', this.#deviceKey).update(`${keyOf(username)}\n${id}\n${issued}\n${credential}`).digest('base64url');
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
      const max = limitOf(key);
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

/** The limit of a key of the table, by its kind. */
function limitOf(key: string): number {
  if (key.startsWith('user:')) return PER_USERNAME;
  if (key.startsWith('dev:')) return PER_DEVICE;
  if (key.startsWith('devs:')) return PER_USERNAME_DEVICES;
  return PER_ADDRESS;
}

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
