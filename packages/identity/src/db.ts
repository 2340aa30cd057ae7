import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { BUSY_TIMEOUT_MS, busyError, busyMapped, isBusy } from './busy.ts';
import { turnToWal } from './wal.ts';
import { IdentityError } from './errors.ts';
import { privateStoreFile, securePrivateDir } from './state-dir.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS agents (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  display_name TEXT NOT NULL,
  process TEXT NOT NULL,
  owner TEXT NOT NULL,
  scopes TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'retired')),
  token_generation INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS signing_keys (
  kid TEXT PRIMARY KEY,
  private_jwk TEXT,
  public_jwk TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('active', 'retiring', 'retired')),
  created_at INTEGER NOT NULL,
  retire_after INTEGER
) STRICT;
CREATE TABLE IF NOT EXISTS used_tokens (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS nodes (
  device_id TEXT PRIMARY KEY,
  public_key TEXT NOT NULL,
  display_name TEXT NOT NULL,
  platform TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'paired', 'revoked')),
  requested_at INTEGER NOT NULL,
  paired_at INTEGER,
  paired_by TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS humans (
  issuer TEXT NOT NULL,
  subject TEXT NOT NULL,
  email TEXT,
  name TEXT,
  roles TEXT NOT NULL,
  last_login_at INTEGER NOT NULL,
  PRIMARY KEY (issuer, subject)
) STRICT;
-- When an admin last ended a single sign-on person's sessions (corral identity sign-out): a session begun before then ends.
CREATE TABLE IF NOT EXISTS human_sign_outs (
  issuer TEXT NOT NULL,
  subject TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (issuer, subject)
) STRICT;
CREATE TABLE IF NOT EXISTS local_users (
  username TEXT PRIMARY KEY,
  password_hash TEXT NOT NULL,
  roles TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
`;

/** What tells that the store changed since last asked: other connections' commits (data_version), this connection's (total_changes()). */
export const CHANGE_MARK = 'SELECT (SELECT data_version FROM pragma_data_version) AS version, total_changes() AS changes';

/**
 * Opens (creating if needed) `identity.db` in the state directory. The
 * directory is made this user's alone, 0700 (see securePrivateDir), and the
 * database file 0600 before SQLite first writes it (SQLite gives its -wal
 * and -shm files the same mode), because the database holds the
 * token-signing private keys. Deleted content is zeroed (secure_delete): a
 * retired key's erased private half would otherwise stay readable in the
 * file's free space. None of the store's files may be a symbolic link (see
 * privateStoreFile). Throws IDENTITY_STATE_DIR_UNSAFE, IDENTITY_STORE_SYMLINK,
 * IDENTITY_STORE_FAILED, IDENTITY_STORE_BUSY; and so does every statement
 * of the store it returns when another process holds the store's lock for
 * longer than `busyTimeoutMs` (default BUSY_TIMEOUT_MS; see busyMapped).
 */
export function openIdentityDb(stateDir: string, options: { busyTimeoutMs?: number } = {}): DatabaseSync {
  const busyTimeoutMs = options.busyTimeoutMs ?? BUSY_TIMEOUT_MS;
  // Opened by the directory's path as checked, with no symbolic link in it: a link given as stateDir may be moved meanwhile.
  const path = join(securePrivateDir(stateDir), 'identity.db');
  privateStoreFile(path, ['-wal', '-shm', '-journal'].map((suffix) => path + suffix));
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path);
    db.exec(`PRAGMA busy_timeout = ${Math.trunc(busyTimeoutMs)};`);
    checkTables(db);
    db.exec('PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON;');
    turnToWal(db, busyTimeoutMs);
    db.exec(SCHEMA);
    addColumns(db, 'nodes', ADDED_NODE_COLUMNS);
    addColumns(db, 'local_users', ADDED_LOCAL_USER_COLUMNS);
    // The nodes waiting to be paired, counted and expired at every new device's connect without reading the others.
    db.exec("CREATE INDEX IF NOT EXISTS nodes_pending ON nodes (IFNULL(seen_at, requested_at)) WHERE status = 'pending'");
    return busyMapped(db, path, busyTimeoutMs);
  } catch (error) {
    db?.close();
    if (isBusy(error)) throw busyError(path, busyTimeoutMs, error);
    // Say why (a file that is no database, a permission, a full disk): the operator cannot fix what is not named.
    const why = error instanceof Error ? `: ${error.message.split('\n')[0]!.slice(0, 200)}` : '';
    throw new IdentityError('IDENTITY_STORE_FAILED', `cannot open the identity store ${path}${why}`, { cause: error });
  }
}

/** The columns of each table of an identity store as SCHEMA makes it, read from SCHEMA itself. */
let schemaColumns: Map<string, string[]> | undefined;

function columnsOf(db: DatabaseSync, table: string): string[] {
  return (db.prepare('SELECT name FROM pragma_table_info(?)').all(table) as Array<{ name: string }>).map((c) => c.name);
}

/**
 * Refuses, before anything is written to it, another application's file at
 * identity.db: one that holds tables (or anything else) but no `meta`
 * table, which every Corral store has had from the first, made before any
 * other (Corral would otherwise have added its tables, signing keys
 * included, to the other program's database and changed it to write-ahead
 * logging); and one whose tables named like Corral's lack the columns
 * Corral's have, whose first query would otherwise fail with an uncoded
 * SQLite error. An empty file is a store not made yet. Tables a store made
 * by an older Corral lacks are created afterwards.
 */
function checkTables(db: DatabaseSync): void {
  const first = db.prepare('SELECT type, name FROM sqlite_schema LIMIT 1').get() as { type: string; name: string } | undefined;
  if (first !== undefined && columnsOf(db, 'meta').length === 0) {
    throw new IdentityError('IDENTITY_STORE_FAILED', `it is not a Corral identity store (it has no meta table, and holds the ${first.type} ${JSON.stringify(printableName(first.name))})`);
  }
  if (!schemaColumns) {
    const reference = new DatabaseSync(':memory:');
    try {
      reference.exec(SCHEMA);
      const tables = reference.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all() as Array<{ name: string }>;
      schemaColumns = new Map(tables.map(({ name }) => [name, columnsOf(reference, name)]));
    } finally {
      reference.close();
    }
  }
  for (const [table, expected] of schemaColumns) {
    const actual = new Set(columnsOf(db, table));
    if (actual.size === 0) continue;
    const missing = expected.find((column) => !actual.has(column));
    if (missing !== undefined) throw new IdentityError('IDENTITY_STORE_FAILED', `it is not a Corral identity store (its table ${table} has no column ${missing})`);
  }
}

/**
 * Adds to `table` the columns of `added` a store made before they were kept
 * lacks (ADDED_NODE_COLUMNS, ADDED_LOCAL_USER_COLUMNS say what an older row
 * holds in each: NULL, or the column's default). SCHEMA never names them, so checkTables still opens
 * such a store; and an older Corral opening a newer one reads past them.
 */
function addColumns(db: DatabaseSync, table: 'nodes' | 'local_users', added: ReadonlyArray<readonly [string, string]>): void {
  const missing = () => {
    const columns = new Set(columnsOf(db, table));
    return added.filter(([name]) => !columns.has(name));
  };
  if (missing().length === 0) return;
  // Under the write lock: another process (the gateway, a CLI command) may be adding them too.
  db.exec('BEGIN IMMEDIATE');
  try {
    for (const [name, type] of missing()) db.exec(`ALTER TABLE ${table} ADD COLUMN ${name} ${type}`);
    db.exec('COMMIT');
  } catch (error) {
    db.exec('ROLLBACK');
    throw error;
  }
}

/** Another program's table name, as a message may quote it: no control or format characters, at most 64 characters. */
function printableName(name: string): string {
  return name.replace(/[\p{Cc}\p{Cf}]/gu, '').slice(0, 64);
}

/**
 * The command surface of each node (what an operator approved, and a request
 * for more waiting for one), when a node waiting to be paired last tried, and
 * the agents a node may ask for, added to stores made before they were kept.
 * A node paired before then has no approved commands (its next connect asks
 * again) and may ask for no agent.
 */
const ADDED_NODE_COLUMNS = [
  ['commands', 'TEXT'],
  ['requested_commands', 'TEXT'],
  ['request_id', 'TEXT'],
  ['surface_requested_at', 'INTEGER'],
  ['declined_request_id', 'TEXT'],
  // When a node still waiting to be paired last tried to connect (NULL: at requested_at); its request goes stale without it.
  ['seen_at', 'INTEGER'],
  // The agents (ids) an operator lets a paired node ask the control plane for; NULL: none.
  ['agents', 'TEXT'],
] as const;

/**
 * A local user's email address (NULL: none), added to stores made before it
 * was kept: a login made then has none, and is matched against agents'
 * owners by its username alone, as before, until an admin gives it one. And
 * its change counter: a session a gateway of an older Corral gave is gone
 * with that process, so a login's first counter need only be below the next.
 */
const ADDED_LOCAL_USER_COLUMNS = [
  ['email', 'TEXT'],
  // The login's change counter (LocalUser.generation); 0 for a login not changed since it was kept, below every value since.
  ['generation', 'INTEGER NOT NULL DEFAULT 0'],
] as const;

/**
 * The list of names (scopes, commands) kept as JSON text in a row, `where`
 * naming it (`the scopes of agent agt_…`). Throws IDENTITY_STORE_FAILED,
 * naming it, for text that is not a JSON list of strings (a damaged or
 * hand-edited store): the parser's SyntaxError would escape uncoded, quoting
 * the text.
 */
export function storedNames(text: string, where: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (!Array.isArray(value) || !value.every((name) => typeof name === 'string')) {
    throw new IdentityError('IDENTITY_STORE_FAILED', `the identity store is damaged: ${where} is not a list of names`);
  }
  return value as string[];
}

export function getMeta(db: DatabaseSync, key: string): string | undefined {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
  return row?.value;
}

export function setMetaIfAbsent(db: DatabaseSync, key: string, value: string): string {
  db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(key, value);
  return getMeta(db, key)!;
}
