// End to end against a real OpenID Connect provider (oidc-provider) on
// loopback: authorization code + PKCE, ID token verification, role mapping.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { signInAtIssuer } from '../../../scripts/testing/oidc-browser.ts';
import { accountsWithGroups, publicClient, startTestIssuer, type TestIssuer } from '../../../scripts/testing/oidc-issuer.ts';
import { ISSUER_TIMEOUT_MS, MAX_ISSUER_ANSWER_BYTES, OidcClient, mapRoles, type OidcSettings, type PendingLogin } from './oidc.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const ACCOUNTS: Record<string, string[]> = {
  alice: ['corral-admins', 'finance'],
  bob: ['finance-approvers'],
  carol: ['marketing'],
};

let testIssuer: TestIssuer;
let issuer: string;

before(async () => {
  testIssuer = await startTestIssuer({
    clients: [
      { client_id: 'corral', client_secret: 'a-client-secret-for-tests', redirect_uris: [REDIRECT], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' },
      publicClient('corral-public', REDIRECT),
    ],
    accounts: accountsWithGroups(ACCOUNTS),
  });
  issuer = testIssuer.issuer;
});

after(() => testIssuer.close());


const roleMap: OidcSettings['roleMap'] = { admin: ['corral-admins'], approver: ['finance-approvers'], viewer: ['finance'] };

describe('OpenID Connect sign-in against oidc-provider', () => {
  it('signs alice in with code + PKCE and maps her groups to admin and viewer', async () => {
    const client = await OidcClient.discover({ issuer, clientId: 'corral', clientSecret: 'a-client-secret-for-tests', redirectUri: REDIRECT, roleMap });
    const pending = client.startLogin();
    const url = new URL(pending.url);
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(!pending.url.includes(pending.codeVerifier));
    const human = await client.finishLogin(await browseTo(pending.url, 'alice'), pending);
    assert.deepEqual([human.subject, human.email, human.roles], ['alice', 'alice@example.com', ['admin', 'viewer']]);
  });

  it('signs bob in as a public client (PKCE alone) and maps him to approver', async () => {
    const client = await OidcClient.discover({ issuer, clientId: 'corral-public', redirectUri: REDIRECT, roleMap });
    const pending = client.startLogin();
    const human = await client.finishLogin(await browseTo(pending.url, 'bob'), pending);
    assert.deepEqual(human.roles, ['approver']);
  });

  it('refuses carol, whose groups map to no Corral role: IDENTITY_OIDC_NO_ROLE', async () => {
    const client = await OidcClient.discover({ issuer, clientId: 'corral', clientSecret: 'a-client-secret-for-tests', redirectUri: REDIRECT, roleMap });
    const pending = client.startLogin();
    await assert.rejects(client.finishLogin(await browseTo(pending.url, 'carol'), pending), { code: 'IDENTITY_OIDC_NO_ROLE' });
  });

  it('verifies carol with verifyLogin, which names her with no role, so a caller can tell a person it knew that they hold none now', async () => {
    const client = await OidcClient.discover({ issuer, clientId: 'corral', clientSecret: 'a-client-secret-for-tests', redirectUri: REDIRECT, roleMap });
    const pending = client.startLogin();
    const human = await client.verifyLogin(await browseTo(pending.url, 'carol'), pending);
    assert.deepEqual([human.subject, human.groups, human.roles], ['carol', ['marketing'], []]);
  });

  it('refuses a callback carrying another login’s state (CSRF): IDENTITY_OIDC_STATE_MISMATCH', async () => {
    const client = await OidcClient.discover({ issuer, clientId: 'corral', clientSecret: 'a-client-secret-for-tests', redirectUri: REDIRECT, roleMap });
    const victim = client.startLogin();
    const attacker = client.startLogin();
    const callback = await browseTo(attacker.url, 'alice');
    await assert.rejects(client.finishLogin(callback, victim), { code: 'IDENTITY_OIDC_STATE_MISMATCH' });
  });

  it('refuses a stolen code redeemed without the right PKCE verifier: IDENTITY_OIDC_EXCHANGE_FAILED', async () => {
    const client = await OidcClient.discover({ issuer, clientId: 'corral', clientSecret: 'a-client-secret-for-tests', redirectUri: REDIRECT, roleMap });
    const pending = client.startLogin();
    const callback = await browseTo(pending.url, 'alice');
    const forged: PendingLogin = { ...pending, codeVerifier: client.startLogin().codeVerifier };
    await assert.rejects(client.finishLogin(callback, forged), { code: 'IDENTITY_OIDC_EXCHANGE_FAILED' });
  });

  it('refuses an ID token minted for another login (nonce): IDENTITY_OIDC_ID_TOKEN_INVALID', async () => {
    const client = await OidcClient.discover({ issuer, clientId: 'corral', clientSecret: 'a-client-secret-for-tests', redirectUri: REDIRECT, roleMap });
    const pending = client.startLogin();
    const callback = await browseTo(pending.url, 'alice');
    await assert.rejects(client.finishLogin(callback, { ...pending, nonce: 'another-login' }), { code: 'IDENTITY_OIDC_ID_TOKEN_INVALID' });
  });

  it('refuses ID tokens signed with an algorithm outside the allow-list: IDENTITY_OIDC_ID_TOKEN_INVALID', async () => {
    const client = await OidcClient.discover({ issuer, clientId: 'corral', clientSecret: 'a-client-secret-for-tests', redirectUri: REDIRECT, roleMap, idTokenAlgorithms: ['EdDSA'] });
    const pending = client.startLogin();
    await assert.rejects(client.finishLogin(await browseTo(pending.url, 'alice'), pending), { code: 'IDENTITY_OIDC_ID_TOKEN_INVALID' });
  });

  describe('when the callback’s iss is not the issuer’s (RFC 9207 mix-up)', () => {
    // oidc-provider's metadata says authorization_response_iss_parameter_supported: true, and its callbacks carry iss.
    const callbackWith = async (change: (params: URLSearchParams) => void) => {
      const client = await OidcClient.discover({ issuer, clientId: 'corral', clientSecret: 'a-client-secret-for-tests', redirectUri: REDIRECT, roleMap });
      const pending = client.startLogin();
      const callback = new URL(await browseTo(pending.url, 'alice'));
      assert.equal(callback.searchParams.get('iss'), issuer);
      change(callback.searchParams);
      return client.finishLogin(callback.toString(), pending);
    };

    it('refuses a callback without iss, though the issuer promises it: IDENTITY_OIDC_AUTHORIZATION_FAILED', async () => {
      // Before: alice was signed in; a code another issuer answered, brought back without iss, would have been exchanged here.
      await assert.rejects(callbackWith((params) => params.delete('iss')), { code: 'IDENTITY_OIDC_AUTHORIZATION_FAILED' });
    });

    it('refuses a callback naming another issuer, or two: IDENTITY_OIDC_AUTHORIZATION_FAILED', async () => {
      await assert.rejects(callbackWith((params) => params.set('iss', 'https://attacker.example')), { code: 'IDENTITY_OIDC_AUTHORIZATION_FAILED' });
      await assert.rejects(callbackWith((params) => params.append('iss', 'https://attacker.example')), { code: 'IDENTITY_OIDC_AUTHORIZATION_FAILED' });
    });

    it('refuses an error response without iss as well, before reading its error', async () => {
      const client = await OidcClient.discover({ issuer, clientId: 'corral', clientSecret: 'a-client-secret-for-tests', redirectUri: REDIRECT, roleMap });
      const pending = client.startLogin();
      await assert.rejects(client.finishLogin(`${REDIRECT}?state=${pending.state}&error=access_denied`, pending), (error: Error) => {
        assert.equal((error as { code?: string }).code, 'IDENTITY_OIDC_AUTHORIZATION_FAILED');
        assert.doesNotMatch(error.message, /access_denied/);
        return true;
      });
    });
  });

  describe('when the issuer does not vouch for the e-mail a person claims', () => {
    // mallory may set any e-mail at her issuer; only email_verified: true makes it hers.
    let claimsIssuer: TestIssuer;
    const claimed: Record<string, Record<string, unknown>> = {
      unverified: { email: 'alice@example.com', email_verified: false, preferred_username: 'alice@example.com', groups: ['finance'] },
      silent: { email: 'alice@example.com', preferred_username: 'alice@example.com', groups: ['finance'] },
      verified: { email: 'dana@example.com', email_verified: true, groups: ['finance'] },
    };
    before(async () => {
      claimsIssuer = await startTestIssuer({
        clients: [publicClient('corral-public', REDIRECT)],
        accounts: (sub) => claimed[sub],
        claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'groups', 'preferred_username'] },
      });
    });
    after(() => claimsIssuer.close());
    const signIn = async (user: string) => {
      const client = await OidcClient.discover({ issuer: claimsIssuer.issuer, clientId: 'corral-public', redirectUri: REDIRECT, roleMap });
      const pending = client.startLogin();
      return client.finishLogin(await browseTo(pending.url, user), pending);
    };

    it('leaves out an e-mail marked email_verified: false, and names nobody by preferred_username', async () => {
      const human = await signIn('unverified');
      assert.deepEqual([human.subject, human.email, human.roles], ['unverified', undefined, ['viewer']]);
    });

    it('leaves out an e-mail sent without email_verified', async () => {
      assert.equal((await signIn('silent')).email, undefined);
    });

    it('keeps an e-mail marked email_verified: true', async () => {
      assert.equal((await signIn('verified')).email, 'dana@example.com');
    });

    it('gives the address sent, verified or not, apart, as claimedEmail (what may only refuse its holder: an approver their own agent\'s request)', async () => {
      assert.deepEqual(await Promise.all(['unverified', 'silent', 'verified'].map(async (user) => (await signIn(user)).claimedEmail)), ['alice@example.com', 'alice@example.com', 'dana@example.com']);
    });
  });

  it('refuses a discovery document naming another issuer, and missing settings', async () => {
    await assert.rejects(OidcClient.discover({ issuer: `${issuer}/`, clientId: 'corral', redirectUri: REDIRECT, roleMap }), { code: 'IDENTITY_OIDC_DISCOVERY_FAILED' });
    await assert.rejects(OidcClient.discover({ issuer, clientId: '', redirectUri: REDIRECT, roleMap }), { code: 'IDENTITY_CONFIG_MISSING' });
    await assert.rejects(OidcClient.discover({ issuer, clientId: 'corral', redirectUri: REDIRECT, roleMap: {} }), { code: 'IDENTITY_CONFIG_MISSING' });
  });

  it('refuses at start a role map that could never map anyone as meant: a group given as a string, a role Corral does not have', async () => {
    // Before: the first sign-in failed with a TypeError, or the misspelt role silently granted nothing.
    const misconfigured = [{ admin: 'corral-admins' }, { admins: ['corral-admins'] }, { viewer: ['finance', 7] }];
    for (const bad of misconfigured) {
      await assert.rejects(OidcClient.discover({ issuer, clientId: 'corral', redirectUri: REDIRECT, roleMap: bad as unknown as OidcSettings['roleMap'] }), { code: 'IDENTITY_INPUT_INVALID' }, JSON.stringify(bad));
    }
  });
});

describe('OIDC settings and issuer answers Corral cannot use', () => {
  // An issuer that answers discovery with `doc` and the token endpoint with `tokens`, as JSON.
  const ISSUER = 'https://issuer.example';
  const answering = (doc: unknown, tokens: unknown = {}): typeof fetch =>
    (async (input: string | URL | Request) => Response.json(String(input).endsWith('/token') ? tokens : doc)) as typeof fetch;
  const DOC = { issuer: ISSUER, authorization_endpoint: `${ISSUER}/auth`, token_endpoint: `${ISSUER}/token`, jwks_uri: `${ISSUER}/jwks` };
  const base: OidcSettings = { issuer: ISSUER, clientId: 'corral', redirectUri: REDIRECT, roleMap, fetch: answering(DOC) };

  const settings: Array<[string, Partial<Record<keyof OidcSettings, unknown>>]> = [
    ['scopes given as one string', { scopes: 'openid email' }],
    ['scopes without openid (no ID token would come back)', { scopes: ['email'] }],
    ['ID-token algorithms given as one string', { idTokenAlgorithms: 'RS256' }],
    ['the unsigned algorithm none', { idTokenAlgorithms: ['none'] }],
    ['an HMAC algorithm, keyed with a shared secret', { idTokenAlgorithms: ['RS256', 'HS256'] }],
    ['no algorithm at all', { idTokenAlgorithms: [] }],
    ['a clock tolerance given as text', { clockToleranceSeconds: '60' }],
    ['a clock tolerance of a day', { clockToleranceSeconds: 86_400 }],
    ['a role claim that is no claim name', { roleClaim: 5 }],
    ['a client secret that is not text', { clientSecret: 1234 }],
    ['an issuer over plain HTTP, off this machine', { issuer: 'http://issuer.example' }],
  ];
  for (const [what, change] of settings) {
    it(`refuses ${what} at discovery, naming the setting: IDENTITY_INPUT_INVALID`, async () => {
      // Before: a TypeError at the first sign-in, an ID token blamed for the configuration, or a weaker check taken silently.
      const error = await OidcClient.discover({ ...base, ...change } as OidcSettings).catch((e: unknown) => e);
      assert.equal((error as { code?: string }).code, 'IDENTITY_INPUT_INVALID', String(error));
      assert.match((error as Error).message, new RegExp(`OIDC setting ${Object.keys(change)[0]}`));
    });
  }

  const documents: Array<[string, unknown]> = [
    ['null', null],
    ['a list', [DOC]],
    ['a jwks_uri that is no URL', { ...DOC, jwks_uri: 'not a url' }],
    ['a token endpoint over plain HTTP', { ...DOC, token_endpoint: 'http://issuer.example/token' }],
  ];
  for (const [what, doc] of documents) {
    it(`refuses a discovery document that is ${what}: IDENTITY_OIDC_DISCOVERY_FAILED, never a TypeError`, async () => {
      await assert.rejects(OidcClient.discover({ ...base, fetch: answering(doc) }), { code: 'IDENTITY_OIDC_DISCOVERY_FAILED' });
    });
  }

  for (const [what, tokens] of [['null', null], ['a list', ['id_token']], ['text', 'id_token']] as const) {
    it(`refuses a token response that is ${what}: IDENTITY_OIDC_EXCHANGE_FAILED, never a TypeError`, async () => {
      const client = await OidcClient.discover({ ...base, fetch: answering(DOC, tokens) });
      const pending = client.startLogin();
      await assert.rejects(client.finishLogin(`${REDIRECT}?state=${pending.state}&code=c`, pending), { code: 'IDENTITY_OIDC_EXCHANGE_FAILED' });
    });
  }

  describe('when an https issuer’s discovery document names endpoints inside Corral’s network, or off its origin', () => {
    // A hostile or compromised issuer (or whoever serves its discovery document) would have Corral POST the code and its
    // client secret, or GET a key set, wherever it says: the cloud metadata service, the gateway's own loopback port.
    const fetched: string[] = [];
    const recording = (doc: unknown): typeof fetch =>
      (async (input: string | URL | Request) => {
        fetched.push(String(input));
        return Response.json(doc);
      }) as typeof fetch;
    const refusedEndpoints: Array<[string, 'authorization_endpoint' | 'token_endpoint' | 'jwks_uri', string]> = [
      ['a token endpoint over plain HTTP on loopback', 'token_endpoint', 'http://127.0.0.1:8080/token'],
      ['a key set over plain HTTP on loopback', 'jwks_uri', 'http://localhost:8080/jwks'],
      ['an authorization endpoint over plain HTTP on IPv6 loopback', 'authorization_endpoint', 'http://[::1]:8080/auth'],
      ['a key set at the cloud metadata service', 'jwks_uri', 'https://169.254.169.254/latest/meta-data/'],
      ['a token endpoint on a private address', 'token_endpoint', 'https://10.0.0.8/token'],
      ['a token endpoint on loopback written as an IPv4-mapped IPv6 address', 'token_endpoint', 'https://[::ffff:127.0.0.1]/token'],
      ['a key set on loopback written as one number', 'jwks_uri', 'https://2130706433/jwks'],
      ['a key set on 0.0.0.0, which reaches this machine', 'jwks_uri', 'https://0.0.0.0/jwks'],
      ['an authorization endpoint on a .localhost name', 'authorization_endpoint', 'https://admin.localhost/auth'],
      ['an authorization endpoint on a link-local IPv6 address', 'authorization_endpoint', 'https://[fe80::1]/auth'],
      ['a token endpoint on another origin', 'token_endpoint', 'https://tokens.attacker.example/token'],
      ['a key set on another port of the issuer’s host', 'jwks_uri', 'https://issuer.example:8443/jwks'],
      ['a token endpoint carrying a user name and password', 'token_endpoint', 'https://user:pass@issuer.example/token'],
    ];
    for (const [what, field, url] of refusedEndpoints) {
      it(`refuses ${what}, naming ${field} and fetching nothing from it: IDENTITY_OIDC_DISCOVERY_FAILED`, async () => {
        // Before: any https URL, or an http one on loopback, was taken and later fetched, whatever the issuer's address.
        fetched.length = 0;
        const error = await OidcClient.discover({ ...base, fetch: recording({ ...DOC, [field]: url }) }).catch((e: unknown) => e);
        assert.equal((error as { code?: string }).code, 'IDENTITY_OIDC_DISCOVERY_FAILED', String(error));
        assert.match((error as Error).message, new RegExp(field));
        assert.doesNotMatch((error as Error).message, /pass@/);
        assert.deepEqual(fetched, [`${ISSUER}/.well-known/openid-configuration`]);
      });
    }

    it('says which setting lets an endpoint off the issuer’s origin in', async () => {
      const error = await OidcClient.discover({ ...base, fetch: recording({ ...DOC, jwks_uri: 'https://keys.example/certs' }) }).catch((e: unknown) => e);
      assert.match((error as Error).message, /endpointOrigins/);
      assert.match((error as Error).message, /"https:\/\/keys\.example"/);
    });

    it('takes a token endpoint and key set on origins the endpointOrigins setting lists (Google’s shape)', async () => {
      const google = 'https://accounts.google.com';
      const doc = { issuer: google, authorization_endpoint: `${google}/o/oauth2/v2/auth`, token_endpoint: 'https://oauth2.googleapis.com/token', jwks_uri: 'https://www.googleapis.com/oauth2/v3/certs' };
      const settings = { ...base, issuer: google, fetch: recording(doc) };
      await assert.rejects(OidcClient.discover(settings), { code: 'IDENTITY_OIDC_DISCOVERY_FAILED' });
      const client = await OidcClient.discover({ ...settings, endpointOrigins: ['https://oauth2.googleapis.com', 'https://WWW.googleapis.com/'] });
      assert.ok(client.startLogin().url.startsWith(`${google}/o/oauth2/v2/auth?`));
    });

    it('takes an endpoint on a private address when it is the issuer’s own origin, or listed in endpointOrigins', async () => {
      // An issuer inside the company network (Keycloak at 10.0.0.5) serves its endpoints there.
      const keycloak = 'https://10.0.0.5:8443/realms/corp';
      const doc = { issuer: keycloak, authorization_endpoint: `${keycloak}/auth`, token_endpoint: `${keycloak}/token`, jwks_uri: `${keycloak}/certs` };
      await OidcClient.discover({ ...base, issuer: keycloak, fetch: recording(doc) });
      const elsewhere = { ...DOC, token_endpoint: 'https://10.0.0.8/token' };
      await OidcClient.discover({ ...base, fetch: recording(elsewhere), endpointOrigins: ['https://10.0.0.8'] });
    });

    const origins: Array<[string, unknown]> = [
      ['given as one string', 'https://keys.example'],
      ['with a path', ['https://keys.example/certs']],
      ['over plain HTTP, off this machine', ['http://keys.example']],
      ['that is no URL', ['keys.example']],
    ];
    for (const [what, endpointOrigins] of origins) {
      it(`refuses endpoint origins ${what} at discovery, naming the setting: IDENTITY_INPUT_INVALID`, async () => {
        const error = await OidcClient.discover({ ...base, endpointOrigins } as OidcSettings).catch((e: unknown) => e);
        assert.equal((error as { code?: string }).code, 'IDENTITY_INPUT_INVALID', String(error));
        assert.match((error as Error).message, /OIDC setting endpointOrigins/);
      });
    }
  });
});

/** An issuer on loopback whose answers the test writes (scriptedIssuer); change its fields between sign-ins. */
interface ScriptedIssuer {
  readonly issuer: string;
  /** The ID token's claims over the defaults. */
  claims: Record<string, unknown>;
  /** A path answered with a JSON string that never ends. */
  endless: string | undefined;
  /** The key the issuer publishes and signs with: `k2` once it has rotated its key. */
  key: 'k1' | 'k2';
  /** An ID token made otherwise than the issuer makes them: unsigned, signed HS256 with the issuer's public key as the secret, or naming a key the issuer never had. */
  forge: 'none' | 'hs256-with-public-key' | 'unknown-kid' | undefined;
  /** How many times the key set was fetched. */
  jwksFetches: number;
  close(): Promise<void>;
}

/**
 * An issuer on loopback whose answers the test writes: a discovery document,
 * its RS256 key, and from the token endpoint an ID token for Corral
 * carrying `claims` (over the defaults), signed with that key.
 */
async function scriptedIssuer(): Promise<ScriptedIssuer> {
  const keys = { k1: generateKeyPairSync('rsa', { modulusLength: 2048 }), k2: generateKeyPairSync('rsa', { modulusLength: 2048 }) };
  const idToken = async (claims: Record<string, unknown>): Promise<string> => {
    const { privateKey, publicKey } = keys[state.key];
    if (state.forge === 'none') return `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
    if (state.forge === 'hs256-with-public-key') return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: state.key }).sign(Buffer.from(publicKey.export({ format: 'pem', type: 'spki' })));
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: state.forge === 'unknown-kid' ? 'k-unknown' : state.key }).sign(privateKey);
  };
  const server = createServer((request, response) => {
    const answer = (body: unknown) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (request.url === state.endless) {
      // A JSON string that never ends, written as fast as Corral reads it.
      response.writeHead(200, { 'content-type': 'application/json' }).write('"');
      const chunk = 'x'.repeat(64 * 1024);
      const more = () => {
        while (!response.destroyed && response.write(chunk));
        if (!response.destroyed) response.once('drain', more);
      };
      more();
    } else if (request.url === '/.well-known/openid-configuration') {
      answer({ issuer: state.issuer, authorization_endpoint: `${state.issuer}/auth`, token_endpoint: `${state.issuer}/token`, jwks_uri: `${state.issuer}/jwks` });
    } else if (request.url === '/jwks') {
      state.jwksFetches += 1;
      answer({ keys: [{ ...keys[state.key].publicKey.export({ format: 'jwk' }), kid: state.key, alg: 'RS256', use: 'sig' }] });
    } else if (request.url === '/token') {
      const now = Math.floor(Date.now() / 1000);
      const claims = { iss: state.issuer, aud: 'corral', sub: 'alice', iat: now, exp: now + 300, groups: ['finance'], ...state.claims };
      void idToken(claims).then((token) => answer({ id_token: token, token_type: 'Bearer' }));
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  const state: ScriptedIssuer = { issuer: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, claims: {}, endless: undefined, key: 'k1', forge: undefined, jwksFetches: 0, close };
  return state;
}

describe('when the issuer’s ID token names someone Corral cannot name, or was issued to another client', () => {
  let scripted: ScriptedIssuer;
  before(async () => {
    scripted = await scriptedIssuer();
  });
  after(() => scripted.close());
  /** Signs in at the scripted issuer with an ID token of `claims` for this login. */
  const signIn = async (claims: Record<string, unknown>) => {
    const client = await OidcClient.discover({ issuer: scripted.issuer, clientId: 'corral', redirectUri: REDIRECT, roleMap });
    const pending = client.startLogin();
    scripted.claims = { nonce: pending.nonce, ...claims };
    return client.finishLogin(`${REDIRECT}?state=${pending.state}&code=c`, pending);
  };

  it('signs in a person whose ID token is as it should be', async () => {
    const human = await signIn({ azp: 'corral', email: 'alice@example.com', email_verified: true });
    assert.deepEqual([human.subject, human.email, human.roles], ['alice', 'alice@example.com', ['viewer']]);
  });

  it('refuses an ID token issued to another client (azp), though Corral is its only audience: IDENTITY_OIDC_ID_TOKEN_INVALID', async () => {
    // Before: azp was looked at only when the token named several audiences.
    await assert.rejects(signIn({ azp: 'another-app' }), { code: 'IDENTITY_OIDC_ID_TOKEN_INVALID' });
    await assert.rejects(signIn({ aud: ['corral'], azp: 'another-app' }), { code: 'IDENTITY_OIDC_ID_TOKEN_INVALID' });
  });

  const times: Array<[string, (now: number) => Record<string, number>]> = [
    ['issued an hour from now, beyond the 60 s of clock skew tolerated', (now) => ({ iat: now + 3600, exp: now + 7200 })],
    ['issued a day ago and valid for a year, though the code was exchanged just now', (now) => ({ iat: now - 86_400, exp: now + 365 * 86_400 })],
  ];
  for (const [what, claims] of times) {
    it(`refuses an ID token ${what}: IDENTITY_OIDC_ID_TOKEN_INVALID`, async () => {
      // Before: only exp and nbf were checked; iat could be anything.
      await assert.rejects(signIn(claims(Math.floor(Date.now() / 1000))), { code: 'IDENTITY_OIDC_ID_TOKEN_INVALID' });
    });
  }

  it('takes an ID token issued within the clock skew tolerated, ahead or behind', async () => {
    const now = Math.floor(Date.now() / 1000);
    assert.equal((await signIn({ iat: now + 50, exp: now + 350 })).subject, 'alice');
    assert.equal((await signIn({ iat: now - 50, exp: now + 250 })).subject, 'alice');
  });

  it('takes an ID token its issuer dated five and a half minutes back (to cover clock skew), even with no clock skew tolerated', async () => {
    const client = await OidcClient.discover({ issuer: scripted.issuer, clientId: 'corral', redirectUri: REDIRECT, roleMap, clockToleranceSeconds: 0 });
    const pending = client.startLogin();
    const now = Math.floor(Date.now() / 1000);
    scripted.claims = { nonce: pending.nonce, iat: now - 330, exp: now + 3600 };
    assert.equal((await client.finishLogin(`${REDIRECT}?state=${pending.state}&code=c`, pending)).subject, 'alice');
  });

  it('quotes no line feed or escape sequence from the error a callback carries: IDENTITY_OIDC_AUTHORIZATION_FAILED', async () => {
    // Before: quoted as it came; corral identity login printed its line feed as a line of its own under Corral's.
    const client = await OidcClient.discover({ issuer: scripted.issuer, clientId: 'corral', redirectUri: REDIRECT, roleMap });
    const pending = client.startLogin();
    const error = encodeURIComponent('access_denied\ncorral: signed in as admin\x1b[2J');
    const refused = await client.finishLogin(`${REDIRECT}?state=${pending.state}&error=${error}`, pending).catch((e: unknown) => e);
    assert.equal((refused as { code?: string }).code, 'IDENTITY_OIDC_AUTHORIZATION_FAILED');
    assert.doesNotMatch((refused as Error).message, /[\n\x1b]|signed in/);
    const plain = await client.finishLogin(`${REDIRECT}?state=${pending.state}&error=access_denied`, pending).catch((e: unknown) => e);
    assert.match((plain as Error).message, /\(access_denied\)/);
  });

  const subjects: Array<[string, unknown]> = [
    ['an escape sequence that clears the terminal', 'alice\x1b[2J'],
    ['a line feed that writes a line of its own', 'alice\nadmin signed in'],
    ['a zero-width space', 'ali\u200bce'],
    ['256 characters, over the 255 OIDC allows', 'a'.repeat(256)],
    ['nothing', ''],
    ['a number', 42],
  ];
  for (const [what, sub] of subjects) {
    it(`refuses a subject holding ${what}: IDENTITY_OIDC_ID_TOKEN_INVALID`, async () => {
      // Before: taken as it came, and printed in corral identity login's output and the audit log's actor.
      await assert.rejects(signIn({ sub }), { code: 'IDENTITY_OIDC_ID_TOKEN_INVALID' });
    });
  }

  it('takes a subject of 255 printable ASCII characters', async () => {
    const sub = `auth0|${'x'.repeat(249)}`;
    assert.equal((await signIn({ sub })).subject, sub);
  });

  const addresses = [
    ['an escape sequence', 'alice@example.com\x1b[8m'],
    ['a colon, to be read as another kind of approver', 'token:gateway@example.com'],
    ['a space and a second address', 'mallory@example.com alice@example.com'],
    ['a zero-width space', 'ali\u200bce@example.com'],
    ['two @ signs', 'alice@example.com@evil.example'],
    ['a fullwidth letter, which NFKC folds to alice@example.com', '\uff41lice@example.com'],
    ['a Cyrillic а, which reads as alice@example.com', '\u0430lice@example.com'],
    ['a dotless ı, which reads as alice@example.com', 'al\u0131ce@example.com'],
  ];
  for (const [what, email] of addresses) {
    it(`leaves out a verified e-mail holding ${what}, naming the person by issuer and subject`, async () => {
      // Before: kept as the person's name because the issuer marked it verified.
      const human = await signIn({ email, email_verified: true });
      assert.deepEqual([human.subject, human.email], ['alice', undefined]);
    });
  }
});

describe('when the ID token is forged, is for another issuer or client, or is signed with a key the issuer rotated in', () => {
  let scripted: ScriptedIssuer;
  before(async () => {
    scripted = await scriptedIssuer();
  });
  after(() => scripted.close());
  afterEach(() => Object.assign(scripted, { claims: {}, key: 'k1', forge: undefined, jwksFetches: 0 }));
  /** Signs in at the scripted issuer through `client`, whose key set it keeps between sign-ins. */
  const signInWith = async (client: OidcClient, claims: Record<string, unknown> = {}) => {
    const pending = client.startLogin();
    scripted.claims = { nonce: pending.nonce, ...claims };
    return client.finishLogin(`${REDIRECT}?state=${pending.state}&code=c`, pending);
  };
  const discover = () => OidcClient.discover({ issuer: scripted.issuer, clientId: 'corral', redirectUri: REDIRECT, roleMap });

  for (const forge of ['none', 'hs256-with-public-key'] as const) {
    it(`refuses an ID token ${forge === 'none' ? 'that is unsigned (alg none)' : 'signed HS256 with the issuer’s public key as the secret'}: IDENTITY_OIDC_ID_TOKEN_INVALID`, async () => {
      scripted.forge = forge;
      await assert.rejects(signInWith(await discover()), { code: 'IDENTITY_OIDC_ID_TOKEN_INVALID' });
    });
  }

  it('refuses an ID token another issuer issued, or issued for another client: IDENTITY_OIDC_ID_TOKEN_INVALID', async () => {
    const client = await discover();
    await assert.rejects(signInWith(client, { iss: 'https://attacker.example' }), { code: 'IDENTITY_OIDC_ID_TOKEN_INVALID' });
    await assert.rejects(signInWith(client, { aud: 'another-app' }), { code: 'IDENTITY_OIDC_ID_TOKEN_INVALID' });
  });

  it('fetches the key set again for a key the issuer rotated in, and at most once in 30 s however many ID tokens name a key it does not hold', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const client = await discover();
    await signInWith(client);
    assert.equal(scripted.jwksFetches, 1);
    scripted.forge = 'unknown-kid';
    for (let i = 0; i < 20; i++) await assert.rejects(signInWith(client), { code: 'IDENTITY_OIDC_ID_TOKEN_INVALID' });
    assert.equal(scripted.jwksFetches, 1, 'no fetch for each token naming an unknown key');
    t.mock.timers.tick(31_000);
    Object.assign(scripted, { forge: undefined, key: 'k2' });
    assert.equal((await signInWith(client)).subject, 'alice', 'the rotated key is fetched and taken');
    scripted.forge = 'unknown-kid';
    for (let i = 0; i < 20; i++) await assert.rejects(signInWith(client), { code: 'IDENTITY_OIDC_ID_TOKEN_INVALID' });
    assert.equal(scripted.jwksFetches, 2);
  });
});

describe('when the issuer answers without end, or not at all', () => {
  let scripted: ScriptedIssuer;
  before(async () => {
    scripted = await scriptedIssuer();
  });
  after(() => scripted.close());

  for (const [path, code] of [
    ['/.well-known/openid-configuration', 'IDENTITY_OIDC_DISCOVERY_FAILED'],
    ['/token', 'IDENTITY_OIDC_EXCHANGE_FAILED'],
    ['/jwks', 'IDENTITY_OIDC_ID_TOKEN_INVALID'],
  ] as const) {
    it(`stops reading ${path} past ${MAX_ISSUER_ANSWER_BYTES} bytes: ${code}`, { timeout: 20_000 }, async () => {
      // Before: the answer was read whole, whatever its size: the token endpoint's for as long as it kept coming, the key set's for 5 s.
      scripted.endless = path;
      try {
        const started = performance.now();
        const signIn = async () => {
          const client = await OidcClient.discover({ issuer: scripted.issuer, clientId: 'corral', redirectUri: REDIRECT, roleMap });
          const pending = client.startLogin();
          scripted.claims = { nonce: pending.nonce };
          return client.finishLogin(`${REDIRECT}?state=${pending.state}&code=c`, pending);
        };
        const error = await signIn().catch((e: unknown) => e);
        assert.equal((error as { code?: string }).code, code, String(error));
        assert.match(String((error as Error).cause), /larger than/);
        assert.ok(performance.now() - started < 3000, 'refused as soon as the limit is passed');
      } finally {
        scripted.endless = undefined;
      }
    });
  }

  const silent = (async (_input: string | URL | Request, init?: RequestInit) =>
    new Promise<Response>((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)))) as typeof fetch;

  it(`gives up on discovery that never answers after ${ISSUER_TIMEOUT_MS / 1000} s: IDENTITY_OIDC_DISCOVERY_FAILED`, { timeout: 5000 }, async (t) => {
    // Before: no time limit; corral identity login, or the console's sign-in, waited for ever.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const discovering = OidcClient.discover({ issuer: 'https://issuer.example', clientId: 'corral', redirectUri: REDIRECT, roleMap, fetch: silent });
    t.mock.timers.tick(ISSUER_TIMEOUT_MS);
    await assert.rejects(discovering, { code: 'IDENTITY_OIDC_DISCOVERY_FAILED' });
  });

  it(`gives up on a token endpoint that never answers after ${ISSUER_TIMEOUT_MS / 1000} s: IDENTITY_OIDC_EXCHANGE_FAILED`, { timeout: 5000 }, async (t) => {
    const ISSUER = 'https://issuer.example';
    const doc = { issuer: ISSUER, authorization_endpoint: `${ISSUER}/auth`, token_endpoint: `${ISSUER}/token`, jwks_uri: `${ISSUER}/jwks` };
    const answerDiscoveryOnly = (async (input: string | URL | Request, init?: RequestInit) => (String(input).endsWith('/token') ? silent(input, init) : Response.json(doc))) as typeof fetch;
    const client = await OidcClient.discover({ issuer: ISSUER, clientId: 'corral', redirectUri: REDIRECT, roleMap, fetch: answerDiscoveryOnly });
    const pending = client.startLogin();
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const finishing = client.finishLogin(`${REDIRECT}?state=${pending.state}&code=c`, pending);
    t.mock.timers.tick(ISSUER_TIMEOUT_MS);
    await assert.rejects(finishing, { code: 'IDENTITY_OIDC_EXCHANGE_FAILED' });
  });
});

describe('mapRoles', () => {
  it('maps Entra-style group object ids to roles in Corral’s order', () => {
    const map = { approver: ['2f6c-approvers'], admin: ['9a1b-admins'], auditor: ['77aa-audit'] };
    assert.deepEqual(mapRoles(['77aa-audit', '9a1b-admins'], map), ['admin', 'auditor']);
    assert.deepEqual(mapRoles([], map), []);
  });
});

const browseTo = (url: string, user: string) => signInAtIssuer(url, user, (target) => target.startsWith(REDIRECT));
