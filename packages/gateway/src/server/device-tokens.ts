// Device tokens (upstream's hello-ok `auth.deviceToken`): a paired node gets
// a token in hello-ok and may reconnect with it instead of the shared gateway
// token. It is bound to the device and role, counts only beside a device
// proof for that device (and the device must still be paired), and only its
// SHA-256 is kept, in gateway.db. A new one is issued at every connect; the
// previous one stays valid so that a client that has not stored the new one
// yet can still reconnect. While another process (a `corral` command) holds
// gateway.db's write lock, none is issued: the connect does not wait for it,
// and the token the device holds stays valid (see issue()).
import { createHash, randomBytes } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { preparedOnce } from '../store/statements.ts';
import { writeIfFree } from '../store/write-lock.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS device_tokens (
  device_id TEXT NOT NULL,
  role TEXT NOT NULL,
  token_hash TEXT NOT NULL,
  issued_at INTEGER NOT NULL,
  PRIMARY KEY (device_id, role, token_hash)
);
`;
/** How many of a device's newest tokens are valid. */
const KEEP = 2;

export class DeviceTokens {
  readonly #db: DatabaseSync;
  readonly #sql: (sql: string) => StatementSync;
  readonly #now: () => number;

  constructor(db: DatabaseSync, now: () => number = Date.now) {
    this.#db = db;
    this.#sql = preparedOnce(db);
    this.#now = now;
    db.exec(SCHEMA);
  }

  /**
   * A new token for this device and role, stored before it is returned;
   * older ones beyond the newest two stop working. Returns undefined, having
   * stored nothing, while another process holds gateway.db's write lock: a
   * connect is not held up (nor refused) for a token, since none is taken
   * away — the one the device connected with, or the shared token, stays
   * valid, and the next connect is issued one. Throws what SQLite throws for
   * any other failure (a store that cannot be written).
   */
  issue(deviceId: string, role: string): { deviceToken: string; issuedAtMs: number } | undefined {
    const deviceToken = randomBytes(32).toString('base64url');
    const issuedAtMs = this.#now();
    const stored = writeIfFree(this.#db, () => {
      this.#sql('INSERT INTO device_tokens (device_id, role, token_hash, issued_at) VALUES (?, ?, ?, ?)').run(deviceId, role, digest(deviceToken), issuedAtMs);
      this.#sql('DELETE FROM device_tokens WHERE device_id = ? AND role = ? AND token_hash NOT IN (SELECT token_hash FROM device_tokens WHERE device_id = ? AND role = ? ORDER BY issued_at DESC, rowid DESC LIMIT ?)')
        .run(deviceId, role, deviceId, role, KEEP);
    });
    return stored ? { deviceToken, issuedAtMs } : undefined;
  }

  /** Whether `token` is a valid token of this device for this role. */
  verify(deviceId: string, role: string, token: string): boolean {
    if (typeof token !== 'string' || token.length === 0 || token.length > 200) return false;
    return this.#sql('SELECT 1 FROM device_tokens WHERE device_id = ? AND role = ? AND token_hash = ?').get(deviceId, role, digest(token)) !== undefined;
  }
}

/** Lookup by the token's SHA-256: the database never holds a usable token, and what a lookup's timing could reveal is a hash. */
function digest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
