// Methods are served to one role: an operator cannot answer for a node, and a
// paired node cannot call what operators call.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { closeAdminGateway, startAdminGateway } from '../../test/harness.ts';
import { pairedNodePeer } from '../../test/node-peer.ts';

const token = randomBytes(24).toString('base64url');
const forbidden = (e: { wire?: { code?: string } }) => e.wire?.code === 'FORBIDDEN';

describe('when a peer calls a method of the other role', () => {
  it('refuses an operator node.invoke.result and a paired node node.invoke, node.pair.approve and exec.approval.resolve with FORBIDDEN', async () => {
    const state = await startAdminGateway('corral-roles-', token);
    const { gw, admin } = state;
    const node = await pairedNodePeer(gw.url, token, gw.identity, ['system.which']);
    try {
      await assert.rejects(admin.request('node.invoke.result', { id: randomUUID(), nodeId: node.device.deviceId, ok: true }), forbidden);
      await assert.rejects(node.client.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.which', params: {}, idempotencyKey: randomUUID() }), forbidden);
      await assert.rejects(node.client.request('node.pair.approve', { requestId: 'x' }), forbidden);
      await assert.rejects(node.client.request('exec.approval.resolve', { id: 'x', decision: 'allow-once' }), forbidden);
      assert.equal(node.received.length, 0);
    } finally {
      await node.close();
      await closeAdminGateway(state);
    }
  });
});
