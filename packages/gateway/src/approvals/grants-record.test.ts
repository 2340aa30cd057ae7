// A grant stands only once the audit log has its record: until then no
// decision counts it, and one whose record is refused is taken back (the set
// without it is put back); when it cannot be taken back, the set holding it
// decides nothing and the grant counts for nothing.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { policyStateDirs } from '../../test/policy-state.ts';
import { PolicyControl } from '../http/policy-control.ts';
import { openGatewayDb } from '../store/store.ts';
import { grantFile, PolicyGrants } from './grants.ts';
import { ApprovalStore, type Approval } from './store.ts';
import { holdActivationLock } from '../../test/activation-lock.ts';

const BASE = 'permit (principal, action == Action::"system.run", resource == Command::"ls");\n';
const stateDir = policyStateDirs('grants-record', BASE);
const approvals = new ApprovalStore(openGatewayDb(stateDir()));
/** What an audit log that refuses the grant's record throws (as the invoker's append does). */
const refusal = () => Object.assign(new Error('the audit log refused the event'), { code: 'GATEWAY_INTERNAL' });
const LS = { principal: { type: 'Agent', id: 'invoice-bot' }, action: 'system.run', resource: { type: 'Command', id: 'ls' }, context: {} };

function allowedAlways(): Approval {
  const a = approvals.create({ digest: randomBytes(32).toString('hex'), action: { principal: 'Agent::invoice-bot', command: 'system.run', argv: ['ls'], nodeId: 'node-1' }, quorum: 1 });
  approvals.resolve(a.id, 'allow-always', 'alice@example.com');
  return approvals.get(a.id);
}

const inSet = (dir: string, approval: Approval) => PolicyControl.open(dir).active().files.some((f) => f.name === grantFile(approval.id));

describe('the record of a grant', () => {
  it('comes before the grant counts for any decision: while it is being written, nothing is covered by it', async () => {
    const dir = join(stateDir(), 'policies');
    const grants = new PolicyGrants(PolicyControl.open(dir), approvals);
    const approval = allowedAlways();
    const seen: unknown[] = [];
    const added = await grants.add(approval, async () => {
      seen.push(inSet(dir, approval), grants.covering(approval.digest), grants.allWithdrawn([`approval-${approval.id}`]));
    });
    assert.deepEqual(seen, [true, undefined, true], 'in the set, yet counted for nothing until recorded');
    assert.deepEqual(added, { status: 'made' });
    assert.equal(grants.covering(approval.digest), `approval-${approval.id}`);
  });

  describe('when the audit log refuses it', () => {
    it('takes the grant back: the set without it is put back, it is withdrawn for good, and asked again the answer is the same, recorded once (regression: the grant stayed in force, unrecorded)', async () => {
      const dir = join(stateDir(), 'policies');
      const control = PolicyControl.open(dir);
      const grants = new PolicyGrants(control, approvals);
      const approval = allowedAlways();
      let records = 0;
      const refusing = async () => {
        records++;
        throw refusal();
      };
      const added = await grants.add(approval, refusing);
      assert.equal(inSet(dir, approval), false);
      assert.equal(grants.covering(approval.digest), undefined);
      assert.equal(control.status().unrecorded, undefined, 'the set put back decides');
      assert.equal(approvals.grantWithdrawn(approval.id), true);
      assert.deepEqual(added, { status: 'taken-back', code: 'GATEWAY_INTERNAL' });
      assert.deepEqual(await grants.add(approvals.get(approval.id), refusing), { status: 'taken-back', code: 'GATEWAY_INTERNAL' });
      assert.deepEqual(await new PolicyGrants(PolicyControl.open(dir), approvals).add(approvals.get(approval.id), async () => {}), { status: 'not-made' }, 'never made again, by another gateway or after a restart');
      assert.equal(records, 1);
    });

    it('when the set cannot be put back (another process holds its activation lock), leaves the set deciding nothing and the grant counting for nothing, until the grant is revoked', async () => {
      const dir = join(stateDir(), 'policies');
      const control = PolicyControl.open(dir, { lockWaitMs: 200 });
      const grants = new PolicyGrants(control, approvals);
      const approval = allowedAlways();
      let release: (() => void) | undefined;
      try {
        const added = await grants.add(approval, async () => {
          release = holdActivationLock(dir);
          throw refusal();
        });
        assert.equal(inSet(dir, approval), true, 'its file could not be removed');
        assert.equal(grants.covering(approval.digest), undefined);
        assert.equal(grants.allWithdrawn([`approval-${approval.id}`]), true);
        assert.equal(control.status().unrecorded, true);
        assert.throws(() => control.decide(LS), { code: 'POLICY_NOT_LOADED' });
        assert.equal(approvals.grantWithdrawn(approval.id), true);
        assert.deepEqual(added, { status: 'unrecorded', code: 'GATEWAY_INTERNAL' });
        release!();
        assert.equal(await grants.remove(approval.id), 'revoked');
        assert.equal(inSet(dir, approval), false);
        assert.equal(control.decide(LS).decision, 'allow', 'decided again once the set without it is in force');
      } finally {
        release?.();
      }
    });
  });
});
