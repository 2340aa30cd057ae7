// Where a PostgreSQL log lives, as a string free of credentials (names its
// witness file, appears in messages); apart from postgres.ts so that naming a
// PostgreSQL log does not load the driver.
import { AuditError } from '../errors.ts';

/**
 * How a PostgreSQL log is named in messages and witness files: scheme, host,
 * port and database, and the schema of its tables when given (quoted as an
 * identifier when it must be) — never the user or password.
 * @throws AuditError AUDIT_STORE_UNAVAILABLE when `url` is not a URL.
 */
export function postgresWhere(url: string, schema?: string): string {
  try {
    const u = new URL(url);
    const database = `postgresql://${u.hostname}:${u.port || 5432}${u.pathname}`;
    return schema === undefined ? database : `${database} (schema ${quoteIdent(schema)})`;
  } catch (error) {
    throw new AuditError('AUDIT_STORE_UNAVAILABLE', 'the PostgreSQL URL is not a URL', { cause: error });
  }
}

/** An identifier as PostgreSQL's quote_ident writes it: bare when it is lower case letters, digits and underscores (not first a digit), else in double quotes. */
export function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}
