// Four eyes for approvals relayed from a chat channel over the protocol
// (exec.approval.resolve with a reviewer of channel `slack`, `msteams`, …):
// the owner of the agent that asked, named as the channel's sender by their
// address, may deny its request but never allow it, as from the console.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Gateway, GatewayClient } from '../index.ts';

const token = randomBytes(24).toString('base64url');

describe('when the owner of the agent that asked decides from a chat channel', () => {
  let state: string;
  let gw: Gateway;
  let operator: GatewayClient;
  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'corral-four-eyes-channel-'));
    gw = await Gateway.start({ stateDir: state, token, port: 0 });
    operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
    gw.identity.agents.create({ name: 'chat-bot', process: 'payments', owner: 'owen@example.com' });
  });
  after(async () => {
    await operator?.close();
    await gw?.close();
    rmSync(state, { recursive: true, force: true });
  });
  const asks = () => gw.approvals.create({ digest: createHash('sha256').update(randomBytes(8)).digest('hex'), action: { principal: 'Agent::chat-bot', argv: ['pay', '1'], cwd: '/', env: {} }, quorum: 1 }).id;
  const owen = { channel: 'msteams', accountId: 'example.com', senderId: 'Owen@Example.com' };

  it('refuses their allow, named by their address as the sender (FORBIDDEN, nothing counted; regression: a channel prefix hid the owner, who allowed it alone)', async () => {
    const id = asks();
    await assert.rejects(operator.request('exec.approval.resolve', { id, decision: 'allow-once', reviewer: owen }), (e: { wire?: { code?: string } }) => e.wire?.code === 'FORBIDDEN');
    assert.deepEqual([gw.approvals.get(id).status, gw.approvals.get(id).approvers], ['pending', []]);
  });

  it('lets them deny it, and another sender of the channel allow it', async () => {
    const denied = (await operator.request('exec.approval.resolve', { id: asks(), decision: 'deny', reviewer: owen })) as { status: string };
    assert.equal(denied.status, 'denied');
    const allowed = (await operator.request('exec.approval.resolve', { id: asks(), decision: 'allow-once', reviewer: { ...owen, senderId: 'paula@example.com' } })) as { status: string };
    assert.equal(allowed.status, 'allowed');
  });
});
