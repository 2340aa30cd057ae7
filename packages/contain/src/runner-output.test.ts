import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { validatePolicy } from './policy/load.ts';
import { planSandbox, type SandboxPlan } from './policy/plan.ts';
import type { ContainerPolicyInput } from './policy/schema.ts';
import { Runner } from './runner.ts';

const MiB = 2 ** 20;

function plan(policy: ContainerPolicyInput): SandboxPlan {
  return planSandbox({ policy: validatePolicy(policy), source: 'test', baseDir: '/tmp' });
}

/** A stream that takes nothing until opened: a pipeline's reader that stopped reading, a slow client. */
function heldSink(): { sink: Writable; open: () => void } {
  let opened = false;
  let waiting: (() => void) | undefined;
  const sink = new Writable({
    highWaterMark: 64 * 1024,
    write(_chunk, _encoding, done) {
      if (opened) done();
      else waiting = done;
    },
  });
  const open = () => {
    opened = true;
    const done = waiting;
    waiting = undefined;
    done?.();
  };
  return { sink, open };
}

/** The most `sink` held queued, sampled while the command could write for about `ms`, stopping early once it passes `limit`. */
async function mostQueued(sink: Writable, ms: number, limit: number): Promise<number> {
  let most = 0;
  for (let waited = 0; waited < ms && most <= limit; waited += 50) {
    await sleep(50);
    most = Math.max(most, sink.writableLength);
  }
  return most;
}

describe("the runner's output streams", () => {
  let runner: Runner;
  before(() => {
    runner = new Runner();
  });
  after(async () => {
    await runner.close();
  });

  describe('when the stream given for the output takes nothing (a reader that stopped reading)', () => {
    // A policy may allow up to 1 TiB of output: none of it may pile up in the runner, outside the sandbox's memory limit.
    const flood = plan({ runtime: ['shell'], process: { maxOutputBytes: 2 ** 40, timeoutMs: 60_000 } });

    for (const which of ['stdout', 'stderr'] as const) {
      it(`holds the command back instead of queueing what it writes on ${which} in the runner (it queued all 32 MiB), and passes all of it on once the stream takes it`, async () => {
        const { sink, open } = heldSink();
        const proc = runner.spawn(flood, ['/bin/sh', '-c', `head -c ${32 * MiB} /dev/zero${which === 'stderr' ? ' >&2' : ''}`], { [which]: sink });
        const most = await mostQueued(sink, 2000, 4 * MiB);
        open();
        const r = await proc.result;
        assert.ok(most <= 2 * MiB, `${most} bytes queued in the runner for a stream that took nothing`);
        assert.equal(r.exitCode, 0);
        assert.equal(which === 'stdout' ? r.stdoutBytes : r.stderrBytes, 32 * MiB);
      });
    }

    it('still stops the command at its timeout, and the run ends, while the stream takes nothing', async () => {
      const { sink } = heldSink();
      const r = await runner.run(plan({ runtime: ['shell'], process: { maxOutputBytes: 2 ** 40, timeoutMs: 500 } }), ['/bin/sh', '-c', 'while :; do head -c 1048576 /dev/zero; done'], { stdout: sink });
      assert.deepEqual(r.limitsHit, ['timeout']);
      assert.equal(r.exitCode, null);
    });

    it('still ends the run when the caller aborts it while the stream takes nothing', async () => {
      const { sink } = heldSink();
      const controller = new AbortController();
      const proc = runner.spawn(flood, ['/bin/sh', '-c', `head -c ${32 * MiB} /dev/zero`], { stdout: sink, signal: controller.signal });
      await proc.ready;
      await sleep(300);
      controller.abort();
      const r = await proc.result;
      assert.equal(r.signal, 'SIGKILL');
      assert.deepEqual(r.limitsHit, []);
    });
  });
});
