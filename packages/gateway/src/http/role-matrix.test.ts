// The roles of docs/http-api.md, held against a real gateway route by route:
// the matrix below is written from the document, not from roles.ts, so a
// grant added to (or dropped from) a role there without the document saying
// so fails here. Each role is tried on each route, allowed ones must get past
// the check (any answer but 401/403), the others must be refused 403
// forbidden, also through the path's other spellings (a trailing or doubled
// slash, a dot segment, HEAD for GET).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CorralRole } from '@corral/identity';
import type { Route } from './router.ts';
import { startTestGateway, type ApiClient, type TestGateway } from './testing.ts';

type Who = CorralRole | 'token';
const ALL: readonly Who[] = ['admin', 'approver', 'auditor', 'viewer', 'token'];
const ADMIN: readonly Who[] = ['admin', 'token'];

/**
 * docs/http-api.md: "admin may do everything; approver may read status,
 * activity, approvals, agents and nodes and resolve approvals; auditor may
 * read status, activity, the audit log and policies (and run validate, test
 * and replay on a candidate, which change nothing); viewer may read status
 * and activity. The gateway token acts as admin."
 */
const DOCUMENTED: Record<string, readonly Who[] | 'public'> = {
  'POST /api/session': 'public',
  'GET /api/session': ALL,
  'DELETE /api/session': ALL,
  'GET /api/auth/providers': 'public',
  'GET /api/auth/oidc/start': 'public',
  'GET /api/auth/oidc/callback': 'public',
  'GET /api/status': ALL,
  'GET /api/activity': ALL,
  'GET /api/activity/stream': ALL,
  'GET /api/approvals': [...ADMIN, 'approver'],
  'GET /api/approvals/:id': [...ADMIN, 'approver'],
  'POST /api/approvals/:id/approve': [...ADMIN, 'approver'],
  'POST /api/approvals/:id/deny': [...ADMIN, 'approver'],
  'POST /api/approvals/:id/withdraw': [...ADMIN, 'approver'],
  'POST /api/approvals/:id/revoke': [...ADMIN, 'approver'],
  'GET /api/audit': [...ADMIN, 'auditor'],
  'GET /api/audit/verify': [...ADMIN, 'auditor'],
  'GET /api/audit/:seq': [...ADMIN, 'auditor'],
  'GET /api/agents': [...ADMIN, 'approver'],
  'POST /api/agents/:name/suspend': ADMIN,
  'POST /api/agents/:name/resume': ADMIN,
  'GET /api/nodes': [...ADMIN, 'approver'],
  'GET /api/nodes/pending': [...ADMIN, 'approver'],
  'POST /api/nodes/pending/:requestId/approve': ADMIN,
  'POST /api/nodes/pending/:requestId/reject': ADMIN,
  'PUT /api/nodes/:nodeId/agents': ADMIN,
  'POST /api/nodes/:nodeId/revoke': ADMIN,
  'GET /api/policies': [...ADMIN, 'auditor'],
  'POST /api/policies/validate': [...ADMIN, 'auditor'],
  'POST /api/policies/test': [...ADMIN, 'auditor'],
  'POST /api/policies/replay': [...ADMIN, 'auditor'],
  'POST /api/policies/activate': ADMIN,
};

const keyOf = (route: Route) => `${route.method} ${route.path}`;
/** A path of the route with made-up parameters: allowed callers get 400/404/409, never a change. */
const concrete = (path: string) => path.replace(/:seq/g, '999999').replace(/:[a-zA-Z]+/g, 'no-such-thing');

describe('the roles of docs/http-api.md on every route', () => {
  let t: TestGateway;
  let routes: readonly Route[];
  const clients = new Map<Who, ApiClient>();
  before(async () => {
    t = await startTestGateway();
    routes = t.gw.http.router?.routes ?? [];
    for (const role of ['admin', 'approver', 'auditor', 'viewer'] as const) clients.set(role, await t.as(`matrix-${role}`, [role]));
    clients.set('token', t.tool());
  });
  after(() => t.close());

  /**
   * One request as `who`; the event stream is asked with HEAD, which answers
   * its headers and holds nothing open, and signing out with a session of its own.
   */
  const call = async (who: Who, route: Route, path = concrete(route.path), method: string = route.path === '/api/activity/stream' ? 'HEAD' : route.method) => {
    const client = method === 'DELETE' && who !== 'token' ? await t.as(`matrix-${who}`, [who]) : clients.get(who)!;
    return client.call(method, path, method === 'POST' ? {} : undefined);
  };

  it('has the document’s word on every route the gateway serves, and serves every route the document names', () => {
    assert.deepEqual(routes.map(keyOf).sort(), Object.keys(DOCUMENTED).sort());
  });

  it('lets each role reach exactly the routes the document gives it, and answers every other route 403 forbidden', async () => {
    const wrong: string[] = [];
    for (const route of routes) {
      const allowed = DOCUMENTED[keyOf(route)]!;
      if (allowed === 'public') continue;
      for (const who of ALL) {
        const answer = await call(who, route);
        const reached = answer.status !== 401 && answer.status !== 403;
        if (reached !== allowed.includes(who)) wrong.push(`${who} ${keyOf(route)}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 120)}`);
        else if (!reached) assert.deepEqual(answer.body, { error: 'forbidden' }, `${who} ${keyOf(route)}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('refuses a role the same through other spellings of a path it may not take: a trailing or doubled slash, a dot segment, and HEAD for GET', async () => {
    const wrong: string[] = [];
    for (const route of routes) {
      const allowed = DOCUMENTED[keyOf(route)]!;
      if (allowed === 'public') continue;
      const path = concrete(route.path);
      const spellings = [`${path}/`, path.replace('/api/', '/api//'), path.replace('/api/', '/api/./'), path.replace('/api/', '/api/x/../')];
      for (const who of ALL.filter((w) => !allowed.includes(w))) {
        const tries: Array<[string, string]> = spellings.map((p) => [route.method, p]);
        if (route.method === 'GET') tries.push(['HEAD', path]);
        for (const [method, p] of tries) {
          const answer = await call(who, route, p, method);
          // 404/405 is a path no route takes; anything else must be the role's refusal.
          if (answer.status !== 403 && answer.status !== 404 && answer.status !== 405) wrong.push(`${who} ${method} ${p}: ${answer.status}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });
});
