// The one place the console talks to the gateway: typed calls for every route
// of docs/http-api.md. The session cookie travels by itself; every request
// also carries the session's key (its CSRF value) in `x-corral-csrf`. The
// cookie alone is not enough because cookies are not port-scoped: any web
// server on another port of this host is sent it, and may set its own. The
// key is kept in this origin's localStorage, which no other port can read
// (and which is useless without the HttpOnly cookie outside this browser).
import type {
  ActivityEvent,
  ActivityFilter,
  Agent,
  Approval,
  AuditPage,
  AuditRecordDetail,
  AuditVerification,
  GrantRevoked,
  NodeEntry,
  Page,
  PairingRequest,
  PolicyFile,
  PolicyIssue,
  PolicySet,
  Providers,
  Replay,
  Session,
  Status,
  TestRun,
  Validation,
  WithdrawnApproval,
} from './types.ts';

/** A refusal or failure from the gateway, with its JSON error body; status 0 and error `unreachable` when no answer came. */
export class ApiError extends Error {
  readonly status: number;
  readonly error: string;
  readonly code: string | undefined;
  readonly issues: PolicyIssue[];
  readonly retryAfterS: number | undefined;

  constructor(status: number, body: { error?: unknown; message?: unknown; code?: unknown; issues?: unknown; retryAfterS?: unknown }) {
    const error = typeof body.error === 'string' ? body.error : `http_${status}`;
    super(typeof body.message === 'string' ? body.message : error.replaceAll('_', ' '));
    this.name = 'ApiError';
    this.status = status;
    this.error = error;
    this.code = typeof body.code === 'string' ? body.code : undefined;
    this.issues = Array.isArray(body.issues) ? (body.issues as PolicyIssue[]) : [];
    this.retryAfterS = typeof body.retryAfterS === 'number' ? body.retryAfterS : undefined;
  }
}

const KEY_ITEM = 'corral.session-key';
/**
 * The device token a sign-in answers: sent with later sign-ins from this
 * browser so that someone else's failed guesses at the same username do not
 * hold its owner up. Kept here, not in a cookie, for the same reason as the key.
 */
const DEVICE_ITEM = 'corral.device';

function stored(item: string): string {
  try {
    return localStorage.getItem(item) ?? '';
  } catch {
    return '';
  }
}

function keep(item: string, value: string): void {
  try {
    if (value === '') localStorage.removeItem(item);
    else localStorage.setItem(item, value);
  } catch {
    // storage refused (a private window's quota): the session lasts until this page unloads
  }
}

const sessionKey = () => stored(KEY_ITEM);
const keepSessionKey = (key: string) => keep(KEY_ITEM, key);

const SSO_START_ITEM = 'corral.sso-start-key';
const SIGNIN_FRAGMENT = /^#signin=([A-Za-z0-9_-]{16,128})$/;

/**
 * After single sign-on the gateway sends the browser to `/#signin=…`: the
 * session's key is the one this console gave the start, a dot, and that half.
 * The start's key alone is not enough, since another port of this host can
 * send the browser to the start with a key of its own; the fragment reaches
 * only this page. Without a start of ours pending, the fragment is ignored.
 */
function adoptSignIn(): void {
  if (!window.location.hash.startsWith('#signin=')) return;
  const found = SIGNIN_FRAGMENT.exec(window.location.hash);
  window.history.replaceState(null, '', window.location.pathname + window.location.search);
  let started: string | null = null;
  try {
    started = localStorage.getItem(SSO_START_ITEM);
    localStorage.removeItem(SSO_START_ITEM);
  } catch {
    // storage refused: no start of ours to finish
  }
  if (found && started) keepSessionKey(`${started}.${found[1]}`);
}

/** A fresh key for a single sign-on: 32 random bytes, base64url. The gateway binds the session the sign-in makes to it. */
function newSessionKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

const signedOutListeners = new Set<() => void>();

/** Called whenever the gateway says the session is gone (401), so the app can show sign-in. */
export function onSignedOut(listener: () => void): () => void {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

/**
 * Called when another tab of this console signs out or signs someone in: the
 * key it keeps is this tab's key too, so this tab is signed out as well, or
 * acts as whoever signed in there. (The browser reports a change of
 * localStorage only to the other tabs of this origin; `key` null is a clear.)
 */
export function onSessionChanged(listener: () => void): () => void {
  const changed = (event: StorageEvent) => {
    if (event.key === KEY_ITEM || event.key === null) listener();
  };
  window.addEventListener('storage', changed);
  return () => window.removeEventListener('storage', changed);
}

/**
 * How far the gateway's clock is ahead of this browser's, from the `Date` of
 * its last answer (to the second, so a difference under SKEW_MIN_MS counts as none).
 * Expiry times are the gateway's: a browser whose clock is hours ahead (a
 * machine keeping local time in its hardware clock) would read every approval
 * as expired, one behind would count down time already gone.
 */
let skewMs = 0;
const SKEW_MIN_MS = 2_000;

function noteGatewayClock(response: Response): void {
  const at = Date.parse(response.headers.get('date') ?? '');
  if (Number.isNaN(at)) return;
  const skew = at - Date.now();
  skewMs = Math.abs(skew) < SKEW_MIN_MS ? 0 : skew;
}

/** The time by the gateway's clock, as far as its answers tell: for counting down to its expiry times. */
export function gatewayNow(): number {
  return Date.now() + skewMs;
}

type Method = 'GET' | 'POST' | 'DELETE';

async function call<T>(method: Method, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...extra };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const key = sessionKey();
  if (key !== '') headers['x-corral-csrf'] = key;
  const init: RequestInit = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) init.body = JSON.stringify(body);
  let response: Response;
  try {
    response = await fetch(path, init);
  } catch {
    // No answer at all (the gateway down, the network gone): the browser's own words ("Failed to fetch") say nothing to act on.
    throw new ApiError(0, { error: 'unreachable', message: 'the gateway could not be reached (whether it got the request is not known: load the page again to see)' });
  }
  noteGatewayClock(response);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown = {};
  try {
    parsed = text === '' ? {} : JSON.parse(text);
  } catch {
    parsed = { error: 'bad_response', message: `the gateway answered ${response.status} with something that is not JSON` };
  }
  if (!response.ok) {
    const error = new ApiError(response.status, (parsed ?? {}) as Record<string, unknown>);
    // A refused sign-in is a 401 too; any other 401, or a key that is not the cookie's session's (403 csrf: another port of this host set the cookie), means this console has no session.
    const ended = response.status === 401 || (response.status === 403 && error.error === 'csrf');
    if (ended && !(method === 'POST' && path === '/api/session')) for (const listener of signedOutListeners) listener();
    throw error;
  }
  return parsed as T;
}

function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

const seg = encodeURIComponent;

function remember(session: Session): Session {
  if (session.csrf) keepSessionKey(session.csrf);
  return session;
}

export const api = {
  providers: () => call<Providers>('GET', '/api/auth/providers'),
  /** Where single sign-on starts, with a new key for the session it makes (kept here before the browser leaves). */
  oidcStartUrl: () => {
    const key = newSessionKey();
    try {
      localStorage.setItem(SSO_START_ITEM, key);
    } catch {
      // storage refused: the sign-in will come back to a console that cannot finish it
    }
    return `/api/auth/oidc/start${query({ key })}`;
  },
  session: async () => {
    adoptSignIn();
    return remember(await call<Session>('GET', '/api/session'));
  },
  signIn: async (username: string, password: string) => {
    const device = stored(DEVICE_ITEM);
    const signedIn = await call<Session & { device?: unknown }>('POST', '/api/session', { username, password }, device === '' ? {} : { 'x-corral-device': device });
    if (typeof signedIn.device === 'string') keep(DEVICE_ITEM, signedIn.device);
    const { device: _device, ...session } = signedIn;
    return remember(session);
  },
  signOut: async () => {
    try {
      await call<void>('DELETE', '/api/session');
    } finally {
      // Even when the gateway was not told: the cookie without its key is refused, so forgetting the key signs this browser out.
      keepSessionKey('');
    }
  },
  status: () => call<Status>('GET', '/api/status'),

  activity: async (filter: ActivityFilter, before?: number | null, limit = 100): Promise<Page<ActivityEvent>> => {
    const page = await call<{ events: ActivityEvent[]; nextBefore: number | null }>('GET', `/api/activity${query({ ...filter, before, limit })}`);
    return { items: page.events, nextBefore: page.nextBefore };
  },
  /** An EventSource sends no headers: the stream takes the session key in its query. */
  activityStreamUrl: (filter: ActivityFilter) => `/api/activity/stream${query({ ...filter, csrf: sessionKey() })}`,

  /** Every pending approval, a bounded page at a time (following nextAfter); or the newest page of the whole history. */
  approvals: async (status: 'pending' | 'all') => {
    const approvals: Approval[] = [];
    let after: number | null = null;
    do {
      const page: { approvals: Approval[]; nextAfter?: number | null } = await call('GET', `/api/approvals${query({ status, after })}`);
      approvals.push(...page.approvals);
      after = status === 'pending' ? (page.nextAfter ?? null) : null;
    } while (after !== null);
    return approvals;
  },
  approval: (id: string) => call<Approval>('GET', `/api/approvals/${seg(id)}`),
  approve: (id: string, decision: 'allow-once' | 'allow-always') => call<Approval>('POST', `/api/approvals/${seg(id)}/approve`, { decision }),
  deny: (id: string, reason: string) => call<Approval>('POST', `/api/approvals/${seg(id)}/deny`, { reason }),
  /** Takes back an approval allowed and not yet used: denied for `reason`, its run refused, its standing grant withdrawn. 409 GATEWAY_APPROVAL_PENDING (deny it instead) or GATEWAY_APPROVAL_RESOLVED (used or settled). */
  withdraw: (id: string, reason: string) => call<WithdrawnApproval>('POST', `/api/approvals/${seg(id)}/withdraw`, { reason }),
  /** Withdraws the standing grant an allow-always approval made. 404 not_found when it has none in force; 409 GATEWAY_APPROVAL_PENDING. */
  revokeGrant: (id: string) => call<GrantRevoked>('POST', `/api/approvals/${seg(id)}/revoke`, {}),

  audit: (search: { q?: string; actor?: string; action?: string; effect?: string; since?: string; until?: string }, before?: number | null, limit = 50) =>
    call<AuditPage>('GET', `/api/audit${query({ ...search, before, limit })}`),
  auditRecord: (seq: number) => call<AuditRecordDetail>('GET', `/api/audit/${seg(String(seq))}`),
  auditVerify: () => call<AuditVerification>('GET', '/api/audit/verify'),

  agents: async () => (await call<{ agents: Agent[] }>('GET', '/api/agents')).agents,
  suspendAgent: (name: string, reason: string) => call<Agent>('POST', `/api/agents/${seg(name)}/suspend`, { reason }),
  resumeAgent: (name: string) => call<Agent>('POST', `/api/agents/${seg(name)}/resume`, {}),
  nodes: async () => (await call<{ nodes: NodeEntry[] }>('GET', '/api/nodes')).nodes,
  pendingNodes: async () => (await call<{ requests: PairingRequest[] }>('GET', '/api/nodes/pending')).requests,
  approvePairing: (requestId: string) => call<unknown>('POST', `/api/nodes/pending/${seg(requestId)}/approve`, {}),
  rejectPairing: (requestId: string) => call<unknown>('POST', `/api/nodes/pending/${seg(requestId)}/reject`, {}),
  revokeNode: (nodeId: string) => call<unknown>('POST', `/api/nodes/${seg(nodeId)}/revoke`, {}),

  policies: () => call<PolicySet>('GET', '/api/policies'),
  validatePolicies: (files: PolicyFile[]) => call<Validation>('POST', '/api/policies/validate', { files }),
  testPolicies: (files: PolicyFile[], cases?: string) => call<TestRun>('POST', '/api/policies/test', cases === undefined ? { files } : { files, cases }),
  replayPolicies: (files: PolicyFile[], limit?: number) => call<Replay>('POST', '/api/policies/replay', limit === undefined ? { files } : { files, limit }),
  activatePolicies: (files: PolicyFile[], baseHash: string) => call<{ hash: string }>('POST', '/api/policies/activate', { files, baseHash }),
};
