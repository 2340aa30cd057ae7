// A connection to identity.db that lets another process's write land between a registry reading a row and writing it.
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';

/**
 * Opens the identity.db at `path` and returns the connection, wrapped: the first read through a statement whose SQL
 * `reads` picks runs `step` (another process's write) right after it, once. A registry given it sees the row as it
 * was before `step`, and then must write against the row as it now is. Closing the connection closes the real one,
 * and throws when `step` never ran.
 */
export function racingDatabase(path: string, reads: (sql: string) => boolean, step: () => void): DatabaseSync {
  const db = new DatabaseSync(path);
  db.exec('PRAGMA busy_timeout = 5000');
  let pending: (() => void) | undefined = step;
  return new Proxy(db, {
    get(target, key) {
      if (key === 'prepare') {
        return (sql: string) => {
          const statement = target.prepare(sql);
          if (!reads(sql)) return statement;
          return {
            get: (...args: SQLInputValue[]) => {
              const row = statement.get(...args);
              const next = pending;
              pending = undefined;
              next?.();
              return row;
            },
          };
        };
      }
      if (key === 'close') {
        return () => {
          target.close();
          // A test whose read no longer matches would pass without any race: say so instead.
          if (pending) throw new Error('racingDatabase: no read matched, so the other write never ran between read and write');
        };
      }
      const value: unknown = Reflect.get(target, key);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
