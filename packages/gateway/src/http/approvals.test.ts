// Approving from the console: the approver is the signed-in human, a waiting
// command wakes when the quorum is reached, the audit log records who, and
// the same human approving twice counts once.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { pairedNodePeer, type NodePeer } from '../../test/node-peer.ts';
import { grantFile } from '../approvals/grants.ts';
import { compileCandidate, PolicyControl } from './policy-control.ts';
import { GatewayClient } from '../client/client.ts';
import { auditEvents, startTestGateway, type ApiClient, type TestGateway } from './testing.ts';

const POLICY = `
@id("pay-needs-two") @approval("required") @quorum("2")
permit (principal, action == Action::"system.run", resource == Command::"pay");
@id("wipe-needs-one") @approval("required")
permit (principal, action == Action::"system.run", resource == Command::"wipe");
@id("deploy-needs-one") @approval("required")
permit (principal, action == Action::"system.run", resource == Command::"deploy");
@id("ship-needs-one") @approval("required")
permit (principal, action == Action::"system.run", resource == Command::"ship");
`;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const found = await probe();
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('approvals from a signed-in session', () => {
  let state: string;
  let t: TestGateway;
  let node: NodePeer;
  let operator: GatewayClient;
  let alice: ApiClient;
  let bob: ApiClient;
  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'corral-http-approvals-'));
    mkdirSync(join(state, 'policies'));
    writeFileSync(join(state, 'policies', 'main.cedar'), POLICY);
    t = await startTestGateway({ stateDir: state });
    node = await pairedNodePeer(t.gw.url, t.token, t.gw.identity, ['system.run']);
    operator = await GatewayClient.connect({ url: t.gw.url, token: t.token, role: 'operator', scopes: ['operator.admin'] });
    alice = await t.as('alice', ['approver']);
    bob = await t.as('bob', ['approver']);
  });
  after(async () => {
    await operator.close();
    await node.close();
    await t.close();
    rmSync(state, { recursive: true, force: true });
  });

  const invoke = (argv: string[]) => operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: argv, env: { PAYMENT_TOKEN: 'secret-value' } }, timeoutMs: 20_000, idempotencyKey: randomUUID() }, { timeoutMs: 25_000 });
  const pendingFor = (command: string) =>
    waitFor(`a pending approval for ${command}`, async () => {
      const list = await alice.get('/api/approvals');
      return (list.body.approvals as Array<{ id: string; action: { argv: string[] } }>).find((a) => a.action.argv[0] === command);
    });

  it('wakes the waiting command once two distinct humans approve; alice approving twice counts once; the log names both', async () => {
    const running = invoke(['pay', '100']);
    const pending = await pendingFor('pay');
    assert.deepEqual((pending.action as unknown as { env: unknown }).env, ['PAYMENT_TOKEN'], 'environment values never leave the gateway');
    const first = await alice.post(`/api/approvals/${pending.id}/approve`, { decision: 'allow-once' });
    assert.deepEqual([first.status, first.body.status, first.body.approvers], [200, 'pending', ['alice']]);
    const again = await alice.post(`/api/approvals/${pending.id}/approve`, {});
    assert.deepEqual([again.status, again.body.status, again.body.approvers], [200, 'pending', ['alice']]);
    assert.equal(node.received.length, 0, 'nothing ran before the quorum');
    const second = await bob.post(`/api/approvals/${pending.id}/approve`, {});
    assert.deepEqual([second.body.status, second.body.approvers], ['allowed', ['alice', 'bob']]);
    const result = (await running) as { ok: boolean };
    assert.equal(result.ok, true);
    assert.deepEqual(node.received.map((r) => (r.params.command as string[])[0]), ['pay']);
    // resolveApproval does not wait for its audit append: read until the records land.
    const resolved = await waitFor('the approval.resolve records', async () => {
      const found = (await auditEvents(state)).filter((e) => e.action === 'approval.resolve' && e.resource.id === pending.id);
      return found.length >= 3 ? found : undefined;
    });
    assert.deepEqual(resolved.map((e) => e.actor), [{ kind: 'human', id: 'alice' }, { kind: 'human', id: 'alice' }, { kind: 'human', id: 'bob' }]);
  });

  it('refuses an approver named in the body of a session request (400), and a second decision on a resolved approval (409)', async () => {
    const running = invoke(['wipe']).catch((e: unknown) => e);
    const pending = await pendingFor('wipe');
    const named = await alice.post(`/api/approvals/${pending.id}/approve`, { approver: 'someone-else' });
    assert.equal(named.status, 400);
    const denied = await bob.post(`/api/approvals/${pending.id}/deny`, { reason: 'not today' });
    assert.deepEqual([denied.status, denied.body.status], [200, 'denied']);
    const late = await alice.post(`/api/approvals/${pending.id}/approve`, {});
    assert.deepEqual([late.status, late.body.error, late.body.code], [409, 'conflict', 'GATEWAY_APPROVAL_RESOLVED']);
    const failure = (await running) as { wire?: { message?: string } };
    assert.match(failure.wire?.message ?? '', /denied/);
    assert.equal((await alice.get('/api/approvals/no-such-id')).status, 404);
    assert.equal((await alice.get('/api/approvals?status=bogus')).status, 400);
  });

  it('keeps the reason a human gives in the decision\'s own approval.resolve record, with no second write that could fail after the decision (regression: a separate approval.comment append failing answered 500 for an approval that went through)', async () => {
    const running = invoke(['wipe', 'disk']).catch((e: unknown) => e);
    const pending = await pendingFor('wipe');
    const denied = await alice.post(`/api/approvals/${pending.id}/deny`, { reason: 'wrong disk' });
    assert.deepEqual([denied.status, denied.body.status], [200, 'denied']);
    await running;
    const records = await waitFor('the approval.resolve record', async () => {
      const found = (await auditEvents(state)).filter((e) => e.resource.id === pending.id && (e.action === 'approval.resolve' || e.action === 'approval.comment'));
      return found.some((e) => e.action === 'approval.resolve') ? found : undefined;
    });
    assert.deepEqual(records.map((e) => [e.action, e.actor.id, e.details?.decision, e.details?.reason]), [['approval.resolve', 'alice', 'deny', 'wrong disk']]);
  });

  it('goes on answering everyone else while a corral command holds the gateway state, and resolves once it lets go (regression: the resolve waited inside SQLite for 5 s, stalling every connection, then answered 500)', async () => {
    const running = invoke(['wipe', 'tmp']).catch((e: unknown) => e);
    const pending = await pendingFor('wipe');
    // What `corral approvals approve` does while it appends its record: gateway.db's write lock, from another connection.
    const holder = new DatabaseSync(join(state, 'gateway.db'));
    holder.exec('BEGIN IMMEDIATE');
    let answered = false;
    const resolving = alice.post(`/api/approvals/${pending.id}/approve`, {}).finally(() => (answered = true));
    try {
      await new Promise((r) => setTimeout(r, 300));
      const status = await alice.get('/api/status');
      assert.equal(status.status, 200);
      assert.equal(answered, false, 'the status was answered while the approval waited for the lock');
      assert.equal(t.gw.approvals.get(pending.id).status, 'pending');
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    const approved = await resolving;
    assert.deepEqual([approved.status, approved.body.status], [200, 'allowed']);
    assert.equal(((await running) as { ok?: boolean }).ok, true);
  });

  it('answers 503 GATEWAY_BUSY with Retry-After, and changes nothing, when a corral command keeps the gateway state past the wait', async () => {
    const running = invoke(['wipe', 'var']).catch((e: unknown) => e);
    const pending = await pendingFor('wipe');
    const holder = new DatabaseSync(join(state, 'gateway.db'));
    holder.exec('BEGIN IMMEDIATE');
    let refused;
    try {
      refused = await alice.post(`/api/approvals/${pending.id}/deny`, { reason: 'too late' });
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    assert.deepEqual([refused.status, refused.body.error, refused.body.code, refused.headers.get('retry-after')], [503, 'unavailable', 'GATEWAY_BUSY', '1']);
    assert.equal(t.gw.approvals.get(pending.id).status, 'pending');
    const denied = await alice.post(`/api/approvals/${pending.id}/deny`, { reason: 'on retry' });
    assert.deepEqual([denied.status, denied.body.status], [200, 'denied']);
    await running;
  });

  describe('when an allow-always grant is revoked', () => {
    let id: string;
    before(async () => {
      const first = invoke(['deploy', 'web']);
      id = (await pendingFor('deploy')).id;
      await alice.post(`/api/approvals/${id}/approve`, { decision: 'allow-always' });
      await first;
      await invoke(['deploy', 'web']); // the standing grant: no approval asked
    });

    it('removes the grant file, records who revoked it, and the next decision asks again', async () => {
      assert.equal(t.gw.approvals.list({ status: 'pending' }).length, 0, 'the grant answered the second run');
      assert.ok(existsSync(join(state, 'policies', grantFile(id))));
      const revoked = await bob.post(`/api/approvals/${id}/revoke`, {});
      assert.deepEqual([revoked.status, revoked.body], [200, { id, grant: `approval-${id}`, outcome: 'revoked' }]);
      assert.equal(existsSync(join(state, 'policies', grantFile(id))), false);
      const records = (await auditEvents(state)).filter((e) => e.action === 'policy.grant.revoke');
      assert.deepEqual(records.map((e) => [e.actor.id, e.resource.id]), [['bob', `approval-${id}`]]);
      const again = invoke(['deploy', 'web']).catch((e: unknown) => e);
      const asked = await pendingFor('deploy');
      assert.notEqual(asked.id, id);
      await bob.post(`/api/approvals/${asked.id}/deny`, {});
      await again;
    });

    it('answers 404 for an approval with no active grant, and needs a named human with the token', async () => {
      assert.equal((await bob.post(`/api/approvals/${id}/revoke`, {})).status, 404);
      assert.equal((await bob.post('/api/approvals/not-an-id/revoke', {})).status, 404);
      assert.equal((await t.tool().post(`/api/approvals/${id}/revoke`, {})).status, 400);
    });
  });

  it('allows nothing on a grant withdrawn in another process while its file is still in the set, where it alone allowed (regression: it allowed until the file went)', async () => {
    const first = invoke(['ship', 'it']);
    const { id } = await pendingFor('ship');
    await alice.post(`/api/approvals/${id}/approve`, { decision: 'allow-always' });
    await first;
    // The policy that asked goes: the grant alone allows the action now.
    const control = PolicyControl.open(join(state, 'policies'));
    const active = control.active();
    const files = active.files.map((f) => (f.name === 'main.cedar' ? { ...f, text: POLICY.replace(/@id\("ship-needs-one"\)[^;]*;/, '') } : f));
    assert.equal(control.activate(compileCandidate(files), active.hash), true);
    const ran = () => node.received.filter((r) => (r.params.command as string[]).join(' ') === 'ship it').length;
    await invoke(['ship', 'it']);
    assert.equal(ran(), 2, 'allowed by the grant alone, unasked');
    // `corral approvals revoke` in another process has withdrawn it in the store and not yet swapped its file out.
    assert.equal(t.gw.approvals.withdrawGrant(id), 'withdrawn');
    const refused = (await invoke(['ship', 'it']).catch((e: unknown) => e)) as { wire?: { message?: string } };
    assert.match(refused.wire?.message ?? '', /withdrawn/);
    assert.equal(ran(), 2, 'nothing ran on the withdrawn grant');
  });

  it('keeps the bearer-token form: the body names the approver', async () => {
    const approval = t.gw.approvals.create({ digest: 'a'.repeat(64), action: { argv: ['ls'] }, quorum: 1 });
    const tool = t.tool();
    assert.equal((await tool.post(`/api/approvals/${approval.id}/approve`, {})).status, 400);
    const answer = await tool.post(`/api/approvals/${approval.id}/approve`, { approver: 'carol' });
    assert.deepEqual(answer.body.approvers, ['token:carol'], 'recorded as named under the gateway token');
  });

  it('lets no holder of the gateway token make a quorum of two alone, whatever names it gives; a signed-in human completes it', async () => {
    const running = invoke(['pay', '200']);
    const pending = await pendingFor('pay');
    const tool = t.tool();
    for (const name of ['mallory', 'mallory-2']) assert.equal((await tool.post(`/api/approvals/${pending.id}/approve`, { approver: name })).body.status, 'pending');
    const overWs = (await operator.request('exec.approval.resolve', { id: pending.id, decision: 'allow-once', reviewer: { channel: 'corral', accountId: 'x', senderId: 'mallory-3' } })) as { status: string };
    assert.equal(overWs.status, 'pending');
    assert.equal(node.received.filter((r) => (r.params.command as string[])[1] === '200').length, 0, 'nothing ran');
    const done = await alice.post(`/api/approvals/${pending.id}/approve`, {});
    assert.deepEqual([done.body.status, done.body.approvers], ['allowed', ['token:mallory', 'alice']]);
    assert.equal(((await running) as { ok: boolean }).ok, true);
  });
});

describe('the whole history of approvals', () => {
  it('is read a page at a time, newest page first, each oldest first, with no approval skipped or repeated (regression: every approval ever made in one answer)', async () => {
    const t = await startTestGateway();
    try {
      const made = Array.from({ length: 7 }, (_, i) => t.gw.approvals.create({ digest: i.toString(16).padStart(64, '0'), action: { argv: ['echo', String(i)] }, quorum: 1 }).id);
      const approver = await t.as('april', ['approver']);
      const seen: string[][] = [];
      let query = '?status=all&limit=3';
      for (;;) {
        const page = await approver.get(`/api/approvals${query}`);
        assert.equal(page.status, 200);
        seen.unshift(page.body.approvals.map((a: { id: string }) => a.id));
        if (page.body.nextBefore === null) break;
        query = `?status=all&limit=3&before=${page.body.nextBefore}`;
      }
      assert.deepEqual(seen.map((p) => p.length), [1, 3, 3]);
      assert.deepEqual(seen.flat(), made);
      assert.equal((await approver.get('/api/approvals?status=all')).body.approvals.length, 7);
      for (const bad of ['limit=0', 'limit=1001', 'limit=x', 'before=0', 'before=-1']) assert.equal((await approver.get(`/api/approvals?status=all&${bad}`)).status, 400, bad);
    } finally {
      await t.close();
    }
  });
});
