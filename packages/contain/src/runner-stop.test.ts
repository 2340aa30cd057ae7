import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { hostCapabilities } from './linux/host.ts';
import { validatePolicy } from './policy/load.ts';
import { planSandbox } from './policy/plan.ts';
import { Runner } from './runner.ts';

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
