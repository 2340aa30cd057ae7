// An allow-always approval's grant is a standing permission: it stands only
// once the audit log has its record. When the log refuses that record, the
// grant is taken back (the set without it is put back) and the approval allows
// its one waiting run only; when it cannot be taken back either, the policy set
// holding it decides nothing (every request is denied) until a set is
// activated or the grant revoked. The approver is told which in the answer.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { policyStateDirs } from '../../test/policy-state.ts';
import { holdActivationLock } from '../../test/activation-lock.ts';
import { refusingLogGateway } from '../../test/refusing-log-gateway.ts';

const token = randomBytes(24).toString('base64url');
const POLICY = `
@id("echo") permit (principal, action == Action::"system.run", resource == Command::"echo");
@id("printf-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"printf");
`;
const stateDir = policyStateDirs('grant-record', POLICY);
const refusedWith = (code: string) => (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === code;

/** A gateway deciding with the policy directory of a fresh state directory, making grants in it, whose audit log refuses the appends `refusing.when` picks. */
async function grantingGateway() {
  const gw = await refusingLogGateway({ state: stateDir(), token, grants: true });
  return { ...gw, control: gw.control!, grants: gw.grants! };
}


describe('when the audit log refuses the record of an allow-always grant', () => {
  it('takes the grant back: the set without it is put back, nothing counts it, and the same action asks again (regression: the grant stayed in force, unrecorded)', async () => {
    const gw = await grantingGateway();
    try {
      gw.refusing.when = (e) => e.action === 'policy.grant';
      const { waiting, id, digest } = await gw.asked(['printf', 'always']);
      const resolved = await gw.invoker.resolveApprovalWhenFree(id, 'allow-always', 'alice');
      await waiting.catch(() => undefined);
      assert.equal(gw.inSet(id), false, 'the grant file is out of the set in force');
      assert.equal(gw.grants.covering(digest), undefined);
      assert.equal(gw.control.status().unrecorded, undefined, 'the set put back decides');
      gw.refusing.when = undefined;
      await assert.rejects(gw.run(['printf', 'always'], 100), refusedWith('APPROVAL_PENDING'));
      await gw.run(['echo', 'still-decided']);
      assert.deepEqual((resolved as { grant?: unknown }).grant, { id: `approval-${id}`, status: 'taken-back', code: 'GATEWAY_INTERNAL' });
    } finally {
      await gw.close();
    }
  });

  it('lets the waiting run go as allowed once, on a decision record saying so, never on the grant', async () => {
    const gw = await grantingGateway();
    try {
      gw.refusing.when = (e) => e.action === 'policy.grant';
      const { waiting, id } = await gw.asked(['printf', 'once']);
      await gw.invoker.resolveApprovalWhenFree(id, 'allow-always', 'alice');
      await waiting;
      const sent = gw.node.received.at(-1)!;
      assert.equal(sent.params.approvalDecision, 'allow-once');
      assert.equal((sent.params.approvalReceipt as { decision?: string }).decision, 'allow-once');
      const decided = gw.events.filter((e) => e.action === 'node.invoke.decide' && e.decision?.approval === id);
      assert.deepEqual(
        decided.map((e) => [e.decision?.effect, (e.details as { grant?: string }).grant]),
        [['allow', 'taken-back']],
        'the decision the run went on is on record before it ran',
      );
      const runs = gw.events.filter((e) => e.action === 'node.invoke' && e.decision?.approval === id);
      assert.equal(runs.length, 1);
      assert.ok(gw.events.indexOf(decided[0]!) < gw.events.indexOf(runs[0]!));
    } finally {
      await gw.close();
    }
  });

  it('records the grant once, made, when the log takes it (the resolve and the run spending the approval ask for it together)', async () => {
    const gw = await grantingGateway();
    try {
      const { waiting, id, digest } = await gw.asked(['printf', 'recorded']);
      const resolved = await gw.invoker.resolveApprovalWhenFree(id, 'allow-always', 'alice');
      await waiting;
      assert.deepEqual((resolved as { grant?: unknown }).grant, { id: `approval-${id}`, status: 'made' });
      assert.equal(gw.inSet(id), true);
      assert.equal(gw.grants.covering(digest), `approval-${id}`);
      assert.deepEqual(gw.events.filter((e) => e.action === 'policy.grant').map((e) => e.outcome?.status), ['success']);
      assert.equal(gw.node.received.at(-1)!.params.approvalDecision, 'allow-always');
      await gw.run(['printf', 'recorded'], 2_000);
    } finally {
      await gw.close();
    }
  });

  describe('and the grant cannot be taken back either (another process holds the policy set\'s activation lock)', () => {
    it('denies every request while the set holding it is in force, counts the grant for nothing, and says so; a revoke ends it', async () => {
      const gw = await grantingGateway();
      let release: (() => void) | undefined;
      try {
        gw.refusing.when = (e) => {
          if (e.action !== 'policy.grant') return false;
          release ??= holdActivationLock(gw.dir);
          return true;
        };
        const { waiting, id, digest } = await gw.asked(['printf', 'stuck']);
        const resolved = await gw.invoker.resolveApprovalWhenFree(id, 'allow-always', 'alice');
        await waiting.catch(() => undefined);
        assert.equal(gw.inSet(id), true, 'the file could not be removed');
        assert.equal(gw.grants.covering(digest), undefined);
        assert.equal(gw.control.status().unrecorded, true);
        assert.equal(gw.approvals.grantWithdrawn(id), true, 'withdrawn in gateway.db: no process, nor this one after a restart, counts it');
        assert.deepEqual((resolved as { grant?: unknown }).grant, { id: `approval-${id}`, status: 'unrecorded', code: 'GATEWAY_INTERNAL' });
        gw.refusing.when = undefined;
        await assert.rejects(gw.run(['printf', 'stuck'], 100), refusedWith('SYSTEM_RUN_DENIED'));
        await assert.rejects(gw.run(['echo', 'anything'], 100), refusedWith('SYSTEM_RUN_DENIED'));
        release!();
        assert.equal(await gw.invoker.revokeGrant(`approval-${id}`, 'carol'), 'revoked');
        assert.equal(gw.inSet(id), false);
        await gw.run(['echo', 'decided-again']);
        await assert.rejects(gw.run(['printf', 'stuck'], 100), refusedWith('APPROVAL_PENDING'));
      } finally {
        release?.();
        await gw.close();
      }
    });
  });
});

describe('withdrawing an approval allowed always and not yet spent', () => {
  /** An allow-always approval whose caller gave up before it was allowed: its grant is made, and nothing has spent it. */
  async function allowedUnspent(gw: Awaited<ReturnType<typeof grantingGateway>>, argv: string[]) {
    await assert.rejects(gw.run(argv, 100), refusedWith('APPROVAL_PENDING'));
    const { id } = gw.pendingFor(argv)!;
    assert.equal((await gw.invoker.resolveApprovalWhenFree(id, 'allow-always', 'alice')).grant?.status, 'made');
    assert.equal(gw.inSet(id), true);
    return id;
  }
  const revocations = (gw: Awaited<ReturnType<typeof grantingGateway>>, id: string) =>
    gw.events.filter((e) => e.action === 'policy.grant.revoke' && e.resource.id === `approval-${id}`).map((e) => [e.actor.id, e.outcome?.status, e.outcome?.detail, e.details?.fileLeft ?? false]);

  it('answers that its grant left the set, and records the revocation', async () => {
    const gw = await grantingGateway();
    try {
      const id = await allowedUnspent(gw, ['printf', 'taken-back']);
      const withdrawn = await gw.invoker.withdrawApprovalWhenFree(id, 'bob', 'allowed by mistake');
      assert.deepEqual([withdrawn.status, withdrawn.grant], ['denied', { id: `approval-${id}`, status: 'revoked' }]);
      assert.equal(gw.inSet(id), false);
      assert.deepEqual(revocations(gw, id), [['bob', 'success', undefined, false]]);
    } finally {
      await gw.close();
    }
  });

  it('answers and records that its grant file stayed in the set when it could not be taken out, and the grant counts for nothing (regression: answered as if it left, nothing recorded)', async () => {
    const gw = await grantingGateway();
    let release: (() => void) | undefined;
    try {
      const id = await allowedUnspent(gw, ['printf', 'left']);
      release = holdActivationLock(gw.dir);
      const withdrawn = await gw.invoker.withdrawApprovalWhenFree(id, 'bob');
      assert.deepEqual([withdrawn.status, withdrawn.grant], ['denied', { id: `approval-${id}`, status: 'failed', code: 'GATEWAY_CONFLICT' }]);
      assert.equal(gw.inSet(id), true, 'the file stayed');
      assert.deepEqual(revocations(gw, id), [['bob', 'failure', 'GATEWAY_CONFLICT', true]]);
      release();
      await assert.rejects(gw.run(['printf', 'left'], 100), refusedWith('APPROVAL_PENDING'), 'the grant left behind allows nothing');
      assert.equal(await gw.invoker.revokeGrant(`approval-${id}`, 'carol'), 'revoked');
      assert.equal(gw.inSet(id), false);
    } finally {
      release?.();
      await gw.close();
    }
  });

  it('answers that its grant left the set with the code the audit log refused its record with', async () => {
    const gw = await grantingGateway();
    try {
      const id = await allowedUnspent(gw, ['printf', 'unrecorded']);
      gw.refusing.when = (e) => e.action === 'policy.grant.revoke';
      const withdrawn = await gw.invoker.withdrawApprovalWhenFree(id, 'bob');
      assert.deepEqual(withdrawn.grant, { id: `approval-${id}`, status: 'revoked', code: 'GATEWAY_INTERNAL' });
      assert.equal(gw.inSet(id), false);
    } finally {
      await gw.close();
    }
  });

  it('says nothing of a grant for an approval allowed once', async () => {
    const gw = await grantingGateway();
    try {
      await assert.rejects(gw.run(['printf', 'once-only'], 100), refusedWith('APPROVAL_PENDING'));
      const { id } = gw.pendingFor(['printf', 'once-only'])!;
      await gw.invoker.resolveApprovalWhenFree(id, 'allow-once', 'alice');
      const withdrawn = await gw.invoker.withdrawApprovalWhenFree(id, 'bob');
      assert.deepEqual([withdrawn.status, 'grant' in withdrawn], ['denied', false]);
      assert.deepEqual(revocations(gw, id), []);
    } finally {
      await gw.close();
    }
  });
});
