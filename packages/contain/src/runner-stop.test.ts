import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { hostCapabilities } from './linux/host.ts';
import { validatePolicy } from './policy/load.ts';
import { planSandbox } from './policy/plan.ts';
import { Runner } from './runner.ts';
import { until } from '../../../scripts/testing/until.ts';

/** The processes whose command line names `word` on its own: a sandbox's bubblewrap names its folder (--chdir). */
function processesNaming(word: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0').includes(word)) pids.push(Number(name));
    } catch {
      // Gone since it was listed.
    }
  }
  return pids;
}

function busyFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/** A stand-in bubblewrap that, as bubblewrap does, makes its child, names it on its --json-status-fd, then hangs. */
const NAMES_CHILD_THEN_HANGS = '/usr/bin/env CORRAL_STAND_IN="$D" /bin/sleep 1000 &\necho "{ \\"child-pid\\": $! }" >&4\nwait';

describe('a run stopped while bubblewrap is still setting its sandbox up', () => {
  // Without cgroups there is no handshake to wait for: the stop reaches bubblewrap at any point of its start.
  const caps = hostCapabilities();
  const noCgroups = { ...caps, cgroups: { ...caps.cgroups, controllers: {} } };

  it('ends, and leaves no process of the sandbox running (regression: killed between its clone and its report, bubblewrap left the sandbox to run the command on its own, and the run never ended)', async () => {
    const runner = new Runner({ capabilities: noCgroups });
    const work = realpathSync(mkdtempSync(join(tmpdir(), 'corral-stop-')));
    const p = planSandbox({ policy: validatePolicy({ runtime: ['shell'], workingDirectory: '.', filesystem: { readonly: ['.'] } }), source: 'test', baseDir: work });
    try {
      // Stopped from right after the spawn to well past the start, half a millisecond apart: some land inside bubblewrap's set-up.
      for (let i = 0; i < 48; i++) {
        const proc = runner.spawn(p, ['/bin/sleep', '1000']);
        await nextTurn();
        busyFor(i * 0.5);
        proc.kill();
        const ended = await Promise.race([proc.result.then(() => true), sleep(3_000).then(() => false)]);
        assert.ok(ended, `the run stopped ${i * 0.5} ms after its spawn never ended`);
      }
      assert.deepEqual(processesNaming(work), []);
    } finally {
      for (const pid of processesNaming(work)) process.kill(pid, 'SIGKILL');
      await runner.close();
      rmSync(work, { recursive: true, force: true });
    }
  });
});

/** The processes that `dir`'s stand-in bubblewrap left: it names `dir` in its command line, what it runs names it in its environment. */
function processesOf(dir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1').includes(dir) || readFileSync(`/proc/${name}/environ`, 'latin1').includes(dir)) pids.push(Number(name));
    } catch {
      // Gone since it was listed, or not ours.
    }
  }
  return pids;
}

/** The processes of `dir`'s stand-in bubblewrap itself (what processesOf finds but corral-reaper, whose command line names the stand-in it runs). */
function standInProcesses(dir: string): number[] {
  const reaper = hostCapabilities().reaper.path;
  return processesOf(dir).filter((pid) => {
    try {
      return reaper === undefined || !readFileSync(`/proc/${pid}/cmdline`, 'latin1').startsWith(`${reaper}\0`);
    } catch {
      return false; // Gone since it was listed.
    }
  });
}

/** Every child this process had, looked for at each turn of the event loop until `settled` settles: bubblewrap, however soon it was killed. */
async function childrenUntil(settled: Promise<unknown>): Promise<number[]> {
  const seen = new Set<number>();
  let over = false;
  void settled.then(
    () => (over = true),
    () => (over = true),
  );
  while (!over) {
    for (const task of readdirSync('/proc/self/task')) {
      let children: string;
      try {
        children = readFileSync(`/proc/self/task/${task}/children`, 'latin1');
      } catch {
        continue; // A thread of this process (libuv's) that ended since it was listed.
      }
      for (const pid of children.split(' ').filter(Boolean)) seen.add(Number(pid));
    }
    await nextTurn();
  }
  return [...seen];
}

describe('a run stopped at any point of its sandbox start, with a stand-in bubblewrap that hangs there', () => {
  const caps = hostCapabilities();
  const noCgroups = { ...caps, cgroups: { ...caps.cgroups, controllers: {} } };
  // Where it hangs: before its clone (bubblewrap alone), or after it (its child, the sandbox's first process to be, waiting too).
  const hangs = {
    'before it makes the sandbox': 'exec /usr/bin/env CORRAL_STAND_IN="$D" /bin/sleep 1000',
    'after it made the sandbox first process': '/usr/bin/env CORRAL_STAND_IN="$D" /bin/sleep 1000',
  };

  for (const [hosted, capabilities] of [['without cgroups', noCgroups], ['with cgroups', caps]] as const) {
    describe(hosted, { skip: hosted === 'with cgroups' && Object.keys(caps.cgroups.controllers).length === 0 && 'no writable cgroup here' }, () => {
      const standIn = (hang: string) => {
        const dir = realpathSync(mkdtempSync(join(tmpdir(), 'corral-hung-bwrap-')));
        writeFileSync(join(dir, 'bwrap'), `#!/bin/sh\nD=${dir}\n: > "$D/started"\n${hang}\n`, { mode: 0o755 });
        const runner = new Runner({ capabilities: { ...capabilities, bwrap: { available: true, path: join(dir, 'bwrap'), detail: 'a stand-in that hangs' } } });
        return { dir, runner, started: () => existsSync(join(dir, 'started')) };
      };
      const plan = (dir: string, process?: { timeoutMs: number }) =>
        planSandbox({ policy: validatePolicy({ runtime: ['shell'], workingDirectory: '.', filesystem: { readonly: ['.'] }, process }), source: 'test', baseDir: dir });
      /** Stops `proc` and holds that it ended, killed, within 5 s, leaving nothing of `dir`'s stand-in running. */
      const killedLeavingNothing = async (proc: ReturnType<Runner['spawn']>, dir: string) => {
        proc.kill();
        const r = await Promise.race([proc.result, sleep(5_000).then(() => undefined)]);
        assert.ok(r, 'the run never ended');
        assert.equal(r.signal, 'SIGKILL');
        assert.deepEqual(processesOf(dir), []);
        return r;
      };
      const cleanUp = async ({ dir, runner }: { dir: string; runner: Runner }) => {
        for (const pid of processesOf(dir)) process.kill(pid, 'SIGKILL');
        await runner.close();
        rmSync(dir, { recursive: true, force: true });
      };

      for (const [when, hang] of Object.entries(hangs)) {
        it(`ends as killed, and leaves nothing running, when bubblewrap hangs ${when}`, async () => {
          const s = standIn(hang);
          try {
            const proc = s.runner.spawn(plan(s.dir), ['/bin/true']);
            await until('the stand-ins run', () => s.started() && standInProcesses(s.dir).length === (when.startsWith('after') ? 2 : 1));
            assert.equal((await killedLeavingNothing(proc, s.dir)).exitCode, null);
          } finally {
            await cleanUp(s);
          }
        });

        it(`fails CONTAIN_SPAWN_FAILED at its timeout, and leaves nothing running, when bubblewrap hangs ${when}`, async () => {
          const s = standIn(hang);
          try {
            const proc = s.runner.spawn(plan(s.dir, { timeoutMs: 300 }), ['/bin/true']);
            const settled = await Promise.race([proc.result.then(() => 'resolved', (error: unknown) => error), sleep(5_000).then(() => 'pending')]);
            assert.equal((settled as { code?: string }).code, 'CONTAIN_SPAWN_FAILED', `the run ${typeof settled === 'string' ? settled : 'failed otherwise'}`);
            assert.match((settled as Error).message, /never named the sandbox's first process/);
            assert.deepEqual(processesOf(s.dir), []);
          } finally {
            await cleanUp(s);
          }
        });
      }

      it('ends as killed, and leaves nothing running, when bubblewrap hangs after it named the sandbox first process', async () => {
        const s = standIn(NAMES_CHILD_THEN_HANGS);
        try {
          const proc = s.runner.spawn(plan(s.dir), ['/bin/true']);
          await until('both stand-ins run', () => standInProcesses(s.dir).length === 2);
          await killedLeavingNothing(proc, s.dir);
        } finally {
          await cleanUp(s);
        }
      });

      it("ends as killed, and leaves nothing running, when bubblewrap hangs before the launcher a long command is handed to is ready", async () => {
        const s = standIn(NAMES_CHILD_THEN_HANGS);
        try {
          // More words than bubblewrap reads: handed to Corral's launcher in the sandbox once it says it is ready.
          const proc = s.runner.spawn(plan(s.dir), ['/bin/echo', ...Array.from({ length: 10_000 }, () => 'word')]);
          await until('both stand-ins run', () => standInProcesses(s.dir).length === 2);
          await killedLeavingNothing(proc, s.dir);
        } finally {
          await cleanUp(s);
        }
      });

      for (const [when, hang] of Object.entries(hangs)) {
        it(`closes, and leaves nothing running, while a warm sandbox's bubblewrap hangs ${when}`, async () => {
          const s = standIn(hang);
          try {
            const warming = s.runner.keepWarm(plan(s.dir)).catch(() => undefined);
            await until('the stand-ins run', () => s.started() && standInProcesses(s.dir).length === (when.startsWith('after') ? 2 : 1));
            const closed = await Promise.race([s.runner.close().then(() => true), sleep(5_000).then(() => false)]);
            assert.ok(closed, 'the runner never closed');
            await warming;
            assert.deepEqual(processesOf(s.dir), []);
          } finally {
            await cleanUp(s);
          }
        });
      }

      it('never spawns bubblewrap, ends as killed and leaves nothing running, when stopped before bubblewrap was spawned (regression: bubblewrap was spawned and then killed)', async () => {
        const s = standIn(hangs['before it makes the sandbox']);
        try {
          // With egress the run first opens its proxy channel (and with cgroups takes its groups): bubblewrap is spawned only after.
          const p = planSandbox({ policy: validatePolicy({ runtime: ['shell'], workingDirectory: '.', filesystem: { readonly: ['.'] }, network: { egress: { allow: ['example.com:443'] } } }), source: 'test', baseDir: s.dir });
          const proc = s.runner.spawn(p, ['/bin/true']);
          const spawned = childrenUntil(proc.result);
          await killedLeavingNothing(proc, s.dir);
          assert.deepEqual(await spawned, [], 'bubblewrap was spawned');
        } finally {
          await cleanUp(s);
        }
      });
    });
  }
});
