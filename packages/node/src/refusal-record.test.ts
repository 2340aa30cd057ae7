// A node serving another gateway, governed by a Corral control plane, refuses
// some runs on its own before asking (its local policy, a working directory it
// cannot use): the control plane's audit log holds those refusals too.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { GatewayError, type Connection } from '@corral/gateway';
import { auditEvents } from '../../../scripts/testing/audit-events.ts';
import { startTestGateway } from '../../gateway/test/harness.ts';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { governedNode, pairOnBoth, PRINTF_ONLY, type InvokeAnswer } from '../test/governed-node.ts';
import { NodeHost, RECEIPT_KEY_FILE, loadOrCreateDevice } from './host.ts';
import { LOCAL_POLICY_FILE } from './local-policy.ts';

const token = randomBytes(24).toString('base64url');

describe('a governed node refusing a run on its own', () => {
  it("has the refusal recorded in the control plane's audit log: its local policy's, as the mapped agent's denied run decided by the node (regression: no log held it)", async () => {
    const gw = await governedNode({ token });
    try {
      const answer = await gw.invoke({ command: ['id', '-u'], env: {}, agentId: 'main', sessionKey: 'agent:main:main' });
      assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED');
      assert.match(answer.error.message, /not on the node's allowlist/);
      const [record, ...more] = await gw.refusals(1);
      assert.ok(record, 'the refusal was recorded');
      assert.deepEqual(more, []);
      assert.deepEqual(record.actor, { kind: 'agent', id: 'invoice-bot' });
      assert.equal(record.node, gw.deviceId);
      assert.deepEqual(record.resource, { kind: 'command', id: 'id' });
      assert.equal(record.decision?.effect, 'deny');
      assert.match(record.decision?.reason ?? '', /not on the node's allowlist/);
      assert.deepEqual(record.details, { by: 'node', code: 'NODE_RUN_DENIED', rule: 'allowlist-miss', command: 'system.run', argv: ['id', '-u'], cwd: null, envKeys: [] });
      // The control plane was never asked: the node refused first.
      assert.deepEqual((await auditEvents(gw.cpState)).filter((e) => e.action === 'node.invoke.decide'), []);
    } finally {
      await gw.close();
    }
  });

  it("has a run refused because its own policy file cannot be read recorded too, as NODE_INTERNAL with a reason naming no file of the node's (regression: the control plane refused the node's word as INVALID_REQUEST, and no log held the refusal)", async () => {
    const gw = await governedNode({ token });
    try {
      writeFileSync(join(gw.nodeState, LOCAL_POLICY_FILE), '{ not json');
      const answer = await gw.invoke({ command: ['printf', 'x'], agentId: 'main' });
      assert.equal(answer.error?.code, 'UNAVAILABLE');
      const [record] = await gw.refusals(1);
      assert.ok(record, 'the refusal was recorded');
      assert.deepEqual(record.actor, { kind: 'agent', id: 'invoice-bot' });
      assert.deepEqual(record.decision, { effect: 'deny', reason: "the node's local policy cannot be read" });
      assert.deepEqual(record.details, { by: 'node', code: 'NODE_INTERNAL', command: 'system.run', argv: ['printf', 'x'], cwd: null, envKeys: [] });
      assert.ok(!JSON.stringify(record).includes(gw.nodeState), "the record names the node's state directory");
    } finally {
      await gw.close();
    }
  });

  it('has a run of an upstream agent its map does not name recorded too, as the node\'s with that name beside it, even a name a Corral agent this node serves also has or one no Corral agent could have (regression: recorded as that Corral agent\'s; refused by the control plane, unrecorded, for any other name)', async () => {
    const gw = await governedNode({ token });
    try {
      for (const [upstream, program] of [['stranger', 'printf'], ['invoice-bot', 'ls'], ['Ops_Bot', 'df']] as const) {
        const answer = await gw.invoke({ command: [program, 'x'], env: { HOME: '/root' }, agentId: upstream });
        assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED');
        assert.match(answer.error.message, /not mapped to a Corral agent/);
      }
      const records = await gw.refusals(3);
      assert.deepEqual(
        records.map((r) => [r.actor.kind, r.decision?.effect, r.details?.upstreamAgent, r.details?.agent, r.details?.argv, r.details?.envKeys]),
        [
          ['node', 'deny', 'stranger', undefined, ['printf', 'x'], ['HOME']],
          ['node', 'deny', 'invoice-bot', undefined, ['ls', 'x'], ['HOME']],
          ['node', 'deny', 'Ops_Bot', undefined, ['df', 'x'], ['HOME']],
        ],
      );
      assert.match(records[0]!.decision?.reason ?? '', /stranger is not mapped/);
    } finally {
      await gw.close();
    }
  });

  it('has a working directory it refuses recorded too, and a long argv recorded cut and marked so, never cut inside a character (regression: a lone surrogate, which the audit log refuses)', async () => {
    const gw = await governedNode({ token });
    try {
      const relative = await gw.invoke({ command: ['printf', 'x'], cwd: 'not/absolute', agentId: 'main' });
      assert.equal(relative.error?.code, 'SYSTEM_RUN_DENIED');
      const long = await gw.invoke({ command: ['id', ...Array.from({ length: 100 }, (_, i) => `arg${i}`), 'y'.repeat(5_000)], agentId: 'main' });
      assert.equal(long.error?.code, 'SYSTEM_RUN_DENIED');
      // Cut inside a surrogate pair: what is sent is still text the audit log takes.
      const split = await gw.invoke({ command: ['whoami', `${'z'.repeat(1_023)}\u{1F600}`], agentId: 'main' });
      assert.equal(split.error?.code, 'SYSTEM_RUN_DENIED');
      const records = await gw.refusals(3);
      const cwd = records.find((e) => e.resource.id === 'printf');
      assert.deepEqual([cwd?.details?.cwd, cwd?.details?.code, cwd?.decision?.reason], ['not/absolute', 'NODE_RUN_DENIED', 'cwd must be an absolute path']);
      const cut = records.find((e) => e.resource.id === 'id');
      assert.equal((cut?.details?.argv as string[]).length, 64);
      assert.equal(cut?.details?.truncated, true);
      const whole = records.find((e) => e.resource.id === 'whoami');
      assert.deepEqual(whole?.details?.argv, ['whoami', `${'z'.repeat(1_023)}\ufffd`]);
      assert.equal(whole?.details?.truncated, true);
    } finally {
      await gw.close();
    }
  });

  it('refuses without waiting for the control plane to take the record (one that never answers), and the same when none can be reached', async () => {
    const told = Promise.withResolvers<void>();
    const never = Promise.withResolvers<void>();
    const gw = await stubbedControlPlane({ version: 1, defaults: { security: 'deny', ask: 'off' } }, () => (told.resolve(), never.promise.then(() => ({ ok: true }))));
    try {
      const first = gw.invoke();
      await Promise.race([told.promise, new Promise((_, reject) => setTimeout(() => reject(new Error('the control plane was never told of the refusal')), 10_000).unref())]);
      // The node's request waits 10 s for the control plane's answer: a refusal that waited for it would come after that.
      const answer = await Promise.race([first, new Promise<'waited'>((r) => setTimeout(() => r('waited'), 8_000).unref())]);
      assert.notEqual(answer, 'waited', 'the refusal waited for the control plane');
      assert.equal((answer as InvokeAnswer).error?.code, 'SYSTEM_RUN_DENIED');
      never.resolve();
      await gw.cp.stop();
      const unreachable = await gw.invoke();
      assert.equal(unreachable.error?.code, 'SYSTEM_RUN_DENIED');
      assert.match(unreachable.error?.message ?? '', /security=deny/);
    } finally {
      never.resolve();
      await gw.close();
    }
  });

  it("sends a refusal once when the control plane answers it is past its audit budget for the node (RATE_LIMITED): it dropped that record and counted it, and a record sent again was counted again, or recorded as well as counted (regression: sent up to four times)", async () => {
    let told = 0;
    const gw = await stubbedControlPlane({ version: 1, defaults: { security: 'deny', ask: 'off' } }, () => {
      told += 1;
      throw new GatewayError('GATEWAY_RATE_LIMITED', 'too many refusals recorded for this node', { wire: { code: 'UNAVAILABLE', message: 'too many refusals recorded for this node', retryable: true, retryAfterMs: 100, details: { code: 'RATE_LIMITED' } } });
    });
    try {
      assert.equal((await gw.invoke()).error?.code, 'SYSTEM_RUN_DENIED');
      for (let i = 0; i < 100 && told === 0; i++) await new Promise((r) => setTimeout(r, 20));
      // Three more attempts, were there any, would have come 250, 500 and 750 ms apart.
      await new Promise((r) => setTimeout(r, 2_000));
      assert.equal(told, 1);
    } finally {
      await gw.close();
    }
  });

  it("tells the control plane of a run refused because its own policy file cannot be read, as NODE_INTERNAL with a reason naming no file of the node's (regression: nothing was sent, and no log held the refusal)", async () => {
    const told = Promise.withResolvers<Record<string, unknown>>();
    const gw = await stubbedControlPlane(PRINTF_ONLY, (params) => (told.resolve(params as Record<string, unknown>), { ok: true }));
    try {
      writeFileSync(join(gw.nodeState, LOCAL_POLICY_FILE), '{ not json');
      const answer = await gw.invoke();
      assert.equal(answer.error?.code, 'UNAVAILABLE');
      const sent = await Promise.race([told.promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the control plane was never told of the refusal')), 10_000).unref())]);
      assert.deepEqual(sent, { command: ['id'], cwd: null, envKeys: [], agentId: 'invoice-bot', code: 'NODE_INTERNAL', reason: "the node's local policy cannot be read" });
    } finally {
      await gw.close();
    }
  });
});

/**
 * A node governed by a control plane the test writes, whose
 * `corral.run.refused` is `refused`, serving a gateway the test writes, its
 * own policy `localPolicy`; `invoke` sends it `id` for upstream agent main.
 */
async function stubbedControlPlane(localPolicy: object, refused: (params: unknown) => unknown) {
  const cp = await startTestGateway({ token });
  cp.server.method('corral.run.refused', { role: 'node', handler: refused });
  const upstream = await startTestGateway({ token });
  const answers = new Map<string, (answer: InvokeAnswer) => void>();
  upstream.server.method('node.invoke.result', { role: 'node', handler: (params) => (answers.get((params as { id: string }).id)?.(params as InvokeAnswer), { ok: true }) });
  let node: Connection | undefined;
  upstream.server.on('ready', (connection) => {
    if (connection.peer?.role === 'node') node = connection;
  });
  const nodeState = tempDir('corral-refusal-node-');
  writeFileSync(join(nodeState, LOCAL_POLICY_FILE), JSON.stringify(localPolicy));
  const deviceId = loadOrCreateDevice(nodeState).deviceId;
  const announced = new Promise<void>((resolve) => cp.server.onPairingRequest(() => resolve()));
  const host = new NodeHost({ gateway: upstream.server.url, token, stateDir: nodeState, maxBackoffMs: 200, warmSandboxes: 0, controlPlane: { url: cp.server.url, token, agents: { main: 'invoice-bot' } }, onFailure: () => undefined });
  const close = async () => {
    await host.close();
    await upstream.stop();
    await cp.stop().catch(() => undefined);
  };
  try {
    await pairOnBoth(host, deviceId, upstream.identity, cp.identity, announced, () => node !== undefined);
  } catch (error) {
    await close();
    throw error;
  }
  const invoke = (): Promise<InvokeAnswer> =>
    new Promise((resolve) => {
      const id = randomUUID();
      answers.set(id, resolve);
      node!.event('node.invoke.request', { id, nodeId: deviceId, command: 'system.run', paramsJSON: JSON.stringify({ command: ['id'], agentId: 'main' }) });
    });
  return { cp, nodeState, invoke, close };
}

describe('a governed node refusing a run the control plane allowed', () => {
  // The node asks a human for every command: the control plane asks one, and allows the run once that human approves it.
  const asking = { version: 1, defaults: { security: 'allowlist', ask: 'always' }, agents: { '*': { allowlist: [{ pattern: 'printf' }] } } };

  it("reports its own code and reason to the control plane's audit log, and to the caller, when its policy was tightened while a human decided (regression: the report said only \"error\")", async () => {
    const gw = await governedNode({ token, localPolicy: asking });
    try {
      const answering = gw.invoke({ command: ['printf', 'x'], agentId: 'main' });
      const approval = await gw.asked();
      writeFileSync(join(gw.nodeState, LOCAL_POLICY_FILE), JSON.stringify({ version: 1, defaults: { security: 'deny' } }));
      await gw.approve(approval);
      const answer = await answering;
      const [report, ...more] = await gw.reports(1);
      assert.deepEqual(more, []);
      assert.deepEqual(report?.outcome, { status: 'failure', detail: 'NODE_RUN_DENIED: local policy denies every command (security=deny)' });
      assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED');
      assert.equal(answer.error.message, 'SYSTEM_RUN_DENIED: local policy denies every command (security=deny) [NODE_RUN_DENIED]');
    } finally {
      await gw.close();
    }
  });

  it("reports an approval receipt it does not take to the control plane's audit log, with its code and reason (regression: nothing was reported, and the run was later recorded as never reported)", async () => {
    const gw = await governedNode({ token, localPolicy: asking });
    try {
      // The node pinned another gateway's receipt key: it takes none of this control plane's receipts.
      writeFileSync(join(gw.nodeState, RECEIPT_KEY_FILE), generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString());
      const answering = gw.invoke({ command: ['printf', 'x'], agentId: 'main' });
      await gw.approve(await gw.asked());
      const answer = await answering;
      const [report] = await gw.reports(1);
      assert.equal(report?.outcome?.status, 'failure');
      assert.match(report?.outcome?.detail ?? '', /^NODE_RUN_DENIED: the approval receipt is not taken \(GATEWAY_RECEIPT_INVALID\)$/);
      assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED');
      assert.equal(answer.error.message, 'SYSTEM_RUN_DENIED: the approval receipt is not taken (GATEWAY_RECEIPT_INVALID) [NODE_RUN_DENIED]');
    } finally {
      await gw.close();
    }
  });
});
