import { createHash, randomBytes } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { storedNames } from './db.ts';
import { verifyDeviceProof, type DeviceProof } from './device.ts';
import { IdentityError } from './errors.ts';
import { parseTtl } from './ttl.ts';

export type NodeStatus = 'pending' | 'paired' | 'revoked';

export interface NodeRecord {
  deviceId: string;
  publicKey: string;
  displayName: string;
  platform: string;
  status: NodeStatus;
  requestedAt: string;
  pairedAt?: string;
  pairedBy?: string;
  /** The commands an operator approved this node to serve: none before it is paired. */
  commands: string[];
  /** Commands the node declared beyond those, waiting for an operator (for a pending node: everything it declared). */
  surfaceRequest?: SurfaceRequest;
  /**
   * The agents (ids) an operator lets this node ask the control plane for
   * (`corral.run.authorize`): a node serving another gateway says which agent
   * asks, and may name only these. Undefined while none was ever named (it
   * may ask for none then either), and before it is paired.
   */
  agents?: string[];
}

/** A command surface a node asked for that no operator has decided on yet. */
export interface SurfaceRequest {
  /** Names this surface of this node: a node declaring another one makes another request, so a decision is never taken for a surface the operator did not see. */
  requestId: string;
  commands: string[];
  at: string;
}

/** A connect request's claims that the device signature covers. */
export interface NodeConnect {
  device: DeviceProof;
  client: { id: string; mode: string; platform?: string; deviceFamily?: string; displayName?: string };
  role: string;
  scopes: readonly string[];
  /** `auth.token ?? auth.deviceToken ?? auth.bootstrapToken ?? ""`. */
  token?: string;
  /** The commands the node declares it serves. The device signature does not cover them; the challenge binds them to this connection. */
  commands?: readonly string[];
}

interface Row {
  device_id: string;
  public_key: string;
  display_name: string;
  platform: string;
  status: NodeStatus;
  requested_at: number;
  paired_at: number | null;
  paired_by: string | null;
  commands: string | null;
  requested_commands: string | null;
  request_id: string | null;
  surface_requested_at: number | null;
  declined_request_id: string | null;
  agents: string | null;
}

const CHALLENGE_TTL_MS = 15_000;
const MAX_COMMANDS = 256;
/** Nodes whose lookups are kept at once (the cache is emptied past it). */
const MAX_CACHED = 10_000;
const MAX_COMMAND_LENGTH = 200;
/** Agents one node may ask for: a node serves one machine's agents, a few processes' worth. */
export const MAX_NODE_AGENTS = 256;
const AGENT_ID = /^agt_[0-9a-f]{20}$/;
const MAX_OPEN_CHALLENGES = 10_000;
/**
 * Nodes never paired that wait for an operator at once. Anyone holding the
 * gateway token can make device keys for nothing, and each new one would
 * otherwise add a row to this store and a line to every operator's pending
 * list. 256 is more than an operator reviews at a sitting, and keeps the
 * waiting rows under ~13 MB even when each declares 256 commands of 200
 * characters. A fleet enrolled in a larger wave only waits: a node refused
 * for it tries again (Corral's node host and upstream's, at least every 30 s)
 * and gets in as operators pair or reject the others, or as they go stale.
 */
export const MAX_PENDING_NODES = 256;
/**
 * A node waiting to be paired that has not tried to connect for this long has
 * gone away (one still waiting tries at least every 30 s): its request is
 * dropped when a new device asks, and made again, under the same request id,
 * if it comes back. Paired and revoked nodes never expire.
 */
export const PENDING_NODE_TTL_MS = parseTtl('10m') * 1000;
/** How often a waiting node's connects refresh its request, at most: one write a minute, not one per attempt. */
const PENDING_SEEN_EVERY_MS = 60_000;

/**
 * Nodes known to Corral. A connection gets a one-time challenge; the node
 * signs it with its device key; a device seen for the first time is recorded
 * as pending and refused (IDENTITY_NODE_NOT_PAIRED) until an operator pairs it.
 * Pairing approves the commands the node declared then; a paired node that
 * later declares more is admitted with the approved ones only, its new
 * surface waiting as a request of its own (as upstream's gateway does).
 */
export class NodeRegistry {
  readonly #db: DatabaseSync;
  /** Each statement prepared once: a connect or a command's lookup would otherwise leave one behind for the collector, native memory it does not see. */
  readonly #statements = new Map<string, StatementSync>();
  /**
   * Full-id lookups, kept while the store is unchanged (a governed command
   * looks its node up at each step): PRAGMA data_version moves when another
   * connection commits — `corral nodes revoke` from another process — and
   * this registry's own writes empty it.
   */
  readonly #cache = new Map<string, NodeRecord | undefined>();
  #cachedVersion = -1;
  readonly #now: () => number;
  readonly #challenges = new Map<string, number>();
  readonly #expiredListeners = new Set<(deviceIds: readonly string[]) => void>();

  constructor(db: DatabaseSync, now: () => number = Date.now) {
    this.#db = db;
    this.#now = now;
  }

  /**
   * Calls `listener` with the ids of the waiting nodes this registry drops as
   * stale, so what is kept of them elsewhere (the surface a gateway recorded,
   * the request it announced) goes with them. A listener that throws is
   * ignored: the connecting node is not refused for it.
   */
  onPendingExpired(listener: (deviceIds: readonly string[]) => void): void {
    this.#expiredListeners.add(listener);
  }

  /** A fresh nonce for one connection (the `connect.challenge` event's payload). Each nonce is accepted once, within 15 s. */
  challenge(): { nonce: string; ts: number } {
    const now = this.#now();
    // Oldest first (insertion order): stop at the first still open, so a challenge costs the same however many wait.
    // One left behind by a clock set back is still refused by authenticate's own age check, and let go in turn.
    for (const [n, at] of this.#challenges) {
      if (now - at <= CHALLENGE_TTL_MS) break;
      this.#challenges.delete(n);
    }
    if (this.#challenges.size >= MAX_OPEN_CHALLENGES) {
      const oldest = this.#challenges.keys().next().value;
      if (oldest !== undefined) this.#challenges.delete(oldest);
    }
    const nonce = randomBytes(24).toString('base64url');
    this.#challenges.set(nonce, now);
    return { nonce, ts: now };
  }

  /**
   * Gives back the challenge of a connection that has ended (or no longer
   * needs it): it is no longer accepted, and no longer counts toward the
   * MAX_OPEN_CHALLENGES kept. A gateway releases each connection's challenge
   * when it closes, so those kept are those of its open connections (at most
   * its maxConnections), not every one handed out in the last 15 s: a flood
   * of connections opened and closed would otherwise fill the 10,000 kept
   * and push out the challenge of a node still connecting. A nonce not kept
   * (spent, expired, released already, never given) is ignored.
   */
  release(nonce: string): void {
    if (typeof nonce !== 'string') return;
    this.#challenges.delete(nonce);
  }

  /**
   * Authenticates a node's connect request against the challenge it was
   * given. The challenge is spent whatever the outcome, so a captured proof
   * cannot be replayed. A device seen for the first time is recorded as
   * pending when fewer than MAX_PENDING_NODES wait, once the requests gone
   * stale (PENDING_NODE_TTL_MS) are dropped. Throws IDENTITY_DEVICE_* (not
   * genuine), IDENTITY_NODE_NOT_PAIRED (genuine, waiting for an operator),
   * IDENTITY_NODE_PENDING_FULL (genuine and new, not recorded: too many
   * wait), IDENTITY_NODE_REVOKED.
   */
  authenticate(connect: NodeConnect, nonce: string): NodeRecord {
    const issuedAt = this.#challenges.get(nonce);
    this.#challenges.delete(nonce);
    const now = this.#now();
    const expected = issuedAt !== undefined && now - issuedAt <= CHALLENGE_TTL_MS ? nonce : `spent:${randomBytes(8).toString('hex')}`;
    // The device as its proof was checked, read once: connect.device read again could name another.
    const { publicKey, deviceId } = verifyDeviceProof(connect.device, {
      clientId: connect.client.id,
      clientMode: connect.client.mode,
      role: connect.role,
      scopes: connect.scopes,
      token: connect.token ?? '',
      ...(connect.client.platform !== undefined ? { platform: connect.client.platform } : {}),
      ...(connect.client.deviceFamily !== undefined ? { deviceFamily: connect.client.deviceFamily } : {}),
      expectedNonce: expected,
      now,
    });
    const declared = surfaceOf(connect.commands ?? []);
    const existing = this.find(deviceId);
    if (!existing) this.#recordPending(connect, deviceId, publicKey, now);
    else if (existing.status === 'pending') this.#statement("UPDATE nodes SET seen_at = ? WHERE device_id = ? AND status = 'pending' AND IFNULL(seen_at, requested_at) < ?").run(now, existing.deviceId, now - PENDING_SEEN_EVERY_MS);
    const node = existing ?? this.get(deviceId);
    if (node.status === 'revoked') throw new IdentityError('IDENTITY_NODE_REVOKED', 'this node was unpaired');
    this.#requestSurface(node, declared);
    // Read again: an operator in another process may have unpaired it since the read above.
    const current = this.get(node.deviceId);
    if (current.status === 'revoked') throw new IdentityError('IDENTITY_NODE_REVOKED', 'this node was unpaired');
    if (current.status === 'pending') throw new IdentityError('IDENTITY_NODE_NOT_PAIRED', 'this node waits for an operator to pair it');
    return current;
  }

  /**
   * Records a genuine device seen for the first time as waiting to be paired:
   * first dropping the requests gone stale, then only while fewer than
   * MAX_PENDING_NODES wait, counted in the same statement that inserts, so
   * the cap holds with other processes inserting too. Waiting requests still
   * fresh are never dropped to make room: a flood of new keys is refused, not
   * let push out the nodes an operator is about to pair. Throws
   * IDENTITY_NODE_PENDING_FULL.
   */
  #recordPending(connect: NodeConnect, deviceId: string, publicKey: string, now: number): void {
    this.#cache.clear();
    const expired = (this.#statement("DELETE FROM nodes WHERE status = 'pending' AND IFNULL(seen_at, requested_at) < ? RETURNING device_id").all(now - PENDING_NODE_TTL_MS) as Array<{ device_id: string }>).map((r) => r.device_id);
    const { changes } = this.#statement(
      "INSERT OR IGNORE INTO nodes (device_id, public_key, display_name, platform, status, requested_at, seen_at) SELECT ?, ?, ?, ?, 'pending', ?, ? WHERE (SELECT count(*) FROM nodes WHERE status = 'pending') < ?",
    ).run(deviceId, publicKey, printable(connect.client.displayName ?? deviceId.slice(0, 12), 200), printable(connect.client.platform ?? '', 64), now, now, MAX_PENDING_NODES);
    if (expired.length > 0) {
      for (const listener of this.#expiredListeners) {
        try {
          listener(expired);
        } catch {
          // What a listener keeps of a dropped node is its own to tidy; this node's connect goes on.
        }
      }
    }
    // None inserted: the list is full, or another process recorded this same device meanwhile (then it goes on as that).
    if (changes === 0 && !this.#row(deviceId)) {
      throw new IdentityError('IDENTITY_NODE_PENDING_FULL', `${MAX_PENDING_NODES} nodes already wait to be paired; an operator must pair or reject some first`);
    }
  }

  /** Records what a node declares: nothing when an operator approved all of it (or declined exactly this), else a request for it. */
  #requestSurface(node: NodeRecord, declared: string[]): void {
    const covered = node.status === 'paired' && declared.every((c) => node.commands.includes(c));
    const requestId = covered ? null : surfaceRequestId(node.deviceId, declared);
    const row = this.#row(node.deviceId)!;
    if (requestId === row.request_id || (requestId !== null && requestId === row.declined_request_id)) return;
    this.#cache.clear();
    this.#statement('UPDATE nodes SET requested_commands = ?, request_id = ?, surface_requested_at = ? WHERE device_id = ?')
      .run(requestId === null ? null : JSON.stringify(declared), requestId, requestId === null ? null : this.#now(), node.deviceId);
  }

  /**
   * An operator approves a node's command surface: pairing a pending node, or
   * granting a paired one the surface it asked for since. `requestId` (what
   * the operator saw) must still be the node's request; `commands` approves
   * part of it, or narrows a paired node's approved set. With neither, the
   * node's request is approved as it stands. Throws IDENTITY_NODE_NOT_FOUND;
   * IDENTITY_NODE_REVOKED for an unpaired node (it must come back with a new
   * key), also one unpaired by another process meanwhile;
   * IDENTITY_NODE_REQUEST_STALE, also for a node another process changed
   * meanwhile; IDENTITY_NODE_SURFACE_INVALID for a command it never asked for.
   * `agents` (ids, see AgentRegistry.idsOf) replaces the agents the node may
   * ask for; left out, a pending node may ask for none and a paired one keeps
   * its own. Throws IDENTITY_INPUT_INVALID for a list that is not agent ids.
   */
  pair(ref: string, by: string, options: { requestId?: string; commands?: readonly string[]; agents?: readonly string[] } = {}): NodeRecord {
    const node = this.get(ref);
    if (node.status === 'revoked') throw new IdentityError('IDENTITY_NODE_REVOKED', 'an unpaired node must connect again with a new key');
    const request = node.surfaceRequest;
    if (options.requestId !== undefined && request?.requestId !== options.requestId) {
      throw new IdentityError('IDENTITY_NODE_REQUEST_STALE', 'this node has declared another command surface since; list the pending requests again');
    }
    if (node.status === 'paired' && !request && options.commands === undefined) return options.agents === undefined ? node : this.setAgents(node.deviceId, options.agents);
    const stored = (agents: readonly string[] | undefined) => (agents === undefined ? null : JSON.stringify(agents));
    const agents = options.agents === undefined ? node.agents : agentList(options.agents);
    const asked = [...new Set([...node.commands, ...(request?.commands ?? [])])].sort();
    const approved = options.commands === undefined ? (request?.commands ?? node.commands) : surfaceOf(options.commands);
    const unasked = approved.filter((c) => !asked.includes(c));
    if (unasked.length > 0) throw new IdentityError('IDENTITY_NODE_SURFACE_INVALID', `the node did not ask for ${unasked.map((c) => JSON.stringify(c)).join(', ')}; it asks for ${asked.join(', ') || 'no commands'}`);
    this.#cache.clear();
    // Only over the node as read: another process (a second operator, the node connecting again) may have revoked it,
    // narrowed what it is sent, or replaced its request since, and this decision was not taken on that.
    const { changes } = this.#statement(
      "UPDATE nodes SET status = 'paired', paired_at = ?, paired_by = ?, commands = ?, agents = ?, requested_commands = NULL, request_id = NULL, surface_requested_at = NULL, declined_request_id = NULL WHERE device_id = ? AND status = ? AND request_id IS ? AND IFNULL(commands, '[]') = ? AND agents IS ?",
    ).run(this.#now(), by, JSON.stringify(approved), stored(agents), node.deviceId, node.status, request?.requestId ?? null, JSON.stringify(node.commands), stored(node.agents));
    if (changes === 0) {
      if (this.get(node.deviceId).status === 'revoked') throw new IdentityError('IDENTITY_NODE_REVOKED', 'this node was unpaired meanwhile');
      throw new IdentityError('IDENTITY_NODE_REQUEST_STALE', 'this node changed while it was being paired; list the pending requests again');
    }
    return this.get(node.deviceId);
  }

  /**
   * Replaces the agents (ids, see AgentRegistry.idsOf) a paired node may ask
   * the control plane for; an empty list lets it ask for none. Throws
   * IDENTITY_NODE_NOT_FOUND; IDENTITY_NODE_NOT_PAIRED for a node waiting to be
   * paired (pair it with its agents); IDENTITY_NODE_REVOKED, also for one
   * unpaired by another process meanwhile; IDENTITY_INPUT_INVALID for a list
   * that is not agent ids.
   */
  setAgents(ref: string, agentIds: readonly string[]): NodeRecord {
    const node = this.get(ref);
    const agents = agentList(agentIds);
    this.#cache.clear();
    this.#statement("UPDATE nodes SET agents = ? WHERE device_id = ? AND status = 'paired'").run(JSON.stringify(agents), node.deviceId);
    const now = this.get(node.deviceId);
    if (now.status === 'revoked') throw new IdentityError('IDENTITY_NODE_REVOKED', 'this node was unpaired');
    if (now.status === 'pending') throw new IdentityError('IDENTITY_NODE_NOT_PAIRED', 'this node waits to be paired: pair it with its agents');
    return now;
  }

  /**
   * An operator declines a node's request: a pending node is revoked (it must
   * come back with a new key); a paired one keeps the surface it had, and
   * declaring this same surface again makes no new request.
   * Throws IDENTITY_NODE_NOT_FOUND, IDENTITY_NODE_REQUEST_STALE.
   */
  decline(ref: string, options: { requestId?: string } = {}): NodeRecord {
    const node = this.get(ref);
    const request = node.surfaceRequest;
    if (!request || (options.requestId !== undefined && request.requestId !== options.requestId)) {
      throw new IdentityError('IDENTITY_NODE_REQUEST_STALE', 'this node has no such pending request; list the pending requests again');
    }
    if (node.status === 'pending') return this.revoke(node.deviceId);
    this.#cache.clear();
    this.#statement('UPDATE nodes SET requested_commands = NULL, request_id = NULL, surface_requested_at = NULL, declined_request_id = ? WHERE device_id = ?').run(request.requestId, node.deviceId);
    return this.get(node.deviceId);
  }

  /** The node whose current request is `requestId`, if any. */
  byRequest(requestId: string): NodeRecord | undefined {
    if (typeof requestId !== 'string' || !/^[0-9a-f]{32}$/.test(requestId)) return undefined;
    const row = this.#statement('SELECT * FROM nodes WHERE request_id = ?').get(requestId) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  revoke(deviceId: string): NodeRecord {
    const node = this.get(deviceId);
    this.#cache.clear();
    this.#statement("UPDATE nodes SET status = 'revoked' WHERE device_id = ?").run(node.deviceId);
    return this.get(node.deviceId);
  }

  /** By full device id or a unique prefix of at least 8 hex digits. Throws IDENTITY_NODE_NOT_FOUND (for a prefix of several ids too, saying so). */
  get(ref: string): NodeRecord {
    const node = this.find(ref);
    if (node) return node;
    // A prefix that starts two ids names neither: say so, rather than that there is no such node.
    if (typeof ref === 'string' && /^[0-9a-f]{8,63}$/.test(ref) && (this.#statement('SELECT count(*) AS n FROM (SELECT 1 FROM nodes WHERE device_id LIKE ? LIMIT 2)').get(`${ref}%`) as { n: number }).n > 1) {
      throw new IdentityError('IDENTITY_NODE_NOT_FOUND', `${ref} starts the ids of more than one node: give more of the id`);
    }
    throw new IdentityError('IDENTITY_NODE_NOT_FOUND', `no node ${String(ref).slice(0, 64)}`);
  }

  find(ref: string): NodeRecord | undefined {
    if (typeof ref !== 'string' || ref.length !== 64) {
      const row = this.#row(ref);
      return row ? fromRow(row) : undefined;
    }
    this.#fresh();
    if (this.#cache.has(ref)) return this.#cache.get(ref);
    const row = this.#row(ref);
    const node = row ? frozen(fromRow(row)) : undefined;
    if (this.#cache.size >= MAX_CACHED) this.#cache.clear();
    this.#cache.set(ref, node);
    return node;
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) this.#statements.set(sql, (statement = this.#db.prepare(sql)));
    return statement;
  }

  /** Empties the lookup cache when the store changed under it. */
  #fresh(): void {
    const { data_version: version } = this.#statement('PRAGMA data_version').get() as { data_version: number };
    if (version === this.#cachedVersion) return;
    this.#cachedVersion = version;
    this.#cache.clear();
  }

  #row(ref: string): Row | undefined {
    if (typeof ref !== 'string' || !/^[0-9a-f]{8,64}$/.test(ref)) return undefined;
    // A full id (every governed command names one) is one indexed lookup with a statement prepared once.
    if (ref.length === 64) return this.#statement('SELECT * FROM nodes WHERE device_id = ?').get(ref) as Row | undefined;
    const rows = this.#statement('SELECT * FROM nodes WHERE device_id LIKE ? LIMIT 2').all(`${ref}%`) as unknown as Row[];
    return rows.length === 1 ? rows[0] : undefined;
  }

  list(): NodeRecord[] {
    return (this.#statement('SELECT * FROM nodes ORDER BY requested_at').all() as unknown as Row[]).map(fromRow);
  }
}

/** What a device says about itself, as an operator's terminal or page may show it: no control or format characters (line breaks, escape sequences, bidi overrides), at most `max` characters. */
export function printable(text: string, max: number): string {
  return text.replace(/[\p{Cc}\p{Cf}]/gu, '').slice(0, max);
}

/**
 * A declared command surface as it is kept and compared: each name once,
 * sorted. A name is never shortened or cleaned (that would approve another
 * command than the one asked for): one that cannot be shown is refused.
 */
function surfaceOf(commands: readonly string[]): string[] {
  if (!Array.isArray(commands) || commands.length > MAX_COMMANDS) throw new IdentityError('IDENTITY_NODE_SURFACE_INVALID', `a node may declare at most ${MAX_COMMANDS} commands`);
  for (const c of commands) {
    if (typeof c !== 'string' || c.length === 0 || c.length > MAX_COMMAND_LENGTH || printable(c, MAX_COMMAND_LENGTH) !== c) {
      throw new IdentityError('IDENTITY_NODE_SURFACE_INVALID', `a command name must be 1 to ${MAX_COMMAND_LENGTH} characters with no control or format characters`);
    }
  }
  return [...new Set(commands)].sort();
}

/** A list of agent ids as it is kept: each once, sorted. Throws IDENTITY_INPUT_INVALID. */
function agentList(ids: readonly string[]): string[] {
  if (!Array.isArray(ids) || ids.length > MAX_NODE_AGENTS) throw new IdentityError('IDENTITY_INPUT_INVALID', `a node may ask for at most ${MAX_NODE_AGENTS} agents`);
  for (const id of ids) if (typeof id !== 'string' || !AGENT_ID.test(id)) throw new IdentityError('IDENTITY_INPUT_INVALID', `${JSON.stringify(String(id).slice(0, 80))} is not an agent id`);
  return [...new Set(ids)].sort();
}

function surfaceRequestId(deviceId: string, commands: string[]): string {
  return createHash('sha256').update(`corral node surface\0${deviceId}\0${commands.join('\n')}`).digest('hex').slice(0, 32);
}

/** A record shared by every caller of a cached lookup: none can change it for the others. */
function frozen(node: NodeRecord): NodeRecord {
  Object.freeze(node.commands);
  if (node.agents) Object.freeze(node.agents);
  if (node.surfaceRequest) Object.freeze(Object.freeze(node.surfaceRequest).commands);
  return Object.freeze(node);
}

function fromRow(r: Row): NodeRecord {
  return {
    deviceId: r.device_id,
    publicKey: r.public_key,
    displayName: r.display_name,
    platform: r.platform,
    status: r.status,
    requestedAt: new Date(r.requested_at).toISOString(),
    ...(r.paired_at !== null ? { pairedAt: new Date(r.paired_at).toISOString() } : {}),
    ...(r.paired_by !== null ? { pairedBy: r.paired_by } : {}),
    commands: r.status === 'paired' && r.commands !== null ? storedNames(r.commands, `the approved commands of node ${r.device_id}`) : [],
    ...(r.request_id !== null && r.requested_commands !== null && r.status !== 'revoked'
      ? { surfaceRequest: { requestId: r.request_id, commands: storedNames(r.requested_commands, `the requested commands of node ${r.device_id}`), at: new Date(r.surface_requested_at ?? r.requested_at).toISOString() } }
      : {}),
    ...(r.status === 'paired' && r.agents !== null ? { agents: storedNames(r.agents, `the agents of node ${r.device_id}`) } : {}),
  };
}
