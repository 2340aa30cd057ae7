// Nodes: the inventory with live state, pairing requests (with the address
// each came from), and the operator's decisions on them. Pairing state is
// @corral/identity's NodeRegistry, as for `corral nodes` and the protocol.
import { IdentityError, type NodeRecord } from '@corral/identity';
import { GatewayError } from '../errors.ts';
import { CLOSE } from '../protocol/limits.ts';
import { actingHuman, type Caller } from './auth.ts';
import type { ApiContext } from './context.ts';
import { failure, reply } from './respond.ts';
import type { Route } from './router.ts';

const MAX_ADDRESSES = 1000;

export function nodeRoutes(api: ApiContext): Route[] {
  // Where each pairing request came from, as the WebSocket server saw it (kept while the gateway runs).
  const addresses = new Map<string, string>();
  api.server.onPairingRequest((request) => {
    if (addresses.size >= MAX_ADDRESSES) addresses.delete(addresses.keys().next().value!);
    addresses.set(request.deviceId, request.remoteAddress);
  });
  const audit = (caller: Caller, action: string, node: NodeRecord) =>
    api.record({ actor: { kind: 'human', id: actingHuman(caller) }, action, resource: { kind: 'node', id: node.deviceId }, node: node.deviceId, details: { displayName: node.displayName, status: node.status } });
  // An operator's decision on a pairing request: approving grants the commands it names (pairing a pending
  // node); rejecting revokes a pending node, or leaves a paired one with what it had.
  const decide = (verdict: 'approve' | 'reject'): Route => ({
    method: 'POST',
    path: `/api/nodes/pending/:requestId/${verdict}`,
    access: 'nodes.write',
    handle: async ({ params, caller }) => {
      let decided;
      try {
        // Recorded by the inventory, as a decision over the protocol is.
        decided = await api.inventory.decide(params.requestId!, verdict, { kind: 'human', id: actingHuman(caller!) });
      } catch (error) {
        if (error instanceof GatewayError && error.code === 'GATEWAY_PARAMS_INVALID') return failure(404, 'not_found', { message: 'no such pairing request' });
        throw error;
      }
      const { request, node } = decided;
      return reply(200, { requestId: request.requestId, nodeId: node.deviceId, status: node.status, commands: node.commands });
    },
  });
  return [
    {
      method: 'GET',
      path: '/api/nodes',
      access: 'nodes.read',
      handle: () => {
        return reply(200, {
          nodes: api.inventory.list().map((n) => ({
            nodeId: n.nodeId,
            displayName: n.displayName,
            ...(n.claimedDisplayName !== undefined ? { claimedDisplayName: n.claimedDisplayName } : {}),
            platform: n.platform,
            status: n.status,
            connected: n.connected,
            paired: n.paired,
            commands: n.commands,
            requestedCommands: n.requestedCommands ?? [],
            agents: api.identity.agents.namesOf(api.identity.nodes.find(n.nodeId)?.agents),
            ...(n.remoteIp ? { remoteIp: n.remoteIp } : {}),
            lastSeenMs: n.lastSeenAtMs ?? null,
          })),
        });
      },
    },
    {
      method: 'GET',
      path: '/api/nodes/pending',
      access: 'nodes.read',
      handle: () => {
        const requests = api.inventory.requests().map((r) => ({ ...r, approvedCommands: r.approvedCommands ?? [], remoteIp: addresses.get(r.nodeId) ?? r.remoteIp ?? null }));
        return reply(200, { requests });
      },
    },
    decide('approve'),
    decide('reject'),
    {
      // The agents a paired node may ask the control plane for (corral.run.authorize), replaced as a whole: `{"agents": ["name", …]}`.
      method: 'PUT',
      path: '/api/nodes/:nodeId/agents',
      access: 'nodes.write',
      handle: async ({ params, caller, body }) => {
        const given = (await body()).agents;
        if (!Array.isArray(given) || !given.every((a) => typeof a === 'string')) return failure(400, 'invalid_request', { message: 'agents must be a list of agent names' });
        const node = api.identity.nodes.get(params.nodeId!);
        let ids: string[];
        try {
          ids = api.identity.agents.idsOf(given);
        } catch (error) {
          // The agent named in the body, not the node in the path: the request is wrong, not its address.
          if (error instanceof IdentityError && (error.code === 'IDENTITY_AGENT_NOT_FOUND' || error.code === 'IDENTITY_AGENT_STATE')) return failure(400, 'invalid_request', { message: error.message, code: error.code });
          throw error;
        }
        const changed = api.identity.nodes.setAgents(node.deviceId, ids);
        const names = api.identity.agents.namesOf(changed.agents);
        await api.record({ actor: { kind: 'human', id: actingHuman(caller!) }, action: 'node.agents', resource: { kind: 'node', id: node.deviceId }, node: node.deviceId, details: { displayName: node.displayName, agents: names } });
        return reply(200, { nodeId: node.deviceId, agents: names });
      },
    },
    {
      method: 'POST',
      path: '/api/nodes/:nodeId/revoke',
      access: 'nodes.write',
      handle: async ({ params, caller }) => {
        const node = api.identity.nodes.get(params.nodeId!);
        const revoked = api.identity.nodes.revoke(node.deviceId);
        for (const connection of api.server.connections()) {
          if (connection.peer?.role === 'node' && connection.peer.deviceId === node.deviceId) connection.close(CLOSE.policyViolation, 'device pairing was revoked');
        }
        await audit(caller!, 'node.revoke', revoked);
        return reply(200, { nodeId: node.deviceId, status: revoked.status });
      },
    },
  ];
}
