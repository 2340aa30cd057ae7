// Where a PostgreSQL log lives, as a string free of credentials (names its
// witness file, appears in messages); apart from postgres.ts so that naming a
// PostgreSQL log does not load the driver.
import { AuditError } from '../errors.ts';

/**
 * How a PostgreSQL log is named in messages and witness files: scheme, host,
 * port and database — never the user or password.
 * @throws AuditError AUDIT_STORE_UNAVAILABLE when `url` is not a URL.
 */
export function postgresWhere(url: string): string {
  try {
    const u = new URL(url);
    return `postgresql://${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch (error) {
    throw new AuditError('AUDIT_STORE_UNAVAILABLE', 'the PostgreSQL URL is not a URL', { cause: error });
  }
}
