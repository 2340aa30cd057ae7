// Faults on the governed path, at the gateway: a node that vanishes
// mid-command, a node that answers an invoke it was never sent, and a gateway
// restart while an approval is pending (the approved retry runs, with its
// signed receipt).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { Gateway, GatewayClient, type ApprovalReceipt } from '../src/index.ts';
import { auditEvents } from '../../../scripts/testing/audit-events.ts';
import { policyStateDirs } from './policy-state.ts';
import { governedGateway, refusedWith } from './governed-gateway.ts';

const POLICY = `
@id("sleep") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"sleep");
@id("printf-asks") @approval("required") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"printf");
`;
const stateDir = policyStateDirs('faults', POLICY);

const invoke = (client: GatewayClient, nodeId: string, argv: string[], timeoutMs = 10_000) => client.request('node.invoke', { nodeId, command: 'system.run', params: { command: argv }, timeoutMs, idempotencyKey: randomUUID() }, { timeoutMs: timeoutMs + 5_000 });

describe('governed path faults', () => {
  it('tells the caller NODE_DISCONNECTED when the node vanishes mid-command, and records the failure after the decision', async () => {
    const t = await governedGateway({ policy: POLICY, answer: () => 'never' });
    const { node } = t;
    try {
      const outcome = assert.rejects(t.run(['sleep', '60']), (e: { wire?: { code?: string; details?: { code?: string } } }) => e.wire?.code === 'UNAVAILABLE' && e.wire.details?.code === 'NODE_DISCONNECTED');
      while (node.received.length === 0) await new Promise((r) => setTimeout(r, 10));
      await node.client.close();
      await outcome;
      const events = (await auditEvents(t.state)).filter((e) => e.action.startsWith('node.invoke'));
      assert.deepEqual(events.map((e) => [e.action, e.decision?.effect ?? e.outcome?.status, e.outcome?.detail]), [['node.invoke.decide', 'allow', undefined], ['node.invoke', 'failure', 'GATEWAY_CONNECTION_CLOSED']]);
    } finally {
      await t.close();
    }
  });

  it('ignores a result from a node the invoke was not sent to (it cannot answer for another node)', async () => {
    const t = await governedGateway({ policy: POLICY, answer: () => 'never' });
    const { node: target } = t;
    const intruder = await t.pairNode();
    try {
      const pending = t.run(['sleep', '1'], 1_000);
      while (target.received.length === 0) await new Promise((r) => setTimeout(r, 10));
      const id = target.received[0]!.id;
      for (const nodeId of [intruder.device.deviceId, target.device.deviceId]) {
        assert.deepEqual(await intruder.client.request('node.invoke.result', { id, nodeId, ok: true, payloadJSON: '{"exitCode":0,"stdout":"forged"}' }), { ok: true, ignored: true });
      }
      await assert.rejects(pending, refusedWith('TIMEOUT'));
    } finally {
      await t.close();
    }
  });

  it('keeps a pending approval across a gateway restart; approved afterwards, the retry runs with a receipt for exactly that approval', async () => {
    const state = stateDir();
    const first = await governedGateway({ state, gateway: { approvalPollMs: 20 } });
    const { token } = first;
    const port = first.gw.server.port;
    const nodeDevice = first.node.device;
    await assert.rejects(first.run(['printf', 'restart'], 100), refusedWith('APPROVAL_PENDING'));
    await first.close();

    const gw = await Gateway.start({ stateDir: state, token, port, approvalPollMs: 20 });
    try {
      const operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
      const reconnected = await GatewayClient.connect({ url: gw.url, token, role: 'node', device: nodeDevice, commands: ['system.run'] });
      const received: Array<Record<string, unknown>> = [];
      reconnected.on('node.invoke.request', (p) => {
        const req = p as { id: string; nodeId: string; paramsJSON: string };
        received.push(JSON.parse(req.paramsJSON) as Record<string, unknown>);
        void reconnected.request('node.invoke.result', { id: req.id, nodeId: req.nodeId, ok: true, payloadJSON: '{"exitCode":0}' });
      });
      const { approvals } = (await operator.request('exec.approval.list', {})) as { approvals: Array<{ id: string }> };
      assert.equal(approvals.length, 1);
      await operator.request('exec.approval.resolve', { id: approvals[0]!.id, decision: 'allow-once', reviewer: { channel: 'corral', accountId: 'example.com', senderId: 'alice' } });
      await invoke(operator, nodeDevice.deviceId, ['printf', 'restart']);
      assert.equal((received[0]!.approvalReceipt as ApprovalReceipt).approvalId, approvals[0]!.id);
      await reconnected.close();
      await operator.close();
    } finally {
      await gw.close();
    }
  });
});
