// A governed command that failed after it was allowed has its node.invoke
// span marked an error with the code its caller got: a node's refusal, a
// node that never answered in time, a node that went away mid-command. Never
// the message, which a node writes.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { GatewayClient } from '../client/client.ts';
import { Gateway } from '../gateway.ts';
import { pairedNodePeer, type NodePeer } from '../../test/node-peer.ts';
import { policyStateDirs } from '../../test/policy-state.ts';
import { otlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../../test/otlp-receiver.ts';

const token = randomBytes(24).toString('base64url');
const stateDir = policyStateDirs('failed-run-traces', '@id("echo") permit (principal, action == Action::"system.run", resource == Command::"echo");\n');
const NODE_SAYS = `node-message-${randomBytes(6).toString('hex')}`;

describe('when an allowed command fails at its node', () => {
  let collector: OtlpReceiver;
  let gw: Gateway;
  let node: NodePeer;
  let operator: GatewayClient;
  before(async () => {
    collector = await otlpReceiver();
    gw = await Gateway.start({ stateDir: stateDir(), token, port: 0, tracing: { endpoint: collector.endpoint, headers: {}, serviceName: 'corral-test', batchDelayMs: 50 } });
    node = await pairedNodePeer(gw.url, token, gw.identity, ['system.run'], (invoke) => {
      const word = (invoke.params.command as string[])[1];
      if (word === 'refused') return { ok: false, error: { code: 'SYSTEM_RUN_FAILED', message: NODE_SAYS } };
      return word === 'hangs' ? 'never' : { ok: true, payload: { exitCode: 0 } };
    });
    operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.write'] });
  });
  after(async () => {
    await operator?.close();
    await node?.close();
    await gw?.close();
    await collector?.close();
  });

  const run = (to: NodePeer, word: string, timeoutMs = 5_000) => operator.request('node.invoke', { nodeId: to.device.deviceId, command: 'system.run', params: { command: ['echo', word] }, timeoutMs, idempotencyKey: randomUUID() }, { timeoutMs: timeoutMs + 5_000 });
  /** The status of the one root span that is an error, once it came, beside those before. */
  const nextErrorRoot = async (seen: number): Promise<ReceivedSpan> => {
    const roots = () => collector.spans.filter((s) => s.parentSpanId === '' && s.status.code === 2);
    await collector.until(() => roots().length > seen);
    return roots()[seen]!;
  };

  it('marks the span of a run its node refused with the node’s code, not its message', async () => {
    await assert.rejects(run(node, 'refused'));
    const root = await nextErrorRoot(0);
    assert.deepEqual([root.status.message, root.attributes['error.type']], ['SYSTEM_RUN_FAILED', 'SYSTEM_RUN_FAILED']);
    assert.equal(collector.bodies.join('').includes(NODE_SAYS), false);
  });

  it('marks the span of a run its node never answered in time TIMEOUT, its node step too', async () => {
    await assert.rejects(run(node, 'hangs', 200));
    const root = await nextErrorRoot(1);
    assert.equal(root.status.message, 'TIMEOUT');
    await collector.until((spans) => spans.some((s) => s.parentSpanId === root.spanId && s.name === 'node'));
    assert.equal(collector.spans.find((s) => s.parentSpanId === root.spanId && s.name === 'node')!.status.message, 'TIMEOUT');
  });

  it('marks the span of a run whose node went away mid-command NODE_DISCONNECTED', async () => {
    const leaving = await pairedNodePeer(gw.url, token, gw.identity, ['system.run'], () => 'never');
    const asked = run(leaving, 'hangs');
    while (leaving.received.length === 0) await new Promise((r) => setTimeout(r, 10));
    await leaving.close();
    await assert.rejects(asked);
    const root = await nextErrorRoot(2);
    assert.equal(root.status.message, 'NODE_DISCONNECTED');
  });
});
