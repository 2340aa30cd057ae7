// `GET /api/status`: the numbers the console's header shows.
import { GATEWAY_VERSION } from '../server/server.ts';
import type { ApiContext } from './context.ts';
import { reply } from './respond.ts';
import type { Route } from './router.ts';

export function statusRoutes(api: ApiContext): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/status',
      access: 'status.read',
      handle: async () => {
        const nodes = api.inventory.list();
        const agents = api.identity.agents.list();
        let audit: { size: number; checkpoint: { treeSize: number; rootHash: string; time: string } | null } = { size: 0, checkpoint: null };
        if (api.audit) {
          const head = await api.audit.store.head();
          const last = head.checkpointSize > 0 ? await api.audit.store.checkpointFor(head.checkpointSize, true) : null;
          audit = { size: head.size, checkpoint: last ? { treeSize: last.size, rootHash: last.root, time: last.time } : null };
        }
        return reply(200, {
          version: GATEWAY_VERSION,
          gateway: { url: api.server.url },
          nodes: { connected: nodes.filter((n) => n.connected).length, paired: nodes.filter((n) => n.paired).length, pending: nodes.filter((n) => n.status === 'pending').length },
          agents: { active: agents.filter((a) => a.status === 'active').length, suspended: agents.filter((a) => a.status === 'suspended').length },
          approvals: { pending: api.approvals.pendingTotal() },
          audit,
        });
      },
    },
  ];
}
