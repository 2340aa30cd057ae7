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
});
