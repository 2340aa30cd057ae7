// Several Corral processes share one identity store (the gateway, each CLI
// command): one that holds the write lock past the busy timeout makes the
// others' writes fail with SQLITE_BUSY, which is said here in Corral's words,
// as is a store SQLite finds damaged.
import { DatabaseSync, StatementSync } from 'node:sqlite';
import { IdentityError } from './errors.ts';

/** How long a statement waits for another process's lock on the store before it fails (SQLite's busy_timeout). */
export const BUSY_TIMEOUT_MS = 5000;

/** SQLITE_BUSY and its extended codes (BUSY_RECOVERY, BUSY_SNAPSHOT, BUSY_TIMEOUT): the lock was not had in time. */
const SQLITE_BUSY = 5;

/** Whether `error` is node:sqlite's SQLITE_BUSY (or one of its extended codes). */
export function isBusy(error: unknown): boolean {
  const errcode = (error as { errcode?: unknown } | null)?.errcode;
  return typeof errcode === 'number' && (errcode & 0xff) === SQLITE_BUSY;
}

/** SQLITE_CORRUPT (and its extended codes) and SQLITE_NOTADB: a page of the store cannot be read as SQLite wrote it. */
const SQLITE_CORRUPT = 11;
const SQLITE_NOTADB = 26;

/** Whether `error` is node:sqlite's SQLITE_CORRUPT or SQLITE_NOTADB: the store's file is damaged (a failing disk, a torn copy, an edit). */
export function isDamaged(error: unknown): boolean {
  const errcode = (error as { errcode?: unknown } | null)?.errcode;
  return typeof errcode === 'number' && ((errcode & 0xff) === SQLITE_CORRUPT || (errcode & 0xff) === SQLITE_NOTADB);
}

/** IDENTITY_STORE_FAILED for the damaged store at `path`. */
export function damagedError(path: string, cause: unknown): IdentityError {
  return new IdentityError('IDENTITY_STORE_FAILED', `the identity store ${path} is damaged (SQLite finds it malformed): restore it from a backup, or give Corral another state directory with --state-dir`, { cause });
}

/** IDENTITY_STORE_BUSY for the store at `path`, after waiting `waitedMs`. */
export function busyError(path: string, waitedMs: number, cause: unknown): IdentityError {
  return new IdentityError(
    'IDENTITY_STORE_BUSY',
    `another Corral process (the gateway, or another corral command) held the identity store ${path} for more than ${waitedMs / 1000} s: try again; if it goes on, look for a Corral process stuck on this state directory`,
    { cause },
  );
}

/**
 * `db`, with every method of it and of the statements it prepares throwing
 * IDENTITY_STORE_BUSY (see busyError) where SQLite failed with SQLITE_BUSY,
 * and IDENTITY_STORE_FAILED (see damagedError) where it found the store
 * damaged; any other error passes unchanged. The registries take it as the
 * DatabaseSync it is. Not covered: errors thrown while stepping an iterator
 * from `iterate()`.
 */
export function busyMapped(db: DatabaseSync, path: string, waitedMs: number): DatabaseSync {
  const statements = new WeakMap<StatementSync, StatementSync>();
  const statement = (s: StatementSync): StatementSync => {
    let mapped = statements.get(s);
    if (!mapped) {
      mapped = mapCalls(s, (value) => value);
      statements.set(s, mapped);
    }
    return mapped;
  };
  return mapCalls(db, (value) => (value instanceof StatementSync ? statement(value) : value));

  function mapCalls<T extends object>(target: T, result: (value: unknown) => unknown): T {
    const methods = new Map<PropertyKey, (...args: unknown[]) => unknown>();
    return new Proxy(target, {
      get(t, property) {
        // Read on the target itself: node:sqlite's getters and methods refuse any other receiver.
        const value: unknown = Reflect.get(t, property, t);
        if (typeof value !== 'function') return value;
        let method = methods.get(property);
        if (!method) {
          method = (...args: unknown[]) => {
            try {
              return result(Reflect.apply(value, t, args));
            } catch (error) {
              if (isBusy(error)) throw busyError(path, waitedMs, error);
              throw isDamaged(error) ? damagedError(path, error) : error;
            }
          };
          methods.set(property, method);
        }
        return method;
      },
    });
  }
}
