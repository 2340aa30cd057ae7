// Turning a new SQLite file to write-ahead logging when another process may
// be creating the same file at the same moment.
import type { DatabaseSync } from 'node:sqlite';
import { isBusy } from './busy.ts';

/**
 * PRAGMA journal_mode = WAL (a no-op once the file is), retried while another
 * connection holds the write lock, for up to `timeoutMs`. On a new file SQLite
 * reads it, then upgrades to the write lock, and refuses that upgrade at once,
 * without its busy wait, while another connection holds the write lock: of
 * two processes creating one store, one failed "database is locked". The
 * retries block the thread, as SQLite's own busy waits do.
 * @throws node:sqlite's error: SQLITE_BUSY once `timeoutMs` has passed, any other at once.
 */
export function turnToWal(db: DatabaseSync, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let wait = 1; ; wait = Math.min(wait * 2, 16)) {
    try {
      db.exec('PRAGMA journal_mode = WAL');
      return;
    } catch (error) {
      if (!isBusy(error) || Date.now() > deadline) throw error;
    }
    Atomics.wait(pause, 0, 0, wait);
  }
}
