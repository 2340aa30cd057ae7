// What /metrics shows of governed node commands on a real gateway, node and
// operator: each decision by command and effect, each step of a system.run,
// approvals, nodes and audit appends; and that a caller naming made-up
// commands cannot make a time series of each name.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { GatewayClient } from '../client/client.ts';
import { Gateway } from '../gateway.ts';
import { pairedNodePeer, type NodePeer } from '../../test/node-peer.ts';
import { policyStateDirs } from '../../test/policy-state.ts';
import { parseExposition, sampleValue, type Sample } from '../../test/exposition.ts';

const token = randomBytes(24).toString('base64url');
const POLICY = `
@id("echo") permit (principal, action == Action::"system.run", resource == Command::"echo");
@id("printf-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"printf");
`;
const stateDir = policyStateDirs('metrics', POLICY);

describe('the metrics of governed node commands', () => {
  let gw: Gateway;
  let node: NodePeer;
  let operator: GatewayClient;
  before(async () => {
    gw = await Gateway.start({ stateDir: stateDir(), token, port: 0, approvalPollMs: 20 });
    node = await pairedNodePeer(gw.url, token, gw.identity, ['system.run', 'made.up.one']);
    operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.write'] });
  });
  after(async () => {
    await operator.close();
    await node.close();
    await gw.close();
  });

  const scrape = async (): Promise<Sample[]> => {
    const res = await fetch(`${gw.httpUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    return parseExposition(await res.text());
  };
  const invoke = (command: string, argv?: string[], timeoutMs = 10_000) => operator.request('node.invoke', { nodeId: node.device.deviceId, command, ...(argv ? { params: { command: argv } } : {}), timeoutMs, idempotencyKey: randomUUID() }, { timeoutMs: timeoutMs + 5_000 });

  it('counts one allowed and one denied system.run by effect, and times each of their steps: decide twice, decision_record twice, node and result_record once', async () => {
    await invoke('system.run', ['echo', 'hi']);
    await assert.rejects(invoke('system.run', ['rm', '-rf', '/tmp/nothing-here']));
    const samples = await scrape();
    const decisions = (effect: string) => sampleValue(samples, 'corral_node_invoke_decisions_total', { command: 'system.run', effect });
    assert.deepEqual([decisions('allow'), decisions('deny'), decisions('ask')], [1, 1, 0]);
    const steps = (stage: string) => sampleValue(samples, 'corral_run_stage_duration_seconds_count', { stage });
    assert.deepEqual([steps('decide'), steps('decision_record'), steps('node'), steps('result_record')], [2, 2, 1, 1]);
    // Every step took some time, none 10 s.
    for (const stage of ['decide', 'decision_record', 'node', 'result_record']) assert.equal(sampleValue(samples, 'corral_run_stage_duration_seconds_bucket', { stage, le: '10' }), steps(stage));
    const invokes = (outcome: string) => sampleValue(samples, 'corral_node_invoke_duration_seconds_count', { command: 'system.run', outcome });
    assert.deepEqual([invokes('ok'), invokes('error')], [1, 1]);
    // Each run's decision and the allowed one's result, durable.
    assert.ok(sampleValue(samples, 'corral_audit_appends_total', { outcome: 'ok' })! >= 3);
    assert.equal(sampleValue(samples, 'corral_audit_appends_total', { outcome: 'error' }), 0);
    assert.equal(sampleValue(samples, 'corral_audit_append_duration_seconds_count'), sampleValue(samples, 'corral_audit_appends_total', { outcome: 'ok' }));
  });

  it('shows the connected, paired node and the open connections by role', async () => {
    const samples = await scrape();
    assert.equal(sampleValue(samples, 'corral_nodes_connected'), 1);
    assert.equal(sampleValue(samples, 'corral_nodes', { state: 'paired' }), 1);
    assert.equal(sampleValue(samples, 'corral_connections', { role: 'node' }), 1);
    assert.equal(sampleValue(samples, 'corral_connections', { role: 'operator' }), 1);
    assert.ok(sampleValue(samples, 'corral_connections_accepted_total', { role: 'node' })! >= 1);
  });

  it('shows an approval pending while it waits, and resolved by its decision once allowed', async () => {
    const asked = invoke('system.run', ['printf', 'ok'], 20_000);
    let approval;
    while (!(approval = gw.approvals.list({ status: 'pending' })[0])) await new Promise((r) => setTimeout(r, 20));
    let samples = await scrape();
    assert.equal(sampleValue(samples, 'corral_approvals_pending'), 1);
    assert.equal(sampleValue(samples, 'corral_node_invoke_decisions_total', { command: 'system.run', effect: 'ask' }), 1);
    await gw.invoker.resolveApprovalWhenFree(approval.id, 'allow-once', 'alice');
    await asked;
    samples = await scrape();
    assert.equal(sampleValue(samples, 'corral_approvals_pending'), 0);
    assert.equal(sampleValue(samples, 'corral_approvals_resolved_total', { decision: 'allow-once' }), 1);
    // The wait for the human on buckets of minutes and hours (regression: on the steps' 0.5 ms to 10 s, every wait past 10 s was +Inf).
    assert.equal(sampleValue(samples, 'corral_approval_wait_seconds_count'), 1);
    assert.equal(sampleValue(samples, 'corral_approval_wait_seconds_bucket', { le: '86400' }), 1);
    assert.equal(sampleValue(samples, 'corral_run_stage_duration_seconds_count', { stage: 'approval' }), undefined);
  });

  it('labels a command no rule governs `other` (a deny), whatever its name', async () => {
    await assert.rejects(invoke('made.up.one'));
    const samples = await scrape();
    assert.equal(sampleValue(samples, 'corral_node_invoke_decisions_total', { command: 'other', effect: 'deny' }), 1);
    assert.equal(samples.some((s) => Object.values(s.labels).includes('made.up.one')), false);
  });

  it('keeps the series bounded when a caller sends 10,000 made-up command names: none becomes a label', async () => {
    const series = (samples: Sample[]) => samples.filter((s) => s.name.startsWith('corral_node_invoke_')).length;
    const before = series(await scrape());
    for (let sent = 0; sent < 10_000; sent += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => assert.rejects(invoke(`made.up.${sent + i}.${randomBytes(4).toString('hex')}`))));
    }
    const samples = await scrape();
    assert.equal(samples.some((s) => Object.values(s.labels).some((v) => v.startsWith('made.up.'))), false);
    // The `other` series of the end-to-end histogram were there already (the made-up command above); nothing was added.
    assert.equal(series(samples), before);
    assert.ok(sampleValue(samples, 'corral_node_invoke_duration_seconds_count', { command: 'other', outcome: 'error' })! >= 10_000);
  });
});
