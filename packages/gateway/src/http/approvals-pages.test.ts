// The approvals inbox a page at a time: pending approvals can each carry up
// to 256 KiB (argv, cwd, environment), so a page is bounded by count and by
// bytes, with a cursor to the next, and shows each environment value by its
// fingerprint only.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startTestGateway, type ApiClient, type TestGateway } from './testing.ts';

const KIB = 1024;

describe('the pending approvals inbox', () => {
  let t: TestGateway;
  let approver: ApiClient;
  let made: string[];
  before(async () => {
    t = await startTestGateway();
    approver = await t.as('pia', ['approver']);
    const big = (n: number) => t.gw.approvals.create({ digest: createHash('sha256').update(`big ${n}`).digest('hex'), action: { principal: 'Agent::bot', argv: ['deploy', String(n)], cwd: '/srv', env: { DEPLOY_TOKEN: `secret-${n}`, PADDING: 'x'.repeat(600 * KIB) } }, quorum: 1 });
    made = Array.from({ length: 8 }, (_, n) => big(n).id);
  });
  after(() => t.close());

  it('is served a bounded page at a time, oldest first, and nextAfter leads through every pending approval exactly once (regression: every pending approval in one answer, however large)', async () => {
    const seen: string[] = [];
    let query = '?status=pending&limit=1000';
    for (;;) {
      const page = await approver.get(`/api/approvals${query}`);
      assert.equal(page.status, 200);
      assert.ok(page.body.approvals.length >= 1 && page.body.approvals.length <= 4, `a page of ${page.body.approvals.length}`);
      seen.push(...page.body.approvals.map((a: { id: string }) => a.id));
      if (page.body.nextAfter === null) break;
      query = `?status=pending&limit=1000&after=${page.body.nextAfter}`;
    }
    assert.deepEqual(seen, made);
    const two = await approver.get('/api/approvals?limit=2');
    assert.deepEqual(two.body.approvals.map((a: { id: string }) => a.id), made.slice(0, 2));
    for (const bad of ['limit=0', 'limit=1001', 'limit=x', 'after=-1', 'after=x']) assert.equal((await approver.get(`/api/approvals?status=pending&${bad}`)).status, 400, bad);
  });

  it('shows each environment value by its SHA-256 prefix and length, never the value', async () => {
    const page = await approver.get('/api/approvals?limit=2');
    const [first, second] = page.body.approvals as Array<{ action: { env: string[]; envValues: Array<{ name: string; sha256: string; bytes: number }> } }>;
    assert.deepEqual(first!.action.env, ['DEPLOY_TOKEN', 'PADDING']);
    assert.deepEqual(first!.action.envValues.map((v) => [v.name, v.bytes]), [['DEPLOY_TOKEN', 8], ['PADDING', 600 * KIB]]);
    assert.notEqual(first!.action.envValues[0]!.sha256, second!.action.envValues[0]!.sha256, 'two requests told apart');
    assert.doesNotMatch(JSON.stringify(page.body), /secret-|xxxx/);
  });
});
