// A log kept appending on several lanes while a test breaks its store, and
// the check afterwards that nothing acknowledged was lost or changed.
import assert from 'node:assert/strict';
import type { AuditLog } from '../src/log/audit-log.ts';
import { readRecord, verifyStore } from '../src/log/reader.ts';
import { sampleEvent } from './fixtures.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SteadyAppending {
  /** seq → hash of every append acknowledged so far. */
  acked: Map<number, string>;
  /** The error code of every append that failed so far. */
  failed: string[];
  /** Date.now() at the last acknowledgement, 0 before the first. */
  readonly lastAckAt: number;
  /** Waits until `done()` or `ms` have passed, whichever comes first. */
  until(done: () => boolean, ms: number): Promise<void>;
  /** Stops every lane after its append under way; resolves when all have stopped. */
  stop(): Promise<void>;
}

/** Runs not stopped yet, of every test in the file, for stopAllAppending(). */
const running = new Set<SteadyAppending>();

/** Appends on `lanes` lanes, one append at a time each, pausing `pauseMs` after a failed one, until stop(). */
export function steadyAppending(log: AuditLog, lanes: number, pauseMs: number): SteadyAppending {
  const acked = new Map<number, string>();
  const failed: string[] = [];
  let lastAckAt = 0;
  let stopping = false;
  let i = 0;
  const lane = async () => {
    while (!stopping) {
      try {
        const r = await log.append(sampleEvent(i++));
        acked.set(r.seq, r.hash);
        lastAckAt = Date.now();
      } catch (error) {
        failed.push(String((error as { code?: string }).code));
        await sleep(pauseMs);
      }
    }
  };
  const laneRuns = Promise.all(Array.from({ length: lanes }, lane));
  const run: SteadyAppending = {
    acked,
    failed,
    get lastAckAt() {
      return lastAckAt;
    },
    async until(done, ms) {
      const deadline = Date.now() + ms;
      while (!done() && Date.now() < deadline) await sleep(5);
    },
    async stop() {
      stopping = true;
      running.delete(run);
      await laneRuns;
    },
  };
  running.add(run);
  return run;
}

/** Stops every steadyAppending run not stopped yet: for a test's `finally`, so a failed assertion leaves no lane appending. */
export async function stopAllAppending(): Promise<void> {
  for (const run of [...running]) await run.stop();
}

/** The log verifies, holds `size` records, and each acknowledged record is the one acknowledged. */
export async function assertHoldsExactly(log: AuditLog, acked: Map<number, string>, size: number): Promise<void> {
  const report = await verifyStore(log.store, log.publicKey);
  assert.equal(report.ok, true, JSON.stringify(report.damage));
  assert.equal(report.verified, size);
  for (const [seq, hash] of acked) assert.equal((await readRecord(log.store, seq)).hash, hash, `acknowledged record ${seq}`);
}
