// The identity store's entities in the set in force: composed in when the set
// is read, again when they change (decisions wait for it), and a store that
// cannot be read, or entities that do not compose, decide nothing.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { policyStateDirs } from '../../test/policy-state.ts';
import type { IdentityEntities, IdentityEntity } from './identity-entities.ts';
import { compileCandidate, parseFiles, PolicyControl } from './policy-control.ts';

const POLICY = 'permit (principal in Group::"billing", action == Action::"system.run", resource == Command::"ls");\n';
const request = { principal: { type: 'Agent', id: 'bot' }, action: 'system.run', resource: { type: 'Command', id: 'ls' }, context: { argv: ['ls'] } };
const stateDir = policyStateDirs('policy-identity', { 'main.cedar': POLICY });
const policyDir = () => join(stateDir(), 'policies');

const bot = (process: string, status: unknown = 'active'): IdentityEntity => ({ uid: { type: 'Agent', id: 'bot' }, attrs: { owner: 'o@example.com', process, status, scopes: [] }, parents: [{ type: 'Group', id: process }] });
const entities = (digest: string, list: IdentityEntity[]): IdentityEntities => ({ digest, list });

/** An identity source that gives `now.value`, or throws `now.error`. */
function source(initial: IdentityEntities) {
  const now: { value: IdentityEntities; error?: Error } = { value: initial };
  return { now, read: () => (now.error ? (() => { throw now.error; })() : now.value) };
}

describe("a policy control given the identity store's entities", () => {
  it('decides with them from the start, and with them as they change, through decide and decider', async () => {
    const store = source(entities('1', [bot('mail')]));
    const control = PolicyControl.open(policyDir(), { identity: store.read });
    assert.equal(control.decide(request).decision, 'deny');
    store.now.value = entities('2', [bot('billing')]);
    const decider = await control.decider();
    assert.equal(decider.decideEach(request, [request.resource])[0]!.decision, 'allow');
    store.now.value = entities('3', [bot('mail')]);
    assert.equal(control.decide(request).decision, 'deny');
  });

  it("composes them into a set activated without them, at the next decision (a candidate another caller compiled bare)", async () => {
    const store = source(entities('1', [bot('billing')]));
    const control = PolicyControl.open(policyDir(), { identity: store.read });
    const bare = compileCandidate(parseFiles([{ name: 'main.cedar', text: `${POLICY}// again\n` }]));
    assert.equal(await control.activate(bare, control.active().hash), true);
    assert.equal(control.decide(request).decision, 'allow');
    assert.equal(await control.activate(compileCandidate(parseFiles([{ name: 'main.cedar', text: POLICY }])), control.active().hash), true);
    assert.equal((await control.decider()).decideEach(request, [request.resource])[0]!.decision, 'allow');
  });

  it("keeps what a decision on the gateway's thread composed when a recomposition of older entities, under way off the thread, lands after it (regression: the older entities replaced them in the set in force, and a request the store no longer allowed was allowed)", async () => {
    const store = source(entities('1', [bot('mail')]));
    const control = PolicyControl.open(policyDir(), { identity: store.read });
    assert.equal(control.decide(request).decision, 'deny');
    store.now.value = entities('2', [bot('billing')]);
    const waiting = control.ready();
    assert.ok(waiting instanceof Promise, 'billing is being composed in off the thread');
    store.now.value = entities('3', [bot('mail')]);
    assert.equal(control.decide(request).decision, 'deny', 'composed here, on this thread');
    await waiting;
    assert.equal(control.decide(request).decision, 'deny', 'the store as it is, not as the recomposition read it');
    assert.equal((await control.decider()).decideEach(request, [request.resource])[0]!.decision, 'deny');
  });

  it('has a decision that began to wait before a change decide once the recomposition under way lands, with it, and one that began after wait for the one more that takes the change in', async () => {
    const store = source(entities('1', [bot('mail')]));
    const control = PolicyControl.open(policyDir(), { identity: store.read });
    store.now.value = entities('2', [bot('billing')]);
    const first = control.decider();
    assert.ok(first instanceof Promise);
    store.now.value = entities('3', [bot('mail')]);
    const second = control.decider();
    assert.ok(second instanceof Promise);
    let secondGiven = false;
    void second.then(() => (secondGiven = true));
    // Each decides in the tick it is given.
    assert.equal((await first).decideEach(request, [request.resource])[0]!.decision, 'allow', 'the store as it was when it began to wait, moved on since');
    assert.equal(secondGiven, false, 'the first did not wait for the recomposition that takes in the change made after it began');
    assert.equal((await second).decideEach(request, [request.resource])[0]!.decision, 'deny');
  });

  it('decides nothing while the store cannot be read (regression guard: the entities last read would decide for an agent the store no longer holds so)', async () => {
    const store = source(entities('1', [bot('billing')]));
    const control = PolicyControl.open(policyDir(), { identity: store.read });
    assert.equal(control.decide(request).decision, 'allow');
    store.now.error = new Error('identity.db is damaged');
    assert.throws(() => control.decide(request), /damaged/);
    await assert.rejects(async () => (await control.decider()).decideEach(request, [request.resource]), /damaged/);
    delete store.now.error;
    assert.equal(control.decide(request).decision, 'allow');
  });

  it("denies every request while the store's entities do not compose with the set's, and says so in the set's status", async () => {
    const store = source(entities('1', [bot('billing')]));
    const control = PolicyControl.open(policyDir(), { identity: store.read });
    store.now.value = entities('2', [bot('billing', 7)]);
    await control.refreshOffThread();
    const status = control.status();
    assert.equal(status.refusedEdit?.code, 'POLICY_ENTITIES_INVALID');
    assert.match(status.refusedEdit!.message, /identity store's agents, humans and nodes.*every request is denied/);
    assert.throws(() => control.decide(request), (e: Error & { code?: string }) => e.code === 'POLICY_NOT_LOADED');
    store.now.value = entities('3', [bot('billing')]);
    assert.equal(control.decide(request).decision, 'allow');
    assert.equal(control.status().refusedEdit, undefined);
  });
});

describe('a policy control whose directory holds a hand edit it refused, when the identity store changes', () => {
  it('recomposes the set in use with the store as it is now and goes on deciding with it, through decider and decide (regression: every decision was denied, "could not decide", once an agent was made while the edit stood)', async () => {
    const dir = policyDir();
    const store = source(entities('1', [bot('mail')]));
    const control = PolicyControl.open(dir, { identity: store.read });
    assert.equal(control.decide(request).decision, 'deny');
    writeFileSync(join(dir, 'main.cedar'), 'permit (principal, action, resource');
    assert.equal(control.refresh().refusedEdit?.code, 'POLICY_SET_INVALID');
    store.now.value = entities('2', [bot('billing')]);
    assert.equal((await control.decider()).decideEach(request, [request.resource])[0]!.decision, 'allow');
    store.now.value = entities('3', [bot('mail')]);
    assert.equal(control.decide(request).decision, 'deny');
    store.now.value = entities('4', [bot('billing')]);
    assert.equal(control.decide(request).decision, 'allow');
    assert.equal(control.status().refusedEdit?.code, 'POLICY_SET_INVALID', 'the edit is still refused');
  });
});
