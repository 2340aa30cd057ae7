// Console sessions: an opaque random token in an HttpOnly, SameSite=Strict
// cookie, kept in memory by its SHA-256 (a restart signs everyone out), with
// a CSRF value the console echoes in `x-corral-csrf` on every change. A
// session lasts 12 hours, ends after an hour without use, and ends when its
// local user is removed or changed (roles, password).
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { CorralRole } from '@corral/identity';

export const SESSION_COOKIE = 'corral_session';
export const SESSION_TTL_MS = 12 * 3600_000;
const SESSION_IDLE_MS = 3600_000;
const MAX_SESSIONS = 10_000;

/** A signed-in human. */
export interface SessionUser {
  /** `local:<username>` or `oidc:<issuer>#<subject>`. */
  id: string;
  /** What the audit log and approvals record as this human (username, or e-mail or subject). */
  name: string;
  roles: CorralRole[];
  /** A local user's record as of sign-in (its last change): a change since (roles, password) or its removal ends the session. */
  version?: string;
}

export interface Session {
  user: SessionUser;
  csrf: string;
  createdAtMs: number;
  lastSeenMs: number;
}

const digest = (token: string) => createHash('sha256').update(token).digest('base64url');

export class Sessions {
  readonly #byDigest = new Map<string, Session>();
  readonly #now: () => number;
  readonly #current: (user: SessionUser) => boolean;

  /** `current` says whether a session's user is still as it signed in (see SessionUser.version); a session whose user is not ends. */
  constructor(now: () => number = Date.now, current: (user: SessionUser) => boolean = () => true) {
    this.#now = now;
    this.#current = current;
  }

  /** A new session; the token goes only into the cookie. */
  create(user: SessionUser): { token: string; session: Session } {
    this.#sweep();
    if (this.#byDigest.size >= MAX_SESSIONS) this.#byDigest.delete(this.#byDigest.keys().next().value!);
    const token = randomBytes(32).toString('base64url');
    const now = this.#now();
    const session: Session = { user, csrf: randomBytes(24).toString('base64url'), createdAtMs: now, lastSeenMs: now };
    this.#byDigest.set(digest(token), session);
    return { token, session };
  }

  /**
   * The live session for a token, or undefined when unknown or expired. A
   * request uses it (its idle clock restarts); `{ use: false }` only asks
   * whether it is still live (an open event stream checking on its session).
   */
  get(token: string | undefined, { use = true }: { use?: boolean } = {}): Session | undefined {
    if (!token) return undefined;
    const key = digest(token);
    const session = this.#byDigest.get(key);
    if (!session) return undefined;
    const now = this.#now();
    if (now - session.createdAtMs > SESSION_TTL_MS || now - session.lastSeenMs > SESSION_IDLE_MS || !this.#current(session.user)) {
      this.#byDigest.delete(key);
      return undefined;
    }
    if (use) session.lastSeenMs = now;
    return session;
  }

  delete(token: string | undefined): void {
    if (token) this.#byDigest.delete(digest(token));
  }

  #sweep(): void {
    const now = this.#now();
    for (const [key, s] of this.#byDigest) if (now - s.createdAtMs > SESSION_TTL_MS || now - s.lastSeenMs > SESSION_IDLE_MS) this.#byDigest.delete(key);
  }
}

/** One cookie's value from the request, or undefined. */
export function readCookie(request: IncomingMessage, name: string): string | undefined {
  const header = request.headers.cookie;
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** A Set-Cookie value; `maxAgeS` 0 clears it. `Secure` only when the request arrived over TLS. */
export function cookie(request: IncomingMessage, name: string, value: string, maxAgeS: number, sameSite: 'Strict' | 'Lax' = 'Strict', path = '/'): string {
  const secure = (request.socket as { encrypted?: boolean }).encrypted === true ? '; Secure' : '';
  return `${name}=${value}; HttpOnly; SameSite=${sameSite}; Path=${path}; Max-Age=${maxAgeS}${secure}`;
}
