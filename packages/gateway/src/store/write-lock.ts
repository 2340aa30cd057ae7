// Taking gateway.db's write lock without stopping the gateway. node:sqlite
// waits for a lock another process holds (a `corral approvals approve` that
// keeps it while its audit record is appended) inside the call, for the whole
// busy_timeout: every connection of the gateway stalls meanwhile. Here each
// attempt waits for nothing and the waits between attempts are timers.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { isBusy } from '@corral/identity';
import { GatewayError } from '../errors.ts';
import { preparedOnce } from './statements.ts';

/** How long a write waits, with timers, for another process's lock on gateway.db by default. */
export const WRITE_LOCK_WAIT_MS = 5000;

/**
 * The gateway's own connection's busy_timeout once it is open (gateway.ts):
 * what is left of SQLite's wait inside a call. No write of the running
 * gateway waits there: approvals, grants, open runs and a node's declared
 * surface try at once and wait with timers (writeWhenFree,
 * writeNowOrWhenFree); a device token, or an approval stored as expired, is
 * written only while the lock is free (writeIfFree). It bounds the stall of
 * any statement that still meets another process's lock. A corral command
 * keeps its 5 s: it has nobody else to serve.
 */
export const GATEWAY_BUSY_TIMEOUT_MS = 250;

/** What a caller refused for a lock held past the wait is told to wait before trying again. */
export const BUSY_RETRY_AFTER_MS = 1000;

/** The longest pause between two attempts: SQLite does not signal a release, so a waiter gets in only when it tries. */
const MAX_PAUSE_MS = 16;

export { isBusy };

/**
 * Each connection's statements here, prepared once: a statement prepared per
 * call holds native memory until the collector runs, and one parsed per call
 * (exec) costs the governed run's path microseconds it did not spend before.
 */
const statements = new WeakMap<DatabaseSync, (sql: string) => StatementSync>();

function sql(db: DatabaseSync): (sql: string) => StatementSync {
  let prepared = statements.get(db);
  if (!prepared) statements.set(db, (prepared = preparedOnce(db)));
  return prepared;
}

/** Each connection's busy_timeout as setBusyTimeout() set it, so that tryBeginImmediate() need not read it back each time. */
const busyTimeouts = new WeakMap<DatabaseSync, number>();

/** Sets `db`'s busy_timeout (how long a statement waits inside the call for another process's lock), and remembers it. */
export function setBusyTimeout(db: DatabaseSync, ms: number): void {
  const timeout = Math.max(0, Math.trunc(ms));
  db.exec(`PRAGMA busy_timeout = ${timeout}`);
  busyTimeouts.set(db, timeout);
}

/** `db`'s busy_timeout: as setBusyTimeout() set it, else read once. */
function busyTimeoutOf(db: DatabaseSync): number {
  let timeout = busyTimeouts.get(db);
  if (timeout === undefined) {
    timeout = Math.trunc((sql(db)('PRAGMA busy_timeout').get() as { timeout?: number } | undefined)?.timeout ?? 0);
    busyTimeouts.set(db, timeout);
  }
  return timeout;
}

/**
 * One `BEGIN IMMEDIATE` on `db` that does not wait: true when it holds the
 * write lock now, false when another connection holds it. The connection's
 * own busy_timeout (which other statements keep using) is put back after.
 * Any other failure is thrown as it is.
 */
export function tryBeginImmediate(db: DatabaseSync): boolean {
  const prepared = sql(db);
  const timeout = busyTimeoutOf(db);
  if (timeout !== 0) prepared('PRAGMA busy_timeout = 0').run();
  try {
    prepared('BEGIN IMMEDIATE').run();
    return true;
  } catch (error) {
    if (isBusy(error)) return false;
    throw error;
  } finally {
    if (timeout !== 0) prepared(`PRAGMA busy_timeout = ${timeout}`).run();
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
export function writeWhenFree<T>(db: DatabaseSync, work: () => T, waitMs: number = WRITE_LOCK_WAIT_MS): Promise<T> {
  return inTransactionWhenFree(db, waitMs, () => settle(db, work), () => {
    const message = `another Corral process held the gateway state for more than ${(waitMs / 1000).toFixed(1)} s: nothing was changed; try again`;
    return new GatewayError('GATEWAY_BUSY', message, { wire: { code: 'UNAVAILABLE', message, retryable: true, retryAfterMs: BUSY_RETRY_AFTER_MS } });
  });
}

/**
 * Takes `db`'s write lock (BEGIN IMMEDIATE), trying at once and then after
 * 1, 2, 4… up to 16 ms with timers, and runs `inside` in the very tick it was
 * taken (nothing else on the connection can come between); `inside` ends the
 * transaction. Rejects with what `late()` makes when the lock is still held
 * elsewhere after `waitMs` (monotonic clock), nothing begun.
 */
export async function inTransactionWhenFree<T>(db: DatabaseSync, waitMs: number, inside: () => T, late: () => Error): Promise<T> {
  const deadline = performance.now() + waitMs;
  for (let pause = 1; !tryBeginImmediate(db); pause = Math.min(pause * 2, MAX_PAUSE_MS)) {
    if (performance.now() >= deadline) throw late();
    await sleep(pause);
  }
  return inside();
}

/**
 * writeWhenFree() that does not wait when it need not: while no other
 * process holds gateway.db's write lock, `work` runs and commits at once and
 * its result is returned as it is (no promise, so a governed run's own path
 * gains no turn of the event loop); otherwise the promise writeWhenFree()
 * gives. Same preconditions and errors as writeWhenFree().
 */
export function writeNowOrWhenFree<T>(db: DatabaseSync, work: () => T, waitMs: number = WRITE_LOCK_WAIT_MS): T | Promise<T> {
  return tryBeginImmediate(db) ? settle(db, work) : writeWhenFree(db, work, waitMs);
}

/**
 * For a write that must stay synchronous and may be skipped (a cache of what
 * a read can work out again, such as an approval past its expiry stored as
 * expired): runs `work` in a write transaction when the lock is free now,
 * else does nothing and returns false. Inside a transaction already open on
 * `db` it simply runs `work`.
 */
export function writeIfFree(db: DatabaseSync, work: () => void): boolean {
  if (db.isTransaction) {
    work();
    return true;
  }
  if (!tryBeginImmediate(db)) return false;
  settle(db, work);
  return true;
}

/** `work` inside the transaction just begun: committed, or rolled back and thrown. */
function settle<T>(db: DatabaseSync, work: () => T): T {
  try {
    const result = work();
    sql(db)('COMMIT').run();
    return result;
  } catch (error) {
    if (db.isTransaction) sql(db)('ROLLBACK').run();
    throw error;
  }
}
