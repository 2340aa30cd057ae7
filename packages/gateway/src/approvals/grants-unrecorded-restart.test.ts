// An allow-always grant the audit log refused to record, which could not be
// taken out of the set either, allows nothing anywhere: not after the
// gateway restarts, not in another gateway on the same state directory —
// until the grant is revoked (`corral approvals revoke`, another process).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { policyStateDirs } from '../../test/policy-state.ts';
import { PolicyControl } from '../http/policy-control.ts';
import { openGatewayDb } from '../store/store.ts';
import { grantFile, PolicyGrants, revokeGrantIn } from './grants.ts';
import { ApprovalStore, type Approval } from './store.ts';
import { holdActivationLock } from '../../test/activation-lock.ts';

const BASE = 'permit (principal, action == Action::"system.run", resource == Command::"ls");\n';
const stateDir = policyStateDirs('grants-unrecorded', BASE);
const approvals = new ApprovalStore(openGatewayDb(stateDir()));
const refusal = () => Object.assign(new Error('the audit log refused the event'), { code: 'GATEWAY_INTERNAL' });

function allowedAlways(): Approval {
  const a = approvals.create({ digest: randomBytes(32).toString('hex'), action: { principal: 'Agent::invoice-bot', command: 'system.run', argv: ['cat', 'secrets'], nodeId: 'node-1' }, quorum: 1 });
  approvals.resolve(a.id, 'allow-always', 'alice@example.com');
  return approvals.get(a.id);
}

/** What `decide` comes to for the action only the grant allows: the decision, or the error's code. */
function decided(control: PolicyControl, approval: Approval): string {
  try {
    return control.decide({ principal: { type: 'Agent', id: 'invoice-bot' }, action: 'system.run', resource: { type: 'Command', id: 'cat' }, context: { digest: approval.digest } }).decision;
  } catch (error) {
    return (error as { code: string }).code;
  }
}

/** Adds the grant with its record refused while another process keeps the set from being put back: the set holding it is left in force. */
async function leftUnrecorded(dir: string): Promise<Approval> {
  const approval = allowedAlways();
  let release: (() => void) | undefined;
  try {
    const added = await new PolicyGrants(PolicyControl.open(dir, { lockWaitMs: 100 }), approvals).add(approval, async () => {
      release = holdActivationLock(dir);
      throw refusal();
    });
    assert.deepEqual(added, { status: 'unrecorded', code: 'GATEWAY_INTERNAL' });
  } finally {
    release?.();
  }
  assert.ok(PolicyControl.open(dir).active().files.some((f) => f.name === grantFile(approval.id)), 'its file is still in the set');
  return approval;
}

describe('an allow-always grant left in the set unrecorded', () => {
  it('allows nothing after a restart, and the set says unrecorded (regression: the restarted gateway decided with the grant the audit log never saw)', async () => {
    const dir = join(stateDir(), 'policies');
    const approval = await leftUnrecorded(dir);
    const restarted = PolicyControl.open(dir);
    assert.equal(decided(restarted, approval), 'POLICY_NOT_LOADED');
    assert.equal(restarted.refresh().unrecorded, true);
  });

  it('allows nothing in another gateway that had the directory open, and both decide again once `corral approvals revoke` removes it', async () => {
    const dir = join(stateDir(), 'policies');
    const other = PolicyControl.open(dir);
    const approval = await leftUnrecorded(dir);
    assert.equal(decided(other, approval), 'POLICY_NOT_LOADED');
    assert.equal(await revokeGrantIn(dir, approvals, approval.id), 'revoked');
    assert.equal(decided(other, approval), 'deny');
    assert.equal(decided(PolicyControl.open(dir), approval), 'deny');
  });
});
