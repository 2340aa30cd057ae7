// What a role needs to read or write the PostgreSQL log, and, when it lacks
// some of it, the error that names each missing privilege and the GRANT that
// gives it. PostgreSQL itself says only "permission denied for table
// audit_head", not which privilege or how to fix it. The log uses no
// sequence (its seqs are written by the writers), so it needs no USAGE on one.
import type pg from 'pg';
import { AuditError } from '../errors.ts';
import { quoteIdent } from './postgres-where.ts';

/** SQLSTATE insufficient_privilege. */
export const INSUFFICIENT_PRIVILEGE = '42501';

/** Each table's privileges a reader needs, and those a writer needs besides (FOR UPDATE on the head takes UPDATE). */
const READ: readonly (readonly [string, string])[] = [
  ['audit_meta', 'SELECT'],
  ['audit_head', 'SELECT'],
  ['audit_records', 'SELECT'],
  ['audit_checkpoints', 'SELECT'],
];
const WRITE: readonly (readonly [string, string])[] = [...READ, ['audit_head', 'UPDATE'], ['audit_records', 'INSERT'], ['audit_checkpoints', 'INSERT']];

/** One GRANT per table of the log lacking a privilege `needs` lists, the table named with its schema. */
const TABLE_GRANTS_SQL = `SELECT format('GRANT %s ON TABLE %I.%I TO %I;', string_agg(p.priv, ', ' ORDER BY p.i), n.nspname, c.relname, current_user) AS grant
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS p(name, priv, i)
JOIN pg_class c ON c.oid = to_regclass(p.name)
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT has_table_privilege(c.oid, p.priv)
GROUP BY n.nspname, c.relname ORDER BY min(p.i)`;

/**
 * The schemas the search path names that exist, in its order, whatever the
 * role may do there (PostgreSQL leaves a schema the role lacks USAGE on out
 * of the search path, silently: the log's tables there are not found).
 */
const PATH_SCHEMAS_SQL = `SELECT n.nspname AS schema, has_schema_privilege(n.oid, 'USAGE') AS usage, has_schema_privilege(n.oid, 'CREATE') AS create,
  EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = 'audit_meta') AS log, format('%I', n.nspname) AS quoted, format('%I', current_user) AS role
FROM unnest($1::text[]) WITH ORDINALITY AS p(name, i) JOIN pg_namespace n ON n.nspname = p.name ORDER BY p.i`;

interface PathSchema {
  schema: string;
  usage: boolean;
  create: boolean;
  log: boolean;
  quoted: string;
  role: string;
}

function refused(where: string, role: string, lacks: string, grants: string[], cause?: unknown): AuditError {
  return new AuditError(
    'AUDIT_STORE_UNAVAILABLE',
    `the role ${role} lacks ${lacks} on the audit log at ${where}: as the owner of the log's schema and tables (or a superuser) run: ${grants.join(' ')}`,
    cause === undefined ? {} : { cause },
  );
}

/**
 * The error for a connection the server refused because the role lacks
 * CONNECT on the database (`error` is of SQLSTATE 42501), naming the role as
 * the URL does (else as the driver defaults it).
 */
export function connectRefused(error: unknown, where: string, url: string, defaultUser: string): AuditError {
  const u = new URL(url);
  const role = quoteIdent(decodeURIComponent(u.username) || defaultUser);
  const database = quoteIdent(decodeURIComponent(u.pathname.slice(1)) || decodeURIComponent(u.username) || defaultUser);
  return refused(where, role, 'CONNECT on the database', [`GRANT CONNECT ON DATABASE ${database} TO ${role};`], error);
}

/**
 * Refuses a role lacking a privilege on the log's tables that reading (or,
 * with `write`, appending) takes.
 * @throws AuditError AUDIT_STORE_UNAVAILABLE naming the role and every GRANT missing.
 */
export async function refuseUnprivileged(c: pg.PoolClient, where: string, write: boolean, cause?: unknown): Promise<void> {
  const needs = write ? WRITE : READ;
  const grants = ((await c.query(TABLE_GRANTS_SQL, [needs.map((n) => n[0]), needs.map((n) => n[1])])).rows as { grant: string }[]).map((r) => r.grant);
  if (grants.length === 0) return;
  const role = ((await c.query("SELECT format('%I', current_user) AS role")).rows[0] as { role: string }).role;
  throw refused(where, role, `privileges ${write ? 'a writer' : 'a reader'} needs`, grants, cause);
}

/**
 * Where no log's table is found on the search path: refuses a role that
 * cannot see a log the search path names (no USAGE on its schema), a search
 * path naming a schema that does not exist, or, with `create`, a role that
 * cannot create the log in the first schema of the path.
 * @throws AuditError AUDIT_STORE_UNAVAILABLE naming the schema and the GRANT;
 *   AUDIT_BAD_ARGUMENT naming the schemas that do not exist.
 */
export async function refuseHiddenLog(c: pg.PoolClient, where: string, create: boolean): Promise<void> {
  const setting = (await c.query('SELECT current_setting($1) AS path, current_user AS role', ['search_path'])).rows[0] as { path: string; role: string };
  const path = searchPath(setting);
  const schemas = (await c.query(PATH_SCHEMAS_SQL, [path])).rows as PathSchema[];
  const hidden = schemas.find((s) => s.log && !s.usage);
  if (hidden) throw refused(where, hidden.role, `USAGE on the schema ${hidden.quoted}, which holds the log`, [`GRANT USAGE ON SCHEMA ${hidden.quoted} TO ${hidden.role};`]);
  // A schema named that does not exist (the role's own, "$user", aside: it seldom does) is most often a name mistyped
  // or one with capitals unquoted: the log is not looked for, or made, elsewhere instead.
  const absent = searchPath({ path: setting.path, role: '' }).filter((name) => name !== '' && !schemas.some((s) => s.schema === name));
  if (absent.length > 0) {
    throw new AuditError(
      'AUDIT_BAD_ARGUMENT',
      `the search path of the audit log at ${where} names ${absent.map(quoteIdent).join(', ')}, which does not exist: correct the search_path in the URL (PostgreSQL folds a name to lower case unless it is in double quotes: ?options=-c%20search_path%3D%22Audit%22 for the schema "Audit"), or create the schema`,
    );
  }
  if (!create) return;
  const first = schemas[0];
  if (!first) {
    throw new AuditError('AUDIT_STORE_UNAVAILABLE', `the search path of the audit log at ${where} (${path.join(', ') || 'empty'}) names no schema that exists: create one, or name one in the URL (?options=-c%20search_path%3D<schema>)`);
  }
  const missing = [first.usage ? '' : 'USAGE', first.create ? '' : 'CREATE'].filter((p) => p !== '');
  if (missing.length > 0) throw refused(where, first.role, `${missing.join(' and ')} on the schema ${first.quoted}, where the log is created`, [`GRANT ${missing.join(', ')} ON SCHEMA ${first.quoted} TO ${first.role};`]);
}

/**
 * The schema names of a search_path setting, in order, as PostgreSQL reads
 * them: split at commas outside double quotes, quoted names taken as written
 * ("" for a quote), others folded to lower case, "$user" the current role.
 */
export function searchPath({ path, role }: { path: string; role: string }): string[] {
  const names: string[] = [];
  let i = 0;
  while (i < path.length) {
    while (path[i] === ' ' || path[i] === ',') i++;
    if (i >= path.length) break;
    let name = '';
    if (path[i] === '"') {
      for (i++; i < path.length; i++) {
        if (path[i] === '"' && path[i + 1] === '"') name += path[i++];
        else if (path[i] === '"') break;
        else name += path[i];
      }
      i++;
    } else {
      const end = path.indexOf(',', i);
      name = path.slice(i, end === -1 ? path.length : end).trim().toLowerCase();
      i = end === -1 ? path.length : end;
    }
    names.push(name === '$user' ? role : name);
  }
  return names;
}
