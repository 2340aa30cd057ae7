// Who is calling: a signed-in session (its cookie, plus its key in the
// `x-corral-csrf` header on every request, reads included) or the gateway
// token as a bearer token. Answers generically — `401 unauthenticated`,
// `403 csrf`, `403 forbidden` — and nothing more.
import type { IncomingMessage } from 'node:http';
import { sameSecret } from '../server/handshake.ts';
import { failure, type Reply } from './respond.ts';
import { rolesGrant, type Permission } from './roles.ts';
import { readCookies, type Session, type Sessions } from './sessions.ts';

export type Caller = { kind: 'session'; session: Session; token: string } | { kind: 'token' };

/**
 * The caller, or the refusal to send. Without `permission`, any signed-in
 * caller. `sessionCookie` is the session cookie's name (ConsoleCookies).
 * `queryKey` is the session key from the URL, for the one route a browser
 * cannot send headers to (an EventSource).
 */
export function authenticate(request: IncomingMessage, permission: Permission | undefined, sessions: Sessions, sessionCookie: string, gatewayToken: string, queryKey?: string): Caller | Reply {
  const auth = request.headers.authorization;
  if (typeof auth === 'string' && auth !== '') {
    // The scheme's name is case-insensitive (RFC 9110 §11.1).
    const presented = /^bearer /i.test(auth) ? auth.slice(7) : '';
    if (presented === '' || !sameSecret(presented, gatewayToken)) return failure(401, 'unauthenticated');
    return { kind: 'token' };
  }
  const live = readCookies(request, sessionCookie).filter((token) => sessions.get(token, { use: false }));
  if (live.length === 0) return failure(401, 'unauthenticated');
  // The cookie alone proves nothing: any web server on this host is sent it, and may set it.
  const presented = request.headers['x-corral-csrf'] ?? queryKey;
  const token = live.find((t) => sameCsrf(presented, sessions.get(t, { use: false })!.csrf));
  const session = token === undefined ? undefined : sessions.get(token);
  if (!session || token === undefined) return failure(403, 'csrf');
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
