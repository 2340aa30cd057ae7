// The gateway's own state in the state directory: `gateway.db` (SQLite, WAL).
// Nodes' identities and pairing live in packages/identity's store; this holds
// what the gateway learns about them (declared commands, last seen) and,
// later, approvals.
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { GatewayError } from '../errors.ts';
import { preparedOnce } from './statements.ts';
import { setBusyTimeout, writeNowOrWhenFree, WRITE_LOCK_WAIT_MS } from './write-lock.ts';

export const GATEWAY_DB_FILE = 'gateway.db';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS node_surface (
  device_id TEXT PRIMARY KEY,
  display_name TEXT NOT NULL,
  platform TEXT NOT NULL,
  commands TEXT NOT NULL,
  caps TEXT NOT NULL,
  last_seen_at INTEGER NOT NULL
);
`;

/** Opens (creating, mode 0600) `STATE_DIR/gateway.db`. Throws GATEWAY_CONFIG_INVALID when it cannot. */
export function openGatewayDb(stateDir: string): DatabaseSync {
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const path = join(stateDir, GATEWAY_DB_FILE);
    const db = new DatabaseSync(path);
    chmodSync(path, 0o600);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
    setBusyTimeout(db, 5000);
    db.exec(SCHEMA);
    // Added after the first release of the table.
    const columns = (db.prepare('PRAGMA table_info(node_surface)').all() as Array<{ name: string }>).map((c) => c.name);
    if (!columns.includes('remote_ip')) db.exec('ALTER TABLE node_surface ADD COLUMN remote_ip TEXT');
    return db;
  } catch (error) {
    throw new GatewayError('GATEWAY_CONFIG_INVALID', 'the gateway state could not be opened', { cause: error });
  }
}

export interface NodeSurface {
  deviceId: string;
  displayName: string;
  platform: string;
  commands: string[];
  caps: string[];
  lastSeenAt: number;
  /** The address it last connected (or asked to be paired) from. */
  remoteIp?: string;
}

interface SurfaceRow {
  device_id: string;
  display_name: string;
  platform: string;
  commands: string;
  caps: string;
  last_seen_at: number;
  remote_ip: string | null;
}

/**
 * What each node last declared when it connected (or asked to be paired).
 * Its writes take gateway.db's write lock with timers (write-lock.ts): a
 * `corral` command holding the lock never stalls the gateway on them.
 */
export class SurfaceStore {
  readonly #db: DatabaseSync;
  readonly #sql: (sql: string) => StatementSync;
  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#sql = preparedOnce(db);
  }

  /**
   * Stores `surface` in place of what its device declared before: at once
   * (nothing returned) while no other process holds gateway.db's write lock,
   * else once it is free (the promise). `unless` is asked in the very
   * transaction, just before the write: when it says so, nothing is written.
   * Rejects with GATEWAY_BUSY (wire UNAVAILABLE, retryable) when the lock is
   * still held after `waitMs`, nothing written.
   */
  record(surface: NodeSurface, options: { waitMs?: number; unless?: () => boolean } = {}): void | Promise<void> {
    return writeNowOrWhenFree(this.#db, () => {
      if (options.unless?.() !== true) this.#write(surface);
    }, options.waitMs ?? WRITE_LOCK_WAIT_MS);
  }

  #write(surface: NodeSurface): void {
    this.#sql('INSERT INTO node_surface (device_id, display_name, platform, commands, caps, last_seen_at, remote_ip) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET display_name = excluded.display_name, platform = excluded.platform, commands = excluded.commands, caps = excluded.caps, last_seen_at = excluded.last_seen_at, remote_ip = COALESCE(excluded.remote_ip, node_surface.remote_ip)')
      .run(surface.deviceId, surface.displayName.slice(0, 200), surface.platform.slice(0, 64), JSON.stringify(surface.commands.slice(0, 256)), JSON.stringify(surface.caps.slice(0, 64)), surface.lastSeenAt, surface.remoteIp?.slice(0, 64) ?? null);
  }

  /**
   * Forgets what these nodes declared (nodes no longer known: a pairing
   * request dropped as stale), in one transaction taken as record() takes
   * it; same errors.
   */
  forget(deviceIds: readonly string[], options: { waitMs?: number } = {}): void | Promise<void> {
    return writeNowOrWhenFree(this.#db, () => {
      for (const deviceId of deviceIds) this.#sql('DELETE FROM node_surface WHERE device_id = ?').run(deviceId);
    }, options.waitMs ?? WRITE_LOCK_WAIT_MS);
  }

  get(deviceId: string): NodeSurface | undefined {
    const row = this.#sql('SELECT * FROM node_surface WHERE device_id = ?').get(deviceId) as SurfaceRow | undefined;
    return row ? { deviceId: row.device_id, displayName: row.display_name, platform: row.platform, commands: JSON.parse(row.commands) as string[], caps: JSON.parse(row.caps) as string[], lastSeenAt: row.last_seen_at, ...(row.remote_ip ? { remoteIp: row.remote_ip } : {}) } : undefined;
  }
}
