// The one place the console talks to the gateway: typed calls for every route
// of docs/http-api.md. The session cookie travels by itself (same origin); a
// request that changes anything also carries the session's CSRF value, which
// the console keeps in memory only (never in storage a script could read later).
import type {
  ActivityEvent,
  ActivityFilter,
  Agent,
  Approval,
  AuditPage,
  AuditRecordDetail,
  AuditVerification,
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
} from './types.ts';

/** A refusal or failure from the gateway, with its JSON error body. */
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

let csrf = '';
const signedOutListeners = new Set<() => void>();

/** Called whenever the gateway says the session is gone (401), so the app can show sign-in. */
export function onSignedOut(listener: () => void): () => void {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

type Method = 'GET' | 'POST' | 'DELETE';

async function call<T>(method: Method, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf !== '') headers['x-corral-csrf'] = csrf;
  const init: RequestInit = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
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
    // A refused sign-in is a 401 too; any other 401 means the session ended.
    if (response.status === 401 && !(method === 'POST' && path === '/api/session')) for (const listener of signedOutListeners) listener();
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
  csrf = session.csrf;
  return session;
}

export const api = {
  providers: () => call<Providers>('GET', '/api/auth/providers'),
  session: async () => remember(await call<Session>('GET', '/api/session')),
  signIn: async (username: string, password: string) => remember(await call<Session>('POST', '/api/session', { username, password })),
  signOut: async () => {
    await call<void>('DELETE', '/api/session');
    csrf = '';
  },
  status: () => call<Status>('GET', '/api/status'),

  activity: async (filter: ActivityFilter, before?: number | null, limit = 100): Promise<Page<ActivityEvent>> => {
    const page = await call<{ events: ActivityEvent[]; nextBefore: number | null }>('GET', `/api/activity${query({ ...filter, before, limit })}`);
    return { items: page.events, nextBefore: page.nextBefore };
  },
  activityStreamUrl: (filter: ActivityFilter) => `/api/activity/stream${query({ ...filter })}`,

  approvals: async (status: 'pending' | 'all') => (await call<{ approvals: Approval[] }>('GET', `/api/approvals${query({ status })}`)).approvals,
  approval: (id: string) => call<Approval>('GET', `/api/approvals/${seg(id)}`),
  approve: (id: string, decision: 'allow-once' | 'allow-always') => call<Approval>('POST', `/api/approvals/${seg(id)}/approve`, { decision }),
  deny: (id: string, reason: string) => call<Approval>('POST', `/api/approvals/${seg(id)}/deny`, { reason }),

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
