// The kill switch against a command already on its way: an agent suspended
// while its command waits for the policy set to compile, its decision record
// to commit or its approval gets nothing more sent or released for it, on
// any path to a node (node.invoke, a held run's release, corral.run.authorize).
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { AuditEventInput } from '@corral/audit';
import { Identity } from '@corral/identity';
import { DecisionPoint } from '@corral/policy';
import { ApprovalStore, GatewayClient, GatewayServer, INVOKE_RELEASE_EVENT, NodeInventory, NodeInvoker, OpenRuns, ReceiptSigner, SurfaceStore, openGatewayDb } from '../index.ts';
import type { GatewayDecider } from './decide.ts';
import { pairedNodePeer, type NodePeer } from '../../test/node-peer.ts';
import { policyStateDirs } from '../../test/policy-state.ts';
import { until } from '../../../../scripts/testing/until.ts';

const token = randomBytes(24).toString('base64url');
const POLICY = `
@id("sleep") permit (principal, action == Action::"system.run", resource == Command::"sleep");
@id("printf-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"printf");
`;
const stateDir = policyStateDirs('suspended-in-flight', POLICY);

/** What a suspended agent's caller is told: the refusal of its command, as for any request of a suspended agent. */
const refusedAsSuspended = (e: { wire?: { code?: string; details?: { code?: string; reason?: string } } }) =>
  e.wire?.code === 'INVALID_REQUEST' && e.wire.details?.code === 'SYSTEM_RUN_DENIED' && /suspended/.test(e.wire.details.reason ?? '');

/**
 * A gateway whose decider waits while `holding.decider` is set (a policy set
 * being compiled after an activation) and whose audit appends wait for what
 * `holding.append` returns (a remote log, a loaded disk); the agent `bot`
 * connected with its token; the records appended.
 */
async function holdingGateway(options: { ttlSeconds?: number } = {}) {
  const state = stateDir();
  const identity = Identity.open(state);
  const db = openGatewayDb(state);
  const server = await GatewayServer.start({ token, identity, port: 0 });
  const point = new DecisionPoint();
  point.reload(join(state, 'policies'));
  const holding: { decider?: Promise<void>; append?: (event: AuditEventInput) => Promise<void> | undefined } = {};
  let compiling = false;
  const decider: GatewayDecider = {
    decideEach: (input, resources) => point.decideEach(input, resources),
    async decider() {
      compiling = true;
      await holding.decider;
      return point;
    },
  };
  const events: AuditEventInput[] = [];
  const audit = async (event: AuditEventInput) => {
    await holding.append?.(event);
    events.push(event);
  };
  const invoker = new NodeInvoker(server, new NodeInventory(server, new SurfaceStore(db)), { approvals: new ApprovalStore(db), openRuns: new OpenRuns(db), receipts: ReceiptSigner.open(db), decider, audit, approvalPollMs: 20 });
  identity.agents.create({ name: 'bot', process: 'p', owner: 'owner@example.com' });
  const agent = await GatewayClient.connect({ url: server.url, token, role: 'operator', scopes: ['operator.write'], agentToken: (await identity.issueToken('bot', options)).token });
  const nodes: NodePeer[] = [];
  return {
    server,
    identity,
    invoker,
    holding,
    events,
    compiling: () => compiling,
    /** A paired node declaring `commands` and `caps` that answers each command it gets as run, or (`answer: 'never'`) never on its own. */
    async node(commands: string[], caps: string[] = [], answer?: 'never') {
      const node = await pairedNodePeer(server.url, token, identity, commands, answer === 'never' ? () => answer : () => ({ ok: true, payload: { exitCode: 0 } }), caps);
      nodes.push(node);
      return node;
    },
    /** The agent asks `node` to run `argv`; its answer, handled from the start. */
    run(node: NodePeer, argv: string[]) {
      const answer = agent.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: argv }, timeoutMs: 30_000, idempotencyKey: randomUUID() }, { timeoutMs: 35_000 });
      answer.catch(() => undefined);
      return answer;
    },
    async close() {
      await agent.close();
      for (const node of nodes) await node.close();
      await server.close();
      db.close();
      identity.close();
    },
  };
}

describe('when an agent is suspended while its command is on its way to a node', () => {
  it('sends nothing to a node that gets a command once its decision is on record, when the suspension came while that record committed (regression: sent to the node after the suspension)', async () => {
    const gw = await holdingGateway();
    try {
      const node = await gw.node(['system.run']);
      const decision = Promise.withResolvers<void>();
      let committing = false;
      gw.holding.append = (e) => (e.action === 'node.invoke.decide' ? ((committing = true), decision.promise) : undefined);
      const answer = gw.run(node, ['sleep', '600']);
      await until('the decision record is committing', () => committing);
      gw.identity.agents.suspend('bot');
      decision.resolve();
      await assert.rejects(answer, refusedAsSuspended);
      assert.equal(node.received.length, 0);
      // On record as allowed, then withdrawn before it reached the node: the one run's two records.
      const records = gw.events.filter((e) => e.action.startsWith('node.invoke'));
      assert.deepEqual(records.map((e) => [e.action, e.decision?.effect, e.outcome?.status, e.outcome?.detail]), [['node.invoke.decide', 'allow', undefined, undefined], ['node.invoke', undefined, 'failure', 'agent-suspended']]);
      assert.equal(records[0]!.trace, records[1]!.trace);
    } finally {
      await gw.close();
    }
  });

  it('sends nothing to a node that holds its runs, when the suspension came while the policy set was compiled and the decision allows (regression: the node got the run after the suspension event, then its release)', async () => {
    const gw = await holdingGateway();
    try {
      const node = await gw.node(['system.run'], [INVOKE_RELEASE_EVENT]);
      const releases: unknown[] = [];
      node.client.on(INVOKE_RELEASE_EVENT, (payload) => void releases.push(payload));
      const compiled = Promise.withResolvers<void>();
      gw.holding.decider = compiled.promise;
      const answer = gw.run(node, ['sleep', '600']);
      await until('the policy set is compiling', gw.compiling);
      gw.identity.agents.suspend('bot');
      compiled.resolve();
      await assert.rejects(answer, refusedAsSuspended);
      assert.equal(node.received.length, 0);
      assert.deepEqual(releases, []);
    } finally {
      await gw.close();
    }
  });

  it('never releases a held run whose agent was suspended while its decision record committed: released ok:false, recorded as withdrawn, its caller refused (regression: released ok:true)', async () => {
    const gw = await holdingGateway();
    try {
      const node = await gw.node(['system.run'], [INVOKE_RELEASE_EVENT], 'never');
      // As a Corral node does: a run not released is not run, and the gateway is told so.
      const releases: Array<{ id: string; ok: boolean }> = [];
      node.client.on(INVOKE_RELEASE_EVENT, (payload) => {
        const release = payload as { id: string; ok: boolean };
        releases.push(release);
        const result = release.ok ? { ok: true, payloadJSON: '{"exitCode":0}' } : { ok: false, error: { code: 'SYSTEM_RUN_DENIED', message: 'SYSTEM_RUN_DENIED: the gateway did not confirm that its decision was recorded' } };
        void node.client.request('node.invoke.result', { id: release.id, nodeId: node.device.deviceId, ...result }).catch(() => undefined);
      });
      const decision = Promise.withResolvers<void>();
      gw.holding.append = (e) => (e.action === 'node.invoke.decide' ? decision.promise : undefined);
      const answer = gw.run(node, ['sleep', '600']);
      await until('the node has the command', () => node.received.length === 1);
      assert.equal(node.received[0]!.params.awaitRelease, true);
      gw.identity.agents.suspend('bot');
      decision.resolve();
      await assert.rejects(answer, refusedAsSuspended);
      assert.deepEqual(releases, [{ id: node.received[0]!.id, ok: false }]);
      const result = gw.events.find((e) => e.action === 'node.invoke');
      assert.equal(result?.outcome?.status, 'failure');
      assert.equal((result?.details as { withdrawn?: string }).withdrawn, 'agent-suspended');
    } finally {
      await gw.close();
    }
  });

  it('sends nothing for an approved command of an agent suspended and resumed while its approval waited: the token it asked with is dead (regression: only its status was checked, and the command ran)', async () => {
    const gw = await holdingGateway();
    try {
      const node = await gw.node(['system.run']);
      const answer = gw.run(node, ['printf', 'hi']);
      await until('an approval is asked for', () => gw.events.some((e) => e.action === 'approval.request'));
      const approvalId = gw.events.find((e) => e.action === 'approval.request')!.resource.id;
      gw.identity.agents.suspend('bot');
      gw.identity.agents.resume('bot');
      await gw.invoker.resolveApprovalWhenFree(approvalId, 'allow-once', 'alice');
      await assert.rejects(answer, refusedAsSuspended);
      assert.equal(node.received.length, 0);
    } finally {
      await gw.close();
    }
  });

  it('sends the approved command of an agent whose token only ran out while its approval waited: it was good when the agent asked, and nothing took it back', async () => {
    const gw = await holdingGateway({ ttlSeconds: 1 });
    try {
      const node = await gw.node(['system.run']);
      const issuedAt = Date.now();
      const answer = gw.run(node, ['printf', 'hi']);
      await until('an approval is asked for', () => gw.events.some((e) => e.action === 'approval.request'));
      const approvalId = gw.events.find((e) => e.action === 'approval.request')!.resource.id;
      await new Promise((r) => setTimeout(r, Math.max(0, issuedAt + 1_500 - Date.now())));
      await gw.invoker.resolveApprovalWhenFree(approvalId, 'allow-once', 'alice');
      await answer;
      assert.equal(node.received.length, 1);
    } finally {
      await gw.close();
    }
  });

  it('refuses a run a Corral node serving another gateway asks for that agent, when the suspension came while the set was compiled, and keeps no run of it waiting for a report (regression: authorized)', async () => {
    const gw = await holdingGateway();
    try {
      const node = await gw.node(['system.run']);
      gw.identity.nodes.setAgents(node.device.deviceId, gw.identity.agents.idsOf(['bot']));
      const compiled = Promise.withResolvers<void>();
      gw.holding.decider = compiled.promise;
      const asked = node.client.request('corral.run.authorize', { command: 'system.run', params: { command: ['sleep', '600'] }, agentId: 'bot', timeoutMs: 10_000 }, { timeoutMs: 15_000 });
      asked.catch(() => undefined);
      await until('the policy set is compiling', gw.compiling);
      gw.identity.agents.suspend('bot');
      compiled.resolve();
      await assert.rejects(asked, refusedAsSuspended);
      const run = gw.events.find((e) => e.action === 'node.invoke');
      assert.deepEqual([run?.outcome?.status, run?.outcome?.detail, (run?.details as { principal?: string }).principal], ['failure', 'agent-suspended', 'Agent::bot']);
      // Taken out: a report of it now is refused as a run this gateway never authorized.
      const runId = (run!.details as { runId: string }).runId;
      await assert.rejects(node.client.request('corral.run.report', { runId, ok: true, exitCode: 0 }), (e: { wire?: { code?: string } }) => e.wire?.code === 'INVALID_REQUEST');
    } finally {
      await gw.close();
    }
  });
});
