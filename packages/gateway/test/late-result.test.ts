// A paired node that answers a command only after its caller's timeout has
// passed: the command may well have run, so the log must not say it failed,
// and the node is told to stop.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { auditEvents } from '../../../scripts/testing/audit-events.ts';
import { governedGateway, refusedWith } from './governed-gateway.ts';

const SLEEP = '@id("sleep") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"sleep");';

describe("when a node answers after its caller's timeout has passed", () => {
  it('tells the node to stop, records the outcome as unknown (timeout), and records the late result (regression: recorded a failure, the node never told, and its result that it ran ignored)', async () => {
    const t = await governedGateway({ policy: SLEEP, answer: () => 'never' });
    const { node } = t;
    const cancels: unknown[] = [];
    node.client.on('node.invoke.cancel', (payload) => cancels.push(payload));
    try {
      await assert.rejects(
        t.operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['sleep', '2'] }, timeoutMs: 200, idempotencyKey: randomUUID() }),
        refusedWith('TIMEOUT'),
      );
      const id = node.received[0]!.id;
      for (const deadline = Date.now() + 2_000; cancels.length === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(cancels, [{ invokeId: id, nodeId: node.device.deviceId }]);
      assert.deepEqual(await node.client.request('node.invoke.result', { id, nodeId: node.device.deviceId, ok: true, payloadJSON: '{"exitCode":0}' }), { ok: true });
      const records = (await auditEvents(t.state)).filter((e) => e.action === 'node.invoke');
      assert.deepEqual(
        records.map((e) => [e.outcome?.status, e.outcome?.detail, (e.details as { invokeId?: string }).invokeId, (e.details as { afterTimeout?: boolean }).afterTimeout]),
        [['unknown', 'timeout', id, undefined], ['success', undefined, id, true]],
      );
    } finally {
      await t.close();
    }
  });
});
