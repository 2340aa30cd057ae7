// Taking gateway.db's write lock without stopping the gateway. node:sqlite
// waits for a lock another process holds (a `corral approvals approve` that
// keeps it while its audit record is appended) inside the call, for the whole
// busy_timeout: every connection of the gateway stalls meanwhile. Here each
// attempt waits for nothing and the waits between attempts are timers.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { GatewayError } from '../errors.ts';

/** How long a write waits, with timers, for another process's lock on gateway.db by default. */
export const WRITE_LOCK_WAIT_MS = 5000;

/** What a caller refused for a lock held past the wait is told to wait before trying again. */
export const BUSY_RETRY_AFTER_MS = 1000;

/** The longest pause between two attempts: SQLite does not signal a release, so a waiter gets in only when it tries. */
const MAX_PAUSE_MS = 16;

/** SQLITE_BUSY and its extended codes (BUSY_RECOVERY, BUSY_SNAPSHOT, BUSY_TIMEOUT): another connection holds the lock. */
export function isBusy(error: unknown): boolean {
  const errcode = (error as { errcode?: unknown } | null)?.errcode;
  return typeof errcode === 'number' && (errcode & 0xff) === 5;
}

/** Each connection's `PRAGMA busy_timeout`, prepared once (a statement prepared per call holds native memory until the collector runs). */
const busyTimeouts = new WeakMap<DatabaseSync, StatementSync>();

/**
 * One `BEGIN IMMEDIATE` on `db` that does not wait: true when it holds the
 * write lock now, false when another connection holds it. The connection's
 * own busy_timeout (which other statements keep using) is put back after.
 * Any other failure is thrown as it is.
 */
export function tryBeginImmediate(db: DatabaseSync): boolean {
  let read = busyTimeouts.get(db);
  if (!read) busyTimeouts.set(db, (read = db.prepare('PRAGMA busy_timeout')));
  const timeout = (read.get() as { timeout?: number } | undefined)?.timeout ?? 0;
  db.exec('PRAGMA busy_timeout = 0');
  try {
    db.exec('BEGIN IMMEDIATE');
    return true;
  } catch (error) {
    if (isBusy(error)) return false;
    throw error;
  } finally {
    db.exec(`PRAGMA busy_timeout = ${Math.trunc(timeout)}`);
  }
}

/**
 * Runs `work` in a write transaction of `db` (BEGIN IMMEDIATE … COMMIT,
 * rolled back when it throws) and returns what it returns. While another
 * process holds the write lock it tries again after 1, 2, 4… up to 16 ms, so
 * the event loop keeps serving everyone else. `work` must be synchronous: it
 * runs in the same tick as the BEGIN, so no other code on this connection
 * (which all the gateway's stores share) can slip into the transaction.
 * Precondition: no transaction open on `db`. Throws what `work` throws, and
 * GATEWAY_BUSY (retryable, with retryAfterMs) when the lock is still held
 * after `waitMs` (measured on the monotonic clock).
 */
export async function writeWhenFree<T>(db: DatabaseSync, work: () => T, waitMs: number = WRITE_LOCK_WAIT_MS): Promise<T> {
  const deadline = performance.now() + waitMs;
  for (let pause = 1; !tryBeginImmediate(db); pause = Math.min(pause * 2, MAX_PAUSE_MS)) {
    if (performance.now() >= deadline) {
      const message = `another Corral process (a corral command) held the gateway state for more than ${(waitMs / 1000).toFixed(1)} s: nothing was changed; try again`;
      throw new GatewayError('GATEWAY_BUSY', message, { wire: { code: 'UNAVAILABLE', message, retryable: true, retryAfterMs: BUSY_RETRY_AFTER_MS } });
    }
    await sleep(pause);
  }
  try {
    const result = work();
    db.exec('COMMIT');
    return result;
  } catch (error) {
    db.exec('ROLLBACK');
    throw error;
  }
}
