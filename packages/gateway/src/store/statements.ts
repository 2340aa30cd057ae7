import type { DatabaseSync, StatementSync } from 'node:sqlite';

/**
 * `prepare`, once per SQL text. A statement prepared on every connect or
 * command holds native memory until the collector, which does not see it,
 * gets round to it: a thousand connecting nodes grew the gateway by megabytes.
 */
export function preparedOnce(db: DatabaseSync): (sql: string) => StatementSync {
  const statements = new Map<string, StatementSync>();
  return (sql) => {
    let statement = statements.get(sql);
    if (!statement) statements.set(sql, (statement = db.prepare(sql)));
    return statement;
  };
}
