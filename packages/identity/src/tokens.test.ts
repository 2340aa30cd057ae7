import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import fc from 'fast-check';
import { SignJWT, importJWK, type JWK } from 'jose';
import { IdentityError, FORGED_TOKEN_CODES } from './errors.ts';
import { Identity, type IdentityOptions } from './identity.ts';
import type { TokenRefusal } from './tokens.ts';

/** A new directory for one test, removed once all this file's tests have run. */
const freshDir = () => tempDir('corral-identity-');

/** Opens the store in `dir` as one Corral process would, runs `use` on it, and closes it however `use` ends. */
async function withIdentity(dir: string, options: IdentityOptions, use: (id: Identity) => Promise<void>): Promise<void> {
  const id = Identity.open(dir, options);
  try {
    await use(id);
  } finally {
    id.close();
  }
}

/** Runs one statement straight on identity.db, as damage or an older Corral would leave it. */
function editStore(dir: string, sql: string, ...params: SQLInputValue[]): void {
  const db = new DatabaseSync(join(dir, 'identity.db'));
  db.prepare(sql).run(...params);
  db.close();
}

/** The store's active signing key as identity.db holds it: its kid and its private JWK. */
function activeKeyRow(dir: string): { kid: string; private_jwk: string } {
  const db = new DatabaseSync(join(dir, 'identity.db'));
  const row = db.prepare("SELECT kid, private_jwk FROM signing_keys WHERE state = 'active'").get() as { kid: string; private_jwk: string };
  db.close();
  return row;
}

/** The private half (`d`) of the store's active signing key. */
function activePrivateKey(dir: string): string {
  return (JSON.parse(activeKeyRow(dir).private_jwk) as { d: string }).d;
}

/** Asserts neither identity.db nor its write-ahead log holds `secret` anywhere; `what` names it in the failure. */
function assertStoreForgot(dir: string, secret: string, what: string): void {
  for (const file of ['identity.db', 'identity.db-wal']) {
    const path = join(dir, file);
    assert.ok(!existsSync(path) || !readFileSync(path).includes(secret), `${file} still holds ${what}`);
  }
}

/** Signs arbitrary claims with the store's own active private key: a genuine signature on whatever we like. */
async function signWithStoreKey(dir: string, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  const row = activeKeyRow(dir);
  const key = await importJWK(JSON.parse(row.private_jwk) as JWK, 'EdDSA');
  return new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: row.kid, ...header }).sign(key);
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

describe('agent tokens', () => {
  let dir: string;
  let id: Identity;
  let clock = Date.UTC(2026, 10, 25, 12);
  before(() => {
    dir = freshDir();
    id = Identity.open(dir, { issuer: 'https://corral.example.com', now: () => clock });
    id.agents.create({ name: 'invoice-bot', process: 'invoice-intake', owner: 'alice@example.com', scopes: ['records:read', 'payments:create'] });
  });
  after(() => id.close());

  it('issues an EdDSA JWT that verifies, with sub, process, scopes and a ten-minute default expiry', async () => {
    const { token, claims } = await id.issueToken('invoice-bot');
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString());
    assert.equal(header.alg, 'EdDSA');
    assert.equal(header.typ, 'at+jwt');
    assert.equal(claims.exp - claims.iat, 600);
    const verified = await id.verifyToken(token);
    assert.equal(verified.sub, id.agents.get('invoice-bot').id);
    assert.equal(verified.process, 'invoice-intake');
    assert.equal(verified.scope, 'records:read payments:create');
    assert.equal(verified.iss, 'https://corral.example.com');
  });

  it('publishes the verification key in the JWKS with its kid, and no private part', async () => {
    const { token } = await id.issueToken('invoice-bot');
    const kid = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid;
    const jwks = await id.jwks();
    assert.equal(jwks.keys[0]?.kid, kid);
    assert.equal(jwks.keys[0]?.crv, 'Ed25519');
    assert.ok(!('d' in jwks.keys[0]!));
  });

  it('keeps identity.db readable by its owner only', () => {
    assert.equal(statSync(join(dir, 'identity.db')).mode & 0o777, 0o600);
  });

  it('refuses a TTL above the maximum, and a token for an unknown agent', async () => {
    await assert.rejects(id.issueToken('invoice-bot', { ttlSeconds: 3601 }), { code: 'IDENTITY_INPUT_INVALID' });
    await assert.rejects(id.issueToken('nobody'), { code: 'IDENTITY_AGENT_NOT_FOUND' });
  });

  describe('refuses bad tokens, each with its own code', () => {
    const now = () => Math.floor(clock / 1000);
    const good = () => ({ iss: 'https://corral.example.com', aud: 'corral', sub: id.agents.get('invoice-bot').id, jti: 'j1', iat: now(), nbf: now(), exp: now() + 300, agent: 'invoice-bot', process: 'invoice-intake', scope: '', gen: 1 });

    it('an expired token: IDENTITY_TOKEN_EXPIRED', async () => {
      const { token } = await id.issueToken('invoice-bot', { ttlSeconds: 60 });
      clock += 120_000;
      try {
        await assert.rejects(id.verifyToken(token), { code: 'IDENTITY_TOKEN_EXPIRED' });
      } finally {
        clock -= 120_000;
      }
    });

    it('a token not valid yet: IDENTITY_TOKEN_NOT_YET_VALID', async () => {
      const token = await signWithStoreKey(dir, { ...good(), nbf: now() + 600, iat: now(), exp: now() + 900 });
      await assert.rejects(id.verifyToken(token), { code: 'IDENTITY_TOKEN_NOT_YET_VALID' });
    });

    it('a token for another audience: IDENTITY_TOKEN_AUDIENCE', async () => {
      await assert.rejects(id.verifyToken(await signWithStoreKey(dir, { ...good(), aud: 'someone-else' })), { code: 'IDENTITY_TOKEN_AUDIENCE' });
    });

    it('a token from another issuer: IDENTITY_TOKEN_ISSUER', async () => {
      await assert.rejects(id.verifyToken(await signWithStoreKey(dir, { ...good(), iss: 'https://evil.example' })), { code: 'IDENTITY_TOKEN_ISSUER' });
    });

    it('an unsigned token (alg none): IDENTITY_TOKEN_UNSIGNED', async () => {
      const token = `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(good())}.`;
      await assert.rejects(id.verifyToken(token), { code: 'IDENTITY_TOKEN_UNSIGNED' });
    });

    it('a tampered payload (longer expiry) on a genuine signature: IDENTITY_TOKEN_SIGNATURE_INVALID', async () => {
      const { token } = await id.issueToken('invoice-bot');
      const [h, p, s] = token.split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
      const forged = `${h}.${b64({ ...claims, exp: claims.exp + 86_400 })}.${s}`;
      await assert.rejects(id.verifyToken(forged), { code: 'IDENTITY_TOKEN_SIGNATURE_INVALID' });
    });

    it('a token signed by another key under a published kid: IDENTITY_TOKEN_SIGNATURE_INVALID', async () => {
      const { token } = await id.issueToken('invoice-bot');
      const kid = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid;
      const { privateKey } = generateKeyPairSync('ed25519');
      const forged = await new SignJWT(good()).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid }).sign(privateKey);
      await assert.rejects(id.verifyToken(forged), { code: 'IDENTITY_TOKEN_SIGNATURE_INVALID' });
    });

    it('a token naming a key Corral never published: IDENTITY_TOKEN_KEY_UNKNOWN', async () => {
      const { privateKey } = generateKeyPairSync('ed25519');
      const forged = await new SignJWT(good()).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'made-up' }).sign(privateKey);
      await assert.rejects(id.verifyToken(forged), { code: 'IDENTITY_TOKEN_KEY_UNKNOWN' });
    });

    it('an HS256 token keyed with the public key (algorithm confusion): IDENTITY_TOKEN_ALGORITHM', async () => {
      const jwks = await id.jwks();
      const secret = new TextEncoder().encode(JSON.stringify(jwks.keys[0]));
      const forged = await new SignJWT(good()).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: jwks.keys[0]!.kid }).sign(secret);
      await assert.rejects(id.verifyToken(forged), { code: 'IDENTITY_TOKEN_ALGORITHM' });
    });

    it('an ID token or other JWT type: IDENTITY_TOKEN_CLAIMS_INVALID', async () => {
      await assert.rejects(id.verifyToken(await signWithStoreKey(dir, good(), { typ: 'JWT' })), { code: 'IDENTITY_TOKEN_CLAIMS_INVALID' });
    });

    it('a forged token of another type is forged, not refused: IDENTITY_TOKEN_SIGNATURE_INVALID', async () => {
      // Before: the type was checked ahead of the signature, so a forgery typed JWT was classed as a genuine token refused.
      const kid = (await id.jwks()).keys[0]!.kid;
      const { privateKey } = generateKeyPairSync('ed25519');
      for (const typ of ['JWT', undefined]) {
        const forged = await new SignJWT(good()).setProtectedHeader({ alg: 'EdDSA', kid, ...(typ ? { typ } : {}) }).sign(privateKey);
        await assert.rejects(id.verifyToken(forged), { code: 'IDENTITY_TOKEN_SIGNATURE_INVALID' }, String(typ));
      }
      await assert.rejects(id.verifyToken(await signWithStoreKey(dir, good(), { typ: undefined })), { code: 'IDENTITY_TOKEN_CLAIMS_INVALID' }, 'a genuine token without a type');
    });

    it('a genuine token issued in the future, so that it outlives the longest lifetime: IDENTITY_TOKEN_NOT_YET_VALID', async () => {
      // Before: nbf now, iat and exp a year ahead passed the lifetime check (exp - iat) and the token lived a year.
      const year = 365 * 86_400;
      await assert.rejects(id.verifyToken(await signWithStoreKey(dir, { ...good(), iat: now() + year, exp: now() + year + 300 })), { code: 'IDENTITY_TOKEN_NOT_YET_VALID' });
      await assert.rejects(id.verifyToken(await signWithStoreKey(dir, { ...good(), iat: now() + 6 })), { code: 'IDENTITY_TOKEN_NOT_YET_VALID' }, 'beyond the 5 s tolerance');
      await id.verifyToken(await signWithStoreKey(dir, { ...good(), iat: now() + 5 }));
    });

    it('a genuine token living longer than Corral issues: IDENTITY_TOKEN_CLAIMS_INVALID', async () => {
      await assert.rejects(id.verifyToken(await signWithStoreKey(dir, { ...good(), exp: now() + 86_400 })), { code: 'IDENTITY_TOKEN_CLAIMS_INVALID' });
    });

    it('a single-use token presented twice: IDENTITY_TOKEN_REPLAYED', async () => {
      const { token } = await id.issueToken('invoice-bot');
      await id.verifyToken(token, { singleUse: true });
      await assert.rejects(id.verifyToken(token, { singleUse: true }), { code: 'IDENTITY_TOKEN_REPLAYED' });
    });

    it('garbage: IDENTITY_TOKEN_MALFORMED', async () => {
      for (const t of ['', 'a.b', 'a.b.c.d', '!!.??.x', `${b64([1])}.${b64({})}.sig`, 'eyJ.eyJ.sig', 42, null]) {
        await assert.rejects(id.verifyToken(t), { code: 'IDENTITY_TOKEN_MALFORMED' }, String(t));
      }
    });
  });

  it('logs each refusal with its code and never the token or any key material', async () => {
    const log: TokenRefusal[] = [];
    const { token } = await id.issueToken('invoice-bot');
    const [h, p] = token.split('.') as [string, string, string];
    const forged = `${h}.${p}.${'A'.repeat(86)}`;
    await assert.rejects(id.verifyToken(forged, { log: (r) => log.push(r) }), { code: 'IDENTITY_TOKEN_SIGNATURE_INVALID' });
    assert.equal(log.length, 1);
    assert.equal(log[0]?.code, 'IDENTITY_TOKEN_SIGNATURE_INVALID');
    const text = JSON.stringify(log);
    const db = new DatabaseSync(join(dir, 'identity.db'));
    const secrets = (db.prepare('SELECT private_jwk FROM signing_keys WHERE private_jwk IS NOT NULL').all() as { private_jwk: string }[]).map((r) => (JSON.parse(r.private_jwk) as { d: string }).d);
    db.close();
    for (const piece of [token, forged, p, token.split('.')[2]!, ...secrets]) assert.ok(!text.includes(piece));
    for (const e of [await id.verifyToken(forged).catch((x: unknown) => x)]) {
      assert.ok(e instanceof IdentityError);
      assert.ok(!e.message.includes(p) && !secrets.some((s) => e.message.includes(s)));
    }
  });

  it('logs the key id of a forged token only when it is base64url, so no line feed or escape sequence of a forger\'s reaches the log', async () => {
    // Before: the header's kid was logged as the forger wrote it (up to 128 characters of anything, before any signature
    // was checked), and a log written as lines showed a line of the forger's making, or had the terminal rewritten.
    for (const kid of ['x\n{"event":"token.accepted","sub":"agt_admin"}', '\u001b[2J\u001b[Hall clear', 'a\u202eb']) {
      const log: TokenRefusal[] = [];
      const forged = `${b64({ alg: 'EdDSA', typ: 'at+jwt', kid })}.${b64({ sub: 'agt_x' })}.${'A'.repeat(86)}`;
      await assert.rejects(id.verifyToken(forged, { log: (r) => log.push(r) }), { code: 'IDENTITY_TOKEN_KEY_UNKNOWN' });
      assert.equal(log.length, 1);
      assert.equal(log[0]!.kid, undefined, JSON.stringify(log[0]));
    }
    const log: TokenRefusal[] = [];
    const unknown = `${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: 'retired-or-never-published_0' })}.${b64({ sub: 'agt_x' })}.${'A'.repeat(86)}`;
    await assert.rejects(id.verifyToken(unknown, { log: (r) => log.push(r) }), { code: 'IDENTITY_TOKEN_KEY_UNKNOWN' });
    assert.equal(log[0]!.kid, 'retired-or-never-published_0', 'a key id of key-id shape is still logged, published or not');
  });

  it('classes forged codes apart from refused ones', () => {
    assert.ok(FORGED_TOKEN_CODES.has('IDENTITY_TOKEN_SIGNATURE_INVALID'));
    assert.ok(!FORGED_TOKEN_CODES.has('IDENTITY_TOKEN_EXPIRED'));
    assert.ok(!FORGED_TOKEN_CODES.has('IDENTITY_TOKEN_REVOKED'));
  });

  it('never lets a foreign exception out of the token parser, whatever the input (property)', async () => {
    const segment = fc.oneof(fc.string({ maxLength: 40 }), fc.jsonValue().map(b64), fc.constant(b64({ alg: 'EdDSA', typ: 'at+jwt', kid: 'x' })), fc.constant(b64({ alg: 'none' })));
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ maxLength: 300 }), fc.tuple(segment, segment, segment).map((s) => s.join('.'))), async (text) => {
        try {
          await id.verifyToken(text);
          assert.fail('a random token verified');
        } catch (error) {
          assert.ok(error instanceof IdentityError, String(error));
          assert.ok(FORGED_TOKEN_CODES.has(error.code) || error.code === 'IDENTITY_TOKEN_CLAIMS_INVALID', error.code);
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe('an agent at the limits of what it may hold', () => {
  it('is issued tokens that verify: 64 scopes, 2,047 characters of them, under a 256-character issuer and audience', async () => {
    const dir = freshDir();
    await withIdentity(dir, { issuer: `https://${'i'.repeat(248)}`, audience: 'a'.repeat(256) }, async (id) => {
      const scopes = Array.from({ length: 64 }, (_, i) => `${String(i).padStart(2, '0')}:${'x'.repeat(28)}`);
      id.agents.create({ name: 'n'.repeat(63), process: 'p'.repeat(63), owner: 'o@example.com', scopes });
      const { token } = await id.issueToken('n'.repeat(63));
      assert.equal((await id.verifyToken(token)).scope.split(' ').length, 64);
    });
  });

  it('is issued no token at all when an older store gave it more scopes than a token carries', async () => {
    // Before: the token was handed out, and every verifier refused it as malformed.
    const dir = freshDir();
    await withIdentity(dir, {}, async (id) => {
      id.agents.create({ name: 'legacy-bot', process: 'p', owner: 'o@example.com' });
      editStore(dir, "UPDATE agents SET scopes = ? WHERE name = 'legacy-bot'", JSON.stringify(Array.from({ length: 100 }, (_, i) => `scope-${i}:${'x'.repeat(100)}`)));
      await assert.rejects(id.issueToken('legacy-bot'), { code: 'IDENTITY_INPUT_INVALID' });
    });
  });
});

describe('the kill switch', () => {
  it('makes every token of a suspended agent useless at once, also in another process handle on the same store, and for good after resume', async () => {
    const dir = freshDir();
    const issuer = Identity.open(dir);
    const verifier = Identity.open(dir); // a second handle, as another Corral process would have
    try {
      issuer.agents.create({ name: 'payroll-bot', process: 'payroll', owner: 'bob@example.com' });
      const { token } = await issuer.issueToken('payroll-bot');
      await verifier.verifyToken(token);
      const t0 = performance.now();
      issuer.agents.suspend('payroll-bot');
      await assert.rejects(verifier.verifyToken(token), { code: 'IDENTITY_TOKEN_REVOKED' });
      assert.ok(performance.now() - t0 < 1000);
      await assert.rejects(issuer.issueToken('payroll-bot'), { code: 'IDENTITY_AGENT_STATE' });
      issuer.agents.resume('payroll-bot');
      await assert.rejects(verifier.verifyToken(token), { code: 'IDENTITY_TOKEN_REVOKED' });
      const fresh = await issuer.issueToken('payroll-bot');
      await verifier.verifyToken(fresh.token);
      issuer.agents.retire('payroll-bot');
      await assert.rejects(verifier.verifyToken(fresh.token), { code: 'IDENTITY_TOKEN_REVOKED' });
      assert.throws(() => issuer.agents.resume('payroll-bot'), { code: 'IDENTITY_AGENT_STATE' });
    } finally {
      issuer.close();
      verifier.close();
    }
  });
});

describe('key rotation', () => {
  it('keeps tokens signed by the previous key valid through the overlap, then refuses them as unknown-key', async () => {
    const dir = freshDir();
    let clock = Date.UTC(2026, 10, 25, 12);
    await withIdentity(dir, { now: () => clock }, async (id) => {
      id.agents.create({ name: 'bot', process: 'p', owner: 'o@example.com' });
      const old = await id.issueToken('bot', { ttlSeconds: 900 });
      const newKid = await id.rotateKeys(15 * 60_000);
      const fresh = await id.issueToken('bot');
      assert.equal(JSON.parse(Buffer.from(fresh.token.split('.')[0]!, 'base64url').toString()).kid, newKid);
      assert.equal((await id.jwks()).keys.length, 2);
      await id.verifyToken(old.token);
      clock += 15 * 60_000 + 1;
      await assert.rejects(id.verifyToken(old.token), { code: 'IDENTITY_TOKEN_KEY_UNKNOWN' });
      assert.equal((await id.jwks()).keys.length, 1);
      assert.deepEqual(id.keys.list().map((k) => k.state), ['active', 'retired']);
    });
  });

  it('cuts off every earlier key with a rotation of no overlap, also one still retiring from the rotation before', async () => {
    // Before: only the key active at the time was cut off; one rotated out an hour ago kept verifying through its
    // own overlap, though its private half is in the same store whose leak the rotation answers.
    const dir = freshDir();
    let clock = Date.UTC(2026, 10, 25, 12);
    await withIdentity(dir, { now: () => clock }, async (id) => {
      id.agents.create({ name: 'bot', process: 'p', owner: 'o@example.com' });
      const first = await id.issueToken('bot');
      await id.rotateKeys(3_600_000);
      const second = await id.issueToken('bot');
      clock += 60_000;
      await id.verifyToken(first.token);
      const newKid = await id.rotateKeys(0);
      await assert.rejects(id.verifyToken(first.token), { code: 'IDENTITY_TOKEN_KEY_UNKNOWN' });
      await assert.rejects(id.verifyToken(second.token), { code: 'IDENTITY_TOKEN_KEY_UNKNOWN' });
      assert.deepEqual((await id.jwks()).keys.map((k) => k.kid), [newKid]);
      await id.rotateKeys(3_600_000);
      assert.equal((await id.jwks()).keys.length, 2, 'a longer overlap lengthens no earlier one');
      await id.rotateKeys(60_000);
      const overlaps = id.keys.list().filter((k) => k.state === 'retiring').map((k) => k.retireAfter);
      assert.deepEqual(overlaps, [new Date(clock + 60_000).toISOString(), new Date(clock + 60_000).toISOString()], 'a shorter one shortens every key still retiring');
    });
  });

  it('stops publishing the previous key in the JWKS the moment its overlap ends, as verification stops accepting it', async () => {
    // Before: within a second of the last signing-key lookup, the JWKS still listed a key past its overlap
    // (one cut off by --overlap 0 included), for any relying party to fetch and cache.
    const dir = freshDir();
    let clock = Date.UTC(2026, 10, 25, 12);
    await withIdentity(dir, { now: () => clock }, async (id) => {
      const oldKid = (await id.jwks()).keys[0]!.kid;
      const newKid = await id.rotateKeys(500);
      assert.deepEqual((await id.jwks()).keys.map((k) => k.kid), [newKid, oldKid]);
      clock += 500;
      assert.equal(await id.keys.verificationKey(oldKid), undefined);
      assert.deepEqual((await id.jwks()).keys.map((k) => k.kid), [newKid]);
    });
  });

  it('erases the previous key\'s private half at the rotation, from identity.db and its write-ahead log, while its tokens verify through the overlap', async () => {
    // Before: the private half of a key that would never sign again stayed in the store through the overlap, and after
    // it until a token was next issued or the keys listed (a gateway that only verifies never erased it).
    const dir = freshDir();
    await withIdentity(dir, {}, async (id) => {
      id.agents.create({ name: 'bot', process: 'p', owner: 'o@example.com' });
      const { token } = await id.issueToken('bot');
      const secret = activePrivateKey(dir);
      await id.rotateKeys(3_600_000);
      await id.verifyToken(token);
      assertStoreForgot(dir, secret, 'the private half of the key rotated out');
      assert.deepEqual(id.keys.list().map((k) => k.state), ['active', 'retiring']);
      await id.issueToken('bot');
    });
  });

  it('leaves no copy of a retired key\'s private half in identity.db or its write-ahead log, only a NULL in its row', async () => {
    const dir = freshDir();
    let clock = Date.UTC(2026, 10, 25, 12);
    await withIdentity(dir, { now: () => clock }, async (id) => {
      await id.keys.signingKey();
      const secret = activePrivateKey(dir);
      await id.rotateKeys(0);
      clock += 1000;
      await id.keys.signingKey(); // retires the old key
      assert.deepEqual(id.keys.list().map((k) => k.state), ['active', 'retired']);
      assertStoreForgot(dir, secret, 'the retired private key');
    });
  });
});

describe('when the signing key\'s row in identity.db is damaged', () => {
  it('refuses to sign with IDENTITY_STORE_FAILED, quoting no part of the private key in the error or its causes', async () => {
    // Before: the JSON parser's SyntaxError escaped uncoded, its message quoting ten characters of the key (60 of its 256 bits).
    const dir = freshDir();
    await withIdentity(dir, {}, async (id) => {
      id.agents.create({ name: 'bot', process: 'p', owner: 'o@example.com' });
      await id.keys.jwks();
      const secret = activePrivateKey(dir);
      // A quote lost: the parser's message would quote the ten characters of the key after it.
      editStore(dir, "UPDATE signing_keys SET private_jwk = replace(private_jwk, ?, ?) WHERE state = 'active'", `"${secret}"`, `${secret}"`);
      // `other`: a process that had not read the key before the damage.
      await withIdentity(dir, {}, async (other) => {
        const error = await other.issueToken('bot').then(() => undefined, (e: unknown) => e);
        assert.equal((error as { code?: string } | undefined)?.code, 'IDENTITY_STORE_FAILED');
        let text = '';
        for (let e: unknown = error; e instanceof Error; e = e.cause) text += `${e.message}\n${e.stack ?? ''}\n`;
        for (let i = 0; i + 6 <= secret.length; i++) assert.ok(!text.includes(secret.slice(i, i + 6)), `the error quotes "${secret.slice(i, i + 6)}" of the private key`);
      });
    });
  });
});

describe('when a published key\'s row in identity.db is damaged', () => {
  it('answers a token of that key with IDENTITY_STORE_FAILED, not the parser\'s SyntaxError, and the JWKS too', async () => {
    const dir = freshDir();
    await withIdentity(dir, {}, async (id) => {
      id.agents.create({ name: 'bot', process: 'p', owner: 'o@example.com' });
      const { token } = await id.issueToken('bot');
      editStore(dir, "UPDATE signing_keys SET public_jwk = substr(public_jwk, 2) WHERE state = 'active'");
      await withIdentity(dir, {}, async (other) => {
        await assert.rejects(other.verifyToken(token), { code: 'IDENTITY_STORE_FAILED' });
        await assert.rejects(other.jwks(), { code: 'IDENTITY_STORE_FAILED' });
      });
    });
  });
});

describe('when the clock of a long-running process is set back', () => {
  // The gateway and the CLI share the store: `corral identity rotate --overlap 0` in one is seen by the other within a
  // second, as each re-reads a key a second after it last did. Before: "a second after" was counted on a clock that
  // may step back (an NTP correction, a resumed VM), and a key cut off then went on being used for as long as the step.
  const start = Date.UTC(2026, 10, 25, 12);

  async function cutOffWhileClockStepsBack(): Promise<{ gateway: Identity; cli: Identity; token: string; oldKid: string; newKid: string }> {
    const dir = freshDir();
    let clock = start - 20 * 60_000; // the machine's, which both processes read
    const cli = Identity.open(dir, { now: () => clock });
    const gateway = Identity.open(dir, { now: () => clock });
    cli.agents.create({ name: 'bot', process: 'p', owner: 'o@example.com' });
    const { token } = await cli.issueToken('bot', { ttlSeconds: 3600 });
    const oldKid = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid as string;
    clock = start;
    await gateway.verifyToken(token);
    assert.equal((await gateway.keys.signingKey()).kid, oldKid);
    clock = start - 10 * 60_000;
    const newKid = await cli.rotateKeys(0);
    clock += 1;
    return { gateway, cli, token, oldKid, newKid };
  }

  it('refuses a token of a key another process cut off, as it does with the clock running on: IDENTITY_TOKEN_KEY_UNKNOWN', async () => {
    const { gateway, cli, token, oldKid } = await cutOffWhileClockStepsBack();
    try {
      await assert.rejects(gateway.verifyToken(token), { code: 'IDENTITY_TOKEN_KEY_UNKNOWN' });
      assert.equal(gateway.keys.isPublished(oldKid), false);
    } finally {
      gateway.close();
      cli.close();
    }
  });

  it('signs with the key another process made active, not the one it cut off', async () => {
    const { gateway, cli, newKid } = await cutOffWhileClockStepsBack();
    try {
      assert.equal((await gateway.keys.signingKey()).kid, newKid);
    } finally {
      gateway.close();
      cli.close();
    }
  });
});
