// Device tokens (upstream's hello-ok `auth.deviceToken`): a paired node gets
// a token in hello-ok and may reconnect with it instead of the shared gateway
// token. It is bound to the device and role, counts only beside a device
// proof for that device (and the device must still be paired), and only its
// SHA-256 is kept, in gateway.db. A new one is issued at every connect; the
// previous one stays valid so that a client that has not stored the new one
// yet can still reconnect.
import { createHash, randomBytes } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { preparedOnce } from '../store/statements.ts';

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
  readonly #sql: (sql: string) => StatementSync;
  readonly #now: () => number;

  constructor(db: DatabaseSync, now: () => number = Date.now) {
    this.#sql = preparedOnce(db);
    this.#now = now;
    db.exec(SCHEMA);
  }

  /** A new token for this device and role; older ones beyond the newest two stop working. */
  issue(deviceId: string, role: string): { deviceToken: string; issuedAtMs: number } {
    const deviceToken = randomBytes(32).toString('base64url');
    const issuedAtMs = this.#now();
    this.#sql('INSERT INTO device_tokens (device_id, role, token_hash, issued_at) VALUES (?, ?, ?, ?)').run(deviceId, role, digest(deviceToken), issuedAtMs);
    this.#sql('DELETE FROM device_tokens WHERE device_id = ? AND role = ? AND token_hash NOT IN (SELECT token_hash FROM device_tokens WHERE device_id = ? AND role = ? ORDER BY issued_at DESC, rowid DESC LIMIT ?)')
      .run(deviceId, role, deviceId, role, KEEP);
    return { deviceToken, issuedAtMs };
  }

  /** Whether `token` is a valid token of this device for this role. */
  verify(deviceId: string, role: string, token: string): boolean {
    if (typeof token !== 'string' || token.length === 0 || token.length > 200) return false;
    return this.#sql('SELECT 1 FROM device_tokens WHERE device_id = ? AND role = ? AND token_hash = ?').get(deviceId, role, digest(token)) !== undefined;
  }

  /** Every token of a device stops working. */
  revoke(deviceId: string): void {
    this.#sql('DELETE FROM device_tokens WHERE device_id = ?').run(deviceId);
  }
}

/** Lookup by the token's SHA-256: the database never holds a usable token, and what a lookup's timing could reveal is a hash. */
function digest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
