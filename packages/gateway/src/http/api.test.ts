import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Gateway } from '../index.ts';

const token = randomBytes(24).toString('base64url');
const digest = (s: string) => createHash('sha256').update(s).digest('hex');

describe('the approvals HTTP API', () => {
  let state: string;
  let gw: Gateway;
  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'corral-api-'));
    gw = await Gateway.start({ stateDir: state, token, port: 0, audit: false });
  });
  after(async () => {
    await gw.close();
    rmSync(state, { recursive: true, force: true });
  });
  const call = (path: string, init: RequestInit = {}, bearer: string | null = token) =>
    fetch(`${gw.httpUrl}${path}`, { ...init, headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), 'content-type': 'application/json' } });

  it('answers 401 unauthenticated without the gateway token, or with a wrong one', async () => {
    assert.equal((await call('/api/approvals', {}, null)).status, 401);
    const wrong = await call('/api/approvals', {}, 'x'.repeat(40));
    assert.equal(wrong.status, 401);
    assert.deepEqual(await wrong.json(), { error: 'unauthenticated' });
  });

  it('lists pending approvals, approves one with a named approver, and refuses to resolve it twice', async () => {
    const approval = gw.approvals.create({ digest: digest('ls'), action: { argv: ['ls'] }, quorum: 1 });
    const listed = (await (await call('/api/approvals')).json()) as { approvals: Array<{ id: string }> };
    assert.ok(listed.approvals.some((a) => a.id === approval.id));
    const approved = await call(`/api/approvals/${approval.id}/approve`, { method: 'POST', body: JSON.stringify({ approver: 'alice' }) });
    assert.equal(approved.status, 200);
    assert.deepEqual(((await approved.json()) as { status: string; approvers: string[] }).approvers, ['token:alice']);
    assert.equal((await call(`/api/approvals/${approval.id}/deny`, { method: 'POST', body: JSON.stringify({ approver: 'bob' }) })).status, 409);
  });

  it('needs a named approver (400) and answers 404 for an unknown id', async () => {
    const approval = gw.approvals.create({ digest: digest('id'), action: {}, quorum: 1 });
    assert.equal((await call(`/api/approvals/${approval.id}/approve`, { method: 'POST', body: '{}' })).status, 400);
    assert.equal((await call('/api/approvals/unknown/approve', { method: 'POST', body: JSON.stringify({ approver: 'a' }) })).status, 404);
    assert.equal((await call(`/api/approvals/${approval.id}/approve`, { method: 'POST', body: 'not json' })).status, 400);
  });

  it('refuses an approver name the protocol refuses too: blank, a line feed or other control character, too long, not text (400), and the approval stays pending', async () => {
    const approval = gw.approvals.create({ digest: digest('names'), action: {}, quorum: 1 });
    for (const approver of [' ', 'evil\nline', 'bell\u0007', 'x'.repeat(151), 42, ['alice']]) {
      const answer = await call(`/api/approvals/${approval.id}/approve`, { method: 'POST', body: JSON.stringify({ approver }) });
      assert.equal(answer.status, 400, JSON.stringify(approver));
    }
    assert.equal(gw.approvals.get(approval.id).status, 'pending');
  });

  it('refuses a decision it does not know (null, deny, a list, a number) with 400, and the approval stays pending', async () => {
    const approval = gw.approvals.create({ digest: digest('decision'), action: { argv: ['rm'] }, quorum: 1 });
    for (const decision of [null, 'deny', ['allow-once'], 1, '']) {
      const answer = await call(`/api/approvals/${approval.id}/approve`, { method: 'POST', body: JSON.stringify({ approver: 'alice', decision }) });
      assert.deepEqual([answer.status, ((await answer.json()) as { error: string }).error], [400, 'invalid_request'], JSON.stringify(decision));
    }
    assert.equal(gw.approvals.get(approval.id).status, 'pending');
  });
});
