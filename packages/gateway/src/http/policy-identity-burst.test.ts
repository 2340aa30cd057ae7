// A burst of changes to the identity store (agents made in a loop, nodes
// paired in bulk, each a change of its own) while decisions are asked: the
// recomposition under way is finished, one more takes in everything changed
// meanwhile, and each decision waits for two recompositions at most — never
// for the burst — deciding with the store at least as it was when it began
// to wait, so a forbid on an agent's process applies to every agent made
// before.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Identity } from '@corral/identity';
import { policyStateDirs } from '../../test/policy-state.ts';
import { watchIdentityEntities } from './identity-entities.ts';
import { PolicyControl } from './policy-control.ts';

const POLICIES = {
  'run.cedar': `
@id("anyone-runs-ls") permit (principal, action == Action::"system.run", resource == Command::"ls");
@id("quarantine") forbid (principal in Group::"quarantine", action, resource);
`,
};
const stateDir = policyStateDirs('policy-identity-burst', POLICIES);
const ls = { type: 'Command', id: 'ls' };
const request = (agent: string) => ({ principal: { type: 'Agent', id: agent }, action: 'system.run', resource: ls, context: { argv: ['ls'] } });

/** Worker threads started so far, by anyone (a recomposition checks the entities on one). */
let workers = 0;
const counted = () => workers++;
before(() => process.on('worker', counted));
after(() => process.off('worker', counted));

/** Lets the event loop run what waits (timers, I/O, workers' messages). */
const turn = () => new Promise((resolve) => setTimeout(resolve, 1));

interface Decided {
  decision: string;
  policies: string[];
  waitedMs: number;
  /** Worker threads started while it waited: recompositions it waited for, at most. */
  recompositions: number;
}

/** A gateway's identity store and its policy control, as a gateway opens them. */
function governed(): { identity: Identity; control: PolicyControl; close(): void } {
  const state = stateDir();
  const identity = Identity.open(state);
  const control = PolicyControl.open(join(state, 'policies'), { identity: watchIdentityEntities(identity) });
  return { identity, control, close: () => identity.close() };
}

/** Decides `agent`'s `ls` as a gateway decides a node command: waits for the decider, then decides in the tick it is given. */
async function decide(control: PolicyControl, agent: string): Promise<Decided> {
  const start = performance.now();
  const startedBefore = workers;
  const decider = await control.decider();
  const [decision] = decider.decideEach(request(agent), [ls]);
  return { decision: decision!.decision, policies: [...decision!.policies], waitedMs: performance.now() - start, recompositions: workers - startedBefore };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

describe('a policy control during a burst of changes to the identity store', () => {
  const N = 200;

  it(`makes every decision asked during ${N} agents made one after another, each denied by the forbid on its process, with far fewer than ${N} recompositions, each decision waiting for two at most (regression: every change threw away the recomposition under way and each decision waited for the whole burst)`, { timeout: 120_000 }, async (t) => {
    const g = governed();
    try {
      assert.equal((await decide(g.control, 'nobody')).decision, 'allow');
      const startedBefore = workers;
      const asked: Promise<Decided>[] = [];
      const burstStart = performance.now();
      for (let i = 0; i < N; i++) {
        g.identity.agents.create({ name: `held-${i}`, process: 'quarantine', owner: 'o@example.com' });
        asked.push(decide(g.control, `held-${i}`));
        await turn();
      }
      const burstMs = performance.now() - burstStart;
      const outcomes = await Promise.allSettled(asked);
      const recompositions = workers - startedBefore;
      const failed = outcomes.filter((o) => o.status === 'rejected');
      assert.deepEqual(failed, [], 'every decision is made');
      const decided = outcomes.map((o) => (o as PromiseFulfilledResult<Decided>).value);
      decided.forEach((d, i) => assert.deepEqual([d.decision, d.policies], ['deny', ['quarantine']], `held-${i}, made before its decision began to wait, is in its process's group`));
      const waits = decided.map((d) => d.waitedMs);
      t.diagnostic(`burst ${burstMs.toFixed(0)} ms; ${recompositions} recompositions for ${N} changes; wait p50 ${percentile(waits, 50).toFixed(0)} ms, p99 ${percentile(waits, 99).toFixed(0)} ms, max ${Math.max(...waits).toFixed(0)} ms`);
      assert.ok(recompositions <= N / 4, `${recompositions} recompositions for ${N} changes`);
      const most = Math.max(...decided.map((d) => d.recompositions));
      assert.ok(most <= 2, `a decision waited while ${most} recompositions started`);
    } finally {
      g.close();
    }
  });

  it('makes every decision while changes keep coming, each with the agents made before it began to wait (regression: a decision waited until the store stopped changing, so under a steady stream it was never made)', { timeout: 60_000 }, async () => {
    const g = governed();
    let streaming = true;
    let made = 0;
    const stream = (async () => {
      while (streaming) {
        g.identity.agents.create({ name: `stream-${made}`, process: 'quarantine', owner: 'o@example.com' });
        made++;
        await turn();
      }
    })();
    try {
      const asked: Promise<Decided>[] = [];
      for (let i = 0; i < 20; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        asked.push(decide(g.control, `stream-${made - 1}`));
      }
      const deadline = new Promise<'still waiting'>((resolve) => setTimeout(resolve, 15_000, 'still waiting').unref());
      const outcome = await Promise.race([Promise.allSettled(asked), deadline]);
      assert.notEqual(outcome, 'still waiting', `the store changed ${made} times and decisions were still waiting after 15 s`);
      for (const o of outcome as PromiseSettledResult<Decided>[]) {
        assert.equal(o.status, 'fulfilled', String((o as PromiseRejectedResult).reason));
        assert.deepEqual([o.value.decision, o.value.policies], ['deny', ['quarantine']]);
      }
      assert.ok(streaming, 'made while the store still changed');
    } finally {
      streaming = false;
      await stream;
      g.close();
    }
  });
});
