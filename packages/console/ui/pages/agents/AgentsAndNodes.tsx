// Agent identities with the kill switch, Corral nodes, and nodes waiting to
// be paired. Changing anything is for admins; approvers only see. Nodes come
// and go on their own, so the node lists are fetched again every few seconds;
// after rows come, go, move or say something else, Resume, Approve, Reject and
// Revoke wait a moment.
import { useCallback, useEffect } from 'react';
import { api } from '../../api/client.ts';
import type { User } from '../../api/types.ts';
import { isAdmin } from '../../common/roles.ts';
import { useLoad } from '../../hooks/use-load.ts';
import { useSettled } from '../../hooks/use-settled.ts';
import { AgentsTable } from './AgentsTable.tsx';
import { NodesTable } from './NodesTable.tsx';
import { PairingRequests } from './PairingRequests.tsx';

const NODES_POLL_MS = 5_000;
/**
 * How long Resume, Approve, Reject and Revoke wait after anything on the page
 * comes, goes, moves or says something else: a refresh that removes the
 * request above slides the next one under the pointer, and a request whose
 * node asks again under another platform shifts its row; a click meant for
 * what was there must not pair a node the admin never read, revoke one they
 * did not mean, nor lift an agent's kill switch.
 */
const SETTLE_MS = 1_000;

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
  // The whole page: the agents sit above the pairing requests, and those above the nodes, so any list changing moves the rows below it.
  const { region, settled } = useSettled(SETTLE_MS);
  return (
    <section aria-labelledby="agents-title" ref={region}>
      <h1 id="agents-title">Agents and nodes</h1>
      <AgentsTable admin={admin} settled={settled} />
      <PairingRequests admin={admin} pending={pending} nodes={nodes.data ?? []} settled={settled} onDecided={reload} />
      <NodesTable admin={admin} nodes={nodes} settled={settled} />
    </section>
  );
}
