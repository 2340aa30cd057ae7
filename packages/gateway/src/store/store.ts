// The gateway's own state in the state directory: `gateway.db` (SQLite, WAL).
// Nodes' identities and pairing live in packages/identity's store; this holds
// what the gateway learns about them (declared commands, last seen) and,
// later, approvals.
import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { turnToWal } from '@corral/identity';
import { GatewayError } from '../errors.ts';
import { preparedOnce } from './statements.ts';
import { setBusyTimeout, writeNowOrWhenFree, WRITE_LOCK_WAIT_MS } from './write-lock.ts';

export const GATEWAY_DB_FILE = 'gateway.db';
/** How long opening gateway.db waits for another process's lock on it. */
const OPEN_WAIT_MS = 5000;

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

/**
 * Opens (creating, mode 0600) `STATE_DIR/gateway.db`. Throws
 * GATEWAY_STORE_FAILED when it cannot be opened or used (a directory in its
 * place, not a database, unreadable, held by another process past the 5 s
 * wait), its message naming the file, why and what to do.
 */
export function openGatewayDb(stateDir: string): DatabaseSync {
  const path = join(stateDir, GATEWAY_DB_FILE);
  let db: DatabaseSync | undefined;
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    db = new DatabaseSync(path);
    chmodSync(path, 0o600);
    setBusyTimeout(db, OPEN_WAIT_MS);
    turnToWal(db, OPEN_WAIT_MS);
    db.exec('PRAGMA synchronous = NORMAL');
    db.exec(SCHEMA);
    // Added after the first release of the table.
    const columns = (db.prepare('PRAGMA table_info(node_surface)').all() as Array<{ name: string }>).map((c) => c.name);
    if (!columns.includes('remote_ip')) db.exec('ALTER TABLE node_surface ADD COLUMN remote_ip TEXT');
    return db;
  } catch (error) {
    try {
      db?.close();
    } catch {
      // Closing what could not be used fails as it did: the error that counts is the one thrown below.
    }
    throw new GatewayError('GATEWAY_STORE_FAILED', `cannot open the gateway state ${path}: ${unusable(path, error)}`, { cause: error });
  }
}

/**
 * GATEWAY_STORE_FAILED for the `gateway.db` of `stateDir`, opened, that
 * failed as it was read or written (`error`, SQLite's: damaged, held past
 * the wait, unwritable): the message names the file, why and what to do, as
 * openGatewayDb's does. For a command whose store fails part way, a listing
 * at its tenth page among them.
 */
export function gatewayStoreFailed(stateDir: string, error: unknown): GatewayError {
  const path = join(stateDir, GATEWAY_DB_FILE);
  return new GatewayError('GATEWAY_STORE_FAILED', `cannot use the gateway state ${path}: ${unusable(path, error)}`, { cause: error });
}

/** SQLite's result codes (the primary code, low byte) for a file that is not an SQLite database, or is damaged. */
const SQLITE_NOTADB = 26;
const SQLITE_CORRUPT = 11;
/** … for a file held by another process past the busy timeout. */
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
/** … for a file that cannot be opened, written or read by this user. */
const SQLITE_CANTOPEN = 14;
const SQLITE_READONLY = 8;
const SQLITE_PERM = 3;

/** Why `path` could not be used as gateway.db, and what to do: without the cause's message, which names the path again. */
function unusable(path: string, error: unknown): string {
  const elsewhere = 'or give Corral another state directory with --state-dir';
  const found = (() => {
    try {
      return lstatSync(path, { throwIfNoEntry: false });
    } catch {
      return undefined;
    }
  })();
  if (found?.isDirectory()) return `it is a directory, not a file: move it aside, ${elsewhere}`;
  const sqlite = (error as { errcode?: unknown } | null)?.errcode;
  const code = typeof sqlite === 'number' ? sqlite & 0xff : undefined;
  if (code === SQLITE_NOTADB || code === SQLITE_CORRUPT) return `it is not a database, or is damaged: restore it from a backup, or move it aside for the gateway to start a new one (the approvals and run state it kept are then lost), ${elsewhere}`;
  if (code === SQLITE_BUSY || code === SQLITE_LOCKED) return `another process held it longer than Corral waits (${OPEN_WAIT_MS / 1000} s): try again once it lets go`;
  const errno = (error as NodeJS.ErrnoException | null)?.code;
  if (errno === 'EACCES' || errno === 'EPERM' || code === SQLITE_CANTOPEN || code === SQLITE_READONLY || code === SQLITE_PERM) {
    if (found === undefined) return `it cannot be created in the state directory as this user: make the directory one this user may write, ${elsewhere}`;
    return `it cannot be read or written as this user: make it a file this user owns and may read and write (Corral keeps it mode 600), ${elsewhere}`;
  }
  const why = typeof errno === 'string' && /^E[A-Z0-9]{1,20}$/.test(errno) ? errno : (error as Error | null)?.message ?? String(error);
  return `${why}: check the file and its disk, ${elsewhere}`;
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
