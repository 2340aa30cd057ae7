// Agents: their identities and status, and the kill switch. Suspending an
// agent stops its tokens verifying and every decision for it denying
// (@corral/identity), denies its commands waiting for approval, and tells every connected Corral node to stop the
// agent's running containers; each node reports what it stopped
// (`corral.agent.stopped`), and the audit log records it.
import type { Agent } from '@corral/identity';
import { checkReason } from '../approvals/store.ts';
import { GatewayError } from '../errors.ts';
import { rateLimited } from '../exec/node-audit-budget.ts';
import { actingHuman } from './auth.ts';
import type { ApiContext } from './context.ts';
import { reply } from './respond.ts';
import type { Route } from './router.ts';
import type { RunningCommands } from './running.ts';
import { cut } from '../well-formed.ts';


export function agentRoutes(api: ApiContext, running: RunningCommands): Route[] {
  const view = (a: Agent) => ({ id: a.id, name: a.name, displayName: a.displayName, process: a.process, owner: a.owner, status: a.status, scopes: a.scopes, createdAt: a.createdAt, updatedAt: a.updatedAt, running: running.count(a) });
  return [
    { method: 'GET', path: '/api/agents', access: 'agents.read', handle: () => reply(200, { agents: api.identity.agents.list().map(view) }) },
    {
      method: 'POST',
      path: '/api/agents/:name/suspend',
      access: 'agents.write',
      handle: async ({ params, caller, body }) => {
        const input = await body();
        const given = input.reason;
        checkReason(given);
        const reason = given ?? '';
        const human = actingHuman(caller!);
        const named = api.identity.agents.get(params.name!);
        // Its approvals are withdrawn with the suspension, pending or approved and unspent, in the same tick (no approval
        // is made between them), with the grants those allowed always made: none lets a command run once approved, or once the agent is resumed. While a corral
        // command holds gateway.db it waits off the event loop; past the wait, 503 GATEWAY_BUSY and nothing is done.
        const suspended: { agent?: Agent } = {};
        const denied = await api.invoker.withdrawApprovalsOf({ type: 'Agent', id: named.name }, human, reason || undefined, () => void (suspended.agent = api.identity.agents.suspend(named.id)));
        const agent = suspended.agent;
        if (!agent) throw new GatewayError('GATEWAY_INTERNAL', 'the agent was not suspended');
        // Nodes stop the agent's running commands before the record is appended: the kill switch works while the log is down too.
        const stopped = api.invoker.stopRunsOf(agent, reason);
        try {
          await api.record({ actor: { kind: 'human', id: human }, action: 'agent.suspend', resource: { kind: 'agent', id: agent.id }, details: { name: agent.name, status: agent.status, tokenGeneration: agent.tokenGeneration, deniedApprovals: denied, ...(stopped > 0 ? { stoppedCommands: stopped } : {}), ...(reason ? { reason } : {}) } });
        } finally {
          // Withdrawn already (no decision counts them): their files leave the set once the suspension is on record, before the answer.
          await api.invoker.removeWithdrawnGrants(denied, human);
        }
        return reply(200, view(agent));
      },
    },
    {
      method: 'POST',
      path: '/api/agents/:name/resume',
      access: 'agents.write',
      handle: async ({ params, caller }) => {
        const agent = api.identity.agents.resume(params.name!);
        try {
          await api.record({ actor: { kind: 'human', id: actingHuman(caller!) }, action: 'agent.resume', resource: { kind: 'agent', id: agent.id }, details: { name: agent.name, status: agent.status, tokenGeneration: agent.tokenGeneration } });
        } catch (error) {
          // An agent is never let loose again unrecorded: it is suspended once more (a token issued meanwhile dies with it).
          api.identity.agents.suspend(agent.id);
          throw error;
        }
        return reply(200, view(agent));
      },
    },
  ];
}

/** Most runs one report names. */
const MAX_RUN_IDS = 100;

/**
 * `corral.agent.stopped` (node role): a node reports the containers it
 * stopped for a suspended agent; each report is one audit record.
 */
export function registerStopReports(api: ApiContext): void {
  api.server.method('corral.agent.stopped', {
    role: 'node',
    handler: async (params, { connection, peer }) => {
      // A node unpaired while connected writes no more records.
      api.inventory.assertPaired(connection);
      // Its word alone, recorded: past its budget a node is refused, and the drop summarized.
      if (!api.invoker.nodeAudit.admit(peer.deviceId!, 'agent.containers.stop')) throw rateLimited('too many reports from this node');
      const p = (params ?? {}) as { agentId?: unknown; name?: unknown; runIds?: unknown };
      if (typeof p.agentId !== 'string' || p.agentId === '' || p.agentId.length > 100) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'agentId is required', { wire: { code: 'INVALID_REQUEST', message: 'invalid corral.agent.stopped params' } });
      const runIds = Array.isArray(p.runIds) ? p.runIds.filter((r): r is string => typeof r === 'string' && r.length <= 100).slice(0, MAX_RUN_IDS) : [];
      await api.record({
        actor: { kind: 'node', id: peer.deviceId! },
        action: 'agent.containers.stop',
        resource: { kind: 'agent', id: p.agentId },
        node: peer.deviceId!,
        outcome: { status: 'success' },
        details: { stopped: runIds.length, runIds, ...(typeof p.name === 'string' ? { name: cut(p.name, 100) } : {}) },
      });
      return { ok: true };
    },
  });
}
