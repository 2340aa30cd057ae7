// The kill switch pulled outside the gateway: `corral agents suspend` or
// `retire` in a terminal writes identity.db and reaches no node itself; and
// pulled through the gateway's API while an agent's command is on its way.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { openAuditLog, type AuditLog } from '@corral/audit';
import { Identity } from '@corral/identity';
import { pairedNodePeer, type NodePeer } from '../test/node-peer.ts';
import { policyStateDirs } from '../test/policy-state.ts';
import { GatewayClient } from './client/client.ts';
import { AGENT_SUSPENDED_EVENT, INVOKE_CANCEL_EVENT, INVOKE_RELEASE_EVENT } from './exec/invoke.ts';
import { auditEvents, startTestGateway, type TestGateway } from './http/testing.ts';

const stateDir = policyStateDirs('kill-switch', 'permit (principal, action == Action::"system.run", resource == Command::"sleep");\n');

describe('when another process suspends or retires an agent', () => {
  let state: string;
  let t: TestGateway;
  let node: NodePeer;
  before(async () => {
    state = stateDir();
    t = await startTestGateway({ stateDir: state });
    // A node that holds every command until told to stop.
    node = await pairedNodePeer(t.gw.url, t.token, t.gw.identity, ['system.run'], () => 'never');
  });
  after(async () => {
    await node.close();
    await t.close();
  });

  for (const verb of ['suspend', 'retire'] as const) {
    it(`tells every node to stop the agent's commands and closes its connection, which sent nothing since (${verb})`, { timeout: 60_000 }, async () => {
      // Before: only the gateway's own API told nodes; a command running for the agent ran on, and its idle connection stayed open.
      const name = `bot-${verb}`;
      const created = t.gw.identity.agents.create({ name, process: 'p', owner: 'o@example.com' });
      const agent = await GatewayClient.connect({ url: t.gw.url, token: t.token, role: 'operator', scopes: ['operator.write'], agentToken: (await t.gw.identity.issueToken(name)).token });
      const seen = node.received.length;
      void agent.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['sleep', '600'] }, timeoutMs: 600_000, idempotencyKey: randomUUID() }, { timeoutMs: 605_000 }).catch(() => {});
      while (node.received.length === seen) await new Promise((r) => setTimeout(r, 20));
      const heard = new Promise<unknown>((resolve) => node.client.on(AGENT_SUSPENDED_EVENT, (payload) => (payload as { agentId?: string }).agentId === created.id && resolve(payload)));
      const cancelled = new Promise<unknown>((resolve) => node.client.on(INVOKE_CANCEL_EVENT, (payload) => (payload as { invokeId?: string }).invokeId === node.received.at(-1)?.id && resolve(payload)));
      const terminal = Identity.open(state); // as `corral agents suspend` opens the store
      try {
        terminal.agents[verb](name);
      } finally {
        terminal.close();
      }
      assert.deepEqual(await heard, { agentId: created.id, name, reason: '' });
      // This node knows nothing of Corral's event (an upstream node host): it is told to stop that command as upstream's gateway would.
      assert.deepEqual(await cancelled, { invokeId: node.received.at(-1)!.id, nodeId: node.device.deviceId });
      assert.equal((await agent.closed).code, 1008);
    });
  }
});

describe('when the API suspends an agent whose commands run on an upstream node host and on a Corral node', () => {
  it("tells the upstream node host to stop the agent's command at once (node.invoke.cancel) and records its result as stopped for the suspension; the Corral node gets Corral's event instead (regression: stopped only once the gateway's sweep closed the agent's connection, recorded as a caller that left, its outcome unknown)", { timeout: 60_000 }, async () => {
    const state = stateDir();
    const t = await startTestGateway({ stateDir: state });
    const upstream = await pairedNodePeer(t.gw.url, t.token, t.gw.identity, ['system.run'], () => 'never');
    const corral = await pairedNodePeer(t.gw.url, t.token, t.gw.identity, ['system.run'], () => 'never', [INVOKE_RELEASE_EVENT]);
    try {
      t.gw.identity.agents.create({ name: 'bot', process: 'p', owner: 'o@example.com' });
      t.gw.identity.agents.create({ name: 'other-bot', process: 'p', owner: 'o@example.com' });
      const connect = async (name: string) => GatewayClient.connect({ url: t.gw.url, role: 'operator', scopes: ['operator.write'], agentToken: (await t.gw.identity.issueToken(name)).token });
      const [bot, other] = [await connect('bot'), await connect('other-bot')];
      const run = (client: GatewayClient, node: NodePeer) =>
        client.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['sleep', '600'] }, timeoutMs: 600_000, idempotencyKey: randomUUID() }, { timeoutMs: 605_000 }).then(
          () => 'answered',
          (e: { wire?: { code?: string } }) => e.wire?.code ?? 'closed',
        );
      const cancels: unknown[] = [];
      // The upstream node host stops the run it is told to, and answers for it.
      upstream.client.on(INVOKE_CANCEL_EVENT, (payload) => {
        cancels.push(payload);
        const { invokeId } = payload as { invokeId: string };
        void upstream.client.request('node.invoke.result', { id: invokeId, nodeId: upstream.device.deviceId, ok: false, error: { code: 'UNAVAILABLE', message: 'cancelled' } }).catch(() => {});
      });
      const corralCancels: unknown[] = [];
      corral.client.on(INVOKE_CANCEL_EVENT, (payload) => corralCancels.push(payload));
      const heard = new Promise<unknown>((resolve) => corral.client.on(AGENT_SUSPENDED_EVENT, resolve));
      const answers = [run(bot, upstream), run(other, upstream), run(bot, corral)];
      while (upstream.received.length < 2 || corral.received.length < 1) await new Promise((r) => setTimeout(r, 20));
      const suspended = await t.tool().post('/api/agents/bot/suspend', { reason: 'paid twice' });
      assert.equal(suspended.status, 200);
      assert.deepEqual(await heard, { agentId: t.gw.identity.agents.get('bot').id, name: 'bot', reason: 'paid twice' });
      const botsRun = upstream.received.find((r) => r.params.agentId === 'bot')!;
      assert.equal(await answers[0], 'UNAVAILABLE', "the agent hears its command was stopped");
      assert.deepEqual(cancels, [{ invokeId: botsRun.id, nodeId: upstream.device.deviceId }], "only the suspended agent's command");
      assert.deepEqual(corralCancels, []);
      const events = await auditEvents(state);
      const result = events.find((e) => e.action === 'node.invoke' && (e.details as { invokeId?: string }).invokeId === botsRun.id);
      assert.deepEqual([result?.outcome?.status, (result?.details as { stopped?: string }).stopped], ['failure', 'agent-suspended']);
      assert.equal((events.find((e) => e.action === 'agent.suspend')?.details as { stoppedCommands?: number }).stoppedCommands, 1);
      await bot.close();
      await other.close();
    } finally {
      await upstream.close();
      await corral.close();
      await t.close();
    }
  });
});

describe('when the API suspends an agent while its command waits for its decision record (an audit log 300 ms slow to commit: remote, or a loaded disk)', () => {
  it('never sends the command to the node: refused, and on record as withdrawn (regression: the node got it 170 ms after the suspension event)', { timeout: 60_000 }, async () => {
    const state = stateDir();
    const log = await openAuditLog({ stateDir: state });
    const slow = new Proxy(log, {
      get(target, prop) {
        if (prop === 'append') return async (event: Parameters<AuditLog['append']>[0]) => (await new Promise((r) => setTimeout(r, 300)), target.append(event));
        const value = Reflect.get(target, prop) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const t = await startTestGateway({ stateDir: state, audit: slow });
    // An upstream node host: it runs what it gets, and knows nothing of Corral's suspension event.
    const node = await pairedNodePeer(t.gw.url, t.token, t.gw.identity, ['system.run'], () => 'never');
    try {
      t.gw.identity.agents.create({ name: 'bot', process: 'p', owner: 'o@example.com' });
      const agent = await GatewayClient.connect({ url: t.gw.url, role: 'operator', scopes: ['operator.write'], agentToken: (await t.gw.identity.issueToken('bot')).token });
      const answer = agent.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['sleep', '600'] }, timeoutMs: 600_000, idempotencyKey: randomUUID() }, { timeoutMs: 605_000 }).then(
        () => 'ran',
        (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code ?? 'closed',
      );
      await new Promise((r) => setTimeout(r, 50));
      const suspended = await t.tool().post('/api/agents/bot/suspend', {});
      assert.equal(suspended.status, 200);
      // Refused, unless the gateway's sweep closed the suspended agent's connection first.
      assert.match(await answer, /^(SYSTEM_RUN_DENIED|closed)$/);
      let withdrawn;
      for (let i = 0; i < 100 && !withdrawn; i++) {
        withdrawn = (await auditEvents(state)).find((e) => e.action === 'node.invoke');
        if (!withdrawn) await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual([withdrawn?.outcome?.status, withdrawn?.outcome?.detail], ['failure', 'agent-suspended']);
      assert.equal(node.received.length, 0);
      await agent.close();
    } finally {
      await node.close();
      await t.close();
      await log.close();
    }
  });
});
