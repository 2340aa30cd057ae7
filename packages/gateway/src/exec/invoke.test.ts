// The governed path against hostile peers on the protocol: a paired node
// (malicious or compromised) calling Corral's node methods
// (`corral.run.authorize`, `corral.run.report`), and callers that would
// hold more of the gateway than their own runs need.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuditEventInput } from '@corral/audit';
import { Identity } from '@corral/identity';
import { DecisionPoint } from '@corral/policy';
import { ApprovalStore, Gateway, GatewayClient, GatewayServer, INVOKE_RELEASE_EVENT, NodeInventory, NodeInvoker, OpenRuns, RECEIPT_VALIDITY_MS, ReceiptSigner, SurfaceStore, openGatewayDb, type ApprovalReceipt, type GatewayServerOptions } from '../index.ts';
import { MAX_OPEN_RUNS, MAX_PENDING_APPROVALS, type InvokerOptions } from './invoke.ts';
import { MAX_AGENT_CONNECTIONS } from '../server/server.ts';
import { auditEvents } from '../../../../scripts/testing/audit-events.ts';
import { pairedNodePeer, type NodePeer } from '../../test/node-peer.ts';
import { policyStateDirs } from '../../test/policy-state.ts';

const token = randomBytes(24).toString('base64url');
const POLICY = `
@id("echo") permit (principal, action == Action::"system.run", resource == Command::"echo");
@id("printf-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"printf");
`;
const stateDir = policyStateDirs('invoke', POLICY);
const refusedWith = (code: string) => (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === code;

type Authorized = { decision: string; runId: string; digest: string; approvalId?: string; approvalReceipt?: ApprovalReceipt };
const authorize = (node: NodePeer, argv: string[], extra: Record<string, unknown> = {}) =>
  node.client.request('corral.run.authorize', { command: 'system.run', params: { command: argv }, timeoutMs: 10_000, ...extra }, { timeoutMs: 15_000 }) as Promise<Authorized>;

describe('a paired node calling corral.run.authorize and corral.run.report', () => {
  let state: string;
  let gw: Gateway;
  let node: NodePeer;
  let other: NodePeer;
  before(async () => {
    state = stateDir();
    gw = await Gateway.start({ stateDir: state, token, port: 0, approvalPollMs: 20 });
    node = await pairedNodePeer(gw.url, token, gw.identity, ['system.run']);
    other = await pairedNodePeer(gw.url, token, gw.identity, ['system.run']);
  });
  after(async () => {
    await node.close();
    await other.close();
    await gw.close();
  });

  /** An approval of `argv` for `asker`, allowed by alice and spent on its run: its id and receipt. */
  async function approvedRun(asker: NodePeer, argv: string[]): Promise<Authorized> {
    await assert.rejects(authorize(asker, argv, { timeoutMs: 50 }), refusedWith('APPROVAL_PENDING'));
    const approval = gw.approvals.list({ status: 'pending' }).find((a) => a.action.nodeId === asker.device.deviceId && JSON.stringify(a.action.argv) === JSON.stringify(argv));
    await gw.invoker.resolveApprovalWhenFree(approval!.id, 'allow-once', 'alice');
    return authorize(asker, argv);
  }

  it('records a report only of a run this gateway authorized for this node, once: another node’s run, an unknown or a spent run id is refused and recorded as refused (regression: any report was recorded as a run, approval claims included)', async () => {
    const theirs = await approvedRun(other, ['printf', 'theirs']);
    const before = (await auditEvents(state)).length;
    const refused = (e: { wire?: { code?: string } }) => e.wire?.code === 'INVALID_REQUEST';
    await assert.rejects(node.client.request('corral.run.report', { runId: theirs.runId, ok: true, exitCode: 0, approvalId: theirs.approvalId, approvalReceipt: theirs.approvalReceipt }), refused);
    await assert.rejects(node.client.request('corral.run.report', { runId: randomUUID(), ok: true, exitCode: 0 }), refused);
    await assert.rejects(node.client.request('corral.run.report', { digest: theirs.digest, ok: true, exitCode: 0 }), refused);
    await other.client.request('corral.run.report', { runId: theirs.runId, ok: true, exitCode: 0 });
    await assert.rejects(other.client.request('corral.run.report', { runId: theirs.runId, ok: true, exitCode: 0 }), refused);
    const events = (await auditEvents(state)).slice(before);
    assert.deepEqual(events.map((e) => [e.action, e.actor.id === node.device.deviceId ? 'node' : 'other']), [
      ['node.report.refused', 'node'],
      ['node.report.refused', 'node'],
      ['node.report.refused', 'node'],
      ['node.invoke', 'other'],
      ['node.report.refused', 'other'],
    ]);
  });

  it('records a reported run with the approval this gateway gave it, and the receipt it signed, whatever the report says', async () => {
    const mine = await approvedRun(node, ['printf', 'mine']);
    await node.client.request('corral.run.report', { runId: mine.runId, ok: true, exitCode: 0, approvalId: 'made-up' });
    const report = (await auditEvents(state)).filter((e) => e.action === 'node.invoke' && e.actor.id === node.device.deviceId).at(-1);
    assert.equal(report?.decision?.approval, mine.approvalId);
    assert.deepEqual([(report?.details as { runId?: string }).runId, (report?.details as { approvalReceipt?: ApprovalReceipt }).approvalReceipt?.approvalId], [mine.runId, mine.approvalId]);
  });

  it('answers an approved run with a receipt for that runId alone, valid a minute, and records that same receipt', async () => {
    const mine = await approvedRun(node, ['printf', 'bound']);
    const receipt = mine.approvalReceipt!;
    assert.deepEqual([receipt.v, receipt.runId, receipt.expiresAtMs - receipt.issuedAtMs], [2, mine.runId, RECEIPT_VALIDITY_MS]);
    await node.client.request('corral.run.report', { runId: mine.runId, ok: true, exitCode: 0 });
    const report = (await auditEvents(state)).filter((e) => e.action === 'node.invoke' && (e.details as { runId?: string }).runId === mine.runId);
    assert.deepEqual(report.map((e) => (e.details as { approvalReceipt?: ApprovalReceipt }).approvalReceipt?.signature), [receipt.signature]);
  });

  it(`keeps at most ${MAX_OPEN_RUNS} runs of a node waiting for their report: the oldest is then recorded as not reported, its outcome unknown (regression: recorded as a failed run), and its late report refused`, async () => {
    const quiet = await pairedNodePeer(gw.url, token, gw.identity, ['system.run']);
    try {
      const runs: Authorized[] = [];
      for (let i = 0; i <= MAX_OPEN_RUNS; i++) runs.push(await authorize(quiet, ['echo', `quiet-${i}`]));
      const lost = (await auditEvents(state)).filter((e) => e.actor.kind === 'service' && e.outcome?.detail === 'not-reported');
      assert.deepEqual(lost.map((e) => [(e.details as { runId?: string }).runId, e.outcome?.status]), [[runs[0]!.runId, 'unknown']]);
      await assert.rejects(quiet.client.request('corral.run.report', { runId: runs[0]!.runId, ok: true, exitCode: 0 }), (e: { wire?: { code?: string } }) => e.wire?.code === 'INVALID_REQUEST');
      await quiet.client.request('corral.run.report', { runId: runs[1]!.runId, ok: true, exitCode: 0 });
    } finally {
      await quiet.close();
    }
  });

  it('cuts off a node unpaired while connected (`corral nodes revoke` from another process): NOT_PAIRED, closed 1008, nothing decided; its runs waiting for a report are recorded as not reported', async () => {
    const revoked = await pairedNodePeer(gw.url, token, gw.identity, ['system.run']);
    const earlier = await authorize(revoked, ['echo', 'before']);
    assert.equal(earlier.decision, 'allow');
    gw.identity.nodes.revoke(revoked.device.deviceId);
    const before = (await auditEvents(state)).length;
    await assert.rejects(authorize(revoked, ['echo', 'after']), (e: { wire?: { code?: string } }) => e.wire?.code === 'NOT_PAIRED');
    assert.equal((await revoked.client.closed).code, 1008);
    const since = (await auditEvents(state)).slice(before);
    assert.deepEqual(since.map((e) => [e.action, e.actor.kind, e.outcome?.status, e.outcome?.detail, (e.details as { runId?: string; because?: string }).runId, (e.details as { because?: string }).because]), [
      ['node.invoke', 'service', 'unknown', 'not-reported', earlier.runId, 'its node was unpaired'],
    ]);
  });

  it('records the refusal of a command whose words the decision cuts inside an emoji (regression: the reason held half a character, the audit log refused the record, and the refusal went unrecorded)', async () => {
    for (const argv of [['sh', '-o', `${'x'.repeat(39)}\u{1F600}`], ['git', '-c', `${'x'.repeat(59)}\u{1F600}=1`, 'status']]) {
      const before = (await auditEvents(state)).length;
      await assert.rejects(authorize(node, argv), refusedWith('SYSTEM_RUN_DENIED'));
      const records = (await auditEvents(state)).slice(before).filter((e) => e.action === 'node.invoke.decide');
      assert.deepEqual(records.map((e) => e.decision?.effect), ['deny'], JSON.stringify(argv));
      assert.ok(records[0]!.decision!.reason!.isWellFormed());
    }
  });

  it('refuses a command, cwd or env value holding a lone surrogate as INVALID_REQUEST saying what to send (regression: "internal error", retryable)', async () => {
    for (const [params, what] of [[{ command: ['echo', 'lone \ud800'] }, 'an argument'], [{ command: ['echo'], cwd: '/tmp/\udc00' }, 'cwd'], [{ command: ['echo'], env: { A: '\ud800' } }, 'env A']] as const) {
      await assert.rejects(node.client.request('corral.run.authorize', { command: 'system.run', params, timeoutMs: 10_000 }), (e: { wire?: { code?: string; message?: string } }) => e.wire?.code === 'INVALID_REQUEST' && e.wire.message!.includes(`${what} holds a lone UTF-16 surrogate`));
    }
  });

  it("records a report's error cut whole characters at a time (regression: cut inside a surrogate pair, the audit log refused it, and the run was later recorded as not reported)", async () => {
    const run = await authorize(node, ['echo', 'reported-with-an-emoji']);
    await node.client.request('corral.run.report', { runId: run.runId, ok: false, error: `${'x'.repeat(199)}\u{1F600}` });
    const [report] = (await auditEvents(state)).filter((e) => e.action === 'node.invoke' && (e.details as { runId?: string }).runId === run.runId);
    assert.deepEqual([report?.actor.kind, report?.outcome?.status, report?.outcome?.detail], ['node', 'failure', 'x'.repeat(199)]);
  });

  it('decides for an agent only when an operator lets this node ask for it (`corral nodes agents`): any other claim is denied, unhelpfully to the node, and recorded as the node\'s with the reason (regression: a paired node could ask as any active agent)', async () => {
    const billing = gw.identity.agents.create({ name: 'billing-bot', process: 'billing', owner: 'owner@example.com' });
    gw.identity.agents.create({ name: 'payroll-bot', process: 'payroll', owner: 'owner@example.com' });
    gw.identity.agents.create({ name: 'old-bot', process: 'old', owner: 'owner@example.com' });
    gw.identity.nodes.setAgents(node.device.deviceId, gw.identity.agents.idsOf(['billing-bot', 'old-bot']));
    gw.identity.agents.suspend('old-bot');
    const before = (await auditEvents(state)).length;
    const allowed = await authorize(node, ['echo', 'as-billing'], { agentId: 'billing-bot' });
    assert.equal(allowed.decision, 'allow');
    const claims = [['payroll-bot', node], ['ghost', node], ['old-bot', node], ['billing-bot', other]] as const;
    for (const [agentId, asker] of claims) {
      await assert.rejects(authorize(asker, ['echo', `as-${agentId}`], { agentId }), (e: { wire?: { details?: { code?: string; reason?: string } } }) => e.wire?.details?.code === 'SYSTEM_RUN_DENIED' && /not one this node may ask for/.test(e.wire.details.reason ?? ''));
    }
    const since = (await auditEvents(state)).slice(before);
    const decision = since.find((e) => e.action === 'node.invoke.decide' && e.decision?.effect === 'allow');
    assert.deepEqual(decision?.actor, { kind: 'agent', id: 'billing-bot' });
    const refused = since.filter((e) => e.decision?.effect === 'deny');
    assert.deepEqual(
      refused.map((e) => [e.action, e.actor.kind, e.actor.id === node.device.deviceId ? 'node' : 'other', e.resource, e.decision?.reason, e.details]),
      [
        ['node.claim.refused', 'node', 'node', { kind: 'agent', id: 'payroll-bot' }, 'agent-not-granted', { by: 'gateway', command: 'system.run', agentGranted: false }],
        ['node.claim.refused', 'node', 'node', { kind: 'agent', id: 'ghost' }, 'agent-unknown', { by: 'gateway', command: 'system.run', agentKnown: false }],
        ['node.claim.refused', 'node', 'node', { kind: 'agent', id: 'old-bot' }, 'agent-suspended', { by: 'gateway', command: 'system.run', agentStatus: 'suspended' }],
        ['node.claim.refused', 'node', 'other', { kind: 'agent', id: 'billing-bot' }, 'agent-not-granted', { by: 'gateway', command: 'system.run', agentGranted: false }],
      ],
    );
    // Taken back: the node may ask for it no more.
    gw.identity.nodes.setAgents(node.device.deviceId, []);
    await assert.rejects(authorize(node, ['echo', 'as-billing-again'], { agentId: billing.name }), (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'SYSTEM_RUN_DENIED');
  });

  it('opens no run to report for a system.run.prepare: it runs nothing', async () => {
    const answer = (await node.client.request('corral.run.authorize', { command: 'system.run.prepare', params: { command: ['echo', 'plan'] }, timeoutMs: 10_000 }, { timeoutMs: 15_000 })) as Authorized;
    assert.deepEqual([answer.decision, answer.runId], ['allow', undefined]);
  });

  it('writes no record of containers stopped from a node unpaired while connected', async () => {
    const revoked = await pairedNodePeer(gw.url, token, gw.identity, ['system.run']);
    gw.identity.nodes.revoke(revoked.device.deviceId);
    const before = (await auditEvents(state)).length;
    await assert.rejects(revoked.client.request('corral.agent.stopped', { agentId: 'someone', runIds: ['r1'] }), (e: { wire?: { code?: string } }) => e.wire?.code === 'NOT_PAIRED');
    assert.equal((await auditEvents(state)).length, before);
  });
});

describe('runs waiting for their report, kept in the state directory', () => {
  const reportOf = (events: AuditEventInput[], runId: string) => events.filter((e) => e.action === 'node.invoke' && (e.details as { runId?: string }).runId === runId).map((e) => [e.actor.kind, e.outcome?.status, e.outcome?.detail]);

  it('records the report of a run authorized before the gateway restarted as run (regression: refused as unknown, the run never recorded)', async () => {
    const state = stateDir();
    const first = await Gateway.start({ stateDir: state, token, port: 0 });
    const node = await pairedNodePeer(first.url, token, first.identity, ['system.run']);
    const run = await authorize(node, ['echo', 'across-a-restart']);
    await node.close();
    await first.close();
    const second = await Gateway.start({ stateDir: state, token, port: 0 });
    const again = await GatewayClient.connect({ url: second.url, token, role: 'node', device: node.device, client: { displayName: 'same-node' }, commands: ['system.run'] });
    try {
      await again.request('corral.run.report', { runId: run.runId, ok: true, exitCode: 0 });
      await assert.rejects(again.request('corral.run.report', { runId: run.runId, ok: true, exitCode: 0 }), (e: { wire?: { code?: string } }) => e.wire?.code === 'INVALID_REQUEST');
    } finally {
      await again.close();
      await second.close();
    }
    assert.deepEqual(reportOf(await auditEvents(state), run.runId), [['node', 'success', undefined]]);
  });

  it('cuts off a node unpaired by another process within seconds, without waiting for it to act, and records its runs waiting for a report as not reported', async () => {
    const state = stateDir();
    const gw = await Gateway.start({ stateDir: state, token, port: 0 });
    const node = await pairedNodePeer(gw.url, token, gw.identity, ['system.run']);
    try {
      const run = await authorize(node, ['echo', 'then-revoked']);
      const cli = Identity.open(state);
      cli.nodes.revoke(node.device.deviceId);
      cli.close();
      const revokedAt = performance.now();
      assert.equal((await node.client.closed).code, 1008);
      assert.ok(performance.now() - revokedAt < 5000, 'closed by the sweep, every 2 s');
      await gw.sweepUnpaired();
      assert.deepEqual(reportOf(await auditEvents(state), run.runId), [['service', 'unknown', 'not-reported']]);
    } finally {
      await node.close();
      await gw.close();
    }
  });

  it('sweeps again after a sweep that failed at once (regression: that sweep stayed "under way" and no later one ran)', async () => {
    const state = stateDir();
    const gw = await Gateway.start({ stateDir: state, token, port: 0 });
    const node = await pairedNodePeer(gw.url, token, gw.identity, ['system.run']);
    try {
      const cutOff = gw.inventory.cutOffUnpaired.bind(gw.inventory);
      gw.inventory.cutOffUnpaired = () => {
        throw new Error('the identity store is busy');
      };
      await gw.sweepUnpaired();
      gw.inventory.cutOffUnpaired = cutOff;
      const cli = Identity.open(state);
      cli.nodes.revoke(node.device.deviceId);
      cli.close();
      await gw.sweepUnpaired();
      assert.equal(await Promise.race([node.client.closed.then((c) => c.code), new Promise((resolve) => setTimeout(resolve, 5000, 'still open'))]), 1008);
    } finally {
      await node.close();
      await gw.close();
    }
  });

  it('records the runs of a node unpaired while the gateway was stopped as not reported when it starts', async () => {
    const state = stateDir();
    const first = await Gateway.start({ stateDir: state, token, port: 0 });
    const node = await pairedNodePeer(first.url, token, first.identity, ['system.run']);
    const run = await authorize(node, ['echo', 'revoked-while-stopped']);
    await node.close();
    await first.close();
    const cli = Identity.open(state);
    cli.nodes.revoke(node.device.deviceId);
    cli.close();
    const second = await Gateway.start({ stateDir: state, token, port: 0 });
    await second.close();
    assert.deepEqual(reportOf(await auditEvents(state), run.runId), [['service', 'unknown', 'not-reported']]);
  });
});

describe('when one requester keeps asking for approvals it is not waiting for', () => {
  it(`keeps at most ${MAX_PENDING_APPROVALS} pending for one principal on one node: the next ask is refused, retryable, and no approver is asked (regression: unbounded)`, async () => {
    const gw = await Gateway.start({ stateDir: stateDir(), token, port: 0, approvalPollMs: 20 });
    const flooder = await pairedNodePeer(gw.url, token, gw.identity, ['system.run']);
    const bystander = await pairedNodePeer(gw.url, token, gw.identity, ['system.run']);
    const ask = (node: NodePeer, i: number) => authorize(node, ['echo', `flood-${i}`], { askHuman: 'approval required', timeoutMs: 20 });
    try {
      const asked = await Promise.allSettled(Array.from({ length: MAX_PENDING_APPROVALS }, (_, i) => ask(flooder, i)));
      assert.ok(asked.every((a) => a.status === 'rejected' && refusedWith('APPROVAL_PENDING')(a.reason)));
      await assert.rejects(ask(flooder, MAX_PENDING_APPROVALS), (e: { wire?: { code?: string; retryable?: boolean; details?: { code?: string } } }) => e.wire?.code === 'UNAVAILABLE' && e.wire.retryable === true && e.wire.details?.code === 'APPROVALS_PENDING_LIMIT');
      assert.equal(gw.approvals.list({ status: 'pending' }).length, MAX_PENDING_APPROVALS);
      // The same action again waits on its open approval; another node asks on its own account; a resolved one makes room.
      await assert.rejects(ask(flooder, 0), refusedWith('APPROVAL_PENDING'));
      await assert.rejects(ask(bystander, 0), refusedWith('APPROVAL_PENDING'));
      await gw.invoker.resolveApprovalWhenFree(gw.approvals.list({ status: 'pending' })[0]!.id, 'deny', 'alice');
      await assert.rejects(ask(flooder, MAX_PENDING_APPROVALS), refusedWith('APPROVAL_PENDING'));
    } finally {
      await flooder.close();
      await bystander.close();
      await gw.close();
    }
  });
});

describe('when the caller of an asking command disconnects while it waits, and retries on a new connection', () => {
  it('runs the approved command for the retry, once, and never for the caller that left (regression: the abandoned wait spent the approval; the retry was denied)', async () => {
    const gw = await Gateway.start({ stateDir: stateDir(), token, port: 0, approvalPollMs: 20 });
    const node = await pairedNodePeer(gw.url, token, gw.identity, ['system.run'], () => ({ ok: true, payload: { exitCode: 0 } }));
    const connect = () => GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.write'] });
    const invoke = (client: GatewayClient) => client.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['printf', 'retried'] }, timeoutMs: 10_000, idempotencyKey: randomUUID() }, { timeoutMs: 15_000 });
    const first = await connect();
    const second = await connect();
    try {
      const abandoned = invoke(first).catch(() => 'closed');
      while (gw.approvals.list({ status: 'pending' }).length === 0) await new Promise((r) => setTimeout(r, 10));
      await first.close();
      assert.equal(await abandoned, 'closed');
      const retried = invoke(second);
      await new Promise((r) => setTimeout(r, 100));
      await gw.invoker.resolveApprovalWhenFree(gw.approvals.list({ status: 'pending' })[0]!.id, 'allow-once', 'alice');
      assert.equal(((await retried) as { ok: boolean }).ok, true);
      assert.equal(node.received.length, 1);
    } finally {
      await second.close();
      await node.close();
      await gw.close();
    }
  });
});

/** A gateway over `state` whose audit log refuses the appends `refusing.when` picks; the events it kept. */
async function refusingLogGateway(state: string, serverOptions: Partial<GatewayServerOptions> = {}, invokerOptions: Partial<InvokerOptions> = {}): Promise<{ server: GatewayServer; identity: Identity; events: AuditEventInput[]; refusing: { when?: (event: AuditEventInput) => boolean }; holding: { when?: (event: AuditEventInput) => Promise<void> | undefined }; close(): Promise<void> }> {
  const identity = Identity.open(state);
  const db = openGatewayDb(state);
  const server = await GatewayServer.start({ token, identity, port: 0, ...serverOptions });
  const point = new DecisionPoint();
  point.reload(join(state, 'policies'));
  const events: AuditEventInput[] = [];
  const refusing: { when?: (event: AuditEventInput) => boolean } = {};
  const holding: { when?: (event: AuditEventInput) => Promise<void> | undefined } = {};
  const audit = async (event: AuditEventInput) => {
    await holding.when?.(event);
    if (refusing.when?.(event)) throw new Error('the disk is full');
    events.push(event);
  };
  new NodeInvoker(server, new NodeInventory(server, new SurfaceStore(db)), { approvals: new ApprovalStore(db), openRuns: new OpenRuns(db), receipts: ReceiptSigner.open(db), decider: point, audit, ...invokerOptions });
  return {
    server,
    identity,
    events,
    refusing,
    holding,
    async close() {
      await server.close();
      db.close();
      identity.close();
    },
  };
}

describe('when the audit log refuses the record of a run a node reports', () => {
  it('keeps the run waiting for its report: the retry is recorded as run (regression: the run was forgotten before its record was written, the retry refused, the run never recorded)', async () => {
    const gw = await refusingLogGateway(stateDir());
    const node = await pairedNodePeer(gw.server.url, token, gw.identity, ['system.run']);
    try {
      const run = await authorize(node, ['echo', 'lost']);
      gw.refusing.when = (e) => e.action === 'node.invoke';
      await assert.rejects(node.client.request('corral.run.report', { runId: run.runId, ok: true, exitCode: 0 }), (e: { wire?: { code?: string } }) => e.wire?.code === 'UNAVAILABLE');
      delete gw.refusing.when;
      await node.client.request('corral.run.report', { runId: run.runId, ok: true, exitCode: 0 });
      assert.deepEqual(gw.events.filter((e) => e.action === 'node.invoke').map((e) => [(e.details as { runId?: string }).runId, e.outcome?.status]), [[run.runId, 'success']]);
    } finally {
      await node.close();
      await gw.close();
    }
  });

  it(`keeps the oldest run waiting when its not-reported record is refused, and forgets the run it refused to authorize (regression: the oldest was forgotten unrecorded)`, async () => {
    const gw = await refusingLogGateway(stateDir());
    const node = await pairedNodePeer(gw.server.url, token, gw.identity, ['system.run']);
    try {
      const runs: Authorized[] = [];
      for (let i = 0; i < MAX_OPEN_RUNS; i++) runs.push(await authorize(node, ['echo', `kept-${i}`]));
      gw.refusing.when = (e) => e.outcome?.detail === 'not-reported';
      await assert.rejects(authorize(node, ['echo', 'one-more']), (e: { wire?: { code?: string } }) => e.wire?.code === 'UNAVAILABLE');
      delete gw.refusing.when;
      await node.client.request('corral.run.report', { runId: runs[0]!.runId, ok: true, exitCode: 0 });
      // Room for exactly one more before the next oldest is recorded as not reported.
      await authorize(node, ['echo', 'next']);
      assert.deepEqual(gw.events.filter((e) => e.outcome?.detail === 'not-reported').length, 0);
      await authorize(node, ['echo', 'next-again']);
      assert.deepEqual(gw.events.filter((e) => e.outcome?.detail === 'not-reported').map((e) => (e.details as { runId?: string }).runId), [runs[1]!.runId]);
    } finally {
      await node.close();
      await gw.close();
    }
  });
});

describe('when the caller of a running command disconnects before its node answers', () => {
  /** Upstream's event that tells a node to stop a run. */
  const INVOKE_CANCEL_EVENT = 'node.invoke.cancel';
  /** Waits until `done` holds (at most 5 s). */
  async function until(done: () => boolean): Promise<void> {
    for (const deadline = Date.now() + 5_000; !done() && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    assert.ok(done(), 'in time');
  }
  const invoke = (client: GatewayClient, nodeId: string, word: string) => client.request('node.invoke', { nodeId, command: 'system.run', params: { command: ['echo', word] }, timeoutMs: 60_000, idempotencyKey: randomUUID() }, { timeoutMs: 65_000 });

  it('tells the node to stop the run (node.invoke.cancel), stops waiting and records that the caller left, its outcome unknown, then the result should the node run it all the same (regression: the run went on and the gateway waited for it up to its timeout)', async () => {
    const gw = await refusingLogGateway(stateDir());
    const node = await pairedNodePeer(gw.server.url, token, gw.identity, ['system.run'], () => 'never');
    const bystander = await pairedNodePeer(gw.server.url, token, gw.identity, ['system.run'], () => 'never');
    const cancels: unknown[] = [];
    node.client.on(INVOKE_CANCEL_EVENT, (payload) => void cancels.push(payload));
    const caller = await GatewayClient.connect({ url: gw.server.url, token, role: 'operator', scopes: ['operator.write'] });
    try {
      const abandoned = invoke(caller, node.device.deviceId, 'left').catch(() => 'closed');
      await until(() => node.received.length === 1);
      await caller.close();
      assert.equal(await abandoned, 'closed');
      await until(() => cancels.length === 1);
      assert.deepEqual(cancels, [{ invokeId: node.received[0]!.id, nodeId: node.device.deviceId }]);
      await until(() => gw.events.some((e) => e.action === 'node.invoke'));
      const records = gw.events.filter((e) => e.action.startsWith('node.invoke'));
      assert.deepEqual(records.map((e) => [e.action, e.outcome?.status, e.outcome?.detail]), [['node.invoke.decide', undefined, undefined], ['node.invoke', 'unknown', 'caller-left']]);
      assert.equal((records[1]!.details as { invokeId?: string }).invokeId, node.received[0]!.id);
      // A node that ran it all the same has its result recorded, once; no other node may answer for it.
      await bystander.client.request('node.invoke.result', { id: node.received[0]!.id, nodeId: bystander.device.deviceId, ok: true, payloadJSON: '{"exitCode":7}' });
      for (let i = 0; i < 2; i++) await node.client.request('node.invoke.result', { id: node.received[0]!.id, nodeId: node.device.deviceId, ok: true, payloadJSON: '{"exitCode":0}' });
      const late = gw.events.filter((e) => e.action === 'node.invoke').slice(1);
      assert.deepEqual(late.map((e) => [e.node, e.outcome?.status, e.outcome?.exitCode, (e.details as { invokeId?: string; callerLeft?: boolean }).invokeId, (e.details as { callerLeft?: boolean }).callerLeft]), [[node.device.deviceId, 'success', 0, node.received[0]!.id, true]]);
      // The decision, the caller's leaving and the late result are one run's: one trace pairs them (OCSF correlation_uid).
      assert.deepEqual(gw.events.filter((e) => e.action.startsWith('node.invoke')).map((e) => e.trace), Array(3).fill(node.received[0]!.id.replaceAll('-', '')));
    } finally {
      await bystander.close();
      await node.close();
      await gw.close();
    }
  });

  it('tells a node holding the run to stop it only after the decision record is durable and the run released', async () => {
    const gw = await refusingLogGateway(stateDir());
    const node = await pairedNodePeer(gw.server.url, token, gw.identity, ['system.run'], () => 'never', [INVOKE_RELEASE_EVENT]);
    const seen: string[] = [];
    node.client.on(INVOKE_CANCEL_EVENT, () => void seen.push('cancel'));
    node.client.on(INVOKE_RELEASE_EVENT, (payload) => void seen.push(`release:${(payload as { ok: boolean }).ok}`));
    const decision = Promise.withResolvers<void>();
    gw.holding.when = (e) => (e.action === 'node.invoke.decide' ? decision.promise : undefined);
    const caller = await GatewayClient.connect({ url: gw.server.url, token, role: 'operator', scopes: ['operator.write'] });
    try {
      const abandoned = invoke(caller, node.device.deviceId, 'held').catch(() => 'closed');
      await until(() => node.received.length === 1);
      await caller.close();
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(seen, [], 'nothing is said to the node before its decision is on record');
      decision.resolve();
      await until(() => seen.length === 2);
      assert.deepEqual(seen, ['release:true', 'cancel']);
      assert.equal(await abandoned, 'closed');
      await until(() => gw.events.some((e) => e.action === 'node.invoke'));
      assert.deepEqual(gw.events.filter((e) => e.action.startsWith('node.invoke')).map((e) => e.action), ['node.invoke.decide', 'node.invoke']);
      assert.deepEqual(gw.events.filter((e) => e.action.startsWith('node.invoke')).map((e) => e.trace), Array(2).fill(node.received[0]!.id.replaceAll('-', '')));
    } finally {
      await node.close();
      await gw.close();
    }
  });

  it('stops waiting for an upstream node to prepare an approved run once its caller has left (regression: it waited up to the timeout)', async () => {
    const gw = await Gateway.start({ stateDir: stateDir(), token, port: 0, approvalPollMs: 20, maxInFlight: 1 });
    const node = await pairedNodePeer(gw.url, token, gw.identity, ['system.run', 'system.run.prepare'], () => 'never');
    gw.identity.agents.create({ name: 'preparing-bot', process: 'leave', owner: 'owner@example.com' });
    const agentToken = (await gw.identity.issueToken('preparing-bot')).token;
    const agents: GatewayClient[] = [];
    try {
      for (let i = 0; i <= MAX_AGENT_CONNECTIONS; i++) {
        const agent = await GatewayClient.connect({ url: gw.url, role: 'operator', scopes: ['operator.write'], agentToken });
        agents.push(agent);
        const asked = agent.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['printf', `prepared-${i}`] }, timeoutMs: 60_000, idempotencyKey: randomUUID() }, { timeoutMs: 65_000 }).then(
          () => 'answered',
          (e: { wire?: { message?: string } }) => e.wire?.message ?? 'closed',
        );
        await until(() => gw.approvals.list({ status: 'pending' }).length === 1);
        await gw.invoker.resolveApprovalWhenFree(gw.approvals.list({ status: 'pending' })[0]!.id, 'allow-once', 'alice');
        await until(() => node.received.filter((r) => r.command === 'system.run.prepare').length === i + 1);
        await agent.close();
        assert.equal(await asked, 'closed');
      }
      assert.ok(node.received.every((r) => r.command === 'system.run.prepare'), 'nothing ran');
    } finally {
      await Promise.all(agents.map((a) => a.close()));
      await node.close();
      await gw.close();
    }
  });

  it(`frees the agent's request in flight: an agent that asks and leaves ${MAX_AGENT_CONNECTIONS + 1} times is still served (regression: each left a request in flight until its node answered)`, async () => {
    const gw = await refusingLogGateway(stateDir(), { maxInFlight: 1 });
    const node = await pairedNodePeer(gw.server.url, token, gw.identity, ['system.run'], () => 'never');
    gw.identity.agents.create({ name: 'leaving-bot', process: 'leave', owner: 'owner@example.com' });
    const agentToken = (await gw.identity.issueToken('leaving-bot')).token;
    try {
      for (let i = 0; i <= MAX_AGENT_CONNECTIONS; i++) {
        const agent = await GatewayClient.connect({ url: gw.server.url, role: 'operator', scopes: ['operator.write'], agentToken });
        const asked = invoke(agent, node.device.deviceId, `leave-${i}`).then(
          () => 'answered',
          (e: { wire?: { message?: string } }) => e.wire?.message ?? 'closed',
        );
        await until(() => node.received.length === i + 1 || gw.events.some((e) => e.action === 'node.invoke.decide' && e.decision?.effect === 'deny'));
        await agent.close();
        assert.equal(await asked, 'closed');
        await until(() => gw.events.filter((e) => e.outcome?.detail === 'caller-left').length === i + 1);
      }
      assert.equal(node.received.length, MAX_AGENT_CONNECTIONS + 1);
    } finally {
      await node.close();
      await gw.close();
    }
  });
});

describe('when a hostile node floods the audit log with what it may say on its own word', () => {
  it('records its refused reports up to their budget, still authorizes its runs from their own budget and refuses them past it (RATE_LIMITED, nothing decided), and writes one record of how many it dropped (regression: one record each, unbounded; a flood of reports starved its runs)', async () => {
    const gw = await refusingLogGateway(stateDir(), {}, { nodeAuditLimits: { perSecond: 1, burst: 5, summaryAfterMs: 200, runs: { perSecond: 1, burst: 1 } } });
    const node = await pairedNodePeer(gw.server.url, token, gw.identity, ['system.run']);
    const bystander = await pairedNodePeer(gw.server.url, token, gw.identity, ['system.run']);
    try {
      const refused = (e: { wire?: { code?: string } }) => e.wire?.code === 'INVALID_REQUEST';
      for (let i = 0; i < 50; i++) await assert.rejects(node.client.request('corral.run.report', { runId: randomUUID(), ok: true, exitCode: 0 }), refused);
      assert.equal((await authorize(node, ['echo', 'first'])).decision, 'allow');
      await assert.rejects(authorize(node, ['echo', 'flood']), (e: { wire?: { code?: string; retryable?: boolean; details?: { code?: string } } }) => e.wire?.code === 'UNAVAILABLE' && e.wire.retryable === true && e.wire.details?.code === 'RATE_LIMITED');
      assert.equal((await authorize(bystander, ['echo', 'mine'])).decision, 'allow');
      const mine = gw.events.filter((e) => e.node === node.device.deviceId && e.action === 'node.report.refused');
      assert.ok(mine.length <= 6, `${mine.length} refused reports of the flooding node recorded`);
      assert.equal(gw.events.filter((e) => e.action === 'node.invoke.decide' && e.node === node.device.deviceId).length, 1, 'nothing decided past the run budget');
      for (const deadline = Date.now() + 3_000; !gw.events.some((e) => e.action === 'node.audit.dropped') && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
      const summaries = gw.events.filter((e) => e.action === 'node.audit.dropped');
      assert.equal(summaries.length, 1);
      const details = summaries[0]!.details as { dropped: number; byAction: Record<string, number> };
      assert.equal(summaries[0]!.node, node.device.deviceId);
      assert.equal(details.dropped, 51 - mine.length);
      assert.equal(details.byAction['corral.run.authorize'], 1);
    } finally {
      await node.close();
      await bystander.close();
      await gw.close();
    }
  });
});

describe('when the gateway stops while a node has records dropped and not yet summarized', () => {
  it('writes the summary before its audit log closes (regression: the count was lost with the timer)', async () => {
    const state = stateDir();
    const gw = await Gateway.start({ stateDir: state, token, port: 0 });
    let dropped = 0;
    for (let i = 0; i < 700; i++) if (!gw.invoker.nodeAudit.admit('flooding-node', 'node.report.refused')) dropped += 1;
    assert.ok(dropped > 0);
    await gw.close();
    const summaries = (await auditEvents(state)).filter((e) => e.action === 'node.audit.dropped');
    assert.deepEqual(summaries.map((e) => [e.node, (e.details as { dropped?: number }).dropped]), [['flooding-node', dropped]]);
  });
});

describe('the result record of a system.run its node ran', () => {
  it('says failure for a command that exited non-zero or timed out, success only for exit 0, as the node’s own report and `corral run` do (regression: any answered run was a success)', async () => {
    const gw = await refusingLogGateway(stateDir());
    const answers: Record<string, unknown> = { '0': { exitCode: 0 }, '3': { exitCode: 3 }, late: { exitCode: null, timedOut: true } };
    const node = await pairedNodePeer(gw.server.url, token, gw.identity, ['system.run'], (i) => ({ ok: true, payload: answers[(i.params as { command: string[] }).command[1]!] }));
    const operator = await GatewayClient.connect({ url: gw.server.url, token, role: 'operator', scopes: ['operator.write'] });
    try {
      for (const key of Object.keys(answers)) await operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['echo', key] }, timeoutMs: 10_000, idempotencyKey: randomUUID() }, { timeoutMs: 15_000 });
      const results = gw.events.filter((e) => e.action === 'node.invoke');
      assert.deepEqual(results.map((e) => [e.outcome?.status, e.outcome?.exitCode]), [['success', 0], ['failure', 3], ['failure', undefined]]);
    } finally {
      await operator.close();
      await node.close();
      await gw.close();
    }
  });
});

describe('a command sent only once its decision is on record (a node that does not hold runs)', () => {
  it('is not sent when its node was unpaired while the decision record was being committed: the route is read again after that wait', async () => {
    const gw = await refusingLogGateway(stateDir());
    const node = await pairedNodePeer(gw.server.url, token, gw.identity, ['system.run']);
    const decision = Promise.withResolvers<void>();
    let holding = false;
    gw.holding.when = (e) => (e.action === 'node.invoke.decide' ? ((holding = true), decision.promise) : undefined);
    const operator = await GatewayClient.connect({ url: gw.server.url, token, role: 'operator', scopes: ['operator.write'] });
    try {
      const invoked = operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['echo', 'unpaired'] }, timeoutMs: 10_000, idempotencyKey: randomUUID() }, { timeoutMs: 15_000 }).then(
        () => 'ran',
        (e: { wire?: { code?: string } }) => e.wire?.code ?? 'error',
      );
      while (!holding) await new Promise((r) => setTimeout(r, 5));
      gw.identity.nodes.revoke(node.device.deviceId);
      decision.resolve();
      assert.notEqual(await invoked, 'ran');
      assert.equal(node.received.length, 0);
    } finally {
      await operator.close();
      await node.close();
      await gw.close();
    }
  });
});

describe("the node's result, acknowledged", () => {
  it("only after the caller's answer is sent: a Corral node then replaces the warm sandbox its run took, which on a shared host would compete with that answer (regression: the acknowledgement went first)", async () => {
    const { Connection } = await import('../server/connection.ts');
    const gw = await refusingLogGateway(stateDir());
    const node = await pairedNodePeer(gw.server.url, token, gw.identity, ['system.run'], () => ({ ok: true, payload: { exitCode: 0 } }));
    const operator = await GatewayClient.connect({ url: gw.server.url, token, role: 'operator', scopes: ['operator.write'] });
    const sent: string[] = [];
    const send = Connection.prototype.send;
    Connection.prototype.send = function (this: InstanceType<typeof Connection>, text: string) {
      const frame = JSON.parse(text) as { type: string };
      if (frame.type === 'res') sent.push(this.peer?.role ?? 'unknown');
      return send.call(this, text);
    };
    try {
      await operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['echo', 'order'] }, timeoutMs: 10_000, idempotencyKey: randomUUID() }, { timeoutMs: 15_000 });
      while (sent.length < 2) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(sent, ['operator', 'node']);
    } finally {
      Connection.prototype.send = send;
      await operator.close();
      await node.close();
      await gw.close();
    }
  });
});
