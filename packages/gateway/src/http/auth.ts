// Who is calling: a signed-in session (cookie, plus the CSRF header on any
// change) or the gateway token as a bearer token. Answers generically —
// `401 unauthenticated`, `403 csrf`, `403 forbidden` — and nothing more.
import type { IncomingMessage } from 'node:http';
import { sameSecret } from '../server/handshake.ts';
import { failure, type Reply } from './respond.ts';
import { rolesGrant, type Permission } from './roles.ts';
import { readCookie, SESSION_COOKIE, type Session, type Sessions } from './sessions.ts';

export type Caller = { kind: 'session'; session: Session; token: string } | { kind: 'token' };

const SAFE_METHODS = new Set(['GET', 'HEAD']);

/** The caller, or the refusal to send. Without `permission`, any signed-in caller. */
export function authenticate(request: IncomingMessage, permission: Permission | undefined, sessions: Sessions, gatewayToken: string): Caller | Reply {
  const auth = request.headers.authorization;
  if (typeof auth === 'string' && auth !== '') {
    // The scheme's name is case-insensitive (RFC 9110 §11.1).
    const presented = /^bearer /i.test(auth) ? auth.slice(7) : '';
    if (presented === '' || !sameSecret(presented, gatewayToken)) return failure(401, 'unauthenticated');
    return { kind: 'token' };
  }
  const token = readCookie(request, SESSION_COOKIE);
  const session = sessions.get(token);
  if (!session || !token) return failure(401, 'unauthenticated');
  if (!SAFE_METHODS.has(request.method ?? 'GET') && !sameCsrf(request.headers['x-corral-csrf'], session.csrf)) return failure(403, 'csrf');
  if (permission && !rolesGrant(session.user.roles, permission)) return failure(403, 'forbidden');
  return { kind: 'session', session, token };
}

function sameCsrf(presented: unknown, expected: string): boolean {
  return typeof presented === 'string' && presented !== '' && sameSecret(presented, expected);
}

/** The human a caller acts as: the signed-in user, or `operator` with the gateway token. */
export function actingHuman(caller: Caller): string {
  return caller.kind === 'session' ? caller.session.user.name : 'operator';
}
