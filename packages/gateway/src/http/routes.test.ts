// Every route of the API, walked without credentials, with a wrong token,
// with a session of a role that must not reach it, and (for changes) without
// the CSRF header: none of them may answer anything but a refusal.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { CorralRole } from '@corral/identity';
import { rolesGrant } from './roles.ts';
import type { GatewayLogLine } from '../gateway.ts';
import type { GatewayLogEntry } from '../server/server.ts';
import type { Route } from './router.ts';
import { startTestGateway, type ApiClient, type TestGateway } from './testing.ts';

const concrete = (path: string) => path.replace(/:[a-zA-Z]+/g, 'x1');

describe('authentication and roles on every route', () => {
  let t: TestGateway;
  let routes: readonly Route[];
  const clients = new Map<CorralRole, ApiClient>();
  const log: GatewayLogLine[] = [];
  before(async () => {
    t = await startTestGateway({ log: (entry) => log.push(entry) });
    routes = t.gw.http.router?.routes ?? [];
    for (const role of ['approver', 'auditor', 'viewer'] as const) clients.set(role, await t.as(`a-${role}`, [role]));
  });
  after(() => t.close());

  it('knows every route group of the document', () => {
    const groups = new Set(routes.map((r) => r.path.split('/')[2]));
    assert.deepEqual([...groups].sort(), ['activity', 'agents', 'approvals', 'audit', 'auth', 'nodes', 'policies', 'session', 'status']);
  });

  it('answers 401 unauthenticated on every non-public route without credentials', async () => {
    for (const route of routes.filter((r) => r.access !== 'public')) {
      const answer = await t.anonymous().call(route.method, concrete(route.path), route.method === 'GET' ? undefined : {});
      assert.equal(answer.status, 401, `${route.method} ${route.path}`);
      assert.deepEqual(answer.body, { error: 'unauthenticated' }, `${route.method} ${route.path}`);
    }
  });

  it('answers 401 for a wrong bearer token and for a forged session cookie', async () => {
    for (const route of routes.filter((r) => r.access !== 'public')) {
      const wrong = t.anonymous();
      wrong.bearer = 'x'.repeat(32);
      assert.equal((await wrong.call(route.method, concrete(route.path), route.method === 'GET' ? undefined : {})).status, 401, `${route.method} ${route.path}`);
      const forged = t.anonymous();
      forged.cookie = 'corral_session=forged-session-token';
      forged.csrf = 'forged';
      assert.equal((await forged.call(route.method, concrete(route.path), route.method === 'GET' ? undefined : {})).status, 401, `${route.method} ${route.path}`);
    }
  });

  it('logs each refusal by its code and address, never a token or cookie', () => {
    const refused = log.filter((e): e is GatewayLogEntry => 'connId' in e && e.connId === 'http' && e.event === 'refused');
    assert.ok(refused.some((e) => e.code === 'http_unauthenticated' && e.remoteAddress === '127.0.0.1'));
    const text = JSON.stringify(log);
    assert.equal(text.includes(t.token), false);
    assert.equal(text.includes('forged-session-token'), false);
  });

  it('answers 403 forbidden to a signed-in human whose role does not grant the route', async () => {
    let refused = 0;
    for (const route of routes) {
      if (route.access === 'public' || route.access === 'signed-in') continue;
      for (const [role, client] of clients) {
        if (rolesGrant([role], route.access)) continue;
        const answer = await client.call(route.method, concrete(route.path), route.method === 'GET' ? undefined : {});
        assert.equal(answer.status, 403, `${role} ${route.method} ${route.path}`);
        assert.deepEqual(answer.body, { error: 'forbidden' });
        refused++;
      }
    }
    assert.ok(refused > 20, `${refused} refusals checked`);
  });

  it('answers 403 csrf to a session that changes anything without the x-corral-csrf header, or with another session’s', async () => {
    const admin = await t.as('root', ['admin']);
    const other = await t.as('other-admin', ['admin']);
    for (const route of routes.filter((r) => r.method !== 'GET' && r.access !== 'public')) {
      const missing = await admin.call(route.method, concrete(route.path), {}, { 'x-corral-csrf': '' });
      assert.deepEqual([missing.status, missing.body], [403, { error: 'csrf' }], `${route.method} ${route.path}`);
      const foreign = await admin.call(route.method, concrete(route.path), {}, { 'x-corral-csrf': other.csrf! });
      assert.deepEqual([foreign.status, foreign.body], [403, { error: 'csrf' }], `${route.method} ${route.path}`);
    }
  });

  it('sends the security headers and no-store on API answers, refusals included', async () => {
    const answer = await t.anonymous().get('/api/status');
    assert.equal(answer.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(answer.headers.get('referrer-policy'), 'no-referrer');
    assert.match(answer.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    assert.equal(answer.headers.get('cache-control'), 'no-store');
  });

  it('answers 421 to a request addressed to another name (DNS rebinding), even with the gateway token', async () => {
    const url = new URL(t.gw.httpUrl);
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        request({ host: url.hostname, port: url.port, path: '/api/status', headers: { host, authorization: `Bearer ${t.token}` } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        })
          .on('error', reject)
          .end();
      });
    assert.equal(await status(`attacker.example:${url.port}`), 421);
    assert.equal(await status(`localhost:${url.port}`), 200);
    assert.equal(await status(`127.0.0.1:${url.port}`), 200);
  });

  it('answers 421 the same when bound to 127.0.0.1 spelled as an IPv4-mapped IPv6 address (::ffff:127.0.0.1 turned the check off)', async () => {
    const mapped = await startTestGateway({ host: '::ffff:127.0.0.1' });
    try {
      const port = new URL(mapped.gw.httpUrl).port;
      const status = (host: string) =>
        new Promise<number>((resolve, reject) => {
          request({ host: '127.0.0.1', port, path: '/api/status', headers: { host, authorization: `Bearer ${mapped.token}` } }, (res) => {
            res.resume();
            resolve(res.statusCode!);
          })
            .on('error', reject)
            .end();
        });
      assert.equal(await status(`attacker.example:${port}`), 421);
      assert.equal(await status(`[::ffff:127.0.0.1]:${port}`), 200);
      assert.equal(await status(`localhost:${port}`), 200);
    } finally {
      await mapped.close();
    }
  });

  it('answers 404 for an unknown API path and 405 for a known path with another method, both without a stack trace', async () => {
    const admin = await t.as('root', ['admin']);
    const unknown = await admin.get('/api/nothing-here');
    assert.deepEqual([unknown.status, unknown.body], [404, { error: 'not_found' }]);
    assert.equal((await admin.call('PUT', '/api/status', {})).status, 405);
  });

  it('names the methods a path takes in the Allow header of a 405, as HTTP requires, each once (regression: a path two routes match, /api/audit/verify and /api/audit/:seq, named GET, HEAD twice), before asking for credentials', async () => {
    for (const [method, path, allow] of [['PUT', '/api/status', 'GET, HEAD'], ['OPTIONS', '/api/session', 'POST, GET, HEAD, DELETE'], ['GET', '/api/agents/x/suspend', 'POST'], ['POST', '/api/audit/verify', 'GET, HEAD']] as const) {
      const answer = await t.anonymous().call(method, path);
      assert.deepEqual([answer.status, answer.body, answer.headers.get('allow')], [405, { error: 'method_not_allowed' }, allow], `${method} ${path}`);
    }
  });

  it('accepts the gateway token whatever the case of its Bearer scheme (RFC 9110 §11.1), and only the token', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) assert.equal((await t.anonymous().get('/api/status', { authorization: `${scheme} ${t.token}` })).status, 200, scheme);
    for (const header of [`Basic ${t.token}`, `Bearer${t.token}`, `Bearer  ${t.token}`, t.token]) assert.equal((await t.anonymous().get('/api/status', { authorization: header })).status, 401, header);
  });

  it('answers a request target that is not a path with 400 invalid_request, saying so', async () => {
    const answer = await t.anonymous().get('//');
    assert.deepEqual([answer.status, answer.body.error], [400, 'invalid_request']);
    assert.match(answer.body.message, /request target/);
  });

  it('answers hostile requests with a coded 4xx, never a crash: bad escapes, long ids, oversized and non-object bodies', async () => {
    const admin = await t.as('root', ['admin']);
    assert.equal((await admin.get('/api/approvals/%E0%A4%A')).status, 404);
    assert.equal((await admin.get(`/api/approvals/${'a'.repeat(300)}`)).status, 404);
    const big = await admin.post('/api/agents/x/suspend', { reason: 'x'.repeat(20_000) });
    assert.deepEqual([big.status, big.body.error], [400, 'invalid_request']);
    for (const body of ['[1,2]', '"text"', 'null', '{"a":']) {
      const answer = await admin.post('/api/agents/x/suspend', body);
      assert.deepEqual([answer.status, answer.body.error], [400, 'invalid_request'], body);
      assert.doesNotMatch(JSON.stringify(answer.body), /\n\s+at |\.ts:\d+/, 'no stack trace');
    }
    assert.equal((await admin.get('/api/status')).status, 200, 'still serving');
  });

  it('takes a body of exactly 16 KiB and refuses one byte more, saying so, whether its length is declared or it arrives chunked', async () => {
    const admin = await t.as('root', ['admin']);
    const sized = (bytes: number) => {
      const shell = JSON.stringify({ pad: '' });
      return JSON.stringify({ pad: 'x'.repeat(bytes - shell.length) });
    };
    assert.equal(Buffer.byteLength(sized(16 * 1024)), 16 * 1024);
    const fits = await admin.post('/api/agents/nobody/suspend', sized(16 * 1024));
    assert.deepEqual([fits.status, fits.body.code], [404, 'IDENTITY_AGENT_NOT_FOUND'], 'read, and the agent looked up');
    const over = await admin.post('/api/agents/nobody/suspend', sized(16 * 1024 + 1));
    assert.deepEqual([over.status, over.body.message], [400, 'the body is larger than 16384 bytes']);
    const chunked = new ReadableStream({
      start(controller) {
        for (const part of [sized(16 * 1024 + 1).slice(0, 9000), sized(16 * 1024 + 1).slice(9000)]) controller.enqueue(new TextEncoder().encode(part));
        controller.close();
      },
    });
    const res = await fetch(`${t.gw.httpUrl}/api/agents/nobody/suspend`, { method: 'POST', body: chunked, duplex: 'half', headers: { 'content-type': 'application/json', cookie: admin.cookie!, 'x-corral-csrf': admin.csrf! } } as RequestInit);
    assert.deepEqual([res.status, ((await res.json()) as { message: string }).message], [400, 'the body is larger than 16384 bytes']);
  });
});

