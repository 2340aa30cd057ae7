// What an OpenTelemetry collector receives from a gateway sending traces, over
// the real wire (OTLP/HTTP JSON to a loopback receiver), for governed
// system.runs of a real Corral node in real sandboxes: one trace per
// node.invoke whose id is the `trace` of its audit records, a span for each
// step, errors with their code, and nothing of what the command carried.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { openAuditReader, toAuditRecord, type AuditEvent } from '@corral/audit';
import { NodeHost } from '@corral/node';
import { GatewayClient } from '../client/client.ts';
import { Gateway } from '../gateway.ts';
import { policyStateDirs } from '../../test/policy-state.ts';
import { otlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../../test/otlp-receiver.ts';
import { startPaired } from '../../../node/test/paired-host.ts';
import { tempDir } from '../../../../scripts/testing/temp-dir.ts';

const token = randomBytes(24).toString('base64url');
const POLICY = `
@id("echo") permit (principal, action == Action::"system.run", resource == Command::"echo");
@id("printf-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"printf");
`;
const stateDir = policyStateDirs('traces', POLICY);
/** What the command carries, in its argv and its environment's names and values: never to reach the collector. */
const MARKER = `marker${randomBytes(6).toString('hex')}`;
const API_KEY = `key-${randomBytes(9).toString('base64url')}`;

/** Every audit record of the gateway's log, oldest first. */
async function auditEvents(state: string): Promise<AuditEvent[]> {
  const reader = await openAuditReader({ stateDir: state });
  try {
    const events: AuditEvent[] = [];
    const head = await reader.store.head();
    for await (const batch of reader.store.scan(0, head.size)) for (const r of batch) events.push(toAuditRecord(r).event);
    return events;
  } finally {
    await reader.close();
  }
}

const childrenOf = (spans: ReceivedSpan[], root: ReceivedSpan) => spans.filter((s) => s.parentSpanId === root.spanId);

describe('when the gateway sends traces to a collector', () => {
  let state: string;
  let collector: OtlpReceiver;
  let gw: Gateway;
  let host: NodeHost;
  let operator: GatewayClient;
  before(async () => {
    state = stateDir();
    collector = await otlpReceiver();
    gw = await Gateway.start({ stateDir: state, token, port: 0, approvalPollMs: 20, tracing: { endpoint: collector.endpoint, headers: { 'x-api-key': API_KEY }, serviceName: 'corral-test', batchDelayMs: 50 } });
    host = new NodeHost({ gateway: gw.url, token, stateDir: tempDir('corral-traces-node-'), name: 'runner-1', maxBackoffMs: 200 });
    await startPaired(host, gw);
    operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
  });
  after(async () => {
    await operator?.close();
    await host?.close();
    await gw?.close();
    await collector?.close();
  });

  const run = (argv: string[], env?: Record<string, string>) =>
    operator.request('node.invoke', { nodeId: host.device.deviceId, command: 'system.run', params: { command: argv, ...(env ? { env } : {}) }, timeoutMs: 15_000, idempotencyKey: randomUUID() }, { timeoutMs: 20_000 }) as Promise<{ payload: { exitCode: number; stdout: string } }>;
  const rootOf = async (trace: string) => {
    await collector.until((spans) => spans.some((s) => s.traceId === trace && s.parentSpanId === ''));
    return collector.spans.find((s) => s.traceId === trace && s.parentSpanId === '')!;
  };

  it('makes one trace of an allowed run, its id the trace of the run’s audit records, with a span for each step under the node.invoke span', async () => {
    const result = await run(['echo', MARKER], { [`X_${MARKER}`]: MARKER });
    assert.equal(result.payload.exitCode, 0);
    const records = await auditEvents(state);
    const trace = records.filter((e) => e.action === 'node.invoke').at(-1)!.trace!;
    assert.match(trace, /^[0-9a-f]{32}$/);
    const decided = records.filter((e) => e.action === 'node.invoke.decide' && e.trace === trace);
    assert.equal(decided.length, 1, 'the decision record carries the same trace');
    assert.ok(JSON.stringify(decided[0]!.details).includes(MARKER), 'the run carried the marker through the governed path');
    const root = await rootOf(trace);
    assert.equal(root.name, 'node.invoke system.run');
    assert.equal(root.kind, 2, 'SERVER');
    assert.equal(root.status.code, 0);
    assert.deepEqual(root.attributes, { 'corral.command': 'system.run', 'corral.node.id': host.device.deviceId, 'corral.principal.kind': 'human', 'corral.decision.effect': 'allow', 'corral.exit_code': 0 });
    assert.equal(root.resource['service.name'], 'corral-test');
    await collector.until((spans) => childrenOf(spans, root).length === 4);
    const steps = childrenOf(collector.spans, root);
    assert.deepEqual(steps.map((s) => s.name).sort(), ['decide', 'decision_record', 'node', 'result_record']);
    for (const step of steps) {
      assert.equal(step.traceId, trace);
      assert.deepEqual(step.attributes, { 'corral.stage': step.name });
      assert.equal(step.status.code, 0);
    }
  });

  it('marks a denied run’s span an error with the denial’s code, in the trace of its decision record', async () => {
    await assert.rejects(run(['rm', '-rf', `/tmp/${MARKER}`]), (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'SYSTEM_RUN_DENIED');
    const denial = (await auditEvents(state)).filter((e) => e.action === 'node.invoke.decide' && e.decision?.effect === 'deny').at(-1)!;
    assert.match(denial.trace ?? '', /^[0-9a-f]{32}$/, 'the denied decision record carries its trace');
    const root = await rootOf(denial.trace!);
    assert.deepEqual([root.status.code, root.status.message, root.attributes['error.type'], root.attributes['corral.decision.effect']], [2, 'SYSTEM_RUN_DENIED', 'SYSTEM_RUN_DENIED', 'deny']);
    await collector.until((spans) => childrenOf(spans, root).length === 2);
    assert.deepEqual(childrenOf(collector.spans, root).map((s) => s.name).sort(), ['decide', 'decision_record']);
  });

  it('shows the wait for a human as an approval span, and the approval the run spent', async () => {
    const asked = run(['printf', 'ok']);
    let approval;
    while (!(approval = gw.approvals.list({ status: 'pending' })[0])) await new Promise((r) => setTimeout(r, 20));
    await gw.invoker.resolveApprovalWhenFree(approval.id, 'allow-once', 'alice');
    await asked;
    const request = (await auditEvents(state)).find((e) => e.action === 'approval.request' && e.resource.id === approval.id)!;
    const root = await rootOf(request.trace!);
    assert.deepEqual([root.attributes['corral.approval.id'], root.attributes['corral.decision.effect']], [approval.id, 'ask']);
    await collector.until((spans) => childrenOf(spans, root).some((s) => s.name === 'result_record'));
    assert.ok(childrenOf(collector.spans, root).some((s) => s.name === 'approval'));
  });

  it('sends nothing of what a command carries (its argv, its environment’s names and values) and no header it was given', async () => {
    await collector.until((spans) => spans.length > 0);
    const sent = collector.bodies.join('\n');
    assert.ok(sent.length > 0);
    assert.equal(sent.includes(MARKER), false);
    assert.equal(sent.includes(API_KEY), false);
    // The header went as a header, to the collector alone.
    assert.equal(collector.headers[0]!['x-api-key'], API_KEY);
  });
});
