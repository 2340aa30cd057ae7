// Who is calling: a signed-in session (its cookie, plus its key in the
// `x-corral-csrf` header on every request, reads included) or the gateway
// token as a bearer token; for GET /metrics alone, the scrape token too.
// Answers generically — `401 unauthenticated`, `403 csrf`, `403 forbidden` —
// and nothing more.
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
  const bearer = bearerOf(request);
  if (bearer !== undefined) {
    if (bearer === '' || !sameSecret(bearer, gatewayToken)) return failure(401, 'unauthenticated');
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

/**
 * Whether a request may read GET /metrics: with the scrape token as its
 * bearer token (good for nothing else: a scraper never holds the admin's
 * token), else as authenticate() lets in a caller who may read the audit
 * log (the gateway token, an admin's or an auditor's session). Undefined
 * when it may, else the refusal to send.
 */
export function authenticateScrape(request: IncomingMessage, scrapeToken: string | undefined, sessions: Sessions, sessionCookie: string, gatewayToken: string): Reply | undefined {
  const bearer = bearerOf(request);
  if (bearer && scrapeToken !== undefined && sameSecret(bearer, scrapeToken)) return undefined;
  const who = authenticate(request, 'audit.read', sessions, sessionCookie, gatewayToken);
  return 'status' in who ? who : undefined;
}

/** The bearer token of an Authorization header: undefined without the header, '' for another scheme or none given. */
function bearerOf(request: IncomingMessage): string | undefined {
  const auth = request.headers.authorization;
  if (typeof auth !== 'string' || auth === '') return undefined;
  // The scheme's name is case-insensitive (RFC 9110 §11.1).
  return /^bearer /i.test(auth) ? auth.slice(7) : '';
}

function sameCsrf(presented: unknown, expected: string): boolean {
  return typeof presented === 'string' && presented !== '' && sameSecret(presented, expected);
}

/** The human a caller acts as: the signed-in user, or `operator` with the gateway token. */
export function actingHuman(caller: Caller): string {
  return caller.kind === 'session' ? caller.session.user.name : 'operator';
}
