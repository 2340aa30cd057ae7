// verifyStore telling its caller how far it has come (corral audit verify shows it on stderr).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sampleEvent } from '../../test/fixtures.ts';
import { openAuditLog, type AuditLog } from './audit-log.ts';
import { verifyStore } from './reader.ts';

/** More than two batches of the store's scan (10,000 records) on one thread; each of two threads reads 12,500. */
const SIZE = 25_000;

let dir: string;
let log: AuditLog;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'corral-audit-progress-'));
  log = await openAuditLog({ stateDir: dir });
  for (let done = 0; done < SIZE; done += 5000) await Promise.all(Array.from({ length: 5000 }, (_, i) => log.append(sampleEvent(done + i))));
  await log.checkpoint();
});
after(async () => {
  await log.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Verifies the log, recording every onProgress call. */
async function verifyCounting(options: { parallelFrom: number; progressEveryMs: number }): Promise<[number, number | null][]> {
  const calls: [number, number | null][] = [];
  const report = await verifyStore(log.store, log.publicKey, null, { ...options, onProgress: (verified, total) => calls.push([verified, total]) });
  assert.equal(report.ok, true, JSON.stringify(report.damage));
  assert.equal(report.verified, SIZE);
  return calls;
}

function assertRising(calls: [number, number | null][]): void {
  for (let i = 1; i < calls.length; i++) assert.ok((calls[i] as [number, number])[0] >= (calls[i - 1] as [number, number])[0], JSON.stringify(calls));
}

describe('verifyStore progress', () => {
  describe('on one thread', () => {
    it('tells onProgress 0 of the records the head holds at the start, then how many are verified after each batch, up to all of them', async () => {
      const calls = await verifyCounting({ parallelFrom: Number.POSITIVE_INFINITY, progressEveryMs: 0 });
      assert.deepEqual(calls, [
        [0, SIZE],
        [10_000, SIZE],
        [20_000, SIZE],
        [SIZE, SIZE],
      ]);
    });
    it('calls it no more often than progressEveryMs: a verification shorter than that is told only its start', async () => {
      assert.deepEqual(await verifyCounting({ parallelFrom: Number.POSITIVE_INFINITY, progressEveryMs: 600_000 }), [[0, SIZE]]);
    });
  });

  describe('on two threads', () => {
    it('tells onProgress the records both threads have verified together as they go, up to all of them (regression: nothing until the end)', async () => {
      const calls = await verifyCounting({ parallelFrom: 1, progressEveryMs: 0 });
      assert.deepEqual(calls[0], [0, SIZE]);
      assert.deepEqual(calls.at(-1), [SIZE, SIZE]);
      assertRising(calls);
      assert.ok(calls.every(([, total]) => total === SIZE));
      // Each thread counts 10,000 then 12,500: a sum ending in 2,500 comes from a thread, not a sequential pass.
      assert.ok(calls.some(([verified]) => verified % 10_000 === 2500), JSON.stringify(calls));
    });
    it('calls it no more often than progressEveryMs', async () => {
      assert.deepEqual(await verifyCounting({ parallelFrom: 1, progressEveryMs: 600_000 }), [[0, SIZE]]);
    });
  });
});
