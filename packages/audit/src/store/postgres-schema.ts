// The PostgreSQL log's tables: how a writer creates them, and the checks that
// they are still those tables before anything is read from them or written to
// them. Anyone who owns the tables, or can create a schema, can change what the
// log's unqualified table names mean; a reader must not take such tables for the log.
import type pg from 'pg';
import { AuditError } from '../errors.ts';

/** Each table's columns and their types, its primary key first; every column is NOT NULL. */
const TABLES = {
  audit_meta: { id: 'integer', format: 'integer', key_id: 'text', created_at: 'text' },
  audit_head: { id: 'integer', size: 'bigint', last_hash: 'bytea', frontier: 'bytea', checkpoint_size: 'bigint', checkpoint_time: 'bigint' },
  audit_records: { seq: 'bigint', time_ms: 'bigint', prev: 'bytea', hash: 'bytea', nodes: 'bytea', body: 'text' },
  audit_checkpoints: { size: 'bigint', root: 'bytea', time: 'text', key_id: 'text', signature: 'text' },
} as const;
const NAMES = Object.keys(TABLES);

/** The tables of one row (meta and head hold exactly the row with id 1). */
const SINGLE_ROW: ReadonlySet<string> = new Set(['audit_meta', 'audit_head']);

/** Creates the log's tables (see refuseStray: none of them is there before). */
export const SCHEMA = Object.entries(TABLES)
  .map(([table, columns]) => {
    const [key, ...rest] = Object.entries(columns);
    const [keyName, keyType] = key as [string, string];
    const keyColumn = `${keyName} ${keyType.toUpperCase()} PRIMARY KEY${SINGLE_ROW.has(table) ? ` CHECK (${keyName} = 1)` : ''}`;
    return `CREATE TABLE ${table} (${[keyColumn, ...rest.map(([name, type]) => `${name} ${type.toUpperCase()} NOT NULL`)].join(', ')});`;
  })
  .join('\n');

/**
 * Schemas of the search path, in its order, holding a table (or view) of the
 * log's name, for each name held by more than one: there the first would be
 * read, and whoever can create a schema named after the connecting role
 * ("$user" comes before public) puts it first.
 */
const SHADOWED_SQL = `SELECT c.relname AS name, array_agg(n.nspname::text ORDER BY array_position(current_schemas(false), n.nspname::text)) AS schemas
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = ANY($1) AND n.nspname = ANY(current_schemas(false))
GROUP BY c.relname HAVING count(*) > 1 ORDER BY c.relname`;

/** The columns of the tables the log's names resolve to: type, whether NOT NULL, whether the table's primary key is that column alone. */
const COLUMNS_SQL = `SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary AND i.indnatts = 1 AND i.indkey[0] = a.attnum) AS key
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.oid = ANY (SELECT to_regclass(name)::oid FROM unnest($1::text[]) AS name)`;

/**
 * What was changed on the log's tables that changes what is written to them,
 * read from them or kept: a trigger (it may rewrite or drop a row), a rule (it
 * may do something else instead), row security (it may hide rows from a
 * reader), no write-ahead log (a crash of the server empties the table).
 */
const ADDED_SQL = `WITH log AS (SELECT to_regclass(name)::oid AS oid FROM unnest($1::text[]) AS name)
SELECT format('trigger %s on %s', tgname, tgrelid::regclass) AS what FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN (SELECT oid FROM log)
UNION ALL SELECT format('rule %s on %s', rulename, ev_class::regclass) FROM pg_rewrite WHERE rulename <> '_RETURN' AND ev_class IN (SELECT oid FROM log)
UNION ALL SELECT format('%s has row security enabled', oid::regclass) FROM pg_class WHERE relrowsecurity AND oid IN (SELECT oid FROM log)
UNION ALL SELECT format('%s is unlogged', oid::regclass) FROM pg_class WHERE relpersistence = 'u' AND oid IN (SELECT oid FROM log)`;

/**
 * Before the log is created (there is no audit_meta): refuses a table of one
 * of its other names already there. Corral did not make it, and whoever did
 * may have given it a trigger, or own it to change it later.
 * @throws AuditError AUDIT_STORE_FOREIGN naming the tables.
 */
export async function refuseStray(c: pg.PoolClient, where: string): Promise<void> {
  const found = ((await c.query('SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NOT NULL', [NAMES])).rows as { name: string }[]).map((r) => r.name);
  if (found.length === 0) return;
  throw new AuditError('AUDIT_STORE_FOREIGN', `${where} holds ${found.join(', ')} but no audit log: Corral did not make ${found.length === 1 ? 'that table' : 'those tables'} and will not create the log around them; drop them, or use another database`);
}

/**
 * Refuses a search path on which one of the log's table names is found in two schemas.
 * @throws AuditError AUDIT_STORE_FOREIGN naming the tables and schemas, and how to name the log's.
 */
export async function refuseShadowed(c: pg.PoolClient, where: string): Promise<void> {
  const shadowed = (await c.query(SHADOWED_SQL, [NAMES])).rows as { name: string; schemas: string[] }[];
  if (shadowed.length === 0) return;
  const found = shadowed.map((r) => `${r.name} in ${r.schemas.join(', ')}`).join('; ');
  throw new AuditError(
    'AUDIT_STORE_FOREIGN',
    `${where}: the audit log's tables are in more than one schema on the search path (${found}), and the first would be used: name the log's schema in the URL (?options=-c%20search_path%3D<schema>)`,
  );
}

/**
 * Refuses tables that are no longer as a writer creates them: one missing, a
 * column missing, of another type or allowed to be null, a primary key
 * dropped (rows could then share a seq), a trigger, rule or row security
 * added, made unlogged (see ADDED_SQL). Columns and indexes added are allowed.
 * @throws AuditError AUDIT_STORE_FOREIGN naming every difference.
 */
export async function refuseAltered(c: pg.PoolClient, where: string): Promise<void> {
  const rows = (await c.query(COLUMNS_SQL, [NAMES])).rows as { table: string; column: string; type: string; not_null: boolean; key: boolean }[];
  const problems: string[] = [];
  for (const [table, columns] of Object.entries(TABLES)) {
    const found = rows.filter((r) => r.table === table);
    if (found.length === 0) {
      problems.push(`${table} is missing`);
      continue;
    }
    const [key] = Object.keys(columns);
    for (const [column, type] of Object.entries(columns)) {
      const r = found.find((f) => f.column === column);
      if (!r) {
        problems.push(`${table}.${column} is missing`);
        continue;
      }
      if (r.type !== type) problems.push(`${table}.${column} is ${r.type}, not ${type}`);
      if (!r.not_null) problems.push(`${table}.${column} may be null`);
      if (column === key && !r.key) problems.push(`${table} has no primary key on ${column}`);
    }
  }
  for (const r of (await c.query(ADDED_SQL, [NAMES])).rows as { what: string }[]) problems.push(r.what);
  if (problems.length === 0) return;
  throw new AuditError('AUDIT_STORE_FOREIGN', `${where}: the audit log's tables were altered (${problems.join('; ')}): restore them as Corral made them, then run 'corral audit verify'`);
}
