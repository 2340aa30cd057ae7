// A request is authenticated when its headers arrive, and its body may
// follow for as long as the server's request timeout lets it (30 s), and a
// policy activation then compiles its candidate for up to seconds: a session
// ended meanwhile (its login's roles or password changed, the login removed,
// signed out) must not have the request go through. Regression: the session
// was checked only before the body was read, so an approver demoted while
// sending a decision slowly still allowed a request, and an admin demoted
// while their candidate compiled still activated it.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { LARGE_ORG } from '../../test/large-set.ts';
import { type ApiClient, startTestGateway, type TestGateway } from './testing.ts';

/** Sends `method path` with the client's cookie and key and half of `body`; `finish()` sends the rest and resolves to the answer. */
function sendSlowly(client: ApiClient, method: string, path: string, body: unknown): { finish: () => Promise<{ status: number; body: any }> } {
  const text = Buffer.from(JSON.stringify(body));
  const url = new URL(path, client.base);
  let resolveAnswer: (res: IncomingMessage) => void = () => {};
  const answered = new Promise<IncomingMessage>((resolve) => (resolveAnswer = resolve));
  const req: ClientRequest = request(url, { method, headers: { cookie: client.cookie!, 'x-corral-csrf': client.csrf!, 'content-type': 'application/json', 'content-length': String(text.length) } }, resolveAnswer);
  req.write(text.subarray(0, 1));
  return {
    async finish() {
      req.end(text.subarray(1));
      const res = await answered;
      let raw = '';
      for await (const chunk of res) raw += chunk;
      return { status: res.statusCode!, body: raw === '' ? undefined : JSON.parse(raw) };
    },
  };
}

/** Lets the gateway read the headers (and authenticate) before anything else happens. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

describe('a request whose session ends before it acts', () => {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway();
  });
  after(() => t.close());

  const asks = () => t.gw.approvals.create({ digest: createHash('sha256').update(randomBytes(8)).digest('hex'), action: { principal: 'Agent::bot', argv: ['pay', '100'] }, quorum: 1 });

  it('refuses an approval by an approver demoted meanwhile (401 unauthenticated) and leaves the approval pending (regression: it was allowed)', async () => {
    const eve = await t.as('eve', ['approver']);
    const approval = asks();
    const slow = sendSlowly(eve, 'POST', `/api/approvals/${approval.id}/approve`, { decision: 'allow-once' });
    await settle();
    t.gw.identity.localUsers.setRoles('eve', ['viewer']);
    const answer = await slow.finish();
    assert.deepEqual([answer.status, answer.body.error], [401, 'unauthenticated']);
    assert.deepEqual([t.gw.approvals.get(approval.id).status, t.gw.approvals.get(approval.id).approvers], ['pending', []]);
  });

  it('refuses an approval by an approver whose password was set again meanwhile', async () => {
    const mallory = await t.as('mallory', ['approver']);
    const approval = asks();
    const slow = sendSlowly(mallory, 'POST', `/api/approvals/${approval.id}/deny`, {});
    await settle();
    await t.gw.identity.localUsers.setPassword('mallory', 'another password for tests');
    assert.equal((await slow.finish()).status, 401);
    assert.equal(t.gw.approvals.get(approval.id).status, 'pending');
  });

  it('refuses a suspension sent by an admin who signed out meanwhile, and the agent stays active', async () => {
    t.gw.identity.agents.create({ name: 'worker', process: 'work', owner: 'ops@example.com' });
    const root = await t.as('root', ['admin']);
    const slow = sendSlowly(root, 'POST', '/api/agents/worker/suspend', { reason: 'slowly' });
    await settle();
    assert.equal((await root.call('DELETE', '/api/session')).status, 204);
    assert.equal((await slow.finish()).status, 401);
    assert.equal(t.gw.identity.agents.find('worker')?.status, 'active');
  });

  it('refuses an approval and a withdrawal by an approver demoted while a corral command held the gateway state, the approval as it was (regression: checked before the wait for the lock, the decision went through after it)', async () => {
    const dave = await t.as('dave', ['approver']);
    const pending = asks();
    const allowed = asks();
    await t.gw.invoker.resolveApprovalWhenFree(allowed.id, 'allow-once', 'someone-else');
    // What `corral approvals approve` does while it appends its record: gateway.db's write lock, from another connection.
    const holder = new DatabaseSync(join(t.state, 'gateway.db'));
    holder.exec('BEGIN IMMEDIATE');
    let approving: Promise<{ status: number; body: any }>;
    let withdrawing: Promise<{ status: number; body: any }>;
    try {
      approving = dave.post(`/api/approvals/${pending.id}/approve`, {});
      withdrawing = dave.post(`/api/approvals/${allowed.id}/withdraw`, { reason: 'mistake' });
      await settle();
      t.gw.identity.localUsers.setRoles('dave', ['viewer']);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    for (const answer of [await approving, await withdrawing]) assert.deepEqual([answer.status, answer.body.code], [401, 'GATEWAY_SESSION_ENDED']);
    assert.equal(t.gw.approvals.get(pending.id).status, 'pending');
    assert.equal(t.gw.approvals.get(allowed.id).status, 'allowed');
  });

  it('lets a request whose session holds go through as before', async () => {
    const carol = await t.as('carol', ['approver']);
    const approval = asks();
    const slow = sendSlowly(carol, 'POST', `/api/approvals/${approval.id}/approve`, {});
    await settle();
    const answer = await slow.finish();
    assert.deepEqual([answer.status, answer.body.status], [200, 'allowed']);
  });

  it('refuses a policy activation by an admin demoted while the candidate was compiled, after its body was in, and the set in force stays (regression: it was activated)', async () => {
    const root = await t.as('root', ['admin']);
    await t.gw.identity.localUsers.create('backup', 'a password for tests', ['admin']);
    const before = await root.get('/api/policies');
    const files = [
      { name: 'main.cedar', text: 'permit (principal, action, resource);\n' },
      { name: 'entities.json', text: LARGE_ORG },
    ];
    const activating = root.post('/api/policies/activate', { files, baseHash: before.body.hash });
    // The body is in within milliseconds; compiling 5,000 people takes a good part of a second, off the gateway's thread.
    await settle();
    t.gw.identity.localUsers.setRoles('root', ['viewer']);
    const answer = await activating;
    assert.deepEqual([answer.status, answer.body.error, answer.body.code], [401, 'unauthenticated', 'GATEWAY_SESSION_ENDED']);
    const tool = await t.tool().get('/api/policies');
    assert.equal(tool.body.hash, before.body.hash);
  });
});
