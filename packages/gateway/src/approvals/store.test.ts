import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DatabaseSync } from 'node:sqlite';
import { openGatewayDb } from '../store/store.ts';
import { RECEIPT_CLOCK_SKEW_MS, RECEIPT_VALIDITY_MS, ReceiptSigner, SpentReceipts, verifyReceipt, type ReceiptBody } from './receipt.ts';
import { accountApprover, ApprovalStore, tokenApprover } from './store.ts';

const dir = mkdtempSync(join(tmpdir(), 'corral-approvals-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const digestOf = (text: string) => createHash('sha256').update(text).digest('hex');
const pick = (a: { status: string; decision: string | null }) => [a.status, a.decision];

function store(now: () => number = Date.now): ApprovalStore {
  return new ApprovalStore(openGatewayDb(dir), now);
}

describe('approvals', () => {
  it('allows once: usable for its own digest exactly once', async () => {
    const approvals = store();
    const a = approvals.create({ digest: digestOf('ls'), action: { argv: ['ls'] }, quorum: 1 });
    assert.equal(approvals.resolve(a.id, 'allow-once', 'alice').status, 'allowed');
    assert.equal((await approvals.consumeNowOrWhenFree(a.id, digestOf('ls'))).status, 'used');
    await assert.rejects(async () => approvals.consumeNowOrWhenFree(a.id, digestOf('ls')), { code: 'GATEWAY_APPROVAL_RESOLVED' });
  });

  it('is never replayable for a different command (GATEWAY_APPROVAL_MISMATCH)', async () => {
    const approvals = store();
    const a = approvals.create({ digest: digestOf('ls'), action: {}, quorum: 1 });
    approvals.resolve(a.id, 'allow-once', 'alice');
    await assert.rejects(async () => approvals.consumeNowOrWhenFree(a.id, digestOf('ls | rm -rf /')), { code: 'GATEWAY_APPROVAL_MISMATCH' });
    assert.equal(approvals.get(a.id).status, 'allowed');
  });

  it('needs a quorum of distinct approvers: one approver twice does not count twice', () => {
    const approvals = store();
    const a = approvals.create({ digest: digestOf('git push'), action: {}, quorum: 2 });
    assert.equal(approvals.resolve(a.id, 'allow-once', 'alice').status, 'pending');
    assert.equal(approvals.resolve(a.id, 'allow-once', 'alice').status, 'pending');
    const done = approvals.resolve(a.id, 'allow-once', 'bob');
    assert.equal(done.status, 'allowed');
    assert.deepEqual(done.approvers, ['alice', 'bob']);
  });

  it('counts every approver named under the shared gateway token as one toward a quorum: the token cannot tell its holders apart', () => {
    const approvals = store();
    const a = approvals.create({ digest: digestOf('pay 10000'), action: {}, quorum: 2 });
    assert.equal(approvals.resolve(a.id, 'allow-once', tokenApprover('alice')).status, 'pending');
    assert.equal(approvals.resolve(a.id, 'allow-once', tokenApprover('bob')).status, 'pending');
    assert.equal(approvals.resolve(a.id, 'allow-once', tokenApprover('device:0f3a')).status, 'pending');
    const done = approvals.resolve(a.id, 'allow-once', 'carol');
    assert.deepEqual([done.status, done.approvers], ['allowed', ['token:alice', 'carol']], 'one name for the token: the approvers are those who counted');
  });

  it('keeps one name per token or account, so that a token holder naming twenty approvers neither grows the request nor makes its receipt one a node refuses (regression: seventeen approvers on a receipt, refused at the node)', () => {
    const db = openGatewayDb(dir);
    const approvals = new ApprovalStore(db);
    const digest = digestOf('pay 10000 after a crowd of names');
    const a = approvals.create({ digest, action: {}, quorum: 2 });
    for (let i = 0; i < 20; i++) assert.equal(approvals.resolve(a.id, 'allow-once', tokenApprover(`holder-${i}`)).status, 'pending');
    assert.deepEqual(approvals.get(a.id).approvers, ['token:holder-0']);
    const spent = approvals.resolve(a.id, 'allow-once', 'carol');
    assert.deepEqual([spent.status, spent.approvers], ['allowed', ['token:holder-0', 'carol']]);
    const signer = ReceiptSigner.open(db);
    const receipt = signer.sign({ v: 2, approvalId: spent.id, digest, decision: 'allow-once', approvers: spent.approvers, quorum: spent.quorum, resolvedAtMs: spent.resolvedAtMs!, issuedAtMs: Date.now(), expiresAtMs: Date.now() + RECEIPT_VALIDITY_MS, runId: 'run-1', principal: 'Agent::payer', nodeId: 'node-1', command: 'payment.create' });
    assert.equal(verifyReceipt(receipt, signer.publicKeyPem, { digest, nodeId: 'node-1', runId: 'run-1' }).approvalId, spent.id);
  });

  it('allows always only when every approver of the quorum chose always: one approver cannot make a standing grant of an action the others allowed once', () => {
    const approvals = store();
    const once = approvals.create({ digest: digestOf('pay 20000 then always'), action: {}, quorum: 2 });
    approvals.resolve(once.id, 'allow-once', 'alice');
    assert.deepEqual(pick(approvals.resolve(once.id, 'allow-always', 'bob')), ['allowed', 'allow-once']);
    const always = approvals.create({ digest: digestOf('pay 20000 always then once'), action: {}, quorum: 2 });
    approvals.resolve(always.id, 'allow-always', 'alice');
    assert.deepEqual(pick(approvals.resolve(always.id, 'allow-once', 'bob')), ['allowed', 'allow-once']);
    const both = approvals.create({ digest: digestOf('pay 20000 both always'), action: {}, quorum: 2 });
    assert.equal(approvals.resolve(both.id, 'allow-always', 'alice').status, 'pending');
    assert.deepEqual(pick(approvals.resolve(both.id, 'allow-always', 'bob')), ['allowed', 'allow-always']);
  });

  it('counts every name one system account gives as one approver toward a quorum, and two accounts as two', () => {
    const approvals = store();
    const a = approvals.create({ digest: digestOf('pay 10000 from the cli'), action: {}, quorum: 2 });
    assert.equal(approvals.resolve(a.id, 'allow-once', accountApprover('ops', 'alice')).status, 'pending');
    assert.equal(approvals.resolve(a.id, 'allow-once', accountApprover('ops', 'bob')).status, 'pending');
    const done = approvals.resolve(a.id, 'allow-once', accountApprover('carol', 'carol'));
    assert.deepEqual([done.status, done.approvers], ['allowed', ['account:ops:alice', 'account:carol:carol']]);
    assert.throws(() => accountApprover('ops:alice', 'x'), { code: 'GATEWAY_PARAMS_INVALID' });
    assert.throws(() => accountApprover('ops', ' '), { code: 'GATEWAY_PARAMS_INVALID' }, 'an approver with no name');
  });

  describe('when the approver is the human whose request it is', () => {
    it('refuses their allow, once or always, with GATEWAY_APPROVAL_OWN_REQUEST, under their name or their authority; they may deny it, and someone else may allow it', () => {
      const approvals = store();
      const mine = () => approvals.create({ digest: digestOf(`deploy ${randomUUID()}`), action: { principal: 'Human::alice@example.com', argv: ['deploy'] }, quorum: 1 });
      const a = mine();
      assert.throws(() => approvals.resolve(a.id, 'allow-once', 'alice@example.com'), { code: 'GATEWAY_APPROVAL_OWN_REQUEST' });
      assert.throws(() => approvals.resolve(a.id, 'allow-always', 'alice@example.com'), { code: 'GATEWAY_APPROVAL_OWN_REQUEST' });
      assert.throws(() => approvals.resolve(a.id, 'allow-once', 'oidc:x#alice', undefined, 'alice@example.com'), { code: 'GATEWAY_APPROVAL_OWN_REQUEST' });
      assert.equal(approvals.get(a.id).status, 'pending', 'nothing counted');
      assert.equal(approvals.resolve(a.id, 'allow-once', 'bob@example.com').status, 'allowed');
      assert.equal(approvals.resolve(mine().id, 'deny', 'alice@example.com').status, 'denied');
    });

    it('takes an approver named under the gateway token for the token, never for the human of that name', () => {
      const approvals = store();
      const a = approvals.create({ digest: digestOf('deploy by operator'), action: { principal: 'Human::operator', argv: ['deploy'] }, quorum: 1 });
      assert.equal(approvals.resolve(a.id, 'allow-once', tokenApprover('operator')).status, 'allowed');
    });
  });

  describe('when one signed-in human approves under two names (single sign-on: their address changed case, changed, or lost its verification)', () => {
    const bobs = 'oidc:https://sso.example#248289761001';
    it('counts them once, by the authority the gateway gives, whatever names they came under: alone they reach no quorum of two', async () => {
      const approvals = store();
      const a = approvals.create({ digest: digestOf('pay 20000'), action: {}, quorum: 2 });
      assert.equal(approvals.resolve(a.id, 'allow-once', 'bob@example.com', undefined, bobs).status, 'pending');
      assert.equal(approvals.resolve(a.id, 'allow-once', 'Bob@Example.com', undefined, bobs).status, 'pending');
      assert.equal((await approvals.resolveWhenFree(a.id, 'allow-once', bobs, { authority: bobs })).status, 'pending', 'named by issuer and subject, unverified');
      const done = approvals.resolve(a.id, 'allow-once', 'carol@example.com', undefined, 'oidc:https://sso.example#5550001');
      assert.deepEqual([done.status, done.approvers], ['allowed', ['bob@example.com', 'carol@example.com']]);
    });

    it('still counts every name under the gateway token or one system account as that token or account, whatever authority comes with it', () => {
      const approvals = store();
      const a = approvals.create({ digest: digestOf('pay 30000'), action: {}, quorum: 2 });
      assert.equal(approvals.resolve(a.id, 'allow-once', tokenApprover('alice'), undefined, 'oidc:x#alice').status, 'pending');
      assert.equal(approvals.resolve(a.id, 'allow-once', tokenApprover('bob'), undefined, 'oidc:x#bob').status, 'pending');
      assert.equal(approvals.resolve(a.id, 'allow-once', accountApprover('ops', 'carol'), undefined, 'oidc:x#carol').status, 'allowed');
    });

    it('counts the names of an approval decided before authorities were kept as they were counted then', () => {
      const db = openGatewayDb(dir);
      const approvals = new ApprovalStore(db);
      const a = approvals.create({ digest: digestOf('pay 40000'), action: {}, quorum: 2 });
      db.prepare('UPDATE approvals SET approvers = ?, decision = ? WHERE id = ?').run(JSON.stringify(['bob@example.com']), 'allow-once', a.id);
      assert.equal(approvals.resolve(a.id, 'allow-once', 'bob@example.com').status, 'pending');
      assert.equal(approvals.resolve(a.id, 'allow-once', 'carol@example.com', undefined, 'oidc:x#carol').status, 'allowed');
    });
  });

  it('refuses an approver name that would show otherwise than it reads: a control character (C0 or C1) or a format character such as a bidirectional override', () => {
    for (const name of ['', '   ', 'a'.repeat(151), 'alice\nroot', 'alice\u0085root', 'ali\u202Eecb', 'alice\u200B', 'alice\u2066']) {
      assert.throws(() => tokenApprover(name), { code: 'GATEWAY_PARAMS_INVALID' }, JSON.stringify(name));
      assert.throws(() => accountApprover('ops', name), { code: 'GATEWAY_PARAMS_INVALID' }, JSON.stringify(name));
    }
    assert.equal(accountApprover('ops', 'Zoë Ñandú 山田'), 'account:ops:Zoë Ñandú 山田');
  });

  it('denies on any approver\'s deny, and cannot then be allowed', async () => {
    const approvals = store();
    const a = approvals.create({ digest: digestOf('rm'), action: {}, quorum: 2 });
    approvals.resolve(a.id, 'allow-once', 'alice');
    assert.equal(approvals.resolve(a.id, 'deny', 'bob').status, 'denied');
    assert.throws(() => approvals.resolve(a.id, 'allow-once', 'carol'), { code: 'GATEWAY_APPROVAL_RESOLVED' });
    await assert.rejects(async () => approvals.consumeNowOrWhenFree(a.id, digestOf('rm')), { code: 'GATEWAY_APPROVAL_RESOLVED' });
  });

  describe('withdrawing an approval', () => {
    it('takes back one allowed and not yet spent: its run is refused, and its grant counts for nothing', async () => {
      const approvals = store();
      for (const allow of ['allow-once', 'allow-always'] as const) {
        const a = approvals.create({ digest: digestOf(`make ${allow}`), action: {}, quorum: 1 });
        approvals.resolve(a.id, allow, 'alice');
        const withdrawn = await approvals.resolveWhenFree(a.id, 'deny', 'bob', { withdraw: true, reason: 'allowed by mistake' });
        assert.deepEqual([withdrawn.status, withdrawn.decision, withdrawn.approvers, withdrawn.reason], ['denied', 'deny', ['alice', 'bob'], 'allowed by mistake']);
        assert.equal(approvals.grantWithdrawn(a.id), true);
        assert.equal(approvals.claimGrant(a.id), false);
        await assert.rejects(async () => approvals.consumeNowOrWhenFree(a.id, digestOf(`make ${allow}`)), { code: 'GATEWAY_APPROVAL_RESOLVED' });
      }
    });

    it('refuses one still pending, changing nothing (deny it instead), and one already spent, saying so', async () => {
      const approvals = store();
      const pending = approvals.create({ digest: digestOf('make pending'), action: {}, quorum: 1 });
      await assert.rejects(approvals.resolveWhenFree(pending.id, 'deny', 'bob', { withdraw: true }), { code: 'GATEWAY_APPROVAL_PENDING', message: /deny it instead/ });
      assert.deepEqual([approvals.get(pending.id).status, approvals.grantWithdrawn(pending.id)], ['pending', false]);
      const spent = approvals.create({ digest: digestOf('make spent'), action: {}, quorum: 1 });
      approvals.resolve(spent.id, 'allow-always', 'alice');
      await approvals.consumeNowOrWhenFree(spent.id, digestOf('make spent'));
      await assert.rejects(approvals.resolveWhenFree(spent.id, 'deny', 'bob', { withdraw: true }), { code: 'GATEWAY_APPROVAL_RESOLVED', message: /already allowed and used/ });
      assert.deepEqual([approvals.get(spent.id).status, approvals.grantWithdrawn(spent.id)], ['used', false]);
    });

    it('leaves a deny as it was: an approval already allowed is not denied (409, naming how it was settled)', () => {
      const approvals = store();
      const a = approvals.create({ digest: digestOf('make allowed'), action: {}, quorum: 1 });
      approvals.resolve(a.id, 'allow-once', 'alice');
      assert.throws(() => approvals.resolve(a.id, 'deny', 'bob'), { code: 'GATEWAY_APPROVAL_RESOLVED', message: /already allowed/ });
      assert.deepEqual([approvals.get(a.id).status, approvals.grantWithdrawn(a.id)], ['allowed', false]);
    });
  });

  it('says what became of the standing grant an approval allowed always made: none until made, made, then withdrawn; none for one allowed once, withdrawn or not', async () => {
    const approvals = store();
    const always = approvals.create({ digest: digestOf('make grant'), action: {}, quorum: 1 });
    assert.equal(always.standingGrant, null);
    approvals.resolve(always.id, 'allow-always', 'alice');
    assert.equal(approvals.get(always.id).standingGrant, null, 'allowed, its grant not made yet');
    assert.equal(approvals.claimGrant(always.id), true);
    assert.equal(approvals.get(always.id).standingGrant, 'made');
    assert.equal(await approvals.withdrawGrantWhenFree(always.id), 'withdrawn');
    assert.equal(approvals.get(always.id).standingGrant, 'withdrawn');
    assert.equal(approvals.list({}).find((a) => a.id === always.id)?.standingGrant, 'withdrawn', 'in a list too');
    const once = approvals.create({ digest: digestOf('make once'), action: {}, quorum: 1 });
    approvals.resolve(once.id, 'allow-once', 'alice');
    await approvals.resolveWhenFree(once.id, 'deny', 'bob', { withdraw: true });
    assert.equal(approvals.get(once.id).standingGrant, null, 'withdrawn, it never had one');
  });

  it('withdraws the grants of several approvals in one transaction, saying what it did for each; with one of them still pending, none', async () => {
    const approvals = store();
    const made = approvals.create({ digest: digestOf('grant made'), action: {}, quorum: 1 });
    approvals.resolve(made.id, 'allow-always', 'alice');
    assert.equal(approvals.claimGrant(made.id), true);
    const toCome = approvals.create({ digest: digestOf('grant to come'), action: {}, quorum: 1 });
    approvals.resolve(toCome.id, 'allow-always', 'alice');
    const once = approvals.create({ digest: digestOf('allowed once'), action: {}, quorum: 1 });
    approvals.resolve(once.id, 'allow-once', 'alice');
    const pending = approvals.create({ digest: digestOf('still pending'), action: {}, quorum: 1 });
    await assert.rejects(approvals.withdrawGrantsWhenFree([made.id, toCome.id, pending.id]), { code: 'GATEWAY_APPROVAL_PENDING' });
    assert.deepEqual([approvals.grantWithdrawn(made.id), approvals.grantWithdrawn(toCome.id)], [false, false], 'nothing withdrawn');
    assert.deepEqual(await approvals.withdrawGrantsWhenFree([made.id, toCome.id, once.id]), ['withdrawn', 'withheld', 'none']);
    assert.deepEqual([made, toCome].map((a) => approvals.get(a.id).standingGrant), ['withdrawn', 'withdrawn']);
    assert.deepEqual(await approvals.withdrawGrantsWhenFree([made.id, toCome.id]), ['none', 'none'], 'withdrawn once');
  });

  it('spends allow-always on the one run that asked, like allow-once (what it allows later is its Cedar grant)', async () => {
    const approvals = store();
    const a = approvals.create({ digest: digestOf('make test'), action: {}, quorum: 1 });
    approvals.resolve(a.id, 'allow-always', 'alice');
    await assert.rejects(async () => approvals.consumeNowOrWhenFree(a.id, digestOf('make test; rm -rf /')), { code: 'GATEWAY_APPROVAL_MISMATCH' });
    assert.equal((await approvals.consumeNowOrWhenFree(a.id, digestOf('make test'))).status, 'used');
    await assert.rejects(async () => approvals.consumeNowOrWhenFree(a.id, digestOf('make test')), { code: 'GATEWAY_APPROVAL_RESOLVED' });
  });

  it('expires: a pending approval past its expiry can be neither resolved nor used', async () => {
    let now = 1_000_000;
    const approvals = store(() => now);
    const a = approvals.create({ digest: digestOf('late'), action: {}, quorum: 1, ttlMs: 1_000 });
    now += 1_001;
    assert.equal(approvals.get(a.id).status, 'expired');
    assert.throws(() => approvals.resolve(a.id, 'allow-once', 'alice'), { code: 'GATEWAY_APPROVAL_EXPIRED' });
    await assert.rejects(async () => approvals.consumeNowOrWhenFree(a.id, digestOf('late')), { code: 'GATEWAY_APPROVAL_EXPIRED' });
  });

  describe('when the clock is set back after an approval was made', () => {
    const made = 10_000_000;
    const ttlMs = 15 * 60_000;

    it('expires it once the clock is more than a second before its making: made at 14:00 and the clock set back an hour, it can be neither resolved at 14:55 nor used, nor counted pending (regression: it stayed pending until 15:15)', async () => {
      let now = made;
      const approvals = store(() => now);
      const pending = approvals.create({ digest: digestOf('clock back pending'), action: { principal: 'Agent::clock-bot', nodeId: 'clock-node' }, quorum: 1, ttlMs });
      const allowed = approvals.create({ digest: digestOf('clock back allowed'), action: { principal: 'Agent::clock-bot', nodeId: 'clock-node' }, quorum: 1, ttlMs });
      approvals.resolve(allowed.id, 'allow-once', 'alice');
      now = made - 3_600_000 + 55 * 60_000;
      assert.equal(approvals.get(pending.id).status, 'expired');
      assert.throws(() => approvals.resolve(pending.id, 'allow-once', 'alice'), { code: 'GATEWAY_APPROVAL_EXPIRED' });
      assert.equal(approvals.pendingCount('Agent::clock-bot', 'clock-node'), 0);
      await assert.rejects(async () => approvals.consumeNowOrWhenFree(allowed.id, digestOf('clock back allowed')), { code: 'GATEWAY_APPROVAL_EXPIRED' });
    });

    it('keeps it pending through a step back of a second or less (a clock being corrected)', () => {
      let now = made;
      const approvals = store(() => now);
      const a = approvals.create({ digest: digestOf('clock back a little'), action: {}, quorum: 1, ttlMs });
      now = made - 1_000;
      assert.equal(approvals.get(a.id).status, 'pending');
      assert.equal(approvals.resolve(a.id, 'allow-once', 'alice').status, 'allowed');
    });
  });

  it('survives a restart: pending approvals are there when the store is opened again', () => {
    const first = store();
    const a = first.create({ digest: digestOf('after restart'), action: { argv: ['x'] }, quorum: 1 });
    const reopened = store();
    assert.equal(reopened.get(a.id).status, 'pending');
    assert.ok(reopened.list({ status: 'pending' }).some((p) => p.id === a.id));
    assert.equal(reopened.resolve(a.id, 'allow-once', 'alice').status, 'allowed');
  });

  it('commits a recorded decision only once its record has settled: another connection sees it pending until then', async () => {
    const writer = store();
    const reader = store();
    const a = writer.create({ digest: digestOf('recorded'), action: { argv: ['x'] }, quorum: 1 });
    let seenWhileRecording: string | undefined;
    const resolved = await writer.resolveRecorded(a.id, 'allow-once', 'alice', async (pending) => {
      assert.equal(pending.status, 'allowed');
      await new Promise((r) => setTimeout(r, 20));
      seenWhileRecording = reader.get(a.id).status;
    });
    assert.equal(seenWhileRecording, 'pending');
    assert.equal(resolved.status, 'allowed');
    assert.equal(reader.get(a.id).status, 'allowed');
  });

  it('leaves the approval as it was when its record fails, and throws that failure', async () => {
    const s = store();
    const a = s.create({ digest: digestOf('unrecorded'), action: { argv: ['x'] }, quorum: 1 });
    await assert.rejects(
      s.resolveRecorded(a.id, 'allow-once', 'alice', async () => {
        throw new Error('the disk is full');
      }),
      /the disk is full/,
    );
    assert.equal(s.get(a.id).status, 'pending');
    assert.equal(s.resolve(a.id, 'allow-once', 'alice').status, 'allowed');
  });

  it('answers an unknown id with GATEWAY_APPROVAL_NOT_FOUND and a bad decision with GATEWAY_PARAMS_INVALID', () => {
    const approvals = store();
    assert.throws(() => approvals.get('nope'), { code: 'GATEWAY_APPROVAL_NOT_FOUND' });
    const a = approvals.create({ digest: digestOf('x'), action: {}, quorum: 1 });
    assert.throws(() => approvals.resolve(a.id, 'allow-forever' as 'deny', 'alice'), { code: 'GATEWAY_PARAMS_INVALID' });
  });
});

describe('approval receipts', () => {
  const signer = ReceiptSigner.open(new DatabaseSync(':memory:'));
  const digest = digestOf('printf approved');
  const body = (over: Partial<ReceiptBody> = {}): ReceiptBody => {
    const issuedAtMs = over.issuedAtMs ?? Date.now();
    return { v: 2, approvalId: randomUUID(), digest, decision: 'allow-once', approvers: ['alice'], quorum: 1, resolvedAtMs: issuedAtMs, issuedAtMs, expiresAtMs: issuedAtMs + RECEIPT_VALIDITY_MS, runId: 'run-1', principal: 'Agent::payer', nodeId: 'node-1', command: 'system.run', ...over };
  };
  const expected = { digest, nodeId: 'node-1', runId: 'run-1' };

  describe('when a receipt is of version 1 (no run, no expiry), as gateways signed them before', () => {
    it('is refused though its signature verifies (GATEWAY_RECEIPT_INVALID): a copy of one from the audit log runs nothing', () => {
      const { expiresAtMs: _e, runId: _r, ...v1 } = body();
      const old = signer.sign({ ...v1, v: 1 } as unknown as ReceiptBody);
      assert.throws(() => verifyReceipt(old, signer.publicKeyPem, expected), { code: 'GATEWAY_RECEIPT_INVALID' });
    });
  });

  describe('when a receipt claims a longer validity than a minute', () => {
    it('is refused as malformed though the key signed it (GATEWAY_RECEIPT_INVALID)', () => {
      const long = signer.sign(body({ expiresAtMs: Date.now() + RECEIPT_VALIDITY_MS + 1_000 }));
      assert.throws(() => verifyReceipt(long, signer.publicKeyPem, expected), { code: 'GATEWAY_RECEIPT_INVALID' });
    });
  });

  describe('SpentReceipts, a node\'s memory of the receipts it took', () => {
    it('takes a receipt once: presented again, allow-once or allow-always, it is refused (GATEWAY_APPROVAL_RESOLVED)', () => {
      const spent = new SpentReceipts({ startedAtMs: Date.now() });
      for (const decision of ['allow-once', 'allow-always'] as const) {
        const receipt = verifyReceipt(signer.sign(body({ decision })), signer.publicKeyPem, expected);
        spent.spend(receipt);
        assert.throws(() => spent.spend(receipt), { code: 'GATEWAY_APPROVAL_RESOLVED' });
      }
    });

    it('refuses a receipt issued before the node started, less the clock skew: the node may have taken it as it ran before', () => {
      const now = Date.now();
      const spent = new SpentReceipts({ startedAtMs: now });
      assert.throws(() => spent.spend(signer.sign(body({ issuedAtMs: now - RECEIPT_CLOCK_SKEW_MS - 1 })), now), { code: 'GATEWAY_APPROVAL_RESOLVED' });
      spent.spend(signer.sign(body({ issuedAtMs: now - RECEIPT_CLOCK_SKEW_MS })), now);
    });

    it('refuses a receipt presented once it has lapsed, though another clock verified it a moment before (GATEWAY_APPROVAL_EXPIRED; regression: taken at its last moment, it was forgotten at the next and taken again)', () => {
      const now = Date.now();
      const spent = new SpentReceipts({ startedAtMs: now });
      const receipt = signer.sign(body({ issuedAtMs: now }));
      const lastMoment = receipt.expiresAtMs + RECEIPT_CLOCK_SKEW_MS;
      spent.spend(receipt, lastMoment);
      assert.throws(() => spent.spend(receipt, lastMoment), { code: 'GATEWAY_APPROVAL_RESOLVED' });
      assert.throws(() => spent.spend(receipt, lastMoment + 1), { code: 'GATEWAY_APPROVAL_EXPIRED' });
    });

    it('refuses what the node took before it started again, from what taken() gave it, and gives back only what has not lapsed', () => {
      const now = Date.now();
      const before = new SpentReceipts({ startedAtMs: now - 5_000 });
      const receipt = signer.sign(body({ issuedAtMs: now - 1_000 }));
      const other = signer.sign(body({ issuedAtMs: now - 1_000 }));
      before.spend(receipt, now);
      const kept = before.taken(now);
      assert.deepEqual(kept, [[receipt.approvalId, receipt.expiresAtMs + RECEIPT_CLOCK_SKEW_MS]]);
      // Issued a second before this start: within the skew, so only the record refuses it.
      const again = new SpentReceipts({ startedAtMs: now, taken: kept });
      assert.throws(() => again.spend(receipt, now), { code: 'GATEWAY_APPROVAL_RESOLVED' });
      again.spend(other, now);
      assert.deepEqual(again.taken(receipt.expiresAtMs + RECEIPT_CLOCK_SKEW_MS + 1), []);
    });

    it('holds at most its limit of receipts still valid, refusing more (GATEWAY_BUSY) until one lapses, then forgets the lapsed', () => {
      const now = Date.now();
      const spent = new SpentReceipts({ startedAtMs: now, max: 2 });
      const first = signer.sign(body({ issuedAtMs: now }));
      spent.spend(first, now);
      spent.spend(signer.sign(body({ issuedAtMs: now + 10_000 })), now + 10_000);
      assert.throws(() => spent.spend(signer.sign(body({ issuedAtMs: now + 20_000 })), now + 20_000), { code: 'GATEWAY_BUSY' });
      // The first can verify no more past its expiry and the skew: it is forgotten, and room is made.
      spent.spend(signer.sign(body({ issuedAtMs: now + 20_000 })), first.expiresAtMs + RECEIPT_CLOCK_SKEW_MS + 1);
    });
  });
});

describe('resolving while another process holds gateway.db (the CLI appending its record)', () => {
  it('waits with timers, not inside SQLite: the event loop runs meanwhile, and the decision lands once the lock is let go', async () => {
    const approvals = store();
    const a = approvals.create({ digest: digestOf('lock-released'), action: {}, quorum: 1 });
    const holder = new DatabaseSync(join(dir, 'gateway.db'));
    holder.exec('BEGIN IMMEDIATE');
    let ticks = 0;
    const ticking = setInterval(() => ticks++, 5);
    try {
      const called = performance.now();
      const resolving = approvals.resolveWhenFree(a.id, 'allow-once', 'alice');
      assert.ok(performance.now() - called < 1000, `the call returned at once, to wait with timers (it took ${(performance.now() - called).toFixed(0)} ms)`);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(ticks > 0, 'timers fired while the resolve waited');
      holder.exec('ROLLBACK');
      assert.equal((await resolving).status, 'allowed');
    } finally {
      clearInterval(ticking);
      if (holder.isTransaction) holder.exec('ROLLBACK');
      holder.close();
    }
  });

  it('gives up with GATEWAY_BUSY, retryable, once the lock is held past the wait; nothing changes and the connection keeps its own busy timeout', async () => {
    const db = openGatewayDb(dir);
    const approvals = new ApprovalStore(db);
    const a = approvals.create({ digest: digestOf('lock-held'), action: {}, quorum: 1 });
    const holder = new DatabaseSync(join(dir, 'gateway.db'));
    holder.exec('BEGIN IMMEDIATE');
    try {
      await assert.rejects(approvals.resolveWhenFree(a.id, 'deny', 'alice', { waitMs: 50 }), (error: { code?: string; wire?: { code?: string; retryable?: boolean; retryAfterMs?: number } }) => {
        assert.equal(error.code, 'GATEWAY_BUSY');
        assert.deepEqual([error.wire?.code, error.wire?.retryable, (error.wire?.retryAfterMs ?? 0) > 0], ['UNAVAILABLE', true, true]);
        return true;
      });
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    assert.equal(approvals.get(a.id).status, 'pending');
    assert.equal(db.isTransaction, false);
    assert.equal((db.prepare('PRAGMA busy_timeout').get() as { timeout: number }).timeout, 5000);
  });
});

describe('the gateway\'s other writes to approvals while another process holds gateway.db', () => {
  it('makes and spends an approval at once, with no promise, while the lock is free (a governed run gains no turn of the event loop)', () => {
    const approvals = store();
    const made = approvals.createNowOrWhenFree({ digest: digestOf('free-create'), action: {}, quorum: 1 });
    assert.ok(!(made instanceof Promise));
    approvals.resolve(made.id, 'allow-once', 'alice');
    const spent = approvals.consumeNowOrWhenFree(made.id, digestOf('free-create'));
    assert.ok(!(spent instanceof Promise));
    assert.equal(spent.status, 'used');
  });

  it('makes, spends and withdraws with timers while the lock is held: the event loop runs meanwhile, and each lands once it is let go (regression: each waited inside SQLite for up to 5 s)', async () => {
    const approvals = store();
    const toSpend = approvals.create({ digest: digestOf('held-consume'), action: {}, quorum: 1 });
    approvals.resolve(toSpend.id, 'allow-once', 'alice');
    const toWithdraw = approvals.create({ digest: digestOf('held-withdraw'), action: { principal: 'Agent::held-bot' }, quorum: 1 });
    const holder = new DatabaseSync(join(dir, 'gateway.db'));
    holder.exec('BEGIN IMMEDIATE');
    let ticks = 0;
    const ticking = setInterval(() => ticks++, 5);
    try {
      const called = performance.now();
      const making = approvals.createNowOrWhenFree({ digest: digestOf('held-create'), action: {}, quorum: 1 });
      const spending = approvals.consumeNowOrWhenFree(toSpend.id, digestOf('held-consume'));
      const withdrawing = approvals.withdrawAllWhenFree('Agent::held-bot', 'admin', { reason: 'suspended' });
      assert.ok(performance.now() - called < 1000, `the call returned at once, to wait with timers (it took ${(performance.now() - called).toFixed(0)} ms)`);
      assert.ok(making instanceof Promise && spending instanceof Promise);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(ticks > 0, 'timers fired while the writes waited');
      assert.equal(approvals.get(toSpend.id).status, 'allowed', 'nothing spent while the lock is held');
      holder.exec('ROLLBACK');
      assert.equal((await making).status, 'pending');
      assert.equal((await spending).status, 'used');
      assert.deepEqual((await withdrawing).map((a) => [a.id, a.status, a.reason]), [[toWithdraw.id, 'denied', 'suspended']]);
    } finally {
      clearInterval(ticking);
      if (holder.isTransaction) holder.exec('ROLLBACK');
      holder.close();
    }
  });

  it('gives up making one with GATEWAY_BUSY, retryable, past the wait, and makes nothing', async () => {
    const approvals = store();
    const holder = new DatabaseSync(join(dir, 'gateway.db'));
    holder.exec('BEGIN IMMEDIATE');
    try {
      await assert.rejects(Promise.resolve(approvals.createNowOrWhenFree({ digest: digestOf('held-too-long'), action: {}, quorum: 1 }, 50)), { code: 'GATEWAY_BUSY' });
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    assert.equal(approvals.open(digestOf('held-too-long')), undefined);
  });

  it('reads an approval past its expiry as expired without waiting for the lock, and stores it so on a later read once the lock is free', () => {
    let now = 1_000_000;
    const approvals = new ApprovalStore(openGatewayDb(dir), () => now);
    const a = approvals.create({ digest: digestOf('expires-under-lock'), action: {}, quorum: 1, ttlMs: 10 });
    now += 60_000;
    const holder = new DatabaseSync(join(dir, 'gateway.db'));
    holder.exec('BEGIN IMMEDIATE');
    const stored = () => (holder.prepare('SELECT status FROM approvals WHERE id = ?').get(a.id) as { status: string }).status;
    try {
      const started = performance.now();
      assert.equal(approvals.get(a.id).status, 'expired');
      assert.equal(approvals.list().find((x) => x.id === a.id)?.status, 'expired');
      assert.ok(performance.now() - started < 4000, 'did not wait for the 5 s busy timeout');
      assert.equal(stored(), 'pending');
    } finally {
      holder.exec('ROLLBACK');
    }
    assert.equal(approvals.get(a.id).status, 'expired');
    assert.equal(stored(), 'expired');
    holder.close();
  });

  it('refuses a reason past 500 characters, or not well-formed text, with GATEWAY_PARAMS_INVALID', () => {
    const approvals = store();
    const a = approvals.create({ digest: digestOf('long reason'), action: {}, quorum: 1 });
    assert.throws(() => approvals.resolve(a.id, 'deny', 'alice', 'x'.repeat(501)), { code: 'GATEWAY_PARAMS_INVALID' });
    assert.throws(() => approvals.resolve(a.id, 'deny', 'alice', '\uD800'), { code: 'GATEWAY_PARAMS_INVALID' });
    assert.throws(() => approvals.withdrawAll('Agent::x', 'admin', 'x'.repeat(501)), { code: 'GATEWAY_PARAMS_INVALID' });
    assert.equal(approvals.resolve(a.id, 'deny', 'alice', 'x'.repeat(500)).reason?.length, 500);
  });
});
