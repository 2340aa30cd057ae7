// GET /metrics on a real gateway: who may read it (the gateway token, the
// scrape token, an admin's or auditor's session) and who may not, what the
// scrape token opens (nothing but this), and that no secret is in the text.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { GatewayClient } from '../client/client.ts';
import { startTestGateway, type TestGateway } from '../http/testing.ts';
import { parseExposition, sampleValue } from '../../test/exposition.ts';

const scrapeToken = randomBytes(24).toString('base64url');

describe('GET /metrics', () => {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway({ metricsToken: scrapeToken });
  });
  after(() => t.close());

  const scrape = (authorization?: string, method = 'GET') => fetch(`${t.gw.httpUrl}/metrics`, { method, headers: authorization ? { authorization } : {} });

  describe('without credentials, or with a wrong token', () => {
    it('answers 401 with the API’s generic body, whatever was presented', async () => {
      for (const authorization of [undefined, 'Bearer not-the-token-at-all', `Basic ${scrapeToken}`, 'Bearer ', `Bearer ${scrapeToken}x`]) {
        const res = await scrape(authorization);
        assert.equal(res.status, 401, String(authorization));
        assert.deepEqual(await res.json(), { error: 'unauthenticated' });
      }
    });
  });

  describe('with the gateway token or the scrape token', () => {
    it('answers the Prometheus text exposition, uncached, every line of it a sample or its help and type', async () => {
      for (const secret of [t.token, scrapeToken]) {
        const res = await scrape(`Bearer ${secret}`);
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
        assert.equal(res.headers.get('cache-control'), 'no-store');
        const samples = parseExposition(await res.text());
        assert.equal(sampleValue(samples, 'corral_approvals_pending'), 0);
        assert.equal(sampleValue(samples, 'corral_nodes', { state: 'paired' }), 0);
        assert.equal(sampleValue(samples, 'corral_node_invoke_decisions_total', { command: 'system.run', effect: 'allow' }), 0);
      }
    });

    it('includes the process’s own metrics under the corral_ prefix (CPU, memory, event loop lag)', async () => {
      const samples = parseExposition(await (await scrape(`Bearer ${scrapeToken}`)).text());
      for (const name of ['corral_process_cpu_user_seconds_total', 'corral_process_resident_memory_bytes', 'corral_nodejs_eventloop_lag_seconds']) assert.ok(sampleValue(samples, name) !== undefined, name);
    });

    it('answers HEAD with the headers alone, and refuses POST (405, Allow: GET, HEAD)', async () => {
      const head = await scrape(`Bearer ${scrapeToken}`, 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(await head.text(), '');
      const post = await scrape(`Bearer ${scrapeToken}`, 'POST');
      assert.equal(post.status, 405);
      assert.equal(post.headers.get('allow'), 'GET, HEAD');
    });

    it('holds neither token anywhere in its text, after refusals that presented them', async () => {
      await GatewayClient.connect({ url: t.gw.url, token: scrapeToken, role: 'operator', scopes: ['operator.read'] }).then((c) => c.close(), () => undefined);
      const res = await scrape(`Bearer ${t.token}`);
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.equal(text.includes(t.token), false);
      assert.equal(text.includes(scrapeToken), false);
    });
  });

  describe('the scrape token elsewhere', () => {
    it('is refused on the API’s routes (401): it reads the metrics and nothing else', async () => {
      for (const path of ['/api/status', '/api/approvals', '/api/audit', '/api/nodes', '/api/agents', '/api/policies']) {
        const res = await fetch(`${t.gw.httpUrl}${path}`, { headers: { authorization: `Bearer ${scrapeToken}` } });
        assert.equal(res.status, 401, path);
        assert.deepEqual(await res.json(), { error: 'unauthenticated' }, path);
      }
    });

    it('is refused as the gateway token on the protocol, and that refusal is counted by its code', async () => {
      const samplesBefore = parseExposition(await (await scrape(`Bearer ${scrapeToken}`)).text());
      const before = sampleValue(samplesBefore, 'corral_protocol_refusals_total', { event: 'refused', code: 'GATEWAY_AUTH_TOKEN_MISMATCH' }) ?? 0;
      await assert.rejects(GatewayClient.connect({ url: t.gw.url, token: scrapeToken, role: 'operator', scopes: ['operator.read'] }));
      const samples = parseExposition(await (await scrape(`Bearer ${scrapeToken}`)).text());
      assert.equal(sampleValue(samples, 'corral_protocol_refusals_total', { event: 'refused', code: 'GATEWAY_AUTH_TOKEN_MISMATCH' }), before + 1);
    });
  });

  describe('a signed-in console session', () => {
    it('may read them as an admin or an auditor (those who may read the audit log), not as an approver or a viewer (403)', async () => {
      for (const [name, role, status] of [['ada', 'admin', 200], ['aud', 'auditor', 200], ['apr', 'approver', 403], ['vic', 'viewer', 403]] as const) {
        const client = await t.as(name, [role]);
        const res = await client.get('/metrics');
        assert.equal(res.status, status, role);
      }
    });
  });
});

describe('a gateway given a scrape token shorter than 16 characters', () => {
  it('refuses to start (GATEWAY_CONFIG_INVALID)', async () => {
    const starting = startTestGateway({ metricsToken: 'short' });
    // Should it start after all, it is stopped, so that the failure is reported rather than the test file held open.
    starting.then((t) => t.close(), () => undefined);
    await assert.rejects(starting, { code: 'GATEWAY_CONFIG_INVALID' });
  });
});
