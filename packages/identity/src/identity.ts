import { randomBytes } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { AgentRegistry } from './agents.ts';
import { BUSY_TIMEOUT_MS } from './busy.ts';
import { CHANGE_MARK, getMeta, openIdentityDb, setMetaIfAbsent } from './db.ts';
import { IdentityError } from './errors.ts';
import { HumanRegistry } from './humans.ts';
import { KeyRing, type PublicJwk } from './keys.ts';
import { LocalUsers } from './local-users.ts';
import { NodeRegistry } from './nodes.ts';
import { issueAgentToken, verifyAgentToken, type AgentTokenClaims, type TokenRefusal, type TokenSettings } from './tokens.ts';

/** The longest issuer or audience: each is written into every token. */
const MAX_NAME_LENGTH = 256;

export interface IdentityOptions {
  /** The token issuer, fixed when the store is created (default `urn:corral:install:<random>`). */
  issuer?: string;
  /** The token audience, fixed when the store is created (default `corral`). */
  audience?: string;
  /** Default token lifetime in seconds (default 600: ten minutes). */
  defaultTtlSeconds?: number;
  /** Longest token lifetime a caller may ask for (default 3600). */
  maxTtlSeconds?: number;
  /** Clock for tests. */
  now?: () => number;
  /**
   * How long, in milliseconds, a statement waits for another process's lock
   * on the store before it fails with IDENTITY_STORE_BUSY (default 5000).
   * SQLite waits synchronously: a process that serves others from one thread
   * (the gateway) gives a short one and answers IDENTITY_STORE_BUSY as "try again".
   */
  busyTimeoutMs?: number;
}

/**
 * Corral's identity store for one state directory: agents and their tokens,
 * the signing keys and their JWKS, nodes, humans who signed in, and local
 * users who sign in with a password.
 */
export class Identity {
  readonly agents: AgentRegistry;
  readonly keys: KeyRing;
  readonly nodes: NodeRegistry;
  readonly humans: HumanRegistry;
  readonly localUsers: LocalUsers;
  readonly settings: Readonly<TokenSettings>;
  readonly #db: DatabaseSync;
  readonly #now: () => number;
  #changed: StatementSync | undefined;

  private constructor(db: DatabaseSync, settings: TokenSettings, now: () => number) {
    this.#db = db;
    this.#now = now;
    this.settings = settings;
    this.agents = new AgentRegistry(db, now);
    this.keys = new KeyRing(db, now);
    this.nodes = new NodeRegistry(db, now);
    this.humans = new HumanRegistry(db, now);
    this.localUsers = new LocalUsers(db, now);
  }

  /** Opens `STATE_DIR/identity.db`, creating it (mode 0600) on first use, and makes STATE_DIR 0700. Throws IDENTITY_STORE_FAILED; IDENTITY_STATE_DIR_UNSAFE for a state directory of another user's, or one others may write that cannot be made 0700, or an identity.db or -wal, -shm or -journal file of another user's; IDENTITY_STORE_SYMLINK when identity.db or its -wal, -shm or -journal file is a symbolic link; IDENTITY_INPUT_INVALID for lifetimes or a busy timeout out of range, an issuer or audience that is empty or longer than 256 characters, or one other than the store's; IDENTITY_STORE_BUSY when another process holds the store's lock for longer than `busyTimeoutMs` (default 5 s). */
  static open(stateDir: string, options: IdentityOptions = {}): Identity {
    const now = options.now ?? Date.now;
    const defaultTtlSeconds = options.defaultTtlSeconds ?? 600;
    const maxTtlSeconds = options.maxTtlSeconds ?? 3600;
    if (!Number.isSafeInteger(defaultTtlSeconds) || !Number.isSafeInteger(maxTtlSeconds) || defaultTtlSeconds < 1 || defaultTtlSeconds > maxTtlSeconds) {
      throw new IdentityError('IDENTITY_INPUT_INVALID', 'token lifetimes must be whole seconds with the default no longer than the maximum');
    }
    for (const name of ['issuer', 'audience'] as const) {
      // Written into every token: an empty one would turn jose's check off, a long one make tokens no verifier reads.
      const value: unknown = options[name];
      if (value !== undefined && (typeof value !== 'string' || value.length === 0 || value.length > MAX_NAME_LENGTH)) {
        throw new IdentityError('IDENTITY_INPUT_INVALID', `the token ${name} must be 1 to ${MAX_NAME_LENGTH} characters`);
      }
    }
    const busyTimeoutMs = options.busyTimeoutMs ?? BUSY_TIMEOUT_MS;
    if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) throw new IdentityError('IDENTITY_INPUT_INVALID', 'the busy timeout must be whole milliseconds, 0 or more');
    const db = openIdentityDb(stateDir, { busyTimeoutMs });
    let issuer: string;
    let audience: string;
    try {
      issuer = setMetaIfAbsent(db, 'issuer', options.issuer ?? `urn:corral:install:${randomBytes(8).toString('hex')}`);
      audience = setMetaIfAbsent(db, 'audience', options.audience ?? 'corral');
    } catch (error) {
      // IDENTITY_STORE_BUSY: another process holds the store. Its connection is not left open behind the error.
      db.close();
      throw error;
    }
    for (const [name, stored] of [['issuer', issuer], ['audience', audience]] as const) {
      if (options[name] !== undefined && options[name] !== stored) {
        db.close();
        throw new IdentityError('IDENTITY_INPUT_INVALID', `this state directory already has another ${name}`);
      }
    }
    return new Identity(db, { issuer, audience, defaultTtlSeconds, maxTtlSeconds, clockToleranceSeconds: 5 }, now);
  }

  /** A short-lived EdDSA JWT for an active agent. */
  issueToken(agent: string, options: { ttlSeconds?: number } = {}): Promise<{ token: string; claims: AgentTokenClaims }> {
    return issueAgentToken({ agents: this.agents, keys: this.keys, settings: this.settings, now: this.#now }, agent, options);
  }

  /** Verifies an agent token (see verifyAgentToken for the codes). */
  verifyToken(token: unknown, options: { singleUse?: boolean; log?: (refusal: TokenRefusal) => void } = {}): Promise<AgentTokenClaims> {
    return verifyAgentToken({ agents: this.agents, keys: this.keys, settings: this.settings, db: this.#db, now: this.#now }, token, options);
  }

  /** The published key set. */
  jwks(): Promise<{ keys: PublicJwk[] }> {
    return this.keys.jwks();
  }

  /** Rotates the signing key; the old key keeps verifying for the longest token lifetime plus clock tolerance, unless `overlapMs` says otherwise. */
  rotateKeys(overlapMs: number = (this.settings.maxTtlSeconds + this.settings.clockToleranceSeconds) * 1000): Promise<string> {
    return this.keys.rotate(overlapMs);
  }

  /**
   * A mark that differs once the store has changed, in this process or
   * another (SQLite's data_version counts other connections' commits,
   * total_changes() this one's): cheap enough to ask before every policy
   * decision, so that what is derived from the store is read again only
   * when it may differ. Throws IDENTITY_STORE_FAILED.
   */
  changeMark(): string {
    try {
      this.#changed ??= this.#db.prepare(CHANGE_MARK);
      const { version, changes } = this.#changed.get() as { version: number; changes: number };
      return `${version}:${changes}`;
    } catch (error) {
      throw new IdentityError('IDENTITY_STORE_FAILED', 'cannot read whether the identity store changed', { cause: error });
    }
  }

  /** The install's fixed settings, as stored. */
  describe(): { issuer: string; audience: string } {
    return { issuer: getMeta(this.#db, 'issuer')!, audience: getMeta(this.#db, 'audience')! };
  }

  close(): void {
    this.#db.close();
  }
}
