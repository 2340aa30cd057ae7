// The gateway behind the operator's TLS-terminating reverse proxy: its public
// URL (Secure, `__Host-` cookies; the public Host answered, no other) and its
// trusted proxies (the client a proxy forwards for is who a sign-in counts
// against and the log names; anyone else's X-Forwarded-For is ignored).
// Real requests to a real gateway on loopback, the way a proxy on this host sends them.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { connectParams } from '../index.ts';
import type { GatewayLogLine } from '../gateway.ts';
import { startTestGateway, TEST_PASSWORD, type TestGateway } from './testing.ts';

interface Sent {
  status: number;
  cookies: string[];
  body: any;
}

/** One request to the gateway at `base`, with exactly these headers (Host included: what fetch will not send), from `localAddress` (default 127.0.0.1). */
function send(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: unknown, localAddress?: string): Promise<Sent> {
  const { hostname, port } = new URL(base);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method, path, agent: false, ...(localAddress ? { localAddress } : {}), headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.once('end', () => {
        let parsed: unknown = text;
        try {
          parsed = text === '' ? undefined : JSON.parse(text);
        } catch {
          // not JSON
        }
        const set = res.headers['set-cookie'];
        resolve({ status: res.statusCode ?? 0, cookies: set ?? [], body: parsed });
      });
    });
    req.once('error', reject);
    req.end(payload);
  });
}

const PUBLIC = 'https://corral.example.com';
const PUBLIC_HOST = { host: 'corral.example.com' };

describe('a gateway behind a TLS-terminating proxy, with publicUrl https://corral.example.com', () => {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway({ publicUrl: PUBLIC });
    await t.gw.identity.localUsers.create('alice', TEST_PASSWORD, ['approver']);
  });
  after(() => t.close());

  it('signs alice in with a Secure cookie named __Host-corral_session, and takes it back (regression: behind a TLS proxy no cookie was Secure)', async () => {
    const signIn = await send(t.gw.httpUrl, 'POST', '/api/session', PUBLIC_HOST, { username: 'alice', password: TEST_PASSWORD });
    assert.equal(signIn.status, 200);
    assert.equal(signIn.cookies.length, 1);
    assert.match(signIn.cookies[0]!, /^__Host-corral_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200; Secure$/);
    const cookie = signIn.cookies[0]!.split(';')[0]!;
    const session = await send(t.gw.httpUrl, 'GET', '/api/session', { ...PUBLIC_HOST, cookie, 'x-corral-csrf': signIn.body.csrf });
    assert.equal(session.status, 200);
    assert.equal(session.body.user.name, 'alice');
    // The token under the unprefixed name, as a plain-http page or a sibling host could plant it, is not read.
    const unprefixed = await send(t.gw.httpUrl, 'GET', '/api/session', { ...PUBLIC_HOST, cookie: cookie.replace(/^__Host-/, ''), 'x-corral-csrf': signIn.body.csrf });
    assert.equal(unprefixed.status, 401);
    const signOut = await send(t.gw.httpUrl, 'DELETE', '/api/session', { ...PUBLIC_HOST, cookie, 'x-corral-csrf': signIn.body.csrf });
    assert.equal(signOut.status, 204);
    assert.deepEqual(signOut.cookies, ['__Host-corral_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0; Secure']);
  });

  it('answers a request its proxy sent on with the public Host (also with :443 spelled out) or a loopback one, and still refuses any other name with 421 (regression: the public name was refused as DNS rebinding)', async () => {
    const port = new URL(t.gw.httpUrl).port;
    for (const host of ['corral.example.com', 'CORRAL.example.com:443', `127.0.0.1:${port}`]) {
      assert.equal((await send(t.gw.httpUrl, 'GET', '/api/auth/providers', { host })).status, 200, host);
    }
    for (const host of ['evil.example', 'corral.example.com:8443', 'corral.example.com.evil.example', `evil.example:${port}`]) {
      assert.equal((await send(t.gw.httpUrl, 'GET', '/api/auth/providers', { host })).status, 421, host);
    }
  });
});

describe('a gateway with publicUrl on a loopback host over plain http (an SSH tunnel)', () => {
  it('keeps its cookies as they were: not Secure, named corral_session', async () => {
    const t = await startTestGateway({ publicUrl: 'http://localhost:8080' });
    try {
      await t.gw.identity.localUsers.create('alice', TEST_PASSWORD, ['viewer']);
      const signIn = await send(t.gw.httpUrl, 'POST', '/api/session', { host: 'localhost:8080' }, { username: 'alice', password: TEST_PASSWORD });
      assert.equal(signIn.status, 200);
      assert.match(signIn.cookies[0]!, /^corral_session=[^;]+; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/);
    } finally {
      await t.close();
    }
  });
});

/** The error a gateway with `options` is refused with at start (one that starts anyway is closed, and fails the test). */
async function refusedAtStart(options: Parameters<typeof startTestGateway>[0]): Promise<{ code?: string; message: string }> {
  let started: TestGateway;
  try {
    started = await startTestGateway(options);
  } catch (error) {
    return error as { code?: string; message: string };
  }
  await started.close();
  return assert.fail(`started with ${JSON.stringify(options)}`);
}

describe('publicUrl refused at start', () => {
  it('refuses with GATEWAY_PUBLIC_URL_INVALID, naming publicUrl: plain http off loopback, credentials, a path, a query, a fragment, another scheme, a relative URL, hidden spaces', async () => {
    for (const publicUrl of ['http://corral.example.com', 'https://user:pw@corral.example.com', 'https://corral.example.com/corral', 'https://corral.example.com/?a=1', 'https://corral.example.com/?', 'https://corral.example.com#top', 'ftp://corral.example.com', 'corral.example.com', '', 'https://corral.exa\nmple.com', ' https://corral.example.com']) {
      const error = await refusedAtStart({ publicUrl });
      assert.equal(error.code, 'GATEWAY_PUBLIC_URL_INVALID', JSON.stringify(publicUrl));
      assert.match(error.message, /^publicUrl /);
    }
  });

  it('refuses an OIDC redirectUri that is not the callback at the public URL (the issuer would send people around the proxy), naming the one to register', async () => {
    const oidc = { issuer: 'https://login.example.com', clientId: 'console', redirectUri: 'http://127.0.0.1:18789/api/auth/oidc/callback', roleMap: { viewer: ['staff'] } };
    const error = await refusedAtStart({ publicUrl: PUBLIC, oidc });
    assert.equal(error.code, 'GATEWAY_PUBLIC_URL_INVALID');
    assert.match(error.message, /register https:\/\/corral\.example\.com\/api\/auth\/oidc\/callback/);
    const t = await startTestGateway({ publicUrl: PUBLIC, oidc: { ...oidc, redirectUri: `${PUBLIC}/api/auth/oidc/callback` } });
    await t.close();
  });
});

/**
 * 31 failed sign-ins, each as a fresh username (so only the address's limit
 * of 30 is reached), with these headers, from `localAddress`: the statuses.
 * Sent 15 at a time, as many as the password hasher takes at once: each is
 * counted when it starts, and the hashing is what takes the time.
 */
async function failThirtyOneTimes(base: string, headers: (i: number) => Record<string, string>, localAddress?: string): Promise<number[]> {
  const statuses: number[] = [];
  for (let from = 0; from < 31; from += 15) {
    const batch = Array.from({ length: Math.min(15, 31 - from) }, (_, k) => send(base, 'POST', '/api/session', headers(from + k), { username: `guess-${from + k}`, password: 'wrong password' }, localAddress));
    statuses.push(...(await Promise.all(batch)).map((a) => a.status));
  }
  return statuses;
}

describe('trustedProxies 127.0.0.1 (a proxy on this host) and 10.0.0.0/8 (a load balancer in front of it)', () => {
  let t: TestGateway;
  const log: GatewayLogLine[] = [];
  const signInAlice = (headers: Record<string, string>, localAddress?: string) => send(t.gw.httpUrl, 'POST', '/api/session', headers, { username: 'alice', password: TEST_PASSWORD }, localAddress);
  before(async () => {
    // A clock that stands still: however slowly 62 passwords are hashed here, no failure leaves the five-minute window.
    const clock = Date.now();
    t = await startTestGateway({ trustedProxies: ['127.0.0.1', '10.0.0.0/8'], log: (entry) => log.push(entry), now: () => clock });
    await t.gw.identity.localUsers.create('alice', TEST_PASSWORD, ['viewer']);
  });
  after(() => t.close());

  it('holds a client that fails 30 times to its own limit however it varies the entries it writes itself, and lets another client behind the same proxies sign in (regression: every client shared the proxy’s address, and one attacker locked everyone out)', async () => {
    // The client wrote the first entry; the load balancer appended the client's address, the proxy the balancer's.
    const attacker = await failThirtyOneTimes(t.gw.httpUrl, (i) => ({ 'x-forwarded-for': `192.0.2.${i}, 203.0.113.50, 10.1.2.3` }));
    assert.deepEqual([attacker.filter((s) => s === 401).length, attacker.filter((s) => s === 429).length], [30, 1], attacker.join(' '));
    assert.equal((await signInAlice({ 'x-forwarded-for': '203.0.113.50' })).status, 429, 'the attacker is held up, through one hop or two');
    assert.equal((await signInAlice({ 'x-forwarded-for': '198.51.100.2, 10.1.2.3' })).status, 200, 'another client is not');
    assert.equal((await signInAlice({ 'x-forwarded-for': '198.51.100.3' })).status, 200);
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy (127.0.0.2): it cannot pass as another client, nor get a fresh limit by naming a new address each try', async () => {
    assert.equal((await signInAlice({ 'x-forwarded-for': '203.0.113.50' }, '127.0.0.2')).status, 200, 'not taken for the held-up 203.0.113.50');
    const spoofer = await failThirtyOneTimes(t.gw.httpUrl, (i) => ({ 'x-forwarded-for': `198.51.100.${100 + i}` }), '127.0.0.2');
    assert.equal(spoofer[30], 429, spoofer.join(' '));
    assert.equal((await signInAlice({ 'x-forwarded-for': '198.51.100.200' }, '127.0.0.2')).status, 429);
    assert.equal((await signInAlice({ 'x-forwarded-for': '198.51.100.4' })).status, 200, 'clients of the trusted proxy are not held up');
  });

  it('names the client, not the proxy, in the log of a refused request; a peer that is not trusted by its own address', async () => {
    log.length = 0;
    assert.equal((await send(t.gw.httpUrl, 'GET', '/api/approvals', { 'x-forwarded-for': '198.51.100.9' })).status, 401);
    assert.equal((await send(t.gw.httpUrl, 'GET', '/api/approvals', { 'x-forwarded-for': '198.51.100.9' }, undefined, '127.0.0.2')).status, 401);
    const named = log.filter((e) => e.event === 'refused' && e.code === 'http_unauthenticated').map((e) => ('remoteAddress' in e ? e.remoteAddress : undefined));
    assert.deepEqual(named, ['198.51.100.9', '127.0.0.2'], JSON.stringify(log));
  });

  it('takes a malformed X-Forwarded-For from a trusted proxy as the proxy’s own request: answered, not a crash, and logged once for many, without the header’s text', async () => {
    log.length = 0;
    // Only what the trusted proxies wrote is read: right of the client's entry (`unknown, 203.0.113.60` would be 203.0.113.60).
    for (const header of ['not-an-address', '', '203.0.113.60, unknown', '203.0.113.60, ', '203.0.113.60 10.0.0.1', '203.0.113.60, proxy.internal']) {
      const answer = await send(t.gw.httpUrl, 'GET', '/api/approvals', { 'x-forwarded-for': header });
      assert.equal(answer.status, 401, JSON.stringify(header));
    }
    const lines = log.filter((e) => e.code === 'GATEWAY_FORWARDED_INVALID');
    assert.equal(lines.length, 1, JSON.stringify(log));
    assert.equal(lines[0]!.event, 'protocol-error');
    assert.ok(!JSON.stringify(log).includes('not-an-address'), 'the header’s text is not logged');
    const refused = log.filter((e) => e.code === 'http_unauthenticated').map((e) => ('remoteAddress' in e ? e.remoteAddress : undefined));
    assert.deepEqual(refused, Array(6).fill('127.0.0.1'), 'each taken as the proxy’s own');
  });
});

describe('trustedProxies refused at start', () => {
  it('refuses with GATEWAY_TRUSTED_PROXY_INVALID naming the entry: a host name, an empty entry, a bad or missing prefix, every address', async () => {
    for (const entry of ['proxy.example.com', '', ' 10.0.0.1', '10.0.0.0/33', '10.0.0.0/', '10.0.0.0/x', 'fd00::/129', '0.0.0.0/0', '::/0', 'fe80::1%eth0']) {
      const error = await refusedAtStart({ trustedProxies: ['127.0.0.1', entry] });
      assert.equal(error.code, 'GATEWAY_TRUSTED_PROXY_INVALID', JSON.stringify(entry));
      assert.match(error.message, /^trustedProxies entry /);
    }
  });
});

/** A WebSocket from `localAddress` that a proxy forwards for `client`; resolves once open or refused, with its challenge to come. */
async function forwardedSocket(url: string, localAddress: string, client: string): Promise<{ socket: WebSocket; challenge: Promise<{ nonce: string; ts: number }> }> {
  const socket = new WebSocket(url, { localAddress, perMessageDeflate: false, headers: { 'x-forwarded-for': client } });
  socket.on('error', () => {});
  const challenge = new Promise<{ nonce: string; ts: number }>((resolve) => socket.once('message', (data) => resolve(JSON.parse(data.toString()).payload)));
  await new Promise((resolve) => socket.once('open', resolve).once('close', resolve));
  return { socket, challenge };
}

describe('trustedProxies 127.0.0.2 (a load balancer), when one client opens WebSocket after WebSocket through it and never sends connect', () => {
  it("closes that client's own oldest, and another client's handshake through the balancer completes (regression: every client behind it shared its address's unfinished handshakes)", async () => {
    const t = await startTestGateway({ trustedProxies: ['127.0.0.2'], maxUnauthenticated: 8, maxUnauthenticatedPerAddress: 4 });
    const sockets: WebSocket[] = [];
    try {
      const other = await forwardedSocket(t.gw.url, '127.0.0.2', '198.51.100.2');
      sockets.push(other.socket);
      for (let i = 0; i < 12; i++) sockets.push((await forwardedSocket(t.gw.url, '127.0.0.2', '203.0.113.7')).socket);
      const { nonce, ts } = await other.challenge;
      assert.equal(other.socket.readyState, WebSocket.OPEN, "the other client's handshake is still open");
      const answer = new Promise<boolean>((resolve) => {
        other.socket.once('message', (data) => resolve(JSON.parse(data.toString()).ok === true));
        other.socket.once('close', () => resolve(false));
      });
      other.socket.send(JSON.stringify({ type: 'req', id: 'c1', method: 'connect', params: connectParams({ url: '', token: t.token, role: 'operator', scopes: ['operator.read'] }, nonce, ts) }));
      assert.equal(await answer, true);
    } finally {
      for (const socket of sockets) socket.terminate();
      await t.close();
    }
  });
});
