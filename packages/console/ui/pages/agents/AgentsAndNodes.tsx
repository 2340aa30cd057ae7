// Agent identities with the kill switch, Corral nodes, and nodes waiting to
// be paired. Changing anything is for admins; approvers only see.
import type { User } from '../../api/types.ts';
import { isAdmin } from '../../common/roles.ts';
import { AgentsTable } from './AgentsTable.tsx';
import { NodesTable } from './NodesTable.tsx';
import { PairingRequests } from './PairingRequests.tsx';

export function AgentsAndNodes({ user }: { user: User }) {
  const admin = isAdmin(user);
  return (
    <section aria-labelledby="agents-title">
      <h1 id="agents-title">Agents and nodes</h1>
      <AgentsTable admin={admin} />
      <PairingRequests admin={admin} />
      <NodesTable admin={admin} />
    </section>
  );
}
