// Local users' password hashes: scrypt (RFC 7914), stored as
// `scrypt$N$r$p$salt$key` (salt and key in base64url), so each hash carries
// the cost it was made with and the cost can be raised without breaking the
// hashes already stored. Not exported from the package: LocalUsers is its only
// user.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { IdentityError } from './errors.ts';

/** scrypt's cost parameters: N (CPU/memory cost, a power of two), r (block size), p (parallelisation). */
export interface ScryptCost {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/**
 * The cost of every hash made now: N = 2^16, r = 8, p = 2, one of the minimum
 * settings of OWASP's Password Storage Cheat Sheet (as costly as N = 2^17,
 * r = 8, p = 1, in half the memory). Each hash takes 64 MiB (128·N·r) for
 * some hundreds of milliseconds of one core: with at most two at once (see
 * HASHER) a gateway's sign-ins take 128 MiB at most. Hashes stored with
 * another cost (N = 2^15, r = 8, p = 1 before) are verified with theirs and
 * made again with this one when their user next signs in.
 */
export const PASSWORD_COST: ScryptCost = Object.freeze({ N: 2 ** 16, r: 8, p: 2 });

const KEY_BYTES = 32;
const SALT_BYTES = 16;

/**
 * What a stored hash may ask for, beyond which it is refused unhashed: a
 * hash's cost is read from identity.db, and one written there by anyone but
 * Corral (a restored backup, a hand edit, an attacker with the file) must not
 * make a sign-in take gigabytes or minutes. Corral writes none above
 * PASSWORD_COST; the limits leave room for raising it.
 */
const LIMITS = {
  /** N ≤ 2^20. */
  maxN: 2 ** 20,
  maxR: 16,
  maxP: 16,
  /** 128·N·r ≤ 256 MiB: the memory one hash takes. */
  maxMemoryBytes: 256 * 1024 * 1024,
  /** N·r·p ≤ 2^23: eight times PASSWORD_COST's work. */
  maxWork: 2 ** 23,
  minSaltBytes: 16,
  maxSaltBytes: 64,
} as const;

/** A stored hash, read and checked: use only this, never the stored text again. */
export interface StoredHash {
  readonly cost: ScryptCost;
  readonly salt: Buffer;
  readonly key: Buffer;
}

const DECIMAL = /^[1-9][0-9]{0,9}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Reads a stored `scrypt$N$r$p$salt$key`. `owner` names whose it is in the
 * error. Throws IDENTITY_STORE_FAILED when it is malformed (another scheme, a
 * field missing or extra, a number not in plain decimal, bad base64url, a key
 * other than 32 bytes, a salt outside 16–64 bytes) or asks for a cost outside
 * LIMITS (N not a power of two from 2 to 2^20, r or p outside 1–16, over
 * 256 MiB or eight times the current work): such a hash is refused, never
 * hashed with. The message names the rule, never the hash.
 */
export function parsePasswordHash(stored: string, owner: string): StoredHash {
  const refuse = (rule: string) => new IdentityError('IDENTITY_STORE_FAILED', `the stored password hash of ${owner} is refused: ${rule}`);
  if (typeof stored !== 'string') throw refuse('it is not text');
  const fields = stored.split('$');
  if (fields.length !== 6) throw refuse('it is not scrypt$N$r$p$salt$key');
  const [scheme, n, r, p, salt, key] = fields as [string, string, string, string, string, string];
  if (scheme !== 'scrypt') throw refuse('its scheme is not scrypt');
  if (!DECIMAL.test(n) || !DECIMAL.test(r) || !DECIMAL.test(p)) throw refuse('N, r and p must be plain decimal numbers');
  const cost = { N: Number(n), r: Number(r), p: Number(p) };
  if (cost.N < 2 || cost.N > LIMITS.maxN || (cost.N & (cost.N - 1)) !== 0) throw refuse(`N must be a power of two from 2 to ${LIMITS.maxN}`);
  if (cost.r > LIMITS.maxR) throw refuse(`r must be 1 to ${LIMITS.maxR}`);
  if (cost.p > LIMITS.maxP) throw refuse(`p must be 1 to ${LIMITS.maxP}`);
  if (memoryBytes(cost) > LIMITS.maxMemoryBytes) throw refuse(`128·N·r must be at most ${LIMITS.maxMemoryBytes / 2 ** 20} MiB`);
  if (work(cost) > LIMITS.maxWork) throw refuse(`N·r·p must be at most ${LIMITS.maxWork}`);
  if (!BASE64URL.test(salt) || !BASE64URL.test(key)) throw refuse('salt and key must be base64url');
  const saltBytes = Buffer.from(salt, 'base64url');
  const keyBytes = Buffer.from(key, 'base64url');
  if (saltBytes.length < LIMITS.minSaltBytes || saltBytes.length > LIMITS.maxSaltBytes) throw refuse(`the salt must be ${LIMITS.minSaltBytes} to ${LIMITS.maxSaltBytes} bytes`);
  if (keyBytes.length !== KEY_BYTES) throw refuse(`the key must be ${KEY_BYTES} bytes`);
  return { cost: Object.freeze(cost), salt: saltBytes, key: keyBytes };
}

/** Whether a stored hash was made with PASSWORD_COST (else its user's next sign-in makes it again). */
export function isCurrentCost(cost: ScryptCost): boolean {
  return cost.N === PASSWORD_COST.N && cost.r === PASSWORD_COST.r && cost.p === PASSWORD_COST.p;
}

/**
 * Hashes `password` (NFKC-normalised) with PASSWORD_COST and a random salt.
 * Throws IDENTITY_SIGN_IN_BUSY when the hasher is full (see HASHER).
 */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await HASHER.run(() => derive(password, salt, PASSWORD_COST));
  return format(PASSWORD_COST, salt, key);
}

/**
 * Whether `password` is the one `stored` (from parsePasswordHash) was made
 * from, compared in constant time. A hash stored with less work than
 * PASSWORD_COST is followed by a filler hash (see fillerCost), so that the
 * check takes as long as one of an unknown username (DECOY_HASH) and its time
 * does not tell that the user exists. Throws IDENTITY_SIGN_IN_BUSY when the
 * hasher is full (see HASHER).
 */
export async function passwordMatches(password: string, stored: StoredHash): Promise<boolean> {
  const actual = await HASHER.run(async () => {
    const key = await derive(password, stored.salt, stored.cost);
    const filler = fillerCost(stored.cost);
    if (filler) await derive(password, stored.salt, filler);
    return key;
  });
  return timingSafeEqual(stored.key, actual);
}

/**
 * The cost of a hash that, after one of `cost`, makes up PASSWORD_COST's work
 * (N·r·p): `cost`'s N and r, so no more memory, and as many more p as the
 * work lacks, at most LIMITS.maxP. None when `cost` has as much work already.
 */
function fillerCost(cost: ScryptCost): ScryptCost | undefined {
  const lacking = work(PASSWORD_COST) - work(cost);
  if (lacking <= 0) return undefined;
  return { N: cost.N, r: cost.r, p: Math.min(LIMITS.maxP, Math.ceil(lacking / (cost.N * cost.r))) };
}

function work(cost: ScryptCost): number {
  return cost.N * cost.r * cost.p;
}

/**
 * A stored hash's shape with PASSWORD_COST and a random salt and key, which
 * no password matches: checked when a username is unknown, so that it takes
 * as long as a wrong password. Made without hashing anything, so that the
 * first unknown username after start-up takes one hash, not two.
 */
export const DECOY_HASH: StoredHash = Object.freeze({ cost: PASSWORD_COST, salt: randomBytes(SALT_BYTES), key: randomBytes(KEY_BYTES) });

function format(cost: ScryptCost, salt: Buffer, key: Buffer): string {
  return ['scrypt', cost.N, cost.r, cost.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

function memoryBytes(cost: ScryptCost): number {
  return 128 * cost.N * cost.r;
}

/** scrypt on libuv's thread pool, never on the event loop. */
function derive(password: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  // scrypt needs 128·r·(N + p + 2) bytes; maxmem is only the ceiling it checks them against.
  const options: ScryptOptions = { N: cost.N, r: cost.r, p: cost.p, maxmem: memoryBytes(cost) + 128 * cost.r * (cost.p + 2) + 1024 * 1024 };
  return new Promise((resolve, reject) => scrypt(password.normalize('NFKC'), salt, KEY_BYTES, options, (error, key) => (error ? reject(error) : resolve(key))));
}

/**
 * Hashing work at most `maxRunning` at once, at most `maxWaiting` more queued
 * in order; one more is refused at once with IDENTITY_SIGN_IN_BUSY (retryable),
 * so a flood of sign-ins can neither take more than `maxRunning` hashes'
 * memory nor queue without end.
 */
export class HashGate {
  readonly #maxRunning: number;
  readonly #maxWaiting: number;
  #running = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(maxRunning: number, maxWaiting: number) {
    this.#maxRunning = maxRunning;
    this.#maxWaiting = maxWaiting;
  }

  /** Hashes running now and queued. */
  get load(): { running: number; waiting: number } {
    return { running: this.#running, waiting: this.#waiting.length };
  }

  /** Runs `work` when a place is free. Throws IDENTITY_SIGN_IN_BUSY, without running it, when none is and the queue is full. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#maxRunning) {
      if (this.#waiting.length >= this.#maxWaiting) {
        throw new IdentityError('IDENTITY_SIGN_IN_BUSY', `too many passwords are being checked at once (${this.#maxRunning} running, ${this.#maxWaiting} waiting): try again shortly`);
      }
      // The place is handed over by the one that frees it: #running counts this work from then on.
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}

/**
 * The process's one hasher: two hashes at once (one per core of a small
 * host, leaving libuv's other two threads to file and DNS work; 128 MiB at
 * PASSWORD_COST), fourteen more queued, some seconds' wait at most; beyond
 * that a sign-in is refused with IDENTITY_SIGN_IN_BUSY, which the gateway
 * answers 503 with Retry-After.
 */
export const HASHER = new HashGate(2, 14);
