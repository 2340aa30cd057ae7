import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { validatePolicy } from './policy/load.ts';
import { planSandbox } from './policy/plan.ts';
import { REFILL_GRACE_MS, WarmPool, type WarmHooks } from './warm-pool.ts';

const plan = planSandbox({ policy: validatePolicy({ runtime: ['shell'] }), source: 'warm-pool.test', baseDir: '/tmp' });

/** A sandbox of the pool's own bookkeeping: its run ends when the test says so. */
interface Slot {
  id: number;
  endRun: () => void;
  runOver: Promise<void>;
}

/** A pool whose sandboxes are plain objects, with a log of what the pool asked for and when. */
function pool(): { warm: WarmPool<Slot>; log: string[] } {
  const log: string[] = [];
  let booted = 0;
  const hooks: WarmHooks<Slot> = {
    boot: async () => {
      const id = ++booted;
      log.push(`boot ${id}`);
      let endRun = () => undefined as void;
      const runOver = new Promise<void>((resolve) => (endRun = resolve));
      return { id, endRun, runOver };
    },
    alive: () => true,
    over: (slot) => slot.runOver,
    discard: async (slot) => void log.push(`discard ${slot.id}`),
  };
  return { warm: new WarmPool(hooks), log };
}

describe('WarmPool', () => {
  describe('when a run takes the only warm sandbox', () => {
    it('starts no replacement while that run lasts, and starts it once the run is over', async () => {
      const { warm, log } = pool();
      await warm.keep(plan, 1);
      const taken = warm.take(plan);
      assert.equal(taken?.id, 1);
      await sleep(REFILL_GRACE_MS / 5);
      assert.deepEqual(log, ['boot 1'], 'the replacement was started while the run was under way');
      taken.endRun();
      await warm.keep(plan, 1);
      assert.deepEqual(log, ['boot 1', 'boot 2']);
      await warm.close();
    });

    it('lets the run’s caller go on before the replacement starts', async () => {
      const { warm, log } = pool();
      await warm.keep(plan, 1);
      const taken = warm.take(plan);
      taken?.endRun();
      // What the caller does right after the run's end, in the same turn of the event loop.
      await taken?.runOver;
      await Promise.resolve();
      assert.deepEqual(log, ['boot 1']);
      await nextTurn();
      await nextTurn();
      assert.deepEqual(log, ['boot 1', 'boot 2']);
      await warm.close();
    });

    it('waits for the caller’s own work on the result too (refillAfter) before starting the replacement', async () => {
      const { warm, log } = pool();
      await warm.keep(plan, 1);
      const delivered = Promise.withResolvers<void>();
      const taken = warm.take(plan, delivered.promise);
      taken?.endRun();
      await sleep(REFILL_GRACE_MS / 5);
      assert.deepEqual(log, ['boot 1'], 'the replacement was started before the caller was done with the result');
      delivered.resolve();
      await warm.keep(plan, 1);
      assert.deepEqual(log, ['boot 1', 'boot 2']);
      await warm.close();
    });

    it(`starts the replacement once the run is over when the caller’s work fails, and after ${REFILL_GRACE_MS} ms when it never ends`, async () => {
      const { warm, log } = pool();
      await warm.keep(plan, 1);
      const failed = warm.take(plan, Promise.reject(new Error('the answer could not be sent')));
      await sleep(REFILL_GRACE_MS / 5);
      assert.deepEqual(log, ['boot 1'], 'the replacement was started while the run was under way');
      failed?.endRun();
      await warm.keep(plan, 1);
      assert.deepEqual(log, ['boot 1', 'boot 2']);
      const stuck = warm.take(plan, new Promise(() => {}));
      stuck?.endRun();
      await sleep(REFILL_GRACE_MS + 100);
      assert.deepEqual(log, ['boot 1', 'boot 2', 'boot 3']);
      await warm.close();
    });

    it(`starts the replacement anyway once the run has lasted ${REFILL_GRACE_MS} ms`, async () => {
      const { warm, log } = pool();
      await warm.keep(plan, 1);
      const taken = warm.take(plan);
      await sleep(REFILL_GRACE_MS + 100);
      assert.deepEqual(log, ['boot 1', 'boot 2']);
      assert.equal(warm.take(plan)?.id, 2);
      taken?.endRun();
      await warm.close();
    });

    it('starts no replacement when the plan is stopped before the run is over', async () => {
      const { warm, log } = pool();
      await warm.keep(plan, 1);
      const taken = warm.take(plan);
      await warm.keep(plan, 0);
      taken?.endRun();
      await sleep(20);
      assert.deepEqual(log, ['boot 1']);
      await warm.close();
    });
  });

  describe('when a run’s plan is not the one kept warm', () => {
    it('gives no sandbox to a plan whose policy differs in one field, nor to a copy of the plan given another policy', async () => {
      const { warm } = pool();
      const policy = validatePolicy({ runtime: ['shell'], onUnenforceable: 'warn' });
      const lenient = planSandbox({ policy, source: 'warm-pool.test', baseDir: '/tmp' });
      await warm.keep(lenient, 1);
      const strict = planSandbox({ policy: validatePolicy({ runtime: ['shell'] }), source: 'warm-pool.test', baseDir: '/tmp' });
      assert.equal(warm.take(strict), undefined);
      assert.equal(warm.take({ ...lenient, policy: { ...policy, onUnenforceable: 'refuse' } }), undefined);
      assert.equal(warm.take({ ...lenient, env: { ...lenient.env, LANG: 'C' } }), undefined);
      // The same policy planned again is the same plan: it takes the sandbox.
      const again = planSandbox({ policy, source: 'warm-pool.test', baseDir: '/tmp' });
      assert.equal(warm.take(again)?.id, 1);
      await warm.close();
    });
  });

  describe('when no warm sandbox is ready', () => {
    it('gives none, and starts filling on the next turn of the event loop', async () => {
      const { warm, log } = pool();
      await warm.keep(plan, 1);
      warm.take(plan)?.endRun();
      assert.equal(warm.take(plan), undefined);
      await nextTurn();
      await nextTurn();
      assert.deepEqual(log, ['boot 1', 'boot 2']);
      await warm.close();
    });
  });
});
