import { generateKeyPairSync } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { calculateJwkThumbprint, importJWK, type CryptoKey, type JWK } from 'jose';
import { IdentityError } from './errors.ts';

/** A public key as published in Corral's JWKS. */
export interface PublicJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: 'EdDSA';
  use: 'sig';
}

export interface SigningKeyInfo {
  kid: string;
  state: 'active' | 'retiring' | 'retired';
  createdAt: string;
  /** For a retiring key: when it leaves the JWKS. */
  retireAfter?: string;
}

interface Row {
  kid: string;
  private_jwk: string | null;
  public_jwk: string;
  state: 'active' | 'retiring' | 'retired';
  created_at: number;
  retire_after: number | null;
}

/**
 * Corral's token-signing keys (Ed25519), kept in identity.db (file mode 0600).
 * One key is active and signs; after a rotation the previous key is
 * "retiring": still published and accepted for `overlapMs`, so tokens signed
 * just before the rotation keep verifying until they expire, but its private
 * half, which will never sign again, is erased at the rotation. Then it is
 * retired: unpublished.
 */
export class KeyRing {
  readonly #db: DatabaseSync;
  readonly #now: () => number;
  readonly #imported = new Map<string, Promise<CryptoKey>>();
  #active: { value: { kid: string; key: CryptoKey }; readAt: number } | undefined;
  readonly #published = new Map<string, { row: Row | undefined; readAt: number }>();
  readonly #byKid: StatementSync;

  constructor(db: DatabaseSync, now: () => number = Date.now) {
    this.#db = db;
    this.#now = now;
    this.#byKid = db.prepare("SELECT * FROM signing_keys WHERE kid = ? AND state != 'retired'");
  }

  /** The active signing key, created on first use. */
  async signingKey(): Promise<{ kid: string; key: CryptoKey }> {
    const cached = this.#active;
    if (cached && fresh(cached.readAt, this.#now())) return cached.value;
    this.#expire();
    let row = this.#db.prepare("SELECT * FROM signing_keys WHERE state = 'active'").get() as Row | undefined;
    if (!row) {
      await this.#create();
      row = this.#db.prepare("SELECT * FROM signing_keys WHERE state = 'active'").get() as unknown as Row;
    }
    const kid = row.kid;
    const value = { kid, key: await this.#import(kid, 'private', row.private_jwk) };
    // Another process may rotate: look again within a second (the old key stays valid through its overlap).
    this.#active = { value, readAt: this.#now() };
    return value;
  }

  /**
   * The public key for `kid` if it is published (active, or retiring within
   * its overlap), else undefined. A key's row is re-read at least every
   * second, so a rotation by another process is seen within a second.
   */
  async verificationKey(kid: string): Promise<CryptoKey | undefined> {
    const row = this.#publishedRow(kid);
    if (!row) return undefined;
    return this.#import(kid, 'public', row.public_jwk);
  }

  /**
   * The key of the JWK text `jwk`, the `half` of key `kid`'s row, imported
   * once. A row that is no JWK (a damaged store) is
   * IDENTITY_STORE_FAILED, with neither the parser's message nor jose's as
   * its cause: V8's quotes the text around the damage, key included. It is
   * not kept, so a row mended since is read again.
   */
  #import(kid: string, half: 'private' | 'public', jwk: string | null): Promise<CryptoKey> {
    const name = `${half}:${kid}`;
    let key = this.#imported.get(name);
    if (!key) {
      const unreadable = () => new IdentityError('IDENTITY_STORE_FAILED', `the ${half} half of signing key ${kid} in the identity store cannot be read: the store is damaged; make a new key with corral identity rotate`);
      let parsed: JWK;
      try {
        parsed = JSON.parse(jwk ?? '') as JWK;
      } catch {
        throw unreadable();
      }
      key = (importJWK(parsed, 'EdDSA') as Promise<CryptoKey>).catch(() => {
        this.#imported.delete(name);
        throw unreadable();
      });
      this.#imported.set(name, key);
    }
    return key;
  }

  /**
   * Whether `kid` still verifies tokens (see verificationKey): a connection
   * opened with a token of a key since cut off (`corral identity rotate
   * --overlap 0`) asks at each request.
   */
  isPublished(kid: string): boolean {
    return this.#publishedRow(kid) !== undefined;
  }

  /** The row of `kid` while it is published, re-read at least every second. */
  #publishedRow(kid: string): Row | undefined {
    const now = this.#now();
    let known = this.#published.get(kid);
    if (!known || !fresh(known.readAt, now)) {
      const row = this.#byKid.get(kid) as Row | undefined;
      if (this.#published.size > 64) this.#published.clear();
      known = { row, readAt: now };
      this.#published.set(kid, known);
    }
    const row = known.row;
    if (!row || row.state === 'retired') return undefined;
    if (row.state === 'retiring' && row.retire_after !== null && row.retire_after <= now) return undefined;
    return row;
  }

  /**
   * The published key set: `{ keys: [...] }`, active key first, and a
   * retiring key only until its overlap ends — the moment verificationKey
   * stops accepting it, whether or not it has been marked retired yet.
   */
  async jwks(): Promise<{ keys: PublicJwk[] }> {
    await this.signingKey();
    const rows = this.#db
      .prepare("SELECT * FROM signing_keys WHERE state = 'active' OR (state = 'retiring' AND (retire_after IS NULL OR retire_after > ?)) ORDER BY state = 'active' DESC, created_at DESC")
      .all(this.#now()) as unknown as Row[];
    return { keys: rows.map((r) => publicJwk(r)) };
  }

  list(): SigningKeyInfo[] {
    this.#expire();
    const rows = this.#db.prepare("SELECT * FROM signing_keys ORDER BY state = 'active' DESC, created_at DESC").all() as unknown as Row[];
    return rows.map((r) => ({
      kid: r.kid,
      state: r.state,
      createdAt: new Date(r.created_at).toISOString(),
      ...(r.retire_after !== null ? { retireAfter: new Date(r.retire_after).toISOString() } : {}),
    }));
  }

  /**
   * Makes a new active key; the old one keeps verifying for `overlapMs`
   * (choose at least the longest token lifetime), and so at most does any
   * key still retiring from an earlier rotation: after a rotation with no
   * overlap (a leaked store) only the new key verifies. The private half of
   * each key rotated out is erased at once, from the store's file and, as
   * far as no other process reads it then, from its write-ahead log (see
   * #expire). Returns the new kid.
   */
  async rotate(overlapMs: number): Promise<string> {
    if (!Number.isSafeInteger(overlapMs) || overlapMs < 0) throw new IdentityError('IDENTITY_INPUT_INVALID', 'overlap must be a non-negative number of milliseconds');
    const material = await newKeyMaterial();
    const now = this.#now();
    this.#active = undefined;
    this.#published.clear();
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      // A key retiring from an earlier rotation is cut short too: its private half was in the store as well.
      // None of them signs again: their private halves go now, not when their overlap ends.
      this.#db.prepare("UPDATE signing_keys SET state = 'retiring', private_jwk = NULL, retire_after = MIN(IFNULL(retire_after, ?1), ?1) WHERE state IN ('active', 'retiring')").run(now + overlapMs);
      this.#db
        .prepare("INSERT INTO signing_keys (kid, private_jwk, public_jwk, state, created_at) VALUES (?, ?, ?, 'active', ?)")
        .run(material.kid, material.privateJwk, material.publicJwk, now);
      this.#db.exec('COMMIT');
    } catch (error) {
      this.#db.exec('ROLLBACK');
      if (error instanceof IdentityError) throw error;
      throw new IdentityError('IDENTITY_STORE_FAILED', 'cannot rotate the signing key', { cause: error });
    }
    this.#db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    return material.kid;
  }

  /** The first key; a no-op when another process created one meanwhile. */
  async #create(): Promise<void> {
    const material = await newKeyMaterial();
    this.#db
      .prepare("INSERT INTO signing_keys (kid, private_jwk, public_jwk, state, created_at) SELECT ?, ?, ?, 'active', ? WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE state = 'active')")
      .run(material.kid, material.privateJwk, material.publicJwk, this.#now());
  }

  /** Retires keys whose overlap has ended, erasing a private half a store from before rotations erased it may still hold. */
  #expire(): void {
    const due = this.#db.prepare("SELECT 1 FROM signing_keys WHERE state = 'retiring' AND retire_after <= ? LIMIT 1").get(this.#now());
    if (!due) return;
    this.#db.prepare("UPDATE signing_keys SET state = 'retired', private_jwk = NULL WHERE state = 'retiring' AND retire_after <= ?").run(this.#now());
    // The store zeroes what it frees (secure_delete, see openIdentityDb), but the write-ahead log still holds the
    // pages as they were, key included, until it is checkpointed and emptied. Best effort: a reader may hold it.
    this.#db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  }
}

/** A row's public half as published: IDENTITY_STORE_FAILED for one that is no JWK (a damaged store). */
function publicJwk(row: Row): PublicJwk {
  try {
    return JSON.parse(row.public_jwk) as PublicJwk;
  } catch {
    throw new IdentityError('IDENTITY_STORE_FAILED', `the public half of signing key ${row.kid} in the identity store cannot be read: the store is damaged; make a new key with corral identity rotate`);
  }
}

/** How long a key's row is used before it is read again: a rotation by another process is seen within this. */
const KEY_REREAD_MS = 1000;

/**
 * Whether a key's row read at `readAt` may still be used at `now` without
 * reading it again: for less than a second, and never once the clock has been
 * set back past the read (an NTP step, a resumed virtual machine), which
 * would otherwise keep a key another process cut off in use for as long as
 * the step.
 */
function fresh(readAt: number, now: number): boolean {
  return now >= readAt && now - readAt < KEY_REREAD_MS;
}

async function newKeyMaterial(): Promise<{ kid: string; privateJwk: string; publicJwk: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const priv = privateKey.export({ format: 'jwk' });
  const pub = publicKey.export({ format: 'jwk' });
  const kid = await calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: pub.x! });
  const published: PublicJwk = { kty: 'OKP', crv: 'Ed25519', x: pub.x!, kid, alg: 'EdDSA', use: 'sig' };
  return { kid, privateJwk: JSON.stringify({ ...priv, kid, alg: 'EdDSA' }), publicJwk: JSON.stringify(published) };
}
