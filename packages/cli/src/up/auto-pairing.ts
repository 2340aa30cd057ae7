// The pairing `corral up` does itself: its own nodes, by device id, and
// nothing else.
import type { AuditLog } from '@corral/audit';
import type { Gateway } from '@corral/gateway';

/** Who `corral up` is in the audit log. */
export const UP_ACTOR = { kind: 'service', id: 'corral-up' } as const;

/**
 * Pairs the nodes `corral up` starts itself — and only those, by device id —
 * when they ask the gateway, approving the commands they declare (also when a
 * node paired by an earlier run declares more as it first connects), recording
 * each in the audit log as done by `corral up`. Once a node is connected with
 * nothing waiting, or an operator has decided its commands since, `corral up`
 * decides nothing more for it: what an operator changes stays changed.
 */
export class AutoPairing {
  readonly #gateway: Gateway;
  readonly #audit: AuditLog;
  readonly #expected = new Map<string, { reason: string; agents: readonly string[]; done: () => void; fail: (error: unknown) => void }>();

  constructor(gateway: Gateway, audit: AuditLog) {
    this.#gateway = gateway;
    this.#audit = audit;
    gateway.server.onPairingRequest((request) => {
      const expected = this.#expected.get(request.deviceId);
      // A pairing that fails (its record refused) fails the start that waits for it, rather than the process.
      if (expected && this.#decides(request.deviceId)) this.#pair(request.deviceId, expected.reason, expected.agents).then(expected.done, expected.fail);
    });
    gateway.server.on('ready', (connection) => {
      const deviceId = connection.peer?.role === 'node' ? connection.peer.deviceId : undefined;
      const expected = deviceId === undefined ? undefined : this.#expected.get(deviceId);
      if (expected && !this.#decides(deviceId!)) {
        this.#expected.delete(deviceId!);
        expected.done();
      }
    });
  }

  /**
   * Resolves once `deviceId` is connected with nothing waiting that is corral
   * up's to decide, or its request is approved; pairing it lets it ask for
   * `agents` (names), as a node serving another gateway does. A node corral up
   * paired before Corral kept the agents a node may ask for is given them now;
   * once named, they are the operator's to change.
   */
  async pair(deviceId: string, reason: string, agents: readonly string[] = []): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const known = this.#gateway.identity.nodes.find(deviceId);
    if (agents.length > 0 && known?.status === 'paired' && known.pairedBy === 'corral up' && known.agents === undefined) {
      const node = this.#gateway.identity.nodes.setAgents(deviceId, this.#gateway.identity.agents.idsOf(agents));
      await this.#audit.append({ actor: UP_ACTOR, action: 'node.agents', resource: { kind: 'node', id: deviceId }, node: deviceId, outcome: { status: 'success' }, details: { by: 'corral up', reason, agents: this.#gateway.identity.agents.namesOf(node.agents) } });
    }
    if (this.#decides(deviceId)) this.#pair(deviceId, reason, agents).then(resolve, reject);
    else if (known?.status === 'paired' && this.#gateway.inventory.list().some((n) => n.nodeId === deviceId && n.connected)) resolve();
    else this.#expected.set(deviceId, { reason, agents, done: resolve, fail: reject });
    return promise;
  }

  /**
   * Whether `deviceId` has a request corral up decides: a node not yet paired,
   * or one corral up itself paired last. A node an operator paired or narrowed
   * since (`corral nodes pair --commands`) is the operator's to decide.
   */
  #decides(deviceId: string): boolean {
    const node = this.#gateway.identity.nodes.find(deviceId);
    return node?.surfaceRequest !== undefined && (node.status === 'pending' || node.pairedBy === 'corral up');
  }

  async #pair(deviceId: string, reason: string, agents: readonly string[]): Promise<void> {
    this.#expected.delete(deviceId);
    const { identity } = this.#gateway;
    const first = identity.nodes.find(deviceId)?.status !== 'paired';
    // Named at the first pairing; a paired node asking for more commands keeps the agents it has.
    const node = identity.nodes.pair(deviceId, 'corral up', first && agents.length > 0 ? { agents: identity.agents.idsOf(agents) } : {});
    await this.#audit.append({ actor: UP_ACTOR, action: 'node.pair', resource: { kind: 'node', id: deviceId }, node: deviceId, outcome: { status: 'success' }, details: { by: 'corral up', reason, commands: node.commands, ...(node.agents ? { agents: identity.agents.namesOf(node.agents) } : {}) } });
  }
}
