// Sign-in and sign-out: `/api/session` for local users, `/api/auth/*` for
// the providers on offer and the OpenID Connect round trip.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { IdentityError, type HumanIdentity } from '@corral/identity';
import type { ApiContext } from './context.ts';
import { errorCode } from './error-reply.ts';
import { LOGIN_TTL_MS } from './oidc-sign-in.ts';
import { failure, reply, SECURITY_HEADERS } from './respond.ts';
import type { Route } from './router.ts';
import { deviceCredential, deviceTokens } from './throttle.ts';
import { isSessionKey, readCookies, SESSION_TTL_MS, type Session, type SessionUser } from './sessions.ts';

function sessionBody(session: Session): Record<string, unknown> {
  return { user: { id: session.user.id, name: session.user.name, roles: session.user.roles }, csrf: session.csrf };
}

/** Why an OIDC sign-in failed, as the console shows it (`/?signin_error=…`). */
function signinError(code: unknown): string {
  switch (code) {
    case 'IDENTITY_OIDC_NO_ROLE':
      return 'no_role';
    case 'IDENTITY_OIDC_STATE_MISMATCH':
      return 'state';
    case 'IDENTITY_OIDC_DISCOVERY_FAILED':
      return 'unavailable';
    default:
      return 'failed';
  }
}

/**
 * Whether a browser that says where a navigation came from (Fetch Metadata,
 * `Sec-Fetch-Site`) says it came from the console's own origin; one that
 * says nothing (an older browser) is let through. Only the console can use
 * the session a start makes (the key it kept), so a start from another site,
 * another port of this host or a link opened elsewhere (`none`) is refused:
 * it would only put a person already signed in at the issuer through it,
 * replacing their session and recording a sign-in they never made.
 */
function startedByConsole(request: IncomingMessage): boolean {
  const site = request.headers['sec-fetch-site'];
  return site === undefined || site === 'same-origin';
}

/** A plain address: no `:`, so never read as the gateway token's or a system account's approver (`token:…`, `account:…`), and an `@` no local username has. */
const PLAIN_EMAIL = /^[^\s:@"()<>,;\\]{1,64}@[^\s:@"()<>,;\\]{1,85}$/;

/**
 * An OIDC human as the audit log names them and a quorum counts them: their
 * verified e-mail, else their issuer and subject. The subject alone could be
 * a local user's name (or read `token:…`) and count as someone else. The
 * address their provider sent, verified or not, goes beside it: an
 * approver's own agent's request is refused by it (Entra ID sends no
 * `email_verified`, so its people are named by subject, and an owner would
 * otherwise allow their own agent's request alone).
 */
function oidcUser(human: HumanIdentity): SessionUser {
  const id = `oidc:${human.issuer}#${human.subject}`;
  return {
    id,
    name: human.email !== undefined && PLAIN_EMAIL.test(human.email) ? human.email : id,
    roles: human.roles,
    oidc: { issuer: human.issuer, subject: human.subject },
    ...(human.claimedEmail !== undefined ? { claimedEmail: human.claimedEmail } : {}),
  };
}

export function sessionRoutes(api: ApiContext): Route[] {
  /** Where single sign-on sends the browser that `error` stopped: the browser is told why in a word, the log by the error's code. */
  const signinFailed = (request: IncomingMessage, error: unknown): string => {
    api.log({ event: 'refused', connId: 'http', code: errorCode(error), remoteAddress: api.clientAddresses.of(request) });
    return `/?signin_error=${signinError((error as { code?: unknown }).code)}`;
  };
  return [
    {
      method: 'POST',
      path: '/api/session',
      access: 'public',
      // A failure counts towards the address's limit: one that any page can send from the browser of someone on this host must not.
      bodyRequired: true,
      handle: async ({ request, body }) => {
        const input = await body();
        const username = typeof input.username === 'string' ? input.username : '';
        // Behind a trusted proxy, the client it forwards for: not the proxy, which every client shares.
        const address = api.clientAddresses.of(request);
        const devices = deviceTokens(request);
        const wait = api.throttle.attempt(username, address, devices);
        if (wait > 0) return failure(429, 'too_many_attempts', { retryAfterS: wait });
        let user;
        try {
          user = await api.identity.localUsers.verify(username, input.password);
        } catch (error) {
          // Too many passwords were being hashed: this one was not checked, and is not counted (503, try again).
          if (error instanceof IdentityError && error.code === 'IDENTITY_SIGN_IN_BUSY') api.throttle.unchecked(username, address, devices);
          throw error;
        }
        if (!user) return failure(401, 'invalid_credentials');
        // Bound to the user as their password was found right: a password set, a removal or a new user of the name ends it.
        const device = api.throttle.succeed(username, address, deviceCredential(user), devices);
        const { token, session } = api.sessions.create({ id: user.id, name: user.username, roles: user.roles, version: user.generation });
        await api.record({ actor: { kind: 'human', id: user.username }, action: 'console.sign-in', resource: { kind: 'session', id: 'local' }, outcome: { status: 'success' } });
        // The device token goes only to the console, in the body: a cookie would reach every port of this host.
        return reply(200, { ...sessionBody(session), device }, { 'set-cookie': api.cookies.set(request, api.cookies.session, token, SESSION_TTL_MS / 1000) });
      },
    },
    {
      method: 'GET',
      path: '/api/session',
      access: 'signed-in',
      handle: ({ caller }) => (caller?.kind === 'session' ? reply(200, sessionBody(caller.session)) : reply(200, { user: { id: 'token', name: 'operator', roles: ['admin'] }, csrf: null })),
    },
    {
      method: 'DELETE',
      path: '/api/session',
      access: 'signed-in',
      handle: ({ request, caller }) => {
        if (caller?.kind === 'session') api.sessions.delete(caller.token);
        return reply(204, undefined, { 'set-cookie': api.cookies.set(request, api.cookies.session, '', 0) });
      },
    },
    {
      method: 'GET',
      path: '/api/auth/providers',
      access: 'public',
      handle: () => reply(200, { local: true, oidc: api.oidc ? { name: api.oidc.name } : null }),
    },
    {
      method: 'GET',
      path: '/api/auth/oidc/start',
      access: 'public',
      handle: async ({ request, response, url }) => {
        if (!api.oidc) return failure(404, 'not_found');
        // The console's key for the session this login makes: without one, the session would be anyone's who holds its cookie.
        const key = url.searchParams.get('key');
        let location = '/?signin_error=failed';
        const headers: Record<string, string> = {};
        if (isSessionKey(key) && startedByConsole(request)) {
          try {
            const login = await api.oidc.start(key);
            location = login.url;
            headers['set-cookie'] = api.cookies.set(request, api.cookies.oidc, login.binding, LOGIN_TTL_MS / 1000, 'Lax', '/api/auth/oidc');
          } catch (error) {
            location = signinFailed(request, error);
          }
        }
        response.writeHead(302, { ...SECURITY_HEADERS, 'cache-control': 'no-store', location, ...headers }).end();
      },
    },
    {
      method: 'GET',
      path: '/api/auth/oidc/callback',
      access: 'public',
      handle: async ({ request, response }) => {
        if (!api.oidc) return failure(404, 'not_found');
        const cookies = [api.cookies.set(request, api.cookies.oidc, '', 0, 'Lax', '/api/auth/oidc')];
        let location = '/';
        try {
          const { human, key } = await api.oidc.finish(new URL(request.url ?? '/', api.oidc.settings.redirectUri).toString(), readCookies(request, api.cookies.oidc));
          // One that maps no role is refused, and someone who signed in before recorded as holding none, which ends their sessions (sessionCurrent).
          api.identity.humans.signIn(human);
          const user = oidcUser(human);
          // The start's key may be whoever's sent this browser to the start (another port of the host can, and plant the binding
          // cookie too); the second half goes only to this browser's console, in a fragment no server or other port is sent.
          const half = randomBytes(24).toString('base64url');
          const { token } = api.sessions.create(user, `${key}.${half}`);
          cookies.push(api.cookies.set(request, api.cookies.session, token, SESSION_TTL_MS / 1000));
          location = `/#signin=${half}`;
          await api.record({ actor: { kind: 'human', id: user.name }, action: 'console.sign-in', resource: { kind: 'session', id: 'oidc' }, outcome: { status: 'success' } });
        } catch (error) {
          location = signinFailed(request, error);
        }
        response.writeHead(302, { ...SECURITY_HEADERS, 'cache-control': 'no-store', location, 'set-cookie': cookies }).end();
      },
    },
  ];
}
