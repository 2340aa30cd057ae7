// The settings a PostgreSQL log's URL may carry that Corral reads itself,
// checked before anything connects: a mistyped one is named, not silently
// replaced by a default (connect_timeout=5s waited the default 5 s), sent to
// the server as NaN (statement_timeout=abc), or taken for TLS (sslmode=disabled).
import { AuditError } from '../errors.ts';
import { postgresWhere } from './postgres-where.ts';

/** The modes the driver (pg) knows; any other it takes as TLS verified in full. */
const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'];

/**
 * The timeouts `url` sets, in ms: `connect_timeout` (seconds, as libpq) and
 * `statement_timeout` (ms, as the server's setting), each when given.
 * @throws AuditError AUDIT_BAD_ARGUMENT naming the parameter, what it must
 *   be and the log (never the user or password).
 */
export function urlTimeouts(url: string): { connectMs?: number; statementMs?: number } {
  const where = postgresWhere(url);
  const params = new URL(url).searchParams;
  const sslmode = params.get('sslmode');
  if (sslmode !== null && !SSL_MODES.includes(sslmode)) {
    throw new AuditError('AUDIT_BAD_ARGUMENT', `the URL of the audit log at ${where} sets sslmode=${printableValue(sslmode)}, which is no SSL mode: use one of ${SSL_MODES.join(', ')}`);
  }
  const connectMs = whole(params.get('connect_timeout'), 'connect_timeout', 'seconds', where);
  const statementMs = whole(params.get('statement_timeout'), 'statement_timeout', 'milliseconds', where);
  return { ...(connectMs === undefined ? {} : { connectMs: connectMs * 1000 }), ...(statementMs === undefined ? {} : { statementMs }) };
}

/** A positive whole number, as the URL parameter `name` must be, or undefined when it is not given. */
function whole(value: string | null, name: string, unit: string, where: string): number | undefined {
  if (value === null) return undefined;
  if (/^\d{1,9}$/.test(value) && Number(value) > 0) return Number(value);
  throw new AuditError('AUDIT_BAD_ARGUMENT', `the URL of the audit log at ${where} sets ${name}=${printableValue(value)}: it must be a whole number of ${unit} above 0 (e.g. ${name}=${name === 'connect_timeout' ? 5 : 15000})`);
}

/** A URL parameter's value for a message: short, and without control characters. */
function printableValue(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}
