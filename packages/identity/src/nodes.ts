import { randomBytes } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { verifyDeviceProof, type DeviceProof } from './device.ts';
import { IdentityError } from './errors.ts';

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
}

/** A connect request's claims that the device signature covers. */
export interface NodeConnect {
  device: DeviceProof;
  client: { id: string; mode: string; platform?: string; deviceFamily?: string; displayName?: string };
  role: string;
  scopes: readonly string[];
  /** `auth.token ?? auth.deviceToken ?? auth.bootstrapToken ?? ""`. */
  token?: string;
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
}

const CHALLENGE_TTL_MS = 15_000;
const MAX_OPEN_CHALLENGES = 10_000;

/**
 * Nodes known to Corral. A connection gets a one-time challenge; the node
 * signs it with its device key; a device seen for the first time is recorded
 * as pending and refused (IDENTITY_NODE_NOT_PAIRED) until an operator pairs it.
 */
export class NodeRegistry {
  readonly #db: DatabaseSync;
  #byId: StatementSync | undefined;
  readonly #now: () => number;
  readonly #challenges = new Map<string, number>();

  constructor(db: DatabaseSync, now: () => number = Date.now) {
    this.#db = db;
    this.#now = now;
  }

  /** A fresh nonce for one connection (the `connect.challenge` event's payload). Each nonce is accepted once, within 15 s. */
  challenge(): { nonce: string; ts: number } {
    const now = this.#now();
    for (const [n, at] of this.#challenges) if (now - at > CHALLENGE_TTL_MS) this.#challenges.delete(n);
    if (this.#challenges.size >= MAX_OPEN_CHALLENGES) {
      const oldest = this.#challenges.keys().next().value;
      if (oldest !== undefined) this.#challenges.delete(oldest);
    }
    const nonce = randomBytes(24).toString('base64url');
    this.#challenges.set(nonce, now);
    return { nonce, ts: now };
  }

  /**
   * Authenticates a node's connect request against the challenge it was
   * given. The challenge is spent whatever the outcome, so a captured proof
   * cannot be replayed. Throws IDENTITY_DEVICE_* (not genuine),
   * IDENTITY_NODE_NOT_PAIRED (genuine, waiting for an operator),
   * IDENTITY_NODE_REVOKED.
   */
  authenticate(connect: NodeConnect, nonce: string): NodeRecord {
    const issuedAt = this.#challenges.get(nonce);
    this.#challenges.delete(nonce);
    const now = this.#now();
    const expected = issuedAt !== undefined && now - issuedAt <= CHALLENGE_TTL_MS ? nonce : `spent:${randomBytes(8).toString('hex')}`;
    const { publicKey } = verifyDeviceProof(connect.device, {
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
    const existing = this.find(connect.device.id);
    if (!existing) {
      this.#db
        .prepare("INSERT OR IGNORE INTO nodes (device_id, public_key, display_name, platform, status, requested_at) VALUES (?, ?, ?, ?, 'pending', ?)")
        .run(connect.device.id, publicKey, printable(connect.client.displayName ?? connect.device.id.slice(0, 12), 200), printable(connect.client.platform ?? '', 64), now);
      throw new IdentityError('IDENTITY_NODE_NOT_PAIRED', 'this node waits for an operator to pair it');
    }
    if (existing.status === 'revoked') throw new IdentityError('IDENTITY_NODE_REVOKED', 'this node was unpaired');
    if (existing.status === 'pending') throw new IdentityError('IDENTITY_NODE_NOT_PAIRED', 'this node waits for an operator to pair it');
    return existing;
  }

  /** An operator pairs a pending node. Throws IDENTITY_NODE_NOT_FOUND; IDENTITY_NODE_REVOKED for an unpaired node (it must come back with a new key). */
  pair(deviceId: string, by: string): NodeRecord {
    const node = this.get(deviceId);
    if (node.status === 'revoked') throw new IdentityError('IDENTITY_NODE_REVOKED', 'an unpaired node must connect again with a new key');
    this.#db.prepare("UPDATE nodes SET status = 'paired', paired_at = ?, paired_by = ? WHERE device_id = ?").run(this.#now(), by, node.deviceId);
    return this.get(node.deviceId);
  }

  revoke(deviceId: string): NodeRecord {
    const node = this.get(deviceId);
    this.#db.prepare("UPDATE nodes SET status = 'revoked' WHERE device_id = ?").run(node.deviceId);
    return this.get(node.deviceId);
  }

  /** By full device id or a unique prefix of at least 8 hex digits. Throws IDENTITY_NODE_NOT_FOUND. */
  get(ref: string): NodeRecord {
    const node = this.find(ref);
    if (!node) throw new IdentityError('IDENTITY_NODE_NOT_FOUND', `no node ${String(ref).slice(0, 64)}`);
    return node;
  }

  find(ref: string): NodeRecord | undefined {
    if (typeof ref !== 'string' || !/^[0-9a-f]{8,64}$/.test(ref)) return undefined;
    // A full id (every governed command names one) is one indexed lookup with a statement prepared once.
    if (ref.length === 64) {
      const row = (this.#byId ??= this.#db.prepare('SELECT * FROM nodes WHERE device_id = ?')).get(ref) as Row | undefined;
      return row ? fromRow(row) : undefined;
    }
    const rows = this.#db.prepare('SELECT * FROM nodes WHERE device_id LIKE ? LIMIT 2').all(`${ref}%`) as unknown as Row[];
    return rows.length === 1 ? fromRow(rows[0]!) : undefined;
  }

  list(): NodeRecord[] {
    return (this.#db.prepare('SELECT * FROM nodes ORDER BY requested_at').all() as unknown as Row[]).map(fromRow);
  }
}

/** What a device says about itself, as an operator's terminal or page may show it: no control or format characters (line breaks, escape sequences, bidi overrides), at most `max` characters. */
export function printable(text: string, max: number): string {
  return text.replace(/[\p{Cc}\p{Cf}]/gu, '').slice(0, max);
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
  };
}
