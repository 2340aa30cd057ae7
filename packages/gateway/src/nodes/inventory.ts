// Node inventory and pairing over the protocol: `node.list`, `node.describe`,
// `node.pair.list|approve|reject|remove`, the `node.pair.requested|resolved`
// events, and the live route to each connected node. Pairing state is
// packages/identity's NodeRegistry (SQLite in the state directory), so it
// survives a restart and `corral nodes pair` works with or without a gateway.
import {
  validateNodeDescribeParams,
  validateNodeEventParams,
  validateNodePendingAckParams,
  validateNodePendingDrainParams,
  validateNodeListParams,
  validateNodePairApproveParams,
  validateNodePairListParams,
  validateNodePairRejectParams,
  validateNodePairRemoveParams,
} from '@openclaw/gateway-protocol';
import type { AuditEventInput } from '@corral/audit';
import { IdentityError, printable, type NodeRecord } from '@corral/identity';
import { GatewayError } from '../errors.ts';
import { CLOSE } from '../protocol/limits.ts';
import { hasScope, type OperatorScope } from '../protocol/scopes.ts';
import type { Connection, Peer } from '../server/connection.ts';
import { busyFailure } from '../server/handshake.ts';
import type { GatewayServer } from '../server/server.ts';
import type { NodeSurface, SurfaceStore } from '../store/store.ts';
import { WRITE_LOCK_WAIT_MS } from '../store/write-lock.ts';

/**
 * Declared commands that run programs on the node, or reach its files, browser
 * or exec approvals: approving a surface with any of them needs
 * operator.admin, as upstream (2026.9.6: its docs/gateway/pairing.md list, and
 * terminal.upload, admin-only in its code too).
 */
export const ADMIN_COMMANDS = ['system.run', 'system.run.prepare', 'system.which', 'browser.proxy', 'browser.proxy.upload.v1', 'fs.listDir', 'terminal.upload', 'system.execApprovals.get', 'system.execApprovals.set'];

/**
 * The scopes approving a node's command surface needs, as upstream's
 * `node.pair.approve` asks them: operator.pairing for a surface of no
 * commands; with operator.write for ordinary commands (the caller lets
 * operators relay commands to the node); with operator.admin when any is in
 * ADMIN_COMMANDS. operator.admin covers the other two.
 */
export function approvalScopes(commands: readonly string[]): OperatorScope[] {
  if (commands.some((c) => ADMIN_COMMANDS.includes(c))) return ['operator.pairing', 'operator.admin'];
  if (commands.length > 0) return ['operator.pairing', 'operator.write'];
  return ['operator.pairing'];
}

/** How many devices the announced pairing requests are remembered for. */
export const MAX_ANNOUNCED = 10_000;

/** One row of `node.list`. */
export interface NodeListEntry {
  nodeId: string;
  /** The name it is known and found by: the one it gave when it asked to be paired (see NodeInventory#find). */
  displayName: string;
  /**
   * The name it gives itself on its connection (or gave on its last), when
   * that is another: its word alone, shown, never used to find it. A paired
   * node renaming itself to another's name takes nothing from that node.
   */
  claimedDisplayName?: string;
  platform: string;
  paired: boolean;
  status: NodeRecord['status'];
  connected: boolean;
  /** The commands it may be sent: those an operator approved (and, while it is connected, it declared). */
  commands: string[];
  /** Commands it declared that wait for an operator (a pairing request). */
  requestedCommands?: string[];
  caps: string[];
  connectedAtMs?: number;
  lastSeenAtMs?: number;
  pairedAtMs?: number;
  remoteIp?: string;
}

/** One pending pairing request of `node.pair.list`: a node to pair, or a paired node asking for more commands. */
export interface PairingEntry {
  requestId: string;
  nodeId: string;
  /** The name it will be known by once paired (as NodeListEntry's). */
  displayName: string;
  /** The name it gives itself now, when that is another (as NodeListEntry's). */
  claimedDisplayName?: string;
  platform: string;
  /** The commands approving it grants. */
  commands: string[];
  /** For a paired node, what it may run now. */
  approvedCommands?: string[];
  /** What approving it needs (approvalScopes), as upstream's rows say so that a client can tell before it tries. */
  requiredApproveScopes: OperatorScope[];
  paired: boolean;
  ts: number;
  remoteIp?: string;
}

/** Where a command for a node goes, and which commands it may be sent. */
export interface NodeRoute {
  connection: Connection;
  node: NodeRecord;
  commands: string[];
}

export class NodeInventory {
  readonly #server: GatewayServer;
  readonly #surfaces: SurfaceStore;
  readonly #live = new Map<string, Connection>();
  /** The request each device was last announced with, so reconnects do not announce it again. */
  readonly #announced = new Map<string, string>();
  readonly #now: () => number;
  readonly #writeWaitMs: number;

  readonly #record: (event: AuditEventInput) => Promise<unknown>;

  /**
   * `record` appends to the audit log: every pairing decision and removal
   * made through the gateway is recorded. `writeWaitMs` (default
   * WRITE_LOCK_WAIT_MS) is how long a declared surface waits, with timers,
   * for another process's lock on gateway.db before it is given up.
   */
  constructor(server: GatewayServer, surfaces: SurfaceStore, options: { now?: () => number; record?: (event: AuditEventInput) => Promise<unknown>; writeWaitMs?: number } = {}) {
    this.#server = server;
    this.#surfaces = surfaces;
    this.#now = options.now ?? Date.now;
    this.#writeWaitMs = options.writeWaitMs ?? WRITE_LOCK_WAIT_MS;
    this.#record = options.record ?? (async () => undefined);
    server.on('ready', (connection) => this.#attach(connection));
    server.on('closed', (connection) => {
      const deviceId = connection.peer?.deviceId;
      if (connection.peer?.role === 'node' && deviceId && this.#live.get(deviceId) === connection) this.#live.delete(deviceId);
    });
    server.onPairingRequest((request) => {
      const announce = (): void => {
        // Announce a request once, not on every reconnect attempt.
        if (this.#announced.get(request.deviceId) === request.requestId) return;
        // Any genuine device (a fresh key costs nothing) adds one: forget the oldest, which at worst is announced again.
        this.#announced.delete(request.deviceId);
        if (this.#announced.size >= MAX_ANNOUNCED) this.#announced.delete(this.#announced.keys().next().value!);
        this.#announced.set(request.deviceId, request.requestId);
        const node = server.identity.nodes.find(request.deviceId);
        if (node?.surfaceRequest) server.broadcast('node.pair.requested', this.#pairingEntry(node), (peer) => hasScope(peer.scopes, 'operator.pairing'));
      };
      // Announced once its surface is stored (the announcement shows it). The node was refused already and retries:
      // while another process holds gateway.db past the wait, nothing is stored or announced, and its next attempt does both.
      const stored = this.#surfaces.record({ deviceId: request.deviceId, displayName: request.displayName, platform: request.platform, commands: request.commands, caps: request.caps, lastSeenAt: this.#now(), ...(request.remoteAddress ? { remoteIp: displayAddress(request.remoteAddress) } : {}) }, { waitMs: this.#writeWaitMs });
      if (stored === undefined) announce();
      else stored.then(announce).catch(() => undefined);
    });
    // A waiting node dropped as stale leaves nothing behind here: its declared surface would otherwise be kept for ever,
    // one row per key a token holder ever made, and if it comes back its request is announced again.
    // A surface left while another process holds gateway.db past the wait is shown nowhere (lists start from identity's nodes) and is replaced if the device returns.
    server.identity.nodes.onPendingExpired((deviceIds) => {
      for (const deviceId of deviceIds) this.#announced.delete(deviceId);
      void Promise.resolve(this.#surfaces.forget(deviceIds, { waitMs: this.#writeWaitMs })).catch(() => undefined);
    });
    this.#register();
  }

  /**
   * The live connection of a paired node, re-checking its pairing (a node
   * revoked from the CLI while connected is cut off here), and the commands
   * it may be sent: declared on this connection and approved by an operator,
   * read afresh (an approval from the CLI counts at once). Throws
   * GATEWAY_NOT_PAIRED (with wire NOT_PAIRED) or GATEWAY_CONNECTION_CLOSED (wire UNAVAILABLE).
   */
  route(nodeRef: string): NodeRoute {
    const node = this.#find(nodeRef);
    if (!node) throw new GatewayError('GATEWAY_NOT_PAIRED', 'unknown node', { wire: { code: 'INVALID_REQUEST', message: 'unknown node' } });
    const connection = this.#live.get(node.deviceId);
    if (node.status !== 'paired') {
      connection?.close(CLOSE.policyViolation, 'device pairing was revoked');
      throw new GatewayError('GATEWAY_NOT_PAIRED', 'the node is not paired', { wire: { code: 'NOT_PAIRED', message: 'node is not paired' } });
    }
    if (!connection || connection.phase !== 'ready') throw new GatewayError('GATEWAY_CONNECTION_CLOSED', 'the node is not connected', { wire: { code: 'UNAVAILABLE', message: 'node not connected', retryable: true } });
    return { connection, node, commands: servable(connection, node) };
  }

  /**
   * Re-checks the pairing of the node on `connection` before it acts (a node
   * unpaired from the CLI, another process, stays connected until then).
   * Throws GATEWAY_DEVICE_REVOKED (wire NOT_PAIRED); the server then closes the connection.
   */
  assertPaired(connection: Connection): void {
    if (this.#server.identity.nodes.find(connection.peer!.deviceId!)?.status === 'paired') return;
    throw new GatewayError('GATEWAY_DEVICE_REVOKED', 'the node was unpaired while connected', { wire: { code: 'NOT_PAIRED', message: 'device pairing was revoked' } });
  }

  /**
   * Closes the connection of every node no longer paired: one unpaired from
   * the CLI (another process) is otherwise cut off only when it next acts.
   * The gateway calls it every few seconds.
   */
  cutOffUnpaired(): void {
    for (const [deviceId, connection] of this.#live) {
      if (this.#server.identity.nodes.find(deviceId)?.status !== 'paired') connection.close(CLOSE.policyViolation, 'device pairing was revoked');
    }
  }

  /** Every known node with its live state. */
  list(): NodeListEntry[] {
    return this.#server.identity.nodes.list().map((node) => this.#entry(node));
  }

  /** Requests waiting for an operator: nodes to pair, and paired nodes that declared more commands. */
  requests(): PairingEntry[] {
    return this.#server.identity.nodes
      .list()
      .filter((n) => n.surfaceRequest !== undefined)
      .map((n) => this.#pairingEntry(n));
  }

  /**
   * An operator's decision on request `requestId`. Approving grants the
   * commands the request names (pairing a pending node); rejecting revokes a
   * pending node and leaves a paired one with what it had. `scopes` are those
   * of a protocol caller: approving needs approvalScopes() of the commands the
   * request names (operator.write for any, operator.admin for one that runs
   * programs), as upstream. An approval is recorded before it is made
   * (a log that cannot be written pairs nothing); a rejection is made, then
   * recorded. Throws GATEWAY_PARAMS_INVALID (no such request, or no longer
   * the node's current one), GATEWAY_SCOPE_MISSING, GATEWAY_INTERNAL (the
   * log refused the record: wire UNAVAILABLE, retryable when nothing was
   * decided).
   */
  async decide(requestId: string, verdict: 'approve' | 'reject', by: AuditEventInput['actor'], scopes?: readonly string[]): Promise<{ request: PairingEntry; node: NodeRecord }> {
    const node = this.#server.identity.nodes.byRequest(requestId);
    if (!node?.surfaceRequest) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'no such pairing request', { wire: { code: 'INVALID_REQUEST', message: 'unknown requestId' } });
    const request = this.#pairingEntry(node);
    const missing = verdict === 'approve' && scopes !== undefined ? approvalScopes(request.commands).find((scope) => !hasScope(scopes, scope)) : undefined;
    if (missing !== undefined) {
      throw new GatewayError('GATEWAY_SCOPE_MISSING', `approving this node needs ${missing}`, { wire: { code: 'FORBIDDEN', message: `missing scope: ${missing}`, details: { code: 'MISSING_SCOPE', missingScope: missing, requiredScopes: missing === 'operator.pairing' ? ['operator.pairing'] : ['operator.pairing', missing] } } });
    }
    const identity = this.#server.identity.nodes;
    const record = (status: string, outcome: AuditEventInput['outcome']) =>
      this.#recorded({ actor: by, action: `node.pair.${verdict}`, resource: { kind: 'node', id: node.deviceId }, node: node.deviceId, outcome, details: { displayName: node.displayName, status, requestId, commands: request.commands, ...(request.approvedCommands ? { approvedBefore: request.approvedCommands } : {}) } }, verdict === 'approve');
    let decided: NodeRecord;
    if (verdict === 'approve') {
      // What grants is recorded before it grants: an approval the log refuses pairs nothing, and may be made again.
      await record('paired', { status: 'success' });
      try {
        decided = identity.pair(node.deviceId, by.id, { requestId });
      } catch (error) {
        if (!(error instanceof IdentityError)) throw error;
        // The node declared another surface while the record was written, or another process held the identity store: nothing was granted, and the log says so.
        await record(node.status, { status: 'failure', detail: error.code });
        // A busy store refused nothing: the operator approves again in a moment.
        const busy = busyFailure(error);
        if (busy) throw busy;
        throw new GatewayError('GATEWAY_PARAMS_INVALID', 'no such pairing request', { cause: error, wire: { code: 'INVALID_REQUEST', message: 'unknown requestId' } });
      }
    } else decided = identity.decline(node.deviceId, { requestId });
    this.#announced.delete(node.deviceId);
    if (decided.status === 'revoked') this.#live.get(node.deviceId)?.close(CLOSE.policyViolation, 'device pairing was revoked');
    this.#server.broadcast('node.pair.resolved', { requestId, nodeId: node.deviceId, decision: verdict === 'approve' ? 'approved' : 'rejected', ts: this.#now() }, (p) => p.role === 'operator' && hasScope(p.scopes, 'operator.pairing'));
    // What takes away takes effect even when its record is refused (the caller is told so).
    if (verdict === 'reject') await record(decided.status, { status: 'success' });
    return { request, node: decided };
  }

  /**
   * Appends `event`; a refusal is GATEWAY_INTERNAL (wire UNAVAILABLE),
   * retryable only when nothing was decided yet (`undecided`).
   */
  async #recorded(event: AuditEventInput, undecided: boolean): Promise<void> {
    try {
      await this.#record(event);
    } catch (error) {
      throw new GatewayError('GATEWAY_INTERNAL', 'the audit log refused the event', { cause: error, wire: undecided ? { code: 'UNAVAILABLE', message: 'audit unavailable: nothing was decided', retryable: true } : { code: 'UNAVAILABLE', message: 'decided, but the audit log refused its record' } });
    }
  }

  /**
   * A node that completed its handshake becomes routable, and what it
   * declared is stored: at once while gateway.db's write lock is free, else
   * with timers (write-lock.ts), the gateway serving everyone meanwhile.
   * Nothing relies on the stored surface while the node is connected (routes
   * and lists read its live declaration). Written in the tick the lock is
   * taken, and not at all when a newer connection of the device is live by
   * then (its own write follows). Past the wait nothing is written and the
   * connection is closed 1013 (try again later): the node reconnects and
   * declares its surface again. A write made at once that fails throws (the
   * server closes the connection 1011); one that waited and then fails
   * closes it 1011 here.
   */
  #attach(connection: Connection): void {
    const peer = connection.peer!;
    const deviceId = peer.deviceId;
    if (peer.role !== 'node' || !deviceId) return;
    this.#live.set(deviceId, connection);
    const stored = this.#surfaces.record(this.#declared(connection, this.#server.identity.nodes.get(deviceId), this.#now()), {
      waitMs: this.#writeWaitMs,
      unless: () => this.#live.has(deviceId) && this.#live.get(deviceId) !== connection,
    });
    stored?.catch((error: unknown) => {
      if (this.#live.get(deviceId) !== connection) return;
      // Any other failure (a store that cannot be written) is the gateway's own fault, as when the write is made at once.
      if (error instanceof GatewayError && error.code === 'GATEWAY_BUSY') connection.close(CLOSE.tryAgainLater, 'gateway busy: try again');
      else connection.close(CLOSE.internal, 'internal error');
    });
  }

  /** What the node on `connection` declared, as stored and listed. */
  #declared(connection: Connection, node: NodeRecord, lastSeenAt: number): NodeSurface {
    const peer = connection.peer!;
    return { deviceId: node.deviceId, displayName: peer.client.displayName ?? node.displayName, platform: peer.client.platform, commands: peer.commands, caps: peer.caps, lastSeenAt, ...(connection.remoteAddress ? { remoteIp: displayAddress(connection.remoteAddress) } : {}) };
  }

  /**
   * The node `ref` names: by its device id, else by the name it is known by
   * (NodeRecord.displayName, given when it asked to be paired), never by the
   * one it gives on its connection now, which a paired node's key and token
   * alone can set to another's. A name one paired node holds names that
   * node, whatever devices waiting to be paired took (any holder of the
   * gateway token can make one); a name no paired node holds names the one
   * other node holding it. Undefined when none does. A name two or more hold
   * names none of them, never one picked: throws GATEWAY_PARAMS_INVALID
   * (wire INVALID_REQUEST, details NODE_AMBIGUOUS with their ids).
   */
  #find(ref: unknown): NodeRecord | undefined {
    if (typeof ref !== 'string') return undefined;
    const nodes = this.#server.identity.nodes;
    const byId = nodes.find(ref);
    if (byId) return byId;
    const named = nodes.list().filter((n) => n.displayName === ref);
    const paired = named.filter((n) => n.status === 'paired');
    const holders = paired.length > 0 ? paired : named;
    if (holders.length <= 1) return holders[0];
    const nodeIds = holders.map((n) => n.deviceId);
    throw new GatewayError('GATEWAY_PARAMS_INVALID', `${holders.length} nodes are known by that name`, { wire: { code: 'INVALID_REQUEST', message: `ambiguous node: ${holders.length} nodes are known by that name; give the node id`, details: { code: 'NODE_AMBIGUOUS', nodeIds } } });
  }

  #entry(node: NodeRecord): NodeListEntry {
    const live = this.#live.get(node.deviceId);
    const connected = live !== undefined && live.phase === 'ready' && node.status === 'paired';
    const stored = this.#surfaces.get(node.deviceId);
    // A connected node is shown as it declared itself on its connection, stored or not yet (its write may wait for the lock).
    const surface = connected ? this.#declared(live, node, stored?.lastSeenAt ?? live.peer!.connectedAt) : stored;
    return {
      nodeId: node.deviceId,
      ...names(node, surface),
      platform: surface?.platform ?? node.platform,
      paired: node.status === 'paired',
      status: node.status,
      connected,
      commands: connected ? servable(live, node) : node.commands,
      ...(node.surfaceRequest ? { requestedCommands: node.surfaceRequest.commands } : {}),
      caps: surface?.caps ?? [],
      ...(connected ? { connectedAtMs: live.peer!.connectedAt, remoteIp: displayAddress(live.remoteAddress) } : {}),
      ...(surface ? { lastSeenAtMs: surface.lastSeenAt } : {}),
      ...(node.pairedAt ? { pairedAtMs: Date.parse(node.pairedAt) } : {}),
    };
  }

  #pairingEntry(node: NodeRecord): PairingEntry {
    const surface = this.#surfaces.get(node.deviceId);
    const paired = node.status === 'paired';
    return {
      requestId: node.surfaceRequest!.requestId,
      nodeId: node.deviceId,
      ...names(node, surface),
      platform: surface?.platform ?? node.platform,
      commands: node.surfaceRequest!.commands,
      ...(paired ? { approvedCommands: node.commands } : {}),
      requiredApproveScopes: approvalScopes(node.surfaceRequest!.commands),
      paired,
      ts: Date.parse(node.surfaceRequest!.at),
      ...(surface?.remoteIp ? { remoteIp: surface.remoteIp } : {}),
    };
  }

  #register(): void {
    const server = this.#server;
    // Node-role housekeeping upstream node hosts call; Corral records nothing from them yet.
    server.method('node.event', {
      role: 'node',
      validate: validateNodeEventParams,
      handler: (params) => ({ ok: true, event: (params as { event: string }).event, handled: false, reason: 'not used by Corral' }),
    });
    server.method('node.pending.drain', { role: 'node', validate: validateNodePendingDrainParams, handler: (_p, { peer }) => ({ nodeId: peer.deviceId ?? '', revision: 0, items: [], hasMore: false }) });
    server.method('node.pending.pull', { role: 'node', handler: (_p, { peer }) => ({ nodeId: peer.deviceId ?? '', revision: 0, items: [], hasMore: false }) });
    server.method('node.pending.ack', { role: 'node', validate: validateNodePendingAckParams, handler: () => ({ ok: true }) });
    server.method('skills.bins', { role: 'node', handler: () => ({ bins: [] }) });
    for (const name of ['node.pluginTools.update', 'node.skills.update', 'node.pluginSurface.refresh', 'node.runnerInventory.update']) server.method(name, { role: 'node', handler: () => ({ ok: true }) });
    server.method('node.list', { role: 'operator', scopes: ['operator.read'], validate: validateNodeListParams, handler: () => ({ ts: this.#now(), nodes: this.list().filter((n) => n.status === 'paired') }) });
    server.method('node.describe', {
      role: 'operator',
      scopes: ['operator.read'],
      validate: validateNodeDescribeParams,
      handler: (params) => {
        const node = this.#find((params as { nodeId: string }).nodeId);
        if (!node) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'unknown node', { wire: { code: 'INVALID_REQUEST', message: 'unknown nodeId' } });
        return { ts: this.#now(), ...this.#entry(node) };
      },
    });
    server.method('node.pair.list', {
      role: 'operator',
      scopes: ['operator.pairing'],
      validate: validateNodePairListParams,
      handler: () => ({ pending: this.requests(), paired: this.list().filter((n) => n.status === 'paired') }),
    });
    server.method('node.pair.approve', {
      role: 'operator',
      scopes: ['operator.pairing'],
      validate: validateNodePairApproveParams,
      handler: async (params, { peer }) => {
        const { requestId } = params as { requestId: string };
        const { node } = await this.decide(requestId, 'approve', operatorActor(peer), peer.scopes);
        return { requestId, node: this.#entry(node) };
      },
    });
    server.method('node.pair.reject', {
      role: 'operator',
      scopes: ['operator.pairing'],
      validate: validateNodePairRejectParams,
      handler: async (params, { peer }) => {
        const { requestId } = params as { requestId: string };
        const { node } = await this.decide(requestId, 'reject', operatorActor(peer));
        return { requestId, nodeId: node.deviceId };
      },
    });
    server.method('node.pair.remove', {
      role: 'operator',
      scopes: ['operator.pairing'],
      validate: validateNodePairRemoveParams,
      handler: async (params, { peer }) => {
        const node = this.#find((params as { nodeId: string }).nodeId);
        if (!node) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'unknown node', { wire: { code: 'INVALID_REQUEST', message: 'unknown nodeId' } });
        try {
          server.identity.nodes.revoke(node.deviceId);
        } catch (error) {
          // Not revoked while another process holds the store: said so (retryable), never answered as removed.
          if (!(error instanceof IdentityError) || error.code === 'IDENTITY_STORE_BUSY') throw error;
        }
        this.#live.get(node.deviceId)?.close(CLOSE.policyViolation, 'device pairing was revoked');
        // Removed even when its record is refused, and the caller is told so (as for a rejection).
        await this.#recorded({ actor: operatorActor(peer), action: 'node.revoke', resource: { kind: 'node', id: node.deviceId }, node: node.deviceId, outcome: { status: 'success' }, details: { displayName: node.displayName, status: 'revoked' } }, false);
        return { nodeId: node.deviceId, removed: true };
      },
    });
  }
}

/** Who acts over the protocol: the operator's device when it has one, else its client (every operator holds the shared token). */
function operatorActor(peer: Peer): AuditEventInput['actor'] {
  return { kind: 'human', id: peer.deviceId ? `device:${peer.deviceId}` : `operator:${printable(peer.client.id, 100)}` };
}

/**
 * The name a node is known by, and the one it gives itself (on its
 * connection, or its last) when that is another: as upstream lists a paired
 * node by its pairing's name first, so `openclaw nodes invoke --node NAME`,
 * which finds the node by the names node.list gives, finds the node paired
 * under that name, never one that renamed itself to it.
 */
function names(node: NodeRecord, surface: NodeSurface | undefined): { displayName: string; claimedDisplayName?: string } {
  const claimed = surface?.displayName;
  return { displayName: node.displayName, ...(claimed !== undefined && claimed !== node.displayName ? { claimedDisplayName: claimed } : {}) };
}

/** The commands `connection` may be sent: those its node declared on it that an operator approved. */
function servable(connection: Connection, node: NodeRecord): string[] {
  return connection.peer!.commands.filter((c) => node.commands.includes(c));
}

/** An IPv4 peer of a dual-stack listener shows as `::ffff:a.b.c.d`; people know it as a.b.c.d. */
function displayAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
