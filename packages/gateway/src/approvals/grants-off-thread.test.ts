// An allow-always grant made right after another process activated a set over
// a large org chart (`corral policy activate`, a second gateway): the set it
// found is compiled off the gateway's thread, so every other connection goes
// on being served, and the grant is added to that set, never to the one it
// replaced.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { grantFile, grantPolicy } from './grants.ts';
import { compileCandidate, PolicyControl, type PolicyFile } from '../http/policy-control.ts';
import { refusingLogGateway } from '../../test/refusing-log-gateway.ts';
import { longestGap } from '../../../../scripts/testing/event-loop.ts';
import { LARGE_ORG, syncCompileMs } from '../../test/large-set.ts';
import { policyStateDirs } from '../../test/policy-state.ts';

const token = randomBytes(24).toString('base64url');
const ORG = LARGE_ORG;
const ASKS = '@id("printf-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"printf");\n';
/** What the other process adds: the grant must be made on top of it. */
const THEIRS = '@id("echo") permit (principal, action == Action::"system.run", resource == Command::"echo");\n';
const set = (files: Record<string, string>): PolicyFile[] => Object.entries(files).map(([name, text]) => ({ name, text }));

const stateDir = policyStateDirs('grants-off-thread', { 'run.cedar': ASKS, 'entities.json': ORG });

describe('an allow-always grant made right after another process activated a set over a large org chart (5,000 people in 1,000 groups)', () => {
  it('is added to the new set while every connection goes on being served (regression: the set was compiled on the gateway thread, stalling every connection ~0.5-1 s)', async () => {
    const gw = await refusingLogGateway({ state: stateDir(), token, grants: true });
    try {
      const { waiting, id } = await gw.asked(['printf', 'always']);
      const theirs = set({ 'run.cedar': ASKS, 'theirs.cedar': THEIRS, 'entities.json': ORG });
      const syncMs = syncCompileMs(theirs);
      const other = PolicyControl.open(gw.dir);
      assert.equal(await other.activate(compileCandidate(theirs), other.active().hash), true);
      const { gap, value } = await longestGap(async () => {
        const resolved = await gw.invoker.resolveApprovalWhenFree(id, 'allow-always', 'alice');
        await waiting;
        return resolved;
      });
      assert.deepEqual(value.grant, { id: `approval-${id}`, status: 'made' });
      assert.ok(gap < syncMs / 2, `the event loop stalled ${gap.toFixed(0)} ms; compiling the set on this thread takes ${syncMs.toFixed(0)} ms`);
      const names = gw.control!.active().files.map((f) => f.name).sort();
      assert.deepEqual(names, ['entities.json', grantFile(id), 'run.cedar', 'theirs.cedar'], 'the grant is made on the set the other process activated, which it keeps');
      assert.equal(other.refresh().hash, gw.control!.active().hash, 'the directory holds the set with the grant');
      assert.equal(gw.events.filter((e) => e.action === 'policy.grant' && e.resource.id === `approval-${id}`).length, 1, 'recorded once');
    } finally {
      await gw.close();
    }
  });

  it('is found made, as before, when the set another process activated holds it already', async () => {
    const gw = await refusingLogGateway({ state: stateDir(), token, grants: true });
    try {
      const { waiting, id } = await gw.asked(['printf', 'made-elsewhere']);
      await gw.approvals.resolveWhenFree(id, 'allow-always', 'alice');
      const approval = gw.approvals.get(id);
      // Another gateway on the same state directory made the grant and recorded it.
      const other = PolicyControl.open(gw.dir);
      assert.ok(await gw.approvals.claimGrantWhenFree(id));
      const withGrant = set({ 'run.cedar': ASKS, 'entities.json': ORG, [grantFile(id)]: grantPolicy(approval) });
      assert.equal(await other.activate(compileCandidate(withGrant), other.active().hash), true);
      const added = await gw.grants!.add(approval, async () => assert.fail('a grant made elsewhere is not recorded again'));
      assert.deepEqual(added, { status: 'made' });
      assert.equal(gw.control!.active().hash, other.active().hash, 'the set it found, unchanged');
      await waiting;
    } finally {
      await gw.close();
    }
  });
});
