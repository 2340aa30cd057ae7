// Agent identities with the kill switch, Corral nodes, and nodes waiting to
// be paired. Changing anything is for admins; approvers only see. Nodes come
// and go on their own, so the node lists are fetched again every few seconds.
import { useCallback, useEffect } from 'react';
import { api } from '../../api/client.ts';
import type { User } from '../../api/types.ts';
import { isAdmin } from '../../common/roles.ts';
import { useLoad } from '../../hooks/use-load.ts';
import { AgentsTable } from './AgentsTable.tsx';
import { NodesTable } from './NodesTable.tsx';
import { PairingRequests } from './PairingRequests.tsx';

const NODES_POLL_MS = 5_000;

export function AgentsAndNodes({ user }: { user: User }) {
  const admin = isAdmin(user);
  const nodes = useLoad(() => api.nodes(), []);
  const pending = useLoad(() => api.pendingNodes(), []);
  const reloadNodes = nodes.reload;
  const reloadPending = pending.reload;
  const reload = useCallback(() => {
    reloadNodes();
    reloadPending();
  }, [reloadNodes, reloadPending]);
  useEffect(() => {
    const timer = setInterval(reload, NODES_POLL_MS);
    return () => clearInterval(timer);
  }, [reload]);
  return (
    <section aria-labelledby="agents-title">
      <h1 id="agents-title">Agents and nodes</h1>
      <AgentsTable admin={admin} />
      <PairingRequests admin={admin} pending={pending} nodes={nodes.data ?? []} onDecided={reload} />
      <NodesTable admin={admin} nodes={nodes} />
    </section>
  );
}
