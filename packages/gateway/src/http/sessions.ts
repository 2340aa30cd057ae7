// Console sessions: an opaque random token in an HttpOnly, SameSite=Strict
// cookie (Secure and `__Host-` prefixed behind an https publicUrl: cookies.ts),
// kept in memory by its SHA-256 (a restart signs everyone out), and a key
// (the CSRF value) the console sends in `x-corral-csrf` on every request. Both are needed: cookies are not port-scoped, so every web server
// on the same host (another port of 127.0.0.1) is sent the cookie and may set
// one, while the key lives only in the console's own origin (its storage and
// the answer to its sign-in). A session lasts 12 hours, ends after an hour
// without use, and ends when its local user is removed or changed (roles, password, email address).
// One human holds at most 50 (a new one ends their oldest), the table 10,000.
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { CorralRole } from '@corral/identity';

export const SESSION_COOKIE = 'corral_session';
export const SESSION_TTL_MS = 12 * 3600_000;
const SESSION_IDLE_MS = 3600_000;
const MAX_SESSIONS = 10_000;
/** Sessions one human may hold: past it their oldest ends, so one human signing in again and again never fills the table and pushes out everyone else's. */
const MAX_SESSIONS_PER_USER = 50;

/** A signed-in human. */
export interface SessionUser {
  /** `local:<username>` or `oidc:<issuer>#<subject>`. */
  id: string;
  /** What the audit log and approvals record as this human (username, or e-mail or subject). */
  name: string;
  roles: CorralRole[];
  /** A local user's generation at sign-in (LocalUser.generation): a change since (roles, password, email address, name) or its removal ends the session. */
  version?: number;
  /** A single sign-on person's issuer and subject: an admin ending their sessions (`corral identity sign-out`) ends this one. */
  oidc?: { issuer: string; subject: string };
  /**
   * The address a single sign-on person's provider sent, verified or not.
   * Never their name nor who they count as: only a reason to refuse them
   * (an allow of a request by an agent that address owns).
   */
  claimedEmail?: string;
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
  readonly #current: (session: Session) => boolean;

  /** `current` says whether a session's user is still as it signed in (see SessionUser.version and .oidc); a session whose user is not ends. */
  constructor(now: () => number = Date.now, current: (session: Session) => boolean = () => true) {
    this.#now = now;
    this.#current = current;
  }

  /**
   * A new session; the token goes only into the cookie. `key` is the one the
   * console made for this sign-in (single sign-on, where the answer that sets
   * the cookie is a redirect no script reads); without it, a random one.
   */
  create(user: SessionUser, key?: string): { token: string; session: Session } {
    this.#sweep();
    const own = [...this.#byDigest].filter(([, s]) => s.user.id === user.id);
    for (const [key] of own.slice(0, Math.max(0, own.length - MAX_SESSIONS_PER_USER + 1))) this.#byDigest.delete(key);
    if (this.#byDigest.size >= MAX_SESSIONS) this.#byDigest.delete(this.#byDigest.keys().next().value!);
    const token = randomBytes(32).toString('base64url');
    const now = this.#now();
    const session: Session = { user, csrf: key ?? randomBytes(24).toString('base64url'), createdAtMs: now, lastSeenMs: now };
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
    if (now - session.createdAtMs > SESSION_TTL_MS || now - session.lastSeenMs > SESSION_IDLE_MS || !this.#current(session)) {
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

/**
 * Every value sent for one cookie name, first first, at most `max`. A browser
 * sends several when they differ by path: one planted on `/api` by another
 * port of the host comes before the console's own `/`.
 */
export function readCookies(request: IncomingMessage, name: string, max = 8): string[] {
  const header = request.headers.cookie;
  if (typeof header !== 'string') return [];
  const values: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) values.push(part.slice(eq + 1).trim());
    if (values.length === max) break;
  }
  return values;
}

/** A key the console made: 32 to 128 base64url characters. */
export function isSessionKey(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9_-]{32,128}$/.test(value);
}
