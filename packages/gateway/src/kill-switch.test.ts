// The kill switch pulled outside the gateway: `corral agents suspend` or
// `retire` in a terminal writes identity.db and reaches no node itself.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Identity } from '@corral/identity';
import { pairedNodePeer, type NodePeer } from '../test/node-peer.ts';
import { GatewayClient } from './client/client.ts';
import { AGENT_SUSPENDED_EVENT } from './http/agents.ts';
import { startTestGateway, type TestGateway } from './http/testing.ts';

describe('when another process suspends or retires an agent', () => {
  let state: string;
  let t: TestGateway;
  let node: NodePeer;
  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'corral-kill-switch-'));
    mkdirSync(join(state, 'policies'));
    writeFileSync(join(state, 'policies', 'main.cedar'), 'permit (principal, action == Action::"system.run", resource == Command::"sleep");\n');
    t = await startTestGateway({ stateDir: state });
    // A node that holds every command until told to stop.
    node = await pairedNodePeer(t.gw.url, t.token, t.gw.identity, ['system.run'], () => 'never');
  });
  after(async () => {
    await node.close();
    await t.close();
    rmSync(state, { recursive: true, force: true });
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
      const terminal = Identity.open(state); // as `corral agents suspend` opens the store
      try {
        terminal.agents[verb](name);
      } finally {
        terminal.close();
      }
      assert.deepEqual(await heard, { agentId: created.id, name, reason: '' });
      assert.equal((await agent.closed).code, 1008);
    });
  }
});
