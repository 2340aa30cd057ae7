// Signing in to the console: local users (cookie, CSRF, expiry, sign-out,
// throttled failures) and OpenID Connect against a real oidc-provider.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../../../scripts/testing/free-port.ts';
import { signInAtIssuer as signInAt } from '../../../../scripts/testing/oidc-browser.ts';
import { accountsWithGroups, publicClient, startTestIssuer, type TestIssuer } from '../../../../scripts/testing/oidc-issuer.ts';
import { Gateway, type GatewayLogLine } from '../gateway.ts';
import { ApiClient, startTestGateway, TEST_PASSWORD, type TestGateway } from './testing.ts';

describe('local sign-in', () => {
  let t: TestGateway;
  let clock = Date.now();
  before(async () => {
    t = await startTestGateway({ now: () => clock });
    await t.gw.identity.localUsers.create('alice', TEST_PASSWORD, ['approver']);
    await t.gw.identity.localUsers.create('mallory', TEST_PASSWORD, ['viewer']);
  });
  after(() => t.close());

  it('signs alice in: her user and roles, a CSRF value, and an HttpOnly SameSite=Strict cookie that is not Secure over plain HTTP', async () => {
    const client = t.anonymous();
    const answer = await client.signIn('alice');
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body.user, { id: 'local:alice', name: 'alice', roles: ['approver'] });
    assert.match(answer.body.csrf, /^[A-Za-z0-9_-]{32}$/);
    const cookie = answer.headers.getSetCookie()[0]!;
    assert.match(cookie, /^corral_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/);
    const current = await client.get('/api/session');
    const { device: _device, ...session } = answer.body;
    assert.deepEqual(current.body, session, 'the device token is given at sign-in only');
  });

  it('gives the same 401 invalid_credentials for a wrong password, an unknown user and a malformed body', async () => {
    for (const body of [{ username: 'alice', password: 'wrong password!' }, { username: 'nobody', password: TEST_PASSWORD }, { username: ['alice'], password: 7 }]) {
      const answer = await t.anonymous().post('/api/session', body);
      assert.deepEqual([answer.status, answer.body], [401, { error: 'invalid_credentials' }]);
      assert.equal(answer.headers.getSetCookie().length, 0);
    }
    assert.equal((await t.anonymous().post('/api/session', 'not json')).status, 400);
  });

  it('refuses a sixth try within five minutes after five failures with 429 and retryAfterS (and a Retry-After header saying the same, as HTTP clients read it), even with the right password, until the window passes', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await t.anonymous().post('/api/session', { username: 'mallory', password: `guess ${i} wrong` })).status, 401);
    const refused = await t.anonymous().post('/api/session', { username: 'mallory', password: TEST_PASSWORD });
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error, 'too_many_attempts');
    assert.ok(refused.body.retryAfterS > 0 && refused.body.retryAfterS <= 300);
    assert.equal(refused.headers.get('retry-after'), String(refused.body.retryAfterS));
    assert.equal((await t.anonymous().signIn('alice')).status, 200, 'another username is not held up');
    clock += 5 * 60_000 + 1000;
    assert.equal((await t.anonymous().signIn('mallory')).status, 200);
  });

  it('lets alice sign in from a browser she signed in from before while someone else keeps failing as alice (its device token, sent in x-corral-device); without it she waits', async () => {
    const first = await t.anonymous().signIn('alice');
    const device = first.body.device as string;
    assert.match(device, /^[A-Za-z0-9_-]{16}\.\d+\.[A-Za-z0-9_-]{43}$/);
    for (let i = 0; i < 5; i++) assert.equal((await t.anonymous().post('/api/session', { username: 'alice', password: `someone else ${i}` })).status, 401);
    assert.equal((await t.anonymous().post('/api/session', { username: 'alice', password: TEST_PASSWORD })).status, 429);
    assert.equal((await t.anonymous().post('/api/session', { username: 'alice', password: TEST_PASSWORD }, { 'x-corral-device': device })).status, 200);
    clock += 5 * 60_000 + 1000;
  });

  it('never puts the device token in a cookie, and a device cookie counts for nothing (regression: every web server on another port of this host was sent it, and any page there could spend its tries)', async () => {
    const first = await t.anonymous().signIn('alice');
    assert.deepEqual(first.headers.getSetCookie().map((c) => c.split('=')[0]), ['corral_session']);
    for (let i = 0; i < 5; i++) assert.equal((await t.anonymous().post('/api/session', { username: 'alice', password: `someone else ${i}` })).status, 401);
    const browser = t.anonymous();
    browser.cookie = `corral_device=${first.body.device as string}`;
    assert.equal((await browser.post('/api/session', { username: 'alice', password: TEST_PASSWORD })).status, 429);
    assert.equal((await t.anonymous().post('/api/session', { username: 'alice', password: TEST_PASSWORD }, { 'x-corral-device': 'x'.repeat(201) })).status, 429, 'an overlong token is no token');
    clock += 5 * 60_000 + 1000;
  });

  it('refuses an address that failed 30 times in five minutes, whatever username it tries next', async () => {
    for (let i = 0; i < 30; i++) assert.equal((await t.anonymous().post('/api/session', { username: `guess-${i}`, password: 'wrong password!' })).status, 401);
    const refused = await t.anonymous().post('/api/session', { username: 'alice', password: TEST_PASSWORD });
    assert.equal(refused.status, 429);
    clock += 5 * 60_000 + 1000;
    assert.equal((await t.anonymous().signIn('alice')).status, 200);
  });

  it('holds guesses sent at once to the same limit: of 40 wrong passwords for one username sent together, 5 are tried and 35 answer 429', async () => {
    await t.gw.identity.localUsers.create('carol', TEST_PASSWORD, ['viewer']);
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => t.anonymous().post('/api/session', { username: 'carol', password: `guess ${i} wrong` })));
    assert.deepEqual([answers.filter((a) => a.status === 401).length, answers.filter((a) => a.status === 429).length], [5, 35]);
    assert.equal((await t.anonymous().post('/api/session', { username: 'carol', password: TEST_PASSWORD })).status, 429, 'the right password waits too');
    clock += 5 * 60_000 + 1000;
    assert.equal((await t.anonymous().signIn('carol')).status, 200);
  });

  it('does not count successful sign-ins against their address: everyone behind one address signs in as often as they need', async () => {
    for (let i = 0; i < 31; i++) assert.equal((await t.anonymous().signIn('alice')).status, 200, `sign-in ${i + 1}`);
  });

  it('signs out: 204, the cookie cleared, and the old cookie no longer works', async () => {
    const client = t.anonymous();
    await client.signIn('alice');
    const cookie = client.cookie;
    const out = await client.call('DELETE', '/api/session');
    assert.equal(out.status, 204);
    assert.match(out.headers.getSetCookie()[0]!, /^corral_session=; .*Max-Age=0/);
    const stale = new ApiClient(client.base);
    stale.cookie = cookie;
    assert.equal((await stale.get('/api/session')).status, 401);
  });

  it('ends a session after an hour without use, and any session after twelve hours', async () => {
    const idle = t.anonymous();
    await idle.signIn('alice');
    clock += 61 * 60_000;
    assert.equal((await idle.get('/api/session')).status, 401);
    const busy = t.anonymous();
    await busy.signIn('alice');
    for (let h = 0; h < 13; h++) {
      clock += 55 * 60_000;
      assert.equal((await busy.get('/api/session')).status, 200, `after ${h + 1} uses`);
    }
    clock += 10 * 60_000;
    assert.equal((await busy.get('/api/session')).status, 401);
  });

  it("ends a user's sessions when an administrator changes the user's roles or password (regression: a demoted admin kept admin until the session expired)", async () => {
    await t.gw.identity.localUsers.create('trent', TEST_PASSWORD, ['admin']);
    // Another who can sign in holds admin: the last one keeps it (IDENTITY_LAST_ADMIN).
    await t.gw.identity.localUsers.create('trudy', TEST_PASSWORD, ['admin']);
    const demoted = t.anonymous();
    await demoted.signIn('trent');
    assert.equal((await demoted.get('/api/session')).status, 200);
    clock += 1;
    t.gw.identity.localUsers.setRoles('trent', ['viewer']);
    assert.equal((await demoted.get('/api/session')).status, 401);
    const again = t.anonymous();
    assert.deepEqual((await again.signIn('trent')).body.user.roles, ['viewer']);
    clock += 1;
    await t.gw.identity.localUsers.setPassword('trent', `${TEST_PASSWORD}-new`);
    assert.equal((await again.get('/api/session')).status, 401);
  });

  it("ends a user's sessions when their roles change within the millisecond they signed in (regression: the session was kept while the user's time of change stayed the same, and a demoted admin kept admin)", async () => {
    await t.gw.identity.localUsers.create('ursula', TEST_PASSWORD, ['admin']);
    const demoted = t.anonymous();
    await demoted.signIn('ursula');
    assert.equal((await demoted.get('/api/session')).status, 200);
    t.gw.identity.localUsers.setRoles('ursula', ['viewer']);
    assert.equal((await demoted.get('/api/session')).status, 401);
  });

  it('lists the providers without credentials: local only when no OIDC is configured', async () => {
    assert.deepEqual((await t.anonymous().get('/api/auth/providers')).body, { local: true, oidc: null });
    assert.equal((await t.anonymous().get('/api/auth/oidc/start')).status, 404);
  });
});

describe('a web server on another loopback port (cookies are not port-scoped: the browser sends it the session cookie, and it may set one)', () => {
  let t: TestGateway;
  let admin: ApiClient;
  before(async () => {
    t = await startTestGateway();
    admin = await t.as('root', ['admin']);
  });
  after(() => t.close());

  it('reads the session cookie and cannot use it: without the key only the console holds, /api/session, the audit log and a change all answer 403 csrf, and nothing hands the key out', async () => {
    const thief = new ApiClient(t.gw.httpUrl);
    thief.cookie = admin.cookie;
    const session = await thief.get('/api/session');
    assert.deepEqual([session.status, session.body], [403, { error: 'csrf' }]);
    assert.deepEqual([(await thief.get('/api/audit')).status, (await thief.get('/api/agents')).status], [403, 403]);
    assert.equal((await thief.post('/api/agents/x/suspend', { reason: 'stolen cookie' })).status, 403);
    assert.equal((await admin.get('/api/session')).status, 200, 'the console, with its key, still is signed in');
  });

  it('plants its own session cookie (fixation): the console, whose key is for its own session, is not signed in as the planter', async () => {
    const mallory = await t.as('mallory', ['approver']);
    const victim = new ApiClient(t.gw.httpUrl);
    victim.cookie = mallory.cookie;
    victim.csrf = admin.csrf;
    const answer = await victim.get('/api/session');
    assert.deepEqual([answer.status, answer.body], [403, { error: 'csrf' }]);
  });

  it('plants its own session cookie on a narrower path, sent first: the console still is signed in as itself, not as the planter', async () => {
    const mallory = await t.as('mallory', ['approver']);
    const victim = new ApiClient(t.gw.httpUrl);
    victim.cookie = `${mallory.cookie}; ${admin.cookie}`;
    victim.csrf = admin.csrf;
    const answer = await victim.get('/api/session');
    assert.equal(answer.status, 200);
    assert.equal(answer.body.user.name, 'root');
  });
});

describe('OpenID Connect sign-in', () => {
  let issuer: TestIssuer;
  let t: TestGateway;
  before(async () => {
    const port = await freePort();
    const redirectUri = `http://127.0.0.1:${port}/api/auth/oidc/callback`;
    const withEmail = accountsWithGroups({ bob: ['finance-approvers'], carol: ['marketing'] });
    // Approvers the issuer vouches for without a plain verified e-mail: one whose subject is a local username, one whose subject reads like the gateway token's approver, one with an odd address.
    const bare: Record<string, Record<string, unknown>> = { alice: {}, 'token:mallory': {}, dave: { email: 'dave:x@example.com', email_verified: true } };
    const accounts = (sub: string) => withEmail(sub) ?? (bare[sub] ? { ...bare[sub], name: sub, groups: ['finance-approvers'] } : undefined);
    issuer = await startTestIssuer({ clients: [publicClient('corral-console', redirectUri)], accounts });
    t = await startTestGateway({ port, oidc: { name: 'Example SSO', issuer: issuer.issuer, clientId: 'corral-console', redirectUri, roleMap: { approver: ['finance-approvers'] } } });
  });
  after(async () => {
    await t.close();
    await issuer.close();
  });

  it('names the provider on the sign-in page', async () => {
    assert.deepEqual((await t.anonymous().get('/api/auth/providers')).body, { local: true, oidc: { name: 'Example SSO' } });
  });

  it('signs bob in with code + PKCE: the callback sets the session cookie and sends him to /, where he is an approver with the key his console gave the start joined to the half in the fragment', async () => {
    const browser = t.anonymous();
    browser.csrf = consoleKey();
    const start = await browser.get(`/api/auth/oidc/start?key=${browser.csrf}`);
    assert.equal(start.status, 302);
    const location = new URL(start.headers.get('location')!);
    assert.equal(location.searchParams.get('code_challenge_method'), 'S256');
    const binding = start.headers.getSetCookie()[0]!.split(';')[0]!;
    const callback = await signInAtIssuer(location.toString(), 'bob');
    const back = await fetch(callback, { redirect: 'manual', headers: { cookie: binding } });
    assert.equal(back.status, 302);
    const half = /^\/#signin=([A-Za-z0-9_-]{32})$/.exec(back.headers.get('location')!)?.[1];
    assert.ok(half, 'the second half of the key, in the fragment only this browser’s console reads');
    browser.cookie = back.headers.getSetCookie().find((c) => c.startsWith('corral_session='))!.split(';')[0];
    assert.equal((await browser.get('/api/session')).status, 403, 'the start’s key alone is not the session’s');
    browser.csrf = `${browser.csrf}.${half}`;
    const session = await browser.get('/api/session');
    assert.equal(session.status, 200);
    assert.deepEqual(session.body.user.roles, ['approver']);
    assert.equal(session.body.user.name, 'bob@example.com');
  });

  it('names a human without a plain verified e-mail by issuer and subject, never by the subject alone (regression: subject "alice" was named as the local user alice, and "token:mallory" counted as the gateway token’s approver)', async () => {
    for (const subject of ['alice', 'token:mallory', 'dave']) {
      const browser = t.anonymous();
      browser.csrf = consoleKey();
      const start = await browser.get(`/api/auth/oidc/start?key=${browser.csrf}`);
      const binding = start.headers.getSetCookie()[0]!.split(';')[0]!;
      const back = await fetch(await signInAtIssuer(start.headers.get('location')!, subject), { redirect: 'manual', headers: { cookie: binding } });
      browser.cookie = back.headers.getSetCookie().find((c) => c.startsWith('corral_session='))!.split(';')[0];
      browser.csrf = `${browser.csrf}.${/^\/#signin=(.+)$/.exec(back.headers.get('location')!)![1]}`;
      const session = await browser.get('/api/session');
      assert.equal(session.body.user.name, `oidc:${issuer.issuer}#${subject}`, subject);
    }
  });

  it('refuses a start without a key from the console (its session could be no one’s) with /?signin_error=failed', async () => {
    for (const query of ['', '?key=', '?key=short', `?key=${consoleKey()}%00`]) {
      const start = await t.anonymous().get(`/api/auth/oidc/start${query}`);
      assert.deepEqual([start.status, start.headers.get('location')], [302, '/?signin_error=failed'], query);
    }
  });

  it('refuses a start another site or another port of this host sent the browser to (Sec-Fetch-Site other than same-origin): no binding cookie, no trip to the issuer, and so no session that signs the console out (regression: any page could put a signed-in person through the issuer, replacing their session and recording a sign-in they never made)', async () => {
    for (const site of ['cross-site', 'same-site', 'none']) {
      const start = await t.anonymous().get(`/api/auth/oidc/start?key=${consoleKey()}`, { 'sec-fetch-site': site });
      assert.deepEqual([start.status, start.headers.get('location'), start.headers.getSetCookie()], [302, '/?signin_error=failed', []], site);
    }
    const own = await t.anonymous().get(`/api/auth/oidc/start?key=${consoleKey()}`, { 'sec-fetch-site': 'same-origin' });
    assert.ok(own.headers.get('location')!.startsWith(issuer.issuer), 'the console’s own start goes to the issuer');
  });

  it('refuses a callback arriving in another browser (no binding cookie) with /?signin_error=state', async () => {
    const start = await t.anonymous().get(`/api/auth/oidc/start?key=${consoleKey()}`);
    const callback = await signInAtIssuer(start.headers.get('location')!, 'bob');
    const back = await fetch(callback, { redirect: 'manual' });
    assert.equal(back.headers.get('location'), '/?signin_error=state');
    assert.equal(back.headers.getSetCookie().some((c) => c.startsWith('corral_session=') && !c.startsWith('corral_session=;')), false);
  });

  it('keeps nothing per login: bob signs in after 2,000 other starts (any page can send the browser to the start; regression: the 1,001st pushed his login out)', async () => {
    const browser = t.anonymous();
    const start = await browser.get(`/api/auth/oidc/start?key=${consoleKey()}`);
    const binding = start.headers.getSetCookie()[0]!.split(';')[0]!;
    for (let i = 0; i < 2000; i += 100) await Promise.all(Array.from({ length: 100 }, () => t.anonymous().get(`/api/auth/oidc/start?key=${consoleKey()}`)));
    const callback = await signInAtIssuer(start.headers.get('location')!, 'bob');
    const back = await fetch(callback, { redirect: 'manual', headers: { cookie: binding } });
    assert.match(back.headers.get('location')!, /^\/#signin=/);
  });

  it('takes a callback once, with the binding of its own login among others planted beside it, and refuses a binding it did not seal', async () => {
    const start = await t.anonymous().get(`/api/auth/oidc/start?key=${consoleKey()}`);
    const binding = start.headers.getSetCookie()[0]!.split(';')[0]!;
    const other = (await t.anonymous().get(`/api/auth/oidc/start?key=${consoleKey()}`)).headers.getSetCookie()[0]!.split(';')[0]!;
    const callback = await signInAtIssuer(start.headers.get('location')!, 'bob');
    const sealed = Buffer.from(binding.slice('corral_oidc='.length), 'base64url');
    sealed[40]! ^= 1;
    const forged = `corral_oidc=${sealed.toString('base64url')}`;
    assert.equal((await fetch(callback, { redirect: 'manual', headers: { cookie: forged } })).headers.get('location'), '/?signin_error=state');
    const back = await fetch(callback, { redirect: 'manual', headers: { cookie: `${other}; ${binding}` } });
    assert.match(back.headers.get('location')!, /^\/#signin=/);
    const again = await fetch(callback, { redirect: 'manual', headers: { cookie: binding } });
    assert.equal(again.headers.get('location'), '/?signin_error=state');
  });

  it('refuses carol, whose groups map to no Corral role, with /?signin_error=no_role', async () => {
    const start = await t.anonymous().get(`/api/auth/oidc/start?key=${consoleKey()}`);
    const binding = start.headers.getSetCookie()[0]!.split(';')[0]!;
    const callback = await signInAtIssuer(start.headers.get('location')!, 'carol');
    const back = await fetch(callback, { redirect: 'manual', headers: { cookie: binding } });
    assert.equal(back.headers.get('location'), '/?signin_error=no_role');
  });

  it('gives a victim whose browser another loopback port planted with bob’s own pending login (login CSRF) a session the victim’s console cannot use', async () => {
    const start = await t.anonymous().get(`/api/auth/oidc/start?key=${consoleKey()}`);
    const planted = start.headers.getSetCookie()[0]!.split(';')[0]!;
    const callback = await signInAtIssuer(start.headers.get('location')!, 'bob');
    const back = await fetch(callback, { redirect: 'manual', headers: { cookie: planted } });
    const half = /^\/#signin=(.+)$/.exec(back.headers.get('location')!)![1];
    const victim = t.anonymous();
    victim.cookie = back.headers.getSetCookie().find((c) => c.startsWith('corral_session='))!.split(';')[0];
    victim.csrf = `${consoleKey()}.${half}`;
    assert.deepEqual([(await victim.get('/api/session')).status, (await victim.get('/api/approvals')).status], [403, 403]);
  });

  it('does not let another loopback port that started a login with its own key use the session the victim completes (session hijack: it is sent the victim’s cookie and chose the key)', async () => {
    const attackerKey = consoleKey();
    const start = await t.anonymous().get(`/api/auth/oidc/start?key=${attackerKey}`);
    const planted = start.headers.getSetCookie()[0]!.split(';')[0]!;
    // The victim's browser, already signed in at the issuer, is sent to its authorization URL with the binding cookie planted.
    const callback = await signInAtIssuer(start.headers.get('location')!, 'bob');
    const back = await fetch(callback, { redirect: 'manual', headers: { cookie: planted } });
    const victimCookie = back.headers.getSetCookie().find((c) => c.startsWith('corral_session=') && !c.startsWith('corral_session=;'));
    assert.ok(victimCookie, 'the victim’s browser is signed in (the issuer knows the victim)');
    const attacker = t.anonymous();
    attacker.cookie = victimCookie.split(';')[0];
    attacker.csrf = attackerKey;
    assert.deepEqual([(await attacker.get('/api/session')).status, (await attacker.get('/api/approvals')).status], [403, 403]);
  });
});

describe('a sign-in posted by a form on another site', () => {
  it('is refused: the body must be sent as application/json', async () => {
    const t = await startTestGateway();
    try {
      await t.gw.identity.localUsers.create('alice', TEST_PASSWORD, ['admin']);
      const res = await fetch(`${t.gw.httpUrl}/api/session`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ username: 'alice', password: TEST_PASSWORD }) });
      assert.equal(res.status, 400);
      assert.equal(res.headers.getSetCookie().length, 0);
    } finally {
      await t.close();
    }
  });

  it('is refused without counting against the address when it sends no body at all (a form without fields, a no-cors fetch): thirty of them do not lock this host out of signing in (regression: they counted as failures from 127.0.0.1)', async () => {
    const t = await startTestGateway();
    try {
      await t.gw.identity.localUsers.create('alice', TEST_PASSWORD, ['admin']);
      for (let i = 0; i < 31; i++) {
        const res = await fetch(`${t.gw.httpUrl}/api/session`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
        const body = (await res.json()) as { error: string; message?: string };
        assert.deepEqual([res.status, body.error], [400, 'invalid_request'], `post ${i + 1}`);
        assert.match(body.message ?? '', /application\/json/);
      }
      assert.equal((await t.anonymous().signIn('alice')).status, 200, 'alice signs in from the same address');
    } finally {
      await t.close();
    }
  });
});

/** A key as the console makes one for a sign-in: 32 random bytes, base64url. */
const consoleKey = () => randomBytes(32).toString('base64url');

const signInAtIssuer = (url: string, user: string) => signInAt(url, user, (target) => target.includes('/api/auth/oidc/callback'));

describe('Gateway.start with OIDC settings it could not use', () => {
  it('refuses them before it listens, naming the setting (regression: accepted, then failed at the first sign-in)', async () => {
    const state = mkdtempSync(join(tmpdir(), 'corral-oidc-settings-'));
    const oidc = { issuer: 'http://login.example.com', clientId: 'console', redirectUri: 'http://127.0.0.1:18789/api/auth/oidc/callback', roleMap: { viewer: ['staff'] }, name: 'Example SSO' };
    await assert.rejects(Gateway.start({ stateDir: state, token: 'a-token-of-sixteen-or-more', port: 0, oidc }), (e: { code?: string; message?: string }) => e.code === 'IDENTITY_INPUT_INVALID' && /issuer must be an https URL/.test(e.message!));
  });
});

describe('when a single sign-on fails', () => {
  it('logs its coded cause, which the browser is not told (regression: the gateway’s log held nothing, and an operator saw only “single sign-on failed”)', async () => {
    const port = await freePort();
    const redirectUri = `http://127.0.0.1:${port}/api/auth/oidc/callback`;
    const issuer = await startTestIssuer({ clients: [publicClient('corral-console', redirectUri)], accounts: accountsWithGroups({ carol: ['marketing'] }) });
    const log: GatewayLogLine[] = [];
    const t = await startTestGateway({ port, log: (entry) => log.push(entry), oidc: { issuer: issuer.issuer, clientId: 'corral-console', redirectUri, roleMap: { approver: ['finance-approvers'] } } });
    try {
      const start = await t.anonymous().get(`/api/auth/oidc/start?key=${consoleKey()}`);
      const binding = start.headers.getSetCookie()[0]!.split(';')[0]!;
      const callback = await signInAtIssuer(start.headers.get('location')!, 'carol');
      assert.equal((await fetch(callback, { redirect: 'manual' })).headers.get('location'), '/?signin_error=state');
      assert.equal((await fetch(callback, { redirect: 'manual', headers: { cookie: binding } })).headers.get('location'), '/?signin_error=no_role');
      const lines = log.filter((e) => 'connId' in e && e.connId === 'http');
      assert.deepEqual(lines, [
        { event: 'refused', connId: 'http', code: 'IDENTITY_OIDC_STATE_MISMATCH', remoteAddress: '127.0.0.1' },
        { event: 'refused', connId: 'http', code: 'IDENTITY_OIDC_NO_ROLE', remoteAddress: '127.0.0.1' },
      ]);
    } finally {
      await t.close();
      await issuer.close();
    }
  });
});

describe('single sign-on behind a TLS-terminating proxy, with publicUrl https://corral.example.com', () => {
  it('binds the login with a Secure cookie named __Secure-corral_oidc, reads no unprefixed one back, clears it, and signs bob in with __Host-corral_session', async () => {
    const redirectUri = 'https://corral.example.com/api/auth/oidc/callback';
    const issuer = await startTestIssuer({ clients: [publicClient('corral-console', redirectUri)], accounts: accountsWithGroups({ bob: ['finance-approvers'] }) });
    const t = await startTestGateway({ publicUrl: 'https://corral.example.com', oidc: { issuer: issuer.issuer, clientId: 'corral-console', redirectUri, roleMap: { approver: ['finance-approvers'] } } });
    try {
      const start = await t.anonymous().get(`/api/auth/oidc/start?key=${consoleKey()}`);
      const [set] = start.headers.getSetCookie();
      assert.match(set!, /^__Secure-corral_oidc=[A-Za-z0-9_-]+; HttpOnly; SameSite=Lax; Path=\/api\/auth\/oidc; Max-Age=600; Secure$/);
      const binding = set!.split(';')[0]!;
      const callback = new URL(await signInAt(start.headers.get('location')!, 'bob', (target) => target.startsWith(redirectUri)));
      const at = `${t.gw.httpUrl}${callback.pathname}${callback.search}`;
      // The same login under the unprefixed name, as a plain-http page of this host could plant one, is not read.
      const unprefixed = await fetch(at, { redirect: 'manual', headers: { cookie: binding.replace(/^__Secure-/, '') } });
      assert.equal(unprefixed.headers.get('location'), '/?signin_error=state');
      const back = await fetch(at, { redirect: 'manual', headers: { cookie: binding } });
      assert.match(back.headers.get('location')!, /^\/#signin=/);
      const cookies = back.headers.getSetCookie();
      assert.ok(cookies.includes('__Secure-corral_oidc=; HttpOnly; SameSite=Lax; Path=/api/auth/oidc; Max-Age=0; Secure'), cookies.join('\n'));
      assert.ok(cookies.some((c) => /^__Host-corral_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200; Secure$/.test(c)), cookies.join('\n'));
    } finally {
      await t.close();
      await issuer.close();
    }
  });
});

describe('when the OIDC issuer takes connections and never answers', () => {
  /** How long Corral waits for one answer from the issuer (identity's ISSUER_TIMEOUT_MS, as docs/identity-and-policy.md gives it). */
  const ISSUER_TIMEOUT_MS = 10_000;
  it(`sends a start back with /?signin_error=unavailable once Corral stops waiting (${ISSUER_TIMEOUT_MS / 1000} s), while alice signs in with her password meanwhile`, { timeout: 30_000 }, async () => {
    const held = new Set<Socket>();
    const silent = createServer((socket) => void held.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const issuer = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const t = await startTestGateway({ oidc: { issuer, clientId: 'corral-console', redirectUri: 'http://127.0.0.1:9/api/auth/oidc/callback', roleMap: { viewer: ['staff'] } } });
    try {
      await t.gw.identity.localUsers.create('alice', TEST_PASSWORD, ['viewer']);
      const started = performance.now();
      const starting = t.anonymous().get(`/api/auth/oidc/start?key=${consoleKey()}`);
      assert.equal((await t.anonymous().signIn('alice')).status, 200);
      assert.ok(performance.now() - started < 5000, 'the password sign-in did not wait on the issuer');
      const start = await starting;
      const waited = performance.now() - started;
      assert.deepEqual([start.status, start.headers.get('location')], [302, '/?signin_error=unavailable']);
      assert.ok(waited >= ISSUER_TIMEOUT_MS - 100 && waited < ISSUER_TIMEOUT_MS + 3000, `answered after ${Math.round(waited)} ms`);
    } finally {
      await t.close();
      for (const socket of held) socket.destroy();
      silent.close();
    }
  });
});
