// The one error mapper: a package's coded error becomes an HTTP status and
// the API's error shape. Refusals keep their own (coded, secret-free)
// message; anything unexpected is a bare `500 internal_error` and its code goes to the log.
import { AuditError } from '@corral/audit';
import { IdentityError } from '@corral/identity';
import { PolicyError } from '@corral/policy';
import { GatewayError } from '../errors.ts';
import { issueView } from './policy-control.ts';
import { failure, type Reply } from './respond.ts';

export function errorReply(error: unknown): { reply: Reply; unexpected: boolean } {
  // Another process (a corral command) holds the identity store: nothing was done, try again. Its message names the store's path, which stays in the gateway.
  const busy = () => {
    return { reply: failure(503, 'unavailable', { message: 'the gateway is busy: try again shortly', code: (error as { code: string }).code, retryAfterS: BUSY_RETRY_AFTER_S }), unexpected: false };
  };
  const known = (status: number, name: string, extra: { message?: string; issues?: unknown[] } = {}) => {
    const e = error as { code: string; message: string };
    return { reply: failure(status, name, { message: e.message, code: e.code, ...extra }), unexpected: false };
  };
  if (error instanceof GatewayError) {
    switch (error.code) {
      case 'GATEWAY_PARAMS_INVALID':
        return known(400, 'invalid_request');
      case 'GATEWAY_APPROVAL_NOT_FOUND':
        return known(404, 'not_found');
      case 'GATEWAY_SESSION_ENDED':
        return known(401, 'unauthenticated');
      case 'GATEWAY_APPROVAL_OWN_REQUEST':
        return known(403, 'forbidden');
      case 'GATEWAY_CONFIG_INVALID':
        return known(503, 'unavailable');
      case 'GATEWAY_APPROVAL_EXPIRED':
      case 'GATEWAY_APPROVAL_RESOLVED':
      case 'GATEWAY_APPROVAL_PENDING':
      case 'GATEWAY_APPROVAL_MISMATCH':
      case 'GATEWAY_CONFLICT':
        return known(409, 'conflict');
      case 'GATEWAY_BUSY':
        return busy();
    }
  }
  if (error instanceof IdentityError) {
    switch (error.code) {
      case 'IDENTITY_INPUT_INVALID':
        return known(400, 'invalid_request');
      case 'IDENTITY_AGENT_NOT_FOUND':
      case 'IDENTITY_NODE_NOT_FOUND':
      case 'IDENTITY_USER_NOT_FOUND':
        return known(404, 'not_found');
      case 'IDENTITY_AGENT_STATE':
      case 'IDENTITY_NODE_REVOKED':
      case 'IDENTITY_NODE_NOT_PAIRED':
      case 'IDENTITY_USER_EXISTS':
        return known(409, 'conflict');
      case 'IDENTITY_STORE_BUSY':
      case 'IDENTITY_SIGN_IN_BUSY':
        return busy();
    }
  }
  if (error instanceof PolicyError) {
    switch (error.code) {
      case 'POLICY_SET_INVALID':
      case 'POLICY_CASES_INVALID':
      case 'POLICY_ENTITIES_INVALID':
      case 'POLICY_REQUEST_INVALID':
        return known(400, 'invalid_policy', { issues: error.issues.map(issueView) });
      case 'POLICY_ENGINE_BUSY':
      case 'POLICY_ENGINE_FAILED':
        return known(503, 'unavailable');
    }
  }
  if (error instanceof AuditError) {
    switch (error.code) {
      case 'AUDIT_NOT_FOUND':
        // Its own message names where the log is kept (a path, a database host): that stays in the gateway.
        return known(404, 'not_found', { message: 'no such record in the audit log' });
      case 'AUDIT_BAD_ARGUMENT':
        return known(400, 'invalid_request');
    }
  }
  return { reply: failure(500, 'internal_error'), unexpected: true };
}

/** The seconds a caller refused for a busy identity store is told to wait (Retry-After). */
const BUSY_RETRY_AFTER_S = 1;

/** The code to log for an error (never its message, which may quote input). */
export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z_]{3,64}$/.test(code) ? code : 'GATEWAY_INTERNAL';
}
