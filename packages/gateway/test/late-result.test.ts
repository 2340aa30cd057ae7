// A paired node that answers a command only after its caller's timeout has
// passed: the command may well have run, so the log must not say it failed,
// and the node is told to stop.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { Gateway, GatewayClient } from '../src/index.ts';
import { auditEvents } from '../../../scripts/testing/audit-events.ts';
import { pairedNodePeer } from './node-peer.ts';
import { policyStateDirs } from './policy-state.ts';

const token = randomBytes(24).toString('base64url');
const stateDir = policyStateDirs('late', '@id("sleep") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"sleep");');

describe("when a node answers after its caller's timeout has passed", () => {
  it('tells the node to stop, records the outcome as unknown (timeout), and records the late result (regression: recorded a failure, the node never told, and its result that it ran ignored)', async () => {
    const state = stateDir();
    const gw = await Gateway.start({ stateDir: state, token, port: 0 });
    const node = await pairedNodePeer(gw.url, token, gw.identity, ['system.run'], () => 'never');
    const cancels: unknown[] = [];
    node.client.on('node.invoke.cancel', (payload) => cancels.push(payload));
    const operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
    try {
      await assert.rejects(
        operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['sleep', '2'] }, timeoutMs: 200, idempotencyKey: randomUUID() }),
        (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'TIMEOUT',
      );
      const id = node.received[0]!.id;
      for (const deadline = Date.now() + 2_000; cancels.length === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(cancels, [{ invokeId: id, nodeId: node.device.deviceId }]);
      assert.deepEqual(await node.client.request('node.invoke.result', { id, nodeId: node.device.deviceId, ok: true, payloadJSON: '{"exitCode":0}' }), { ok: true });
      const records = (await auditEvents(state)).filter((e) => e.action === 'node.invoke');
      assert.deepEqual(
        records.map((e) => [e.outcome?.status, e.outcome?.detail, (e.details as { invokeId?: string }).invokeId, (e.details as { afterTimeout?: boolean }).afterTimeout]),
        [['unknown', 'timeout', id, undefined], ['success', undefined, id, true]],
      );
    } finally {
      await operator.close();
      await node.close();
      await gw.close();
    }
  });
});
