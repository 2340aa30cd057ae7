// People who sign in to the console with a password kept by Corral (the admin
// `corral up` creates, and any others an admin adds), for installs without
// single sign-on. Passwords are stored as scrypt hashes (RFC 7914) with a
// per-user random salt and the cost parameters beside them (password-hash.ts),
// so the cost can be raised without breaking stored hashes: one made with an
// older cost is made again with the current one when its user signs in. A user
// may carry an email address an admin gives them: never who they are (they
// sign in, approve and are recorded by username), only an address the
// gateway matches against the owners of agents, so an owner never allows
// their own agent's requests alone.
import type { DatabaseSync, SQLInputValue } from 'node:sqlite';
import { EMAIL, MAX_EMAIL } from './address.ts';
import { IdentityError } from './errors.ts';
import { DECOY_HASH, hashPassword, isCurrentCost, parsePasswordHash, passwordMatches } from './password-hash.ts';
import { CORRAL_ROLES, type CorralRole } from './oidc.ts';

/** A local user as callers see it; never the hash. */
export interface LocalUser {
  /** `local:<username>`: distinct from any OIDC subject. */
  id: string;
  username: string;
  roles: CorralRole[];
  /**
   * The person's address, as an admin gave it (`corral users add --email`,
   * `corral users email`); absent when none was. Four eyes matches it,
   * without case, against the owner of the agent whose request this user
   * would allow (the gateway's refuseOwnRequest).
   */
  email?: string;
  createdAt: string;
  updatedAt: string;
  /**
   * The login's change counter: it moves on in the same transaction as every
   * change of the login (password, roles, email address, name), and never to
   * a value any login held before, so a login removed and made again under
   * its name never has one its namesake had. A console session is tied to
   * it: unlike a time of change, two changes within one millisecond tell.
   */
  generation: number;
  /**
   * Present for a login made before its name was reserved (RESERVED_USERNAMES):
   * it cannot sign in until renamed (LocalUsers.rename) or removed.
   */
  reserved?: true;
}

interface Row {
  username: string;
  password_hash: string;
  roles: string;
  /** NULL: no address (and every login made before addresses were kept). */
  email: string | null;
  created_at: number;
  updated_at: number;
  generation: number;
}

/** The meta key of the last LocalUser.generation given, to any login. */
const LAST_GENERATION = 'local_users.generation';

const USERNAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const MIN_PASSWORD = 8;
const MAX_PASSWORD = 1024;

/**
 * Human names the gateway gives callers who are no local user: whoever holds
 * the gateway token acts as the human `operator` (the HTTP API's
 * actingHuman, an operator connection's `Human::"operator"` principal). A
 * local user of such a name could not be told from the token's holder in the
 * audit log, nor in a Cedar policy written for that principal. Approvers the
 * gateway names otherwise (`token:…`, `account:…`, `device:…`) hold a `:`,
 * which no username may.
 */
const RESERVED_USERNAMES: ReadonlySet<string> = new Set(['operator']);

/** A name for a new login. Throws IDENTITY_INPUT_INVALID when malformed or reserved, saying why and to choose another. */
function checkUsername(username: unknown): string {
  if (typeof username !== 'string' || !USERNAME.test(username)) throw invalid('username must be 1-63 lowercase letters, digits, dots, dashes or underscores, starting with a letter or digit');
  if (RESERVED_USERNAMES.has(username)) throw invalid(`the username ${username} is reserved: ${whyReserved(username)}; use another name`);
  return username;
}

/**
 * Throws IDENTITY_INPUT_INVALID for a name in RESERVED_USERNAMES, whether or
 * not the store holds a login of that name, saying why it cannot act and how
 * an admin gives a login of that name (made before it was reserved) another.
 */
function refuseReserved(username: string): void {
  if (!RESERVED_USERNAMES.has(username)) return;
  throw invalid(
    `the local login ${username} cannot sign in or have its password or roles set: its name is reserved (${whyReserved(username)}); ` +
      `an admin on the gateway's host gives it another name, keeping its password and roles, with: corral users rename ${username} NEW-NAME (or removes it: corral users remove ${username})`,
  );
}

function whyReserved(username: string): string {
  return `the gateway token acts as Human::"${username}", so a local user of that name could not be told from the token's holder in the audit log or in policy`;
}

function checkPassword(password: unknown): string {
  if (typeof password !== 'string' || password.length < MIN_PASSWORD || password.length > MAX_PASSWORD) throw invalid(`password must be ${MIN_PASSWORD} to ${MAX_PASSWORD} characters`);
  if (!password.isWellFormed()) throw invalid('password holds a lone surrogate');
  return password;
}

/**
 * A local user's email address: text of at most MAX_EMAIL characters, with
 * no control, format or separator character (a line feed or escape would
 * rewrite a terminal listing the users; a zero-width or bidi character would
 * show another address), written `local@domain` as an agent's owner must be.
 * Throws IDENTITY_INPUT_INVALID naming the field.
 */
function checkEmail(email: unknown): string {
  if (typeof email !== 'string' || email === '') throw invalid('email must be an address such as alice@example.com');
  if (email.length > MAX_EMAIL) throw invalid(`email must be at most ${MAX_EMAIL} characters`);
  if (/[\p{C}\p{Z}\s]/u.test(email)) throw invalid('email must hold no control, format, space or separator characters');
  if (!EMAIL.test(email)) throw invalid('email must be an address such as alice@example.com (local part of at most 64 characters, then @ and a domain)');
  return email;
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

  /**
   * Creates a user, with an email address when `options.email` gives one (see
   * LocalUser.email). Throws IDENTITY_INPUT_INVALID (username, password,
   * roles, email), IDENTITY_USER_EXISTS.
   */
  async create(username: string, password: string, roles: readonly CorralRole[], options: { email?: string } = {}): Promise<LocalUser> {
    const name = checkUsername(username);
    const checked = checkRoles(roles);
    const email = options.email === undefined ? null : checkEmail(options.email);
    const hash = await hashPassword(checkPassword(password));
    const now = this.#now();
    try {
      this.#write(() =>
        this.#db
          .prepare('INSERT INTO local_users (username, password_hash, roles, email, created_at, updated_at, generation) VALUES (?, ?, ?, ?, ?, ?, ?)')
          .run(name, hash, JSON.stringify(checked), email, now, now, this.#nextGeneration()),
      );
    } catch (error) {
      throw storeError(error, name);
    }
    return this.get(name);
  }

  /**
   * The user when the password is theirs, else null — the same answer, after
   * the same work (one hash at the current cost), for an unknown username and
   * a wrong password. Never throws for bad input. A user whose stored hash was
   * made with an older cost has it made again with the current one once the
   * password is found right (see #upgrade).
   *
   * Throws IDENTITY_INPUT_INVALID for a reserved username (RESERVED_USERNAMES),
   * whatever the password and whether or not the store holds it (one made
   * before the name was refused), before reading or hashing anything;
   * IDENTITY_SIGN_IN_BUSY (retryable) when too many passwords are being
   * checked at once, and IDENTITY_STORE_FAILED, without hashing, when the
   * user's stored hash is malformed or asks for an absurd cost.
   */
  async verify(username: unknown, password: unknown): Promise<LocalUser | null> {
    if (typeof username === 'string') refuseReserved(username);
    const row = typeof username === 'string' && USERNAME.test(username) ? this.#row(username) : undefined;
    const given = typeof password === 'string' && password.length <= MAX_PASSWORD ? password : '';
    const stored = row ? parsePasswordHash(row.password_hash, row.username) : DECOY_HASH;
    const ok = await passwordMatches(given, stored);
    if (!row || !ok) return null;
    if (!isCurrentCost(stored.cost)) await this.#upgrade(row, given);
    return fromRow(row);
  }

  /**
   * Makes `row`'s hash again with the current cost, from the password just
   * found right. Replaces it only if it is still the one checked (a password
   * changed meanwhile stays), in one statement, and leaves its generation
   * alone: it is no change of the user's, and sessions are tied to it. Any failure
   * (the hasher full, the store busy) keeps the old hash, which still signs
   * the user in and is upgraded next time.
   */
  async #upgrade(row: Row, password: string): Promise<void> {
    try {
      const hash = await hashPassword(password);
      this.#db.prepare('UPDATE local_users SET password_hash = ? WHERE username = ? AND password_hash = ?').run(hash, row.username, row.password_hash);
    } catch {
      // Kept as it was: see above.
    }
  }

  /**
   * Throws IDENTITY_USER_NOT_FOUND, and IDENTITY_INPUT_INVALID for a reserved
   * username, even one the store holds: such a user is no one's to act as
   * (a session it opened ends, its password is not set again). list() still
   * shows it.
   */
  get(username: string): LocalUser {
    if (typeof username === 'string') refuseReserved(username);
    return fromRow(this.#held(username));
  }

  list(): LocalUser[] {
    return (this.#db.prepare('SELECT * FROM local_users ORDER BY username').all() as unknown as Row[]).map(fromRow);
  }

  /**
   * Removes a user, reserved names included (the way out for a login made
   * before its name was reserved), and gives it back as it was. A session it
   * holds ends at its next request (the gateway finds the user no more).
   * Throws IDENTITY_USER_NOT_FOUND, and IDENTITY_LAST_ADMIN for the only
   * login that can sign in holding the admin role.
   */
  remove(username: string): LocalUser {
    return this.#write(() => {
      const row = this.#held(username);
      this.#keepAnAdmin(row, []);
      this.#db.prepare('DELETE FROM local_users WHERE username = ?').run(row.username);
      return fromRow(row);
    });
  }

  /**
   * Gives a login made before its name was reserved a name of its own,
   * keeping its password and roles; its id changes, and so a session it held
   * ends. Only a reserved name is renamed: approvals (a quorum's distinct
   * approvers) and the audit log know every other login by its name for good.
   * Throws IDENTITY_USER_NOT_FOUND; IDENTITY_INPUT_INVALID when `username` is
   * not reserved or `newName` is malformed or reserved; IDENTITY_USER_EXISTS
   * when `newName` is taken.
   */
  rename(username: string, newName: string): LocalUser {
    if (typeof username !== 'string' || !RESERVED_USERNAMES.has(username)) {
      throw invalid(`only a login whose name is reserved (${[...RESERVED_USERNAMES].join(', ')}) can be renamed: approvals and the audit log know every other by its name`);
    }
    const name = checkUsername(newName);
    try {
      this.#change(username, 'username = ?', [name]);
    } catch (error) {
      throw storeError(error, name);
    }
    return this.get(name);
  }

  /** Replaces a user's password. Throws IDENTITY_USER_NOT_FOUND, IDENTITY_INPUT_INVALID. */
  async setPassword(username: string, password: string): Promise<LocalUser> {
    const user = this.get(username);
    const hash = await hashPassword(checkPassword(password));
    this.#change(user.username, 'password_hash = ?', [hash]);
    return this.get(user.username);
  }

  /**
   * Replaces a user's roles. Throws IDENTITY_USER_NOT_FOUND,
   * IDENTITY_INPUT_INVALID, and IDENTITY_LAST_ADMIN when they lack admin and
   * the user is the only login that can sign in holding it.
   */
  setRoles(username: string, roles: readonly CorralRole[]): LocalUser {
    const user = this.get(username);
    const checked = checkRoles(roles);
    this.#change(user.username, 'roles = ?', [JSON.stringify(checked)], (row) => this.#keepAnAdmin(row, checked));
    return this.get(user.username);
  }

  /**
   * Gives a user the email address `email`, or none (`null`). A change of
   * the user as any other: their sessions end (the gateway finds the user
   * changed) and they sign in again. Throws IDENTITY_USER_NOT_FOUND, and
   * IDENTITY_INPUT_INVALID for a malformed address or a reserved username.
   */
  setEmail(username: string, email: string | null): LocalUser {
    const user = this.get(username);
    const address = email === null ? null : checkEmail(email);
    this.#change(user.username, 'email = ?', [address]);
    return this.get(user.username);
  }

  /**
   * Sets `columns` (`name = ?, …`, to `values`) of `username`'s row, with a
   * new time of change and generation, in one transaction that `check`,
   * given the row as it stands, may refuse. Throws IDENTITY_USER_NOT_FOUND.
   */
  #change(username: string, columns: string, values: SQLInputValue[], check?: (row: Row) => void): void {
    this.#write(() => {
      const row = this.#held(username);
      check?.(row);
      this.#db.prepare(`UPDATE local_users SET ${columns}, updated_at = ?, generation = ? WHERE username = ?`).run(...values, this.#now(), this.#nextGeneration(), row.username);
    });
  }

  /**
   * Throws IDENTITY_LAST_ADMIN when `row`, left with `roles`, would take the
   * admin role from the last login that can sign in holding it (reserved
   * names sign in as no one). Read under the write lock #write takes, so two
   * demotions at once cannot each count the other as still holding it.
   */
  #keepAnAdmin(row: Row, roles: readonly CorralRole[]): void {
    const admin = (r: Row) => {
      const user = fromRow(r);
      return user.reserved !== true && user.roles.includes('admin');
    };
    if (!admin(row) || roles.includes('admin')) return;
    const others = (this.#db.prepare('SELECT * FROM local_users WHERE username <> ?').all(row.username) as unknown as Row[]).filter(admin);
    if (others.length > 0) return;
    throw new IdentityError(
      'IDENTITY_LAST_ADMIN',
      `the login ${row.username} is the only one that can sign in holding the admin role: without it no one could administer the console; give another login the admin role first (corral users roles NAME --role admin, or corral users add NAME --role admin)`,
    );
  }

  /** The next LocalUser.generation, taken within the caller's transaction. */
  #nextGeneration(): number {
    const row = this.#db
      .prepare("INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1 RETURNING value")
      .get(LAST_GENERATION) as { value: string };
    return Number(row.value);
  }

  /** Runs `work` in a transaction holding the store's write lock from its start: what it reads stays so until it commits. */
  #write<T>(work: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const result = work();
      this.#db.exec('COMMIT');
      return result;
    } catch (error) {
      this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  #row(username: string): Row | undefined {
    return this.#db.prepare('SELECT * FROM local_users WHERE username = ?').get(username) as Row | undefined;
  }

  /** The stored row of `username`, reserved or not. Throws IDENTITY_USER_NOT_FOUND. */
  #held(username: string): Row {
    const row = typeof username === 'string' ? this.#row(username) : undefined;
    if (!row) throw notFound(username);
    return row;
  }
}

function notFound(username: unknown): IdentityError {
  return new IdentityError('IDENTITY_USER_NOT_FOUND', `no user named ${String(username).slice(0, 80)}`);
}

/** A failed write of the user `name`: IDENTITY_USER_EXISTS when the name is taken, else IDENTITY_STORE_FAILED. */
function storeError(error: unknown, name: string): IdentityError {
  if (error instanceof IdentityError) return error;
  if (String((error as Error).message).includes('UNIQUE')) return new IdentityError('IDENTITY_USER_EXISTS', `a user named ${name} already exists`);
  return new IdentityError('IDENTITY_STORE_FAILED', 'cannot store the user', { cause: error });
}

function fromRow(row: Row): LocalUser {
  return {
    id: `local:${row.username}`,
    username: row.username,
    roles: JSON.parse(row.roles) as CorralRole[],
    ...(row.email !== null ? { email: row.email } : {}),
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
    generation: row.generation,
    ...(RESERVED_USERNAMES.has(row.username) ? { reserved: true as const } : {}),
  };
}

function invalid(message: string): IdentityError {
  return new IdentityError('IDENTITY_INPUT_INVALID', message);
}
