// A run Corral allowed whose node asks a human for it is sent again once a
// human approved it: a request of its own, in the same trace. Its records
// and its spans say one command, whichever of the two runs they are of.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { openAuditReader, toAuditRecord, type AuditEvent } from '@corral/audit';
import { GatewayClient } from '../client/client.ts';
import { Gateway } from '../gateway.ts';
import { pairedNodePeer, type NodePeer } from '../../test/node-peer.ts';
import { policyStateDirs } from '../../test/policy-state.ts';
import { otlpReceiver, type OtlpReceiver } from '../../test/otlp-receiver.ts';

const token = randomBytes(24).toString('base64url');
const stateDir = policyStateDirs('node-asks-trace', '@id("echo") permit (principal, action == Action::"system.run", resource == Command::"echo");\n');

describe('when a node asks a human for a run Corral allowed, and it is sent again once approved', () => {
  let state: string;
  let collector: OtlpReceiver;
  let gw: Gateway;
  let node: NodePeer;
  let operator: GatewayClient;
  before(async () => {
    state = stateDir();
    collector = await otlpReceiver();
    gw = await Gateway.start({ stateDir: state, token, port: 0, approvalPollMs: 20, tracing: { endpoint: collector.endpoint, headers: {}, serviceName: 'corral-test', batchDelayMs: 50 } });
    // The node's own policy asks a human for the first run; the second comes with the approval's receipt.
    node = await pairedNodePeer(gw.url, token, gw.identity, ['system.run'], (invoke) =>
      invoke.params.approvalReceipt === undefined ? { ok: false, error: { code: 'SYSTEM_RUN_DENIED', message: 'SYSTEM_RUN_DENIED: approval required (ask=always)' } } : { ok: true, payload: { exitCode: 0 } },
    );
    operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.write'] });
  });
  after(async () => {
    await operator?.close();
    await node?.close();
    await gw?.close();
    await collector?.close();
  });

  it('carries one trace in every record of both runs, the first request’s id, and in every span of the command', async () => {
    const asked = operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['echo', 'hi'] }, timeoutMs: 10_000, idempotencyKey: randomUUID() }, { timeoutMs: 15_000 });
    let approval;
    while (!(approval = gw.approvals.list({ status: 'pending' })[0])) await new Promise((r) => setTimeout(r, 20));
    await gw.invoker.resolveApprovalWhenFree(approval.id, 'allow-once', 'alice');
    await asked;
    assert.equal(node.received.length, 2, 'sent twice, as two requests');
    assert.notEqual(node.received[0]!.id, node.received[1]!.id);
    const trace = node.received[0]!.id.replaceAll('-', '');

    const reader = await openAuditReader({ stateDir: state });
    const events: AuditEvent[] = [];
    try {
      for await (const batch of reader.store.scan(0, (await reader.store.head()).size)) for (const r of batch) events.push(toAuditRecord(r).event);
    } finally {
      await reader.close();
    }
    const ofCommand = events.filter((e) => e.action.startsWith('node.invoke') || e.action === 'approval.request');
    // The allow, the first result (the node asked), the ask, the approval asked for, the second result.
    assert.deepEqual(ofCommand.map((e) => e.action), ['node.invoke.decide', 'node.invoke', 'node.invoke.decide', 'approval.request', 'node.invoke']);
    assert.deepEqual(ofCommand.map((e) => e.trace), Array(5).fill(trace));

    await collector.until((spans) => spans.some((s) => s.parentSpanId === '') && spans.filter((s) => s.name === 'result_record').length === 2);
    assert.deepEqual([...new Set(collector.spans.map((s) => s.traceId))], [trace], 'one trace: the records’');
    const roots = collector.spans.filter((s) => s.parentSpanId === '');
    assert.equal(roots.length, 1);
    assert.ok(collector.spans.filter((s) => s !== roots[0]).every((s) => s.parentSpanId === roots[0]!.spanId));
    assert.equal(collector.spans.filter((s) => s.name === 'node').length, 2);
  });
});
