// Requests an attacker on the loopback or the company network would send,
// each answered with a coded refusal: never a 500, never input changed on
// its way in, never an internal path in the answer.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { type ApiClient, ECHO_CASES, startTestGateway, type TestGateway } from './testing.ts';

const PERMIT = { name: 'main.cedar', text: 'permit (principal, action, resource);\n' };
/** JSON text of arrays nested `n` deep: what a structured clone (handing data to a worker thread) cannot copy past a few thousand. */
const nested = (n: number) => '['.repeat(n) + ']'.repeat(n);

describe('hostile requests to the HTTP API', () => {
  let t: TestGateway;
  let admin: ApiClient;
  const log: Array<{ event: string; code?: string }> = [];
  before(async () => {
    t = await startTestGateway({ log: (entry) => log.push(entry) });
    admin = await t.as('root', ['admin']);
  });
  after(() => t.close());

  describe('when a policy candidate holds data nested thousands deep', () => {
    it('answers validate and test with 400 invalid_policy naming entities.json (regression: 500 internal_error, the checker could not be handed the entities)', async () => {
      const files = [PERMIT, { name: 'entities.json', text: nested(10_000) }];
      for (const path of ['/api/policies/validate', '/api/policies/test']) {
        const answer = await admin.post(path, { files, cases: ECHO_CASES });
        assert.equal(answer.status, path.endsWith('validate') ? 200 : 400, path);
        assert.equal(answer.body.ok, false, path);
        assert.deepEqual(answer.body.issues.map((i: { file: string }) => i.file), ['entities.json'], path);
      }
    });

    it('answers test with 400 invalid_policy when the entities file its cases name is nested that deep (regression: 500 internal_error)', async () => {
      const files = [PERMIT, { name: 'deep.json', text: nested(10_000) }];
      const answer = await admin.post('/api/policies/test', { files, cases: `entities: deep.json\n${ECHO_CASES}` });
      assert.deepEqual([answer.status, answer.body.error, answer.body.code], [400, 'invalid_policy', 'POLICY_CASES_INVALID']);
    });

    it('logs no unexpected failure for any of them', () => {
      assert.deepEqual(log.filter((e) => e.event === 'handler-failed'), []);
    });
  });

  describe('when an auditor sends a cases text that takes the YAML parser seconds (20,000 anchors)', () => {
    it('reads it off the event loop: the gateway goes on serving meanwhile, and the cases are refused (regression: every connection stalled for the seconds it took, over a minute for a megabyte)', async () => {
      const auditor = await t.as('audrey', ['auditor']);
      const cases = Array.from({ length: 20_000 }, (_, i) => `k${i}: &a${i} [x]`).join('\n');
      // The gateway runs on this thread: the longest a timer here waited is the longest it stalled.
      const delay = monitorEventLoopDelay({ resolution: 20 });
      delay.enable();
      const answer = await auditor.post('/api/policies/test', { files: [PERMIT], cases });
      delay.disable();
      assert.deepEqual([answer.status, answer.body.error, answer.body.code], [400, 'invalid_policy', 'POLICY_CASES_INVALID']);
      const stalledMs = delay.max / 1e6;
      assert.ok(stalledMs < 2000, `the event loop stalled for ${stalledMs.toFixed(0)} ms`);
    });
  });

  describe('when a body is not UTF-8', () => {
    /** A POST with these exact bytes as its body. */
    const post = (path: string, bytes: Buffer) =>
      new Promise<{ status: number; body: any }>((resolve, reject) => {
        const url = new URL(t.gw.httpUrl);
        const req = request({ host: url.hostname, port: url.port, path, method: 'POST', headers: { 'content-type': 'application/json', cookie: admin.cookie!, 'x-corral-csrf': admin.csrf! } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString()) }));
        });
        req.on('error', reject);
        req.end(bytes);
      });

    it('refuses it with 400 invalid_request, rather than reading its bad bytes as U+FFFD and going on (regression: a reason of 0xFF 0xFE was taken as "\uFFFD\uFFFD")', async () => {
      const bytes = Buffer.concat([Buffer.from('{"reason":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
      const answer = await post('/api/agents/nobody/suspend', bytes);
      assert.deepEqual([answer.status, answer.body.error, answer.body.code], [400, 'invalid_request', 'GATEWAY_PARAMS_INVALID']);
    });

    it('refuses a lone surrogate encoded in UTF-8 (CESU-8) and an overlong encoding alike', async () => {
      for (const bad of [[0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {
        const answer = await post('/api/agents/nobody/suspend', Buffer.concat([Buffer.from('{"reason":"'), Buffer.from(bad), Buffer.from('"}')]));
        assert.deepEqual([answer.status, answer.body.code], [400, 'GATEWAY_PARAMS_INVALID'], Buffer.from(bad).toString('hex'));
      }
    });

    it('still reads well-formed UTF-8 beyond ASCII', async () => {
      const answer = await post('/api/agents/nobody/suspend', Buffer.from('{"reason":"arrêt d’urgence 🚨"}'));
      assert.deepEqual([answer.status, answer.body.code], [404, 'IDENTITY_AGENT_NOT_FOUND'], 'read, and the agent looked up');
    });
  });

  // Last: on the code before the fix, this one broke cedar-wasm on the gateway's thread for every test after it.
  describe('when an auditor replays a candidate whose entities.json holds a parent chain 8,000 long', () => {
    const chain = JSON.stringify(Array.from({ length: 8000 }, (_, i) => ({ uid: { type: 'Group', id: `g${i}` }, attrs: {}, parents: i > 0 ? [{ type: 'Group', id: `g${i - 1}` }] : [] })));
    it("refuses it as an invalid policy naming entities.json, and the gateway's own Cedar engine goes on working (regression: cedar-wasm trapped on the gateway's thread, 500, and every call into it after failed: decisions, activations, replays)", async () => {
      const auditor = await t.as('audrey', ['auditor']);
      const refused = await auditor.post('/api/policies/replay', { files: [PERMIT, { name: 'entities.json', text: chain }] });
      assert.equal(refused.status, 400, JSON.stringify(refused.body));
      assert.deepEqual([refused.body.error, refused.body.issues[0].file], ['invalid_policy', 'entities.json']);
      const next = await auditor.post('/api/policies/replay', { files: [PERMIT, { name: 'entities.json', text: '[]' }] });
      assert.equal(next.status, 200, JSON.stringify(next.body));
    });
  });
});
