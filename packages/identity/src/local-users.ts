// People who sign in to the console with a password kept by Corral (the admin
// `corral up` creates, and any others an admin adds), for installs without
// single sign-on. Passwords are stored as scrypt hashes (RFC 7914) with a
// per-user random salt and the cost parameters beside them, so they can be
// raised later without breaking stored hashes.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { DatabaseSync } from 'node:sqlite';
import { IdentityError } from './errors.ts';
import { CORRAL_ROLES, type CorralRole } from './oidc.ts';

/** A local user as callers see it; never the hash. */
export interface LocalUser {
  /** `local:<username>`: distinct from any OIDC subject. */
  id: string;
  username: string;
  roles: CorralRole[];
  createdAt: string;
  updatedAt: string;
}

interface Row {
  username: string;
  password_hash: string;
  roles: string;
  created_at: number;
  updated_at: number;
}

const USERNAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const MIN_PASSWORD = 8;
const MAX_PASSWORD = 1024;
/** scrypt cost: N = 2^15, r = 8, p = 1 (32 MiB, tens of milliseconds). */
const COST = { N: 2 ** 15, r: 8, p: 1 } as const;
const KEY_BYTES = 32;

/** Hashes computed at once: each takes 32 MiB, so a flood of sign-ins waits its turn instead of exhausting memory. */
const MAX_CONCURRENT = 2;
let running = 0;
const waiting: Array<() => void> = [];

async function derive(password: string, salt: Buffer, cost: { N: number; r: number; p: number }): Promise<Buffer> {
  if (running >= MAX_CONCURRENT) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    const options: ScryptOptions = { ...cost, maxmem: 256 * cost.N * cost.r };
    return await new Promise((resolve, reject) => scrypt(password.normalize('NFKC'), salt, KEY_BYTES, options, (error, key) => (error ? reject(error) : resolve(key))));
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** `scrypt$N$r$p$salt$key`, salt and key in base64url. */
async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, COST);
  return ['scrypt', COST.N, COST.r, COST.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

async function matches(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64url');
  const actual = await derive(password, Buffer.from(salt, 'base64url'), { N: Number(n), r: Number(r), p: Number(p) });
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/**
 * Checked when the username is unknown, so that an unknown user takes as long
 * as a wrong password: a stored hash's shape with a random salt and key, which
 * no password matches. Made without hashing anything — a decoy hashed on first
 * use made the first unknown username after start-up take two hashes, twice
 * as long as a known one.
 */
const DECOY = ['scrypt', COST.N, COST.r, COST.p, randomBytes(16).toString('base64url'), randomBytes(KEY_BYTES).toString('base64url')].join('$');

function checkUsername(username: unknown): string {
  if (typeof username !== 'string' || !USERNAME.test(username)) throw invalid('username must be 1-63 lowercase letters, digits, dots, dashes or underscores, starting with a letter or digit');
  return username;
}

function checkPassword(password: unknown): string {
  if (typeof password !== 'string' || password.length < MIN_PASSWORD || password.length > MAX_PASSWORD) throw invalid(`password must be ${MIN_PASSWORD} to ${MAX_PASSWORD} characters`);
  if (!password.isWellFormed()) throw invalid('password holds a lone surrogate');
  return password;
}

function checkRoles(roles: unknown): CorralRole[] {
  if (!Array.isArray(roles) || roles.length === 0) throw invalid(`roles must be a non-empty list of ${CORRAL_ROLES.join(', ')}`);
  for (const role of roles) if (!(CORRAL_ROLES as readonly unknown[]).includes(role)) throw invalid(`role "${String(role).slice(0, 40)}" is not one of ${CORRAL_ROLES.join(', ')}`);
  return CORRAL_ROLES.filter((role) => roles.includes(role));
}

/** Local users, in identity.db. */
export class LocalUsers {
  readonly #db: DatabaseSync;
  readonly #now: () => number;

  constructor(db: DatabaseSync, now: () => number = Date.now) {
    this.#db = db;
    this.#now = now;
  }

  /** Creates a user. Throws IDENTITY_INPUT_INVALID (username, password, roles), IDENTITY_USER_EXISTS. */
  async create(username: string, password: string, roles: readonly CorralRole[]): Promise<LocalUser> {
    const name = checkUsername(username);
    const checked = checkRoles(roles);
    const hash = await hashPassword(checkPassword(password));
    const now = this.#now();
    try {
      this.#db.prepare('INSERT INTO local_users (username, password_hash, roles, created_at, updated_at) VALUES (?, ?, ?, ?, ?)').run(name, hash, JSON.stringify(checked), now, now);
    } catch (error) {
      if (error instanceof IdentityError) throw error;
      if (String((error as Error).message).includes('UNIQUE')) throw new IdentityError('IDENTITY_USER_EXISTS', `a user named ${name} already exists`);
      throw new IdentityError('IDENTITY_STORE_FAILED', 'cannot store the user', { cause: error });
    }
    return this.get(name);
  }

  /**
   * The user when the password is theirs, else null — the same answer, after
   * the same work, for an unknown username and a wrong password. Never throws
   * for bad input.
   */
  async verify(username: unknown, password: unknown): Promise<LocalUser | null> {
    const row = typeof username === 'string' && USERNAME.test(username) ? this.#row(username) : undefined;
    const given = typeof password === 'string' && password.length <= MAX_PASSWORD ? password : '';
    const ok = await matches(given, row?.password_hash ?? DECOY);
    return row && ok ? fromRow(row) : null;
  }

  /** Throws IDENTITY_USER_NOT_FOUND. */
  get(username: string): LocalUser {
    const row = typeof username === 'string' ? this.#row(username) : undefined;
    if (!row) throw new IdentityError('IDENTITY_USER_NOT_FOUND', `no user named ${String(username).slice(0, 80)}`);
    return fromRow(row);
  }

  list(): LocalUser[] {
    return (this.#db.prepare('SELECT * FROM local_users ORDER BY username').all() as unknown as Row[]).map(fromRow);
  }

  /** Replaces a user's password. Throws IDENTITY_USER_NOT_FOUND, IDENTITY_INPUT_INVALID. */
  async setPassword(username: string, password: string): Promise<LocalUser> {
    const user = this.get(username);
    const hash = await hashPassword(checkPassword(password));
    this.#db.prepare('UPDATE local_users SET password_hash = ?, updated_at = ? WHERE username = ?').run(hash, this.#now(), user.username);
    return this.get(user.username);
  }

  /** Replaces a user's roles. Throws IDENTITY_USER_NOT_FOUND, IDENTITY_INPUT_INVALID. */
  setRoles(username: string, roles: readonly CorralRole[]): LocalUser {
    const user = this.get(username);
    this.#db.prepare('UPDATE local_users SET roles = ?, updated_at = ? WHERE username = ?').run(JSON.stringify(checkRoles(roles)), this.#now(), user.username);
    return this.get(user.username);
  }

  #row(username: string): Row | undefined {
    return this.#db.prepare('SELECT * FROM local_users WHERE username = ?').get(username) as Row | undefined;
  }
}

function fromRow(row: Row): LocalUser {
  return {
    id: `local:${row.username}`,
    username: row.username,
    roles: JSON.parse(row.roles) as CorralRole[],
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

function invalid(message: string): IdentityError {
  return new IdentityError('IDENTITY_INPUT_INVALID', message);
}
