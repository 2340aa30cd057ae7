// A set another process activates on the policy directory (`corral approvals
// revoke`, `corral policy activate`, a second gateway on the state directory)
// over a large org chart: the gateway compiles it off its thread, so every
// other connection goes on being served; each decision made once the change
// was seen waits for it and decides with it, never with the set it replaced;
// and a set that does not compile leaves the set in use deciding, refused.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compileCandidate, type PolicyFile, type PolicyLogEntry, PolicyControl } from './policy-control.ts';
import { governedGateway, refusedWith, type GovernedGateway } from '../../test/governed-gateway.ts';
import { longestGap } from '../../../../scripts/testing/event-loop.ts';
import { LARGE_ORG, linkUnchecked, syncCompileMs } from '../../test/large-set.ts';
import { policyStateDirs } from '../../test/policy-state.ts';

const ORG = LARGE_ORG;
const PERMIT = '@id("ls") permit (principal, action == Action::"system.run", resource == Command::"ls");\n';
const FORBID = '@id("ls-withdrawn") forbid (principal, action == Action::"system.run", resource == Command::"ls");\n';
const request = { principal: { type: 'Human', id: 'operator' }, action: 'system.run', resource: { type: 'Command', id: 'ls' }, context: { argv: ['ls'] } };

/** A state directory whose policies (PERMIT and the org chart) are a plain directory. */
const stateDir = policyStateDirs('policy-adopt', { 'main.cedar': PERMIT, 'entities.json': ORG });

const set = (main: string, entities = ORG): PolicyFile[] => [{ name: 'main.cedar', text: main }, { name: 'entities.json', text: entities }];

describe('a gateway whose set another process replaces, on a large org chart (5,000 people in 1,000 groups)', () => {
  let t: GovernedGateway;
  /** Another process on the same policy directory. */
  let other: PolicyControl;
  let syncMs = 0;
  before(async () => {
    t = await governedGateway({ state: stateDir() });
    other = PolicyControl.open(t.policies);
    syncMs = syncCompileMs(set(`${PERMIT}${FORBID}`));
  });
  after(() => t?.close());

  const run = (argv: string[]) => t.run(argv, 30_000, 60_000);
  const ran = () => t.node.received.filter((r) => r.command === 'system.run').length;

  it('keeps every connection served while it compiles the new set, and denies what the new set forbids to each run asked once the change was seen (regression: the set was compiled on the gateway thread at the first decision, stalling every connection ~1 s)', async () => {
    await run(['ls']);
    const before = ran();
    assert.equal(await other.activate(compileCandidate(set(`${PERMIT}${FORBID}`)), other.active().hash), true);
    const { gap, value } = await longestGap(() => Promise.allSettled([run(['ls']), run(['ls']), run(['ls'])]));
    for (const outcome of value) {
      assert.equal(outcome.status, 'rejected', 'never the replaced set’s allow');
      assert.ok(refusedWith('SYSTEM_RUN_DENIED')((outcome as PromiseRejectedResult).reason), String((outcome as PromiseRejectedResult).reason));
    }
    assert.equal(ran(), before, 'nothing reached the node');
    assert.ok(gap < syncMs / 2, `the event loop stalled ${gap.toFixed(0)} ms; compiling the set on this thread takes ${syncMs.toFixed(0)} ms`);
  });
});

describe('a PolicyControl noticing a set another process activated', () => {
  it('has each decision that waits decide with the new set, the event loop free meanwhile', async () => {
    const dir = join(stateDir(), 'policies');
    const control = PolicyControl.open(dir);
    const other = PolicyControl.open(dir);
    const syncMs = syncCompileMs(set(`${PERMIT}${FORBID}`));
    assert.equal(control.decide(request).decision, 'allow');
    assert.equal(await other.activate(compileCandidate(set(`${PERMIT}${FORBID}`)), other.active().hash), true);
    const { gap, value } = await longestGap(async () => {
      const waits = [control.ready(), control.ready()];
      assert.ok(waits.every((w) => w instanceof Promise), 'a decision made now has to wait');
      await Promise.all(waits);
      return control.decide(request).decision;
    });
    assert.equal(value, 'deny');
    assert.equal(control.ready(), undefined, 'once the set is in force, a decision waits for nothing');
    assert.ok(gap < syncMs / 2, `the event loop stalled ${gap.toFixed(0)} ms; compiling the set on this thread takes ${syncMs.toFixed(0)} ms`);
  });

  it('decides a decision that does not wait with the new set, compiling it on its thread (never the old answer)', async () => {
    const dir = join(stateDir(), 'policies');
    const control = PolicyControl.open(dir);
    const other = PolicyControl.open(dir);
    assert.equal(await other.activate(compileCandidate(set(`${PERMIT}${FORBID}`)), other.active().hash), true);
    const waiting = control.ready();
    assert.ok(waiting instanceof Promise);
    assert.equal(control.decide(request).decision, 'deny');
    await waiting;
    assert.equal(control.decide(request).decision, 'deny', 'the compile that finished later does not bring back anything older');
  });

  it('adopts the later of two sets activated while the first was compiling, never the first over it', async () => {
    const dir = join(stateDir(), 'policies');
    const control = PolicyControl.open(dir);
    const other = PolicyControl.open(dir);
    const first = compileCandidate(set(`${PERMIT}${FORBID}`));
    assert.equal(await other.activate(first, other.active().hash), true);
    const waitingFirst = control.ready();
    // The later set is small: compiled before the first is.
    const later = compileCandidate([{ name: 'main.cedar', text: PERMIT }]);
    assert.equal(await other.activate(later, first.hash), true);
    const waitingLater = control.ready();
    await Promise.all([waitingFirst, waitingLater]);
    assert.equal(control.active().hash, later.hash);
    assert.equal(control.decide(request).decision, 'allow');
    assert.equal(control.ready(), undefined);
  });

  it('leaves the set in use deciding and reports refusedEdit when the new set does not compile, telling the log once', async () => {
    const dir = join(stateDir(), 'policies');
    const log: PolicyLogEntry[] = [];
    const control = PolicyControl.open(dir, { log: (e) => log.push(e) });
    const inUse = control.active().hash;
    linkUnchecked(dir, set(`${FORBID}permit (principal, action, resource) when { nonsense };\n`));
    const waiting = control.ready();
    assert.ok(waiting instanceof Promise);
    await waiting;
    assert.equal(control.decide(request).decision, 'allow', 'the set in use decides');
    const status = control.status();
    assert.equal(status.hash, inUse);
    assert.equal(status.refusedEdit?.code, 'POLICY_SET_INVALID');
    assert.ok(status.refusedEdit!.issues.length > 0);
    assert.equal(control.ready(), undefined, 'a refused set is not compiled again for each decision');
    assert.equal(control.refresh().refusedEdit?.code, 'POLICY_SET_INVALID');
    assert.deepEqual(log.map((e) => [e.event, e.code]), [['policy-edit-refused', 'POLICY_SET_INVALID']]);
  });

  it('reports refusedEdit for entities that are not valid, the set in use deciding', async () => {
    const dir = join(stateDir(), 'policies');
    const control = PolicyControl.open(dir);
    linkUnchecked(dir, set(FORBID, `${ORG.slice(0, -1)},{"uid":{"type":"Group","id":"loop"},"attrs":{},"parents":[{"type":"Group","id":"loop"}]}]`));
    await control.ready();
    assert.equal(control.decide(request).decision, 'allow');
    assert.equal(control.status().refusedEdit?.code, 'POLICY_ENTITIES_INVALID');
  });
});

describe('an activation made once another process activated a set not seen yet', () => {
  it('compiles that set off the thread before comparing hashes, and is stale against it (regression: it was compiled on the gateway thread, under the activation lock)', async () => {
    const dir = join(stateDir(), 'policies');
    const control = PolicyControl.open(dir);
    const other = PolicyControl.open(dir);
    const syncMs = syncCompileMs(set(`${PERMIT}${FORBID}`));
    const base = control.active().hash;
    const theirs = compileCandidate(set(`${PERMIT}${FORBID}`));
    assert.equal(await other.activate(theirs, base), true);
    const mine = compileCandidate([{ name: 'main.cedar', text: PERMIT }]);
    const { gap, value } = await longestGap(() => control.activate(mine, base));
    assert.equal(value, false, 'the base hash is not the set in force');
    assert.equal(control.active().hash, theirs.hash);
    assert.equal(control.decide(request).decision, 'deny');
    assert.ok(gap < syncMs / 2, `the event loop stalled ${gap.toFixed(0)} ms; compiling the set on this thread takes ${syncMs.toFixed(0)} ms`);
  });
});

describe("refresh's off-thread twin (refreshOffThread)", () => {
  it('adopts a valid edit made by hand with the event loop free, and decisions wait for it', async () => {
    const dir = join(stateDir(), 'policies');
    const control = PolicyControl.open(dir);
    const syncMs = syncCompileMs(set(`${PERMIT}${FORBID}`));
    writeFileSync(join(dir, 'main.cedar'), `${PERMIT}${FORBID}`);
    const { gap, value } = await longestGap(async () => {
      const status = control.refreshOffThread();
      const waiting = control.ready();
      assert.ok(waiting instanceof Promise, 'a decision made meanwhile waits for the edit');
      await waiting;
      return { status: await status, decision: control.decide(request).decision };
    });
    assert.equal(value.decision, 'deny');
    assert.equal(value.status.refusedEdit, undefined);
    assert.equal(value.status.hash, control.active().hash);
    assert.ok(gap < syncMs / 2, `the event loop stalled ${gap.toFixed(0)} ms; compiling the set on this thread takes ${syncMs.toFixed(0)} ms`);
  });
});
