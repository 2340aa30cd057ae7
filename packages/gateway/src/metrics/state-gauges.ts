// Gauges read when Prometheus scrapes, not kept up to date on every change:
// pending approvals (counted inside SQLite), nodes by pairing state, and the
// connections open now by role.
import type { Identity } from '@corral/identity';
import { Gauge, type Registry } from 'prom-client';
import type { ApprovalStore } from '../approvals/store.ts';
import type { PeerKind } from '../server/inbound-budget.ts';

/** What the gauges read at each scrape. */
export interface GatewayState {
  approvals: ApprovalStore;
  identity: Identity;
  /** The kind of each open connection that completed its handshake. */
  connections: () => Iterable<PeerKind>;
}

/** Registers the scrape-time gauges of `state` in `registry`. */
export function registerStateGauges(registry: Registry, state: GatewayState): void {
  new Gauge({
    name: 'corral_approvals_pending',
    help: 'Approvals waiting for a human now (pending and not expired).',
    registers: [registry],
    collect() {
      this.set(state.approvals.pendingTotal());
    },
  });
  const kinds = (): Record<PeerKind, number> => {
    const counts: Record<PeerKind, number> = { operator: 0, agent: 0, node: 0 };
    for (const kind of state.connections()) counts[kind] += 1;
    return counts;
  };
  new Gauge({
    name: 'corral_connections',
    help: 'Protocol connections open now, by role (operator, agent, node).',
    labelNames: ['role'],
    registers: [registry],
    collect() {
      for (const [role, count] of Object.entries(kinds())) this.labels(role).set(count);
    },
  });
  new Gauge({
    name: 'corral_nodes_connected',
    help: 'Nodes connected now.',
    registers: [registry],
    collect() {
      this.set(kinds().node);
    },
  });
  new Gauge({
    name: 'corral_nodes',
    help: 'Nodes known to the identity store, by pairing state (paired, connected or not; pending: waiting for an operator to pair them).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      let paired = 0;
      let pending = 0;
      for (const node of state.identity.nodes.list()) {
        if (node.status === 'paired') paired += 1;
        else if (node.status === 'pending') pending += 1;
      }
      this.labels('paired').set(paired);
      this.labels('pending').set(pending);
    },
  });
}
