// Approvals over the protocol: exec.approval.list serves the pending
// approvals a bounded page at a time, and the owner of the agent that asked,
// named as the reviewer, may deny its request but never allow it.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Gateway, GatewayClient } from '../src/index.ts';

const token = randomBytes(24).toString('base64url');
const KIB = 1024;

describe('approvals over the protocol, a page at a time and four eyes', () => {
  let state: string;
  let gw: Gateway;
  let operator: GatewayClient;
  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'corral-approvals-protocol-'));
    gw = await Gateway.start({ stateDir: state, token, port: 0 });
    operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
  });
  after(async () => {
    await operator.close();
    await gw.close();
    rmSync(state, { recursive: true, force: true });
  });
  const asks = (agent: string, padding = 0) => gw.approvals.create({ digest: createHash('sha256').update(randomBytes(8)).digest('hex'), action: { principal: `Agent::${agent}`, argv: ['pay', '1'], cwd: '/', env: { PADDING: 'p'.repeat(padding) } }, quorum: 1 }).id;

  it('exec.approval.list serves a bounded page, oldest first, and nextAfter leads through every pending approval once (regression: all of them in one answer, however large)', async () => {
    const made = Array.from({ length: 7 }, () => asks('lister', 700 * KIB));
    const seen: string[] = [];
    let after: number | null = null;
    do {
      const page = (await operator.request('exec.approval.list', after === null ? {} : { after })) as { approvals: Array<{ id: string; request: { env: string[] } }>; nextAfter: number | null };
      assert.ok(page.approvals.length >= 1 && page.approvals.length <= 3, `a page of ${page.approvals.length}`);
      seen.push(...page.approvals.map((a) => a.id));
      after = page.nextAfter;
    } while (after !== null);
    assert.deepEqual(seen, made);
    await assert.rejects(operator.request('exec.approval.list', { limit: 0 }), (e: { wire?: { code?: string } }) => e.wire?.code === 'INVALID_REQUEST');
    for (const id of made) await operator.request('exec.approval.resolve', { id, decision: 'deny', reviewer: { channel: 'corral', accountId: 'x', senderId: 'cleanup' } });
  });

  it('refuses the agent\'s owner named as the reviewer an allow (FORBIDDEN, GATEWAY_APPROVAL_OWN_REQUEST); they may deny, another may allow (regression: the owner allowed their own agent\'s request)', async () => {
    gw.identity.agents.create({ name: 'owned-bot', process: 'payments', owner: 'owen@example.com' });
    const id = asks('owned-bot');
    const owen = { channel: 'corral', accountId: 'example.com', senderId: 'Owen@example.com' };
    await assert.rejects(operator.request('exec.approval.resolve', { id, decision: 'allow-once', reviewer: owen }), (e: { wire?: { code?: string } }) => e.wire?.code === 'FORBIDDEN');
    assert.equal(gw.approvals.get(id).status, 'pending');
    const allowed = (await operator.request('exec.approval.resolve', { id, decision: 'allow-once', reviewer: { ...owen, senderId: 'paula@example.com' } })) as { status: string };
    assert.equal(allowed.status, 'allowed');
    const denied = (await operator.request('exec.approval.resolve', { id: asks('owned-bot'), decision: 'deny', reviewer: owen })) as { status: string };
    assert.equal(denied.status, 'denied');
  });
});
