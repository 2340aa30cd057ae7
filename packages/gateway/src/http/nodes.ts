// Nodes: the inventory with live state, pairing requests (with the address
// each came from), and the operator's decisions on them. Pairing state is
// @corral/identity's NodeRegistry, as for `corral nodes` and the protocol.
import type { NodeRecord } from '@corral/identity';
import { CLOSE } from '../protocol/limits.ts';
import { hasScope } from '../protocol/scopes.ts';
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
  const pending = (ref: string): NodeRecord | undefined => {
    const node = api.identity.nodes.find(ref);
    return node?.status === 'pending' ? node : undefined;
  };
  const resolved = (node: NodeRecord, decision: 'approved' | 'rejected') =>
    api.server.broadcast('node.pair.resolved', { requestId: node.deviceId, nodeId: node.deviceId, decision, ts: api.now() }, (p) => p.role === 'operator' && hasScope(p.scopes, 'operator.pairing'));
  const audit = (caller: Caller, action: string, node: NodeRecord) =>
    api.record({ actor: { kind: 'human', id: actingHuman(caller) }, action, resource: { kind: 'node', id: node.deviceId }, node: node.deviceId, details: { displayName: node.displayName, status: node.status } });
  // An operator's decision on a pairing request: approving pairs the device, rejecting revokes it.
  const decide = (verdict: 'approve' | 'reject'): Route => ({
    method: 'POST',
    path: `/api/nodes/pending/:requestId/${verdict}`,
    access: 'nodes.write',
    handle: async ({ params, caller }) => {
      const node = pending(params.requestId!);
      if (!node) return failure(404, 'not_found', { message: 'no such pairing request' });
      const decided = verdict === 'approve' ? api.identity.nodes.pair(node.deviceId, `human:${actingHuman(caller!)}`) : api.identity.nodes.revoke(node.deviceId);
      resolved(decided, verdict === 'approve' ? 'approved' : 'rejected');
      await audit(caller!, `node.pair.${verdict}`, decided);
      return reply(200, { requestId: node.deviceId, nodeId: node.deviceId, status: decided.status });
    },
  });
  return [
    {
      method: 'GET',
      path: '/api/nodes',
      access: 'nodes.read',
      handle: () =>
        reply(200, {
          nodes: api.inventory.list().map((n) => ({ nodeId: n.nodeId, displayName: n.displayName, platform: n.platform, status: n.status, connected: n.connected, paired: n.paired, commands: n.commands, ...(n.remoteIp ? { remoteIp: n.remoteIp } : {}), lastSeenMs: n.lastSeenAtMs ?? null })),
        }),
    },
    {
      method: 'GET',
      path: '/api/nodes/pending',
      access: 'nodes.read',
      handle: () => {
        const entries = new Map(api.inventory.list().map((n) => [n.nodeId, n]));
        const requests = api.identity.nodes
          .list()
          .filter((n) => n.status === 'pending')
          .map((n) => ({ requestId: n.deviceId, nodeId: n.deviceId, displayName: entries.get(n.deviceId)?.displayName ?? n.displayName, platform: entries.get(n.deviceId)?.platform ?? n.platform, commands: entries.get(n.deviceId)?.commands ?? [], remoteIp: addresses.get(n.deviceId) ?? null, ts: Date.parse(n.requestedAt) }));
        return reply(200, { requests });
      },
    },
    decide('approve'),
    decide('reject'),
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
