// A withdrawn allow-always grant allows nothing, even while its file is
// still in the policy set (withdrawn by another process, which takes the file
// out a moment later, or whose removal failed and left it): not on its own,
// and not beside another permit that allows another command of the same run.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { compileCandidate, PolicyControl } from '../http/policy-control.ts';
import { grantFile } from '../approvals/grants.ts';
import { governedGateway, refusedWith, type GovernedGateway } from '../../test/governed-gateway.ts';

const LS = '@id("ls") permit (principal, action == Action::"system.run", resource == Command::"ls");\n';
const PRINTF_ASKS = '@id("printf-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"printf");\n';

describe('a withdrawn allow-always grant whose file is still in the set', () => {
  let t: GovernedGateway;
  before(async () => {
    t = await governedGateway({ policy: LS + PRINTF_ASKS, gateway: { approvalPollMs: 20 } });
  });
  after(() => t.close());

  it('allows no run it was the only permit of a command of, however other commands of the run are allowed (regression: an ls beside it kept the withdrawn grant allowing the run)', async () => {
    const argv = ['sh', '-c', 'ls; printf granted'];
    await assert.rejects(t.run(argv, 100), refusedWith('APPROVAL_PENDING'));
    const id = t.gw.approvals.list({ status: 'pending' })[0]!.id;
    await t.gw.invoker.resolveApprovalWhenFree(id, 'allow-always', 'alice');
    await t.run(argv);
    // Printf no longer asks (nothing permits it): the standing grant alone allows it in this run, as intended.
    const elsewhere = PolicyControl.open(t.policies);
    const active = elsewhere.active();
    assert.ok(active.files.some((f) => f.name === grantFile(id)));
    assert.equal(await elsewhere.activate(compileCandidate(active.files.map((f) => (f.name === 'run.cedar' ? { ...f, text: LS } : f))), active.hash), true);
    await t.run(argv);
    // Withdrawn in gateway.db, as `corral approvals revoke` does before it takes the file out of the set.
    assert.equal(await t.gw.approvals.withdrawGrantWhenFree(id), 'withdrawn');
    const sent = t.node.received.length;
    await assert.rejects(t.run(argv), refusedWith('SYSTEM_RUN_DENIED'));
    assert.equal(t.node.received.length, sent, 'nothing reached the node');
    await assert.rejects(t.run(['printf', 'granted']), refusedWith('SYSTEM_RUN_DENIED'));
    await t.run(['ls']);
  });
});
