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
import { accountApprover, ApprovalStore } from '../approvals/store.ts';
import { openGatewayDb } from '../store/store.ts';
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
@id("stage-needs-one") @approval("required")
permit (principal, action == Action::"system.run", resource == Command::"stage");
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
    // resolveApprovalWhenFree does not wait for its audit append: read until the records land.
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

  it('lets exactly one of two approvers deciding at once win, approve against deny: the other is answered 409 naming how it was settled (regression: "already resolved", whether allowed or denied), and the log records one decision', async () => {
    const running = invoke(['wipe', 'raced']).catch((e: unknown) => e);
    const pending = await pendingFor('wipe');
    const [approved, denied] = await Promise.all([alice.post(`/api/approvals/${pending.id}/approve`, {}), bob.post(`/api/approvals/${pending.id}/deny`, { reason: 'raced' })]);
    const [won, lost] = approved.status === 200 ? [approved, denied] : [denied, approved];
    assert.deepEqual([won.status, lost.status, lost.body.code], [200, 409, 'GATEWAY_APPROVAL_RESOLVED']);
    assert.match(String(lost.body.message), new RegExp(`already ${won.body.status}`));
    await running;
    const records = await waitFor('the approval.resolve record', async () => {
      const found = (await auditEvents(state)).filter((e) => e.action === 'approval.resolve' && e.resource.id === pending.id);
      return found.length > 0 ? found : undefined;
    });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await auditEvents(state)).filter((e) => e.action === 'approval.resolve' && e.resource.id === pending.id).length, records.length);
    assert.deepEqual(records.map((e) => e.details?.decision), [won === approved ? 'allow-once' : 'deny']);
  });

  it('answers a deny over HTTP 409 "already allowed" when `corral approvals approve` took the approval first, from its own connection, while its record was being written', async () => {
    const running = invoke(['wipe', 'cli-first']).catch((e: unknown) => e);
    const pending = await pendingFor('wipe');
    // What `corral approvals approve` does: its own connection, the decision committed once its record is durable.
    const cli = openGatewayDb(state);
    let denied;
    try {
      await new ApprovalStore(cli).resolveRecorded(pending.id, 'allow-once', accountApprover('ops', 'carol'), async () => {
        denied = bob.post(`/api/approvals/${pending.id}/deny`, {});
        await new Promise((r) => setTimeout(r, 200));
      });
    } finally {
      cli.close();
    }
    const lost = await denied!;
    assert.deepEqual([lost.status, lost.body.code], [409, 'GATEWAY_APPROVAL_RESOLVED']);
    assert.match(String(lost.body.message), /already allowed/);
    assert.equal(((await running) as { ok?: boolean }).ok, true);
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

  describe('the reason an approver gives', () => {
    it('comes back as the reason of the approval it settled: in the answer, on reading it again, in the whole history and over the protocol (regression: the approval never carried it, so the console showed none)', async () => {
      const running = invoke(['wipe', 'home']).catch((e: unknown) => e);
      const pending = await pendingFor('wipe');
      assert.equal((await alice.get(`/api/approvals/${pending.id}`)).body.reason, null, 'no reason while pending');
      const denied = await alice.post(`/api/approvals/${pending.id}/deny`, { reason: 'home holds the only copy \u202Eof it' });
      assert.deepEqual([denied.status, denied.body.status, denied.body.reason], [200, 'denied', 'home holds the only copy \u202Eof it']);
      assert.equal((await alice.get(`/api/approvals/${pending.id}`)).body.reason, 'home holds the only copy \u202Eof it', 'kept as given: the console spells out what it cannot show');
      const history = await alice.get('/api/approvals?status=all&limit=1000');
      assert.equal((history.body.approvals as Array<{ id: string; reason: string | null }>).find((a) => a.id === pending.id)?.reason, 'home holds the only copy \u202Eof it');
      const overWs = (await operator.request('exec.approval.get', { id: pending.id })) as { reason?: unknown };
      assert.equal(overWs.reason, 'home holds the only copy \u202Eof it');
      await running;
    });

    it('of a quorum is the reason of the approver whose allow reached it; one before it stays in that approver\'s own record', async () => {
      const running = invoke(['pay', '300']);
      const pending = await pendingFor('pay');
      const first = await alice.post(`/api/approvals/${pending.id}/approve`, { reason: 'invoice 12 matches' });
      assert.deepEqual([first.body.status, first.body.reason], ['pending', null]);
      const second = await bob.post(`/api/approvals/${pending.id}/approve`, { reason: 'payee confirmed by phone' });
      assert.deepEqual([second.body.status, second.body.reason], ['allowed', 'payee confirmed by phone']);
      assert.equal(((await running) as { ok: boolean }).ok, true);
      const records = await waitFor('both approval.resolve records', async () => {
        const found = (await auditEvents(state)).filter((e) => e.action === 'approval.resolve' && e.resource.id === pending.id);
        return found.length >= 2 ? found : undefined;
      });
      assert.deepEqual(records.map((e) => [e.actor.id, e.details?.reason]), [['alice', 'invoice 12 matches'], ['bob', 'payee confirmed by phone']]);
    });

    it('is refused past 500 characters (400), and the approval stays pending', async () => {
      const approval = t.gw.approvals.create({ digest: 'b'.repeat(64), action: { argv: ['ls'] }, quorum: 1 });
      const refused = await alice.post(`/api/approvals/${approval.id}/deny`, { reason: 'x'.repeat(501) });
      assert.equal(refused.status, 400);
      assert.equal(t.gw.approvals.get(approval.id).status, 'pending');
      const kept = await alice.post(`/api/approvals/${approval.id}/deny`, { reason: 'x'.repeat(500) });
      assert.deepEqual([kept.status, kept.body.reason.length], [200, 500]);
    });
  });

  describe('while a corral command holds gateway.db', () => {
    it('lists approvals at once, one past its expiry as expired, and answers everyone else (regression: storing the expiry waited inside SQLite for 5 s, stalling the gateway, then answered 500)', async () => {
      const due = t.gw.approvals.create({ digest: 'c'.repeat(64), action: { argv: ['ls'] }, quorum: 1, ttlMs: 1 });
      await new Promise((r) => setTimeout(r, 20));
      const holder = new DatabaseSync(join(state, 'gateway.db'));
      holder.exec('BEGIN IMMEDIATE');
      try {
        const [listed, status] = await Promise.all([alice.get('/api/approvals?status=all&limit=1000'), alice.get('/api/status')]);
        assert.deepEqual([listed.status, status.status], [200, 200]);
        assert.equal((listed.body.approvals as Array<{ id: string; status: string }>).find((a) => a.id === due.id)?.status, 'expired');
        assert.equal(holder.isTransaction, true, 'answered while the lock was still held');
      } finally {
        holder.exec('ROLLBACK');
        holder.close();
      }
      assert.equal((await alice.get(`/api/approvals/${due.id}`)).body.status, 'expired', 'stored by a later read');
    });

    it('makes a governed run\'s approval once the lock is let go, and answers everyone else meanwhile (regression: the approval\'s insert waited inside SQLite, stalling the gateway for 5 s, and the run failed)', async () => {
      const holder = new DatabaseSync(join(state, 'gateway.db'));
      holder.exec('BEGIN IMMEDIATE');
      let settled = false;
      const running = invoke(['wipe', 'under-lock']).then(
        (v) => ((settled = true), v),
        (e: unknown) => ((settled = true), e),
      );
      try {
        // The run has been decided (its node.invoke.decide record is in the audit log): its approval is what it makes next.
        await waitFor('the run\'s decision record', async () =>
          (await auditEvents(state)).find((e) => e.action === 'node.invoke.decide' && (e.details?.argv as string[] | undefined)?.[1] === 'under-lock'),
        );
        await new Promise((r) => setTimeout(r, 200));
        const status = await alice.get('/api/status');
        assert.equal(status.status, 200);
        assert.equal(settled, false, 'the run still waits for its approval to be made');
        assert.equal(t.gw.approvals.list({ status: 'pending' }).some((a) => (a.action.argv as string[] | undefined)?.[1] === 'under-lock'), false, 'nothing made while the lock is held');
      } finally {
        holder.exec('ROLLBACK');
        holder.close();
      }
      const pending = await waitFor('the approval made once the lock was let go', async () => {
        const list = await alice.get('/api/approvals');
        return (list.body.approvals as Array<{ id: string; action: { argv: string[] } }>).find((a) => a.action.argv[1] === 'under-lock');
      });
      assert.equal((await alice.post(`/api/approvals/${pending.id}/approve`, {})).body.status, 'allowed');
      assert.equal(((await running) as { ok?: boolean }).ok, true);
    });
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
      assert.equal((await bob.get(`/api/approvals/${id}`)).body.standingGrant, 'made');
      const revoked = await bob.post(`/api/approvals/${id}/revoke`, {});
      assert.deepEqual([revoked.status, revoked.body], [200, { id, grant: `approval-${id}`, outcome: 'revoked' }]);
      assert.equal((await bob.get(`/api/approvals/${id}`)).body.standingGrant, 'withdrawn', 'the approval says so');
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

  it('withdraws an approval allowed always and not yet spent: its grant leaves the set, both are recorded, and the command asked again waits for a new approval', async () => {
    const argv = ['stage', 'withdrawn'];
    const ran = () => node.received.filter((r) => (r.params.command as string[]).join(' ') === argv.join(' ')).length;
    // A caller that stops waiting leaves its approval to be spent by the same command asked again.
    const gaveUp = (await operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: argv }, timeoutMs: 1_000, idempotencyKey: randomUUID() }, { timeoutMs: 10_000 }).catch((e: unknown) => e)) as { wire?: { details?: { code?: string } } };
    assert.equal(gaveUp.wire?.details?.code, 'APPROVAL_PENDING');
    const { id } = await pendingFor('stage');
    const early = await bob.post(`/api/approvals/${id}/withdraw`, {});
    assert.deepEqual([early.status, early.body.code], [409, 'GATEWAY_APPROVAL_PENDING'], 'nothing to withdraw while pending');
    assert.equal((await alice.post(`/api/approvals/${id}/approve`, { decision: 'allow-always' })).body.status, 'allowed');
    assert.ok(existsSync(join(state, 'policies', grantFile(id))), 'the grant was made on the allow');
    const withdrawn = await bob.post(`/api/approvals/${id}/withdraw`, { reason: 'allowed by mistake' });
    assert.deepEqual([withdrawn.status, withdrawn.body.status, withdrawn.body.reason, withdrawn.body.grant], [200, 'denied', 'allowed by mistake', { id: `approval-${id}`, status: 'revoked' }]);
    assert.equal(existsSync(join(state, 'policies', grantFile(id))), false, 'the grant left the set');
    const events = await auditEvents(state);
    assert.deepEqual(events.filter((e) => e.resource.id === `approval-${id}` && e.action === 'policy.grant.revoke').map((e) => e.actor.id), ['bob']);
    assert.deepEqual(
      events.filter((e) => e.resource.id === id && e.action === 'approval.resolve').map((e) => [e.actor.id, e.details?.decision, e.details?.status, e.details?.withdrawn ?? false]),
      [['alice', 'allow-always', 'allowed', false], ['bob', 'deny', 'denied', true]],
    );
    assert.equal((await bob.post(`/api/approvals/${id}/withdraw`, {})).status, 409, 'withdrawn once');
    const again = invoke(argv).catch((e: unknown) => e);
    const asked = await waitFor('a new approval for the command asked again', async () => {
      const list = await alice.get('/api/approvals');
      return (list.body.approvals as Array<{ id: string; action: { argv: string[] } }>).find((a) => a.action.argv.join(' ') === argv.join(' '));
    });
    assert.notEqual(asked.id, id);
    await bob.post(`/api/approvals/${asked.id}/deny`, {});
    await again;
    assert.equal(ran(), 0, 'nothing ran');
  });

  it('answers 409 conflict (GATEWAY_APPROVAL_PENDING) to revoking an approval still pending, saying to deny it instead, and leaves nothing behind: allowed always later, it makes its grant (regression: 404, and the grant it made later was silently withheld)', async () => {
    const first = invoke(['stage', 'build']);
    const { id } = await pendingFor('stage');
    const refused = await bob.post(`/api/approvals/${id}/revoke`, {});
    assert.deepEqual([refused.status, refused.body.error, refused.body.code], [409, 'conflict', 'GATEWAY_APPROVAL_PENDING']);
    assert.match(String(refused.body.message), /still pending.*deny it/);
    assert.equal(t.gw.approvals.grantWithdrawn(id), false, 'nothing withdrawn');
    assert.equal((await auditEvents(state)).some((e) => e.action === 'policy.grant.revoke' && e.resource.id === `approval-${id}`), false, 'no revocation recorded');
    const allowed = await alice.post(`/api/approvals/${id}/approve`, { decision: 'allow-always' });
    assert.equal(allowed.body.status, 'allowed');
    await first;
    assert.ok(existsSync(join(state, 'policies', grantFile(id))), 'the grant was made');
    await invoke(['stage', 'build']); // the standing grant: no approval asked
    assert.equal(t.gw.approvals.list({ status: 'pending' }).length, 0);
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
    assert.equal(await control.activate(compileCandidate(files), active.hash), true);
    const ran = () => node.received.filter((r) => (r.params.command as string[]).join(' ') === 'ship it').length;
    await invoke(['ship', 'it']);
    assert.equal(ran(), 2, 'allowed by the grant alone, unasked');
    // `corral approvals revoke` in another process has withdrawn it in the store and not yet swapped its file out.
    assert.equal(await t.gw.approvals.withdrawGrantWhenFree(id), 'withdrawn');
    const refused = (await invoke(['ship', 'it']).catch((e: unknown) => e)) as { wire?: { message?: string } };
    assert.match(refused.wire?.message ?? '', /withdrawn/);
    assert.equal(ran(), 2, 'nothing ran on the withdrawn grant');
  });

  it('answers 403 forbidden (GATEWAY_APPROVAL_OWN_REQUEST) to a signed-in human allowing a request they made themself, counting nothing; they may deny it, and another human allows it', async () => {
    const own = () => t.gw.approvals.create({ digest: randomUUID().replaceAll('-', '').padEnd(64, '0'), action: { principal: 'Human::alice', argv: ['ls'] }, quorum: 1 });
    const approval = own();
    for (const decision of ['allow-once', 'allow-always']) {
      const refused = await alice.post(`/api/approvals/${approval.id}/approve`, { decision });
      assert.deepEqual([refused.status, refused.body.error, refused.body.code], [403, 'forbidden', 'GATEWAY_APPROVAL_OWN_REQUEST'], decision);
    }
    assert.deepEqual(t.gw.approvals.get(approval.id).approvers, []);
    assert.deepEqual((await bob.post(`/api/approvals/${approval.id}/approve`, {})).body.status, 'allowed');
    assert.deepEqual((await alice.post(`/api/approvals/${own().id}/deny`, {})).body.status, 'denied');
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

describe('a gateway.db from before approvals kept their reason', () => {
  it('opens, gains the column, and keeps the reason of the next decision; the approvals stored before have none (null)', async () => {
    const state = mkdtempSync(join(tmpdir(), 'corral-http-approvals-old-'));
    const old = new DatabaseSync(join(state, 'gateway.db'));
    // The approvals table as the releases before reason made it.
    old.exec(`CREATE TABLE approvals (id TEXT PRIMARY KEY, digest TEXT NOT NULL, action TEXT NOT NULL, status TEXT NOT NULL, decision TEXT, quorum INTEGER NOT NULL, approvers TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, resolved_at INTEGER, granted_at INTEGER, grant_withdrawn_at INTEGER);
      CREATE TABLE approvals_migrations (name TEXT PRIMARY KEY, at INTEGER NOT NULL);
      INSERT INTO approvals_migrations VALUES ('grants-made-before-granted-at', 1);`);
    const now = Date.now();
    const insert = old.prepare('INSERT INTO approvals (id, digest, action, status, decision, quorum, approvers, created_at, expires_at, resolved_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)');
    insert.run('before-pending', 'd'.repeat(64), JSON.stringify({ argv: ['ls'] }), 'pending', null, '[]', now, now + 600_000, null);
    insert.run('before-denied', 'e'.repeat(64), JSON.stringify({ argv: ['rm'] }), 'denied', 'deny', '["alice"]', now, now + 600_000, now);
    old.close();
    const t = await startTestGateway({ stateDir: state });
    try {
      const approver = await t.as('olga', ['approver']);
      assert.equal((await approver.get('/api/approvals/before-denied')).body.reason, null);
      const denied = await approver.post('/api/approvals/before-pending/deny', { reason: 'not on this host' });
      assert.deepEqual([denied.status, denied.body.status, denied.body.reason], [200, 'denied', 'not on this host']);
      const check = new DatabaseSync(join(state, 'gateway.db'), { readOnly: true });
      assert.equal((check.prepare('SELECT reason FROM approvals WHERE id = ?').get('before-pending') as { reason: string }).reason, 'not on this host');
      check.close();
    } finally {
      await t.close();
      rmSync(state, { recursive: true, force: true });
    }
  });
});
