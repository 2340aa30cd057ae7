// The runs a gateway authorized and waits to hear about, kept in gateway.db:
// written at once while its write lock is free, and waited for with timers
// while another process (a corral command) holds it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { openGatewayDb } from '../store/store.ts';
import { OpenRuns, type OpenRun } from './open-runs.ts';

const dir = mkdtempSync(join(tmpdir(), 'corral-open-runs-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const run = (at: number): OpenRun => ({ digest: 'a'.repeat(64), principal: { type: 'Agent', id: 'invoice-bot' }, at });

describe('open runs', () => {
  it('keeps and takes a run at once, with no promise, while the lock is free (an authorized run gains no turn of the event loop)', () => {
    const runs = new OpenRuns(openGatewayDb(dir));
    assert.equal(runs.put('node-1', 'run-free', run(1)), undefined);
    const taken = runs.take('node-1', 'run-free');
    assert.ok(!(taken instanceof Promise));
    assert.equal(taken?.at, 1);
    assert.equal(runs.take('node-1', 'run-free'), undefined, 'taken once');
  });

  it('keeps and takes with timers while another process holds gateway.db, landing once it lets go (regression: each waited inside SQLite for up to 5 s, stalling the gateway)', async () => {
    const runs = new OpenRuns(openGatewayDb(dir));
    runs.put('node-1', 'run-held-take', run(2));
    const holder = new DatabaseSync(join(dir, 'gateway.db'));
    holder.exec('BEGIN IMMEDIATE');
    let ticks = 0;
    const ticking = setInterval(() => ticks++, 5);
    try {
      const called = performance.now();
      const putting = runs.put('node-1', 'run-held-put', run(3));
      const taking = runs.take('node-1', 'run-held-take');
      assert.ok(performance.now() - called < 1000, `the call returned at once, to wait with timers (it took ${(performance.now() - called).toFixed(0)} ms)`);
      assert.ok(putting instanceof Promise && taking instanceof Promise);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(ticks > 0, 'timers fired while the writes waited');
      assert.deepEqual(runs.ofNode('node-1').map(([id]) => id), ['run-held-take'], 'nothing changed while the lock is held');
      holder.exec('ROLLBACK');
      await putting;
      assert.equal((await taking)?.at, 2);
      assert.deepEqual(runs.ofNode('node-1').map(([id]) => id), ['run-held-put']);
    } finally {
      clearInterval(ticking);
      if (holder.isTransaction) holder.exec('ROLLBACK');
      holder.close();
    }
  });
});
