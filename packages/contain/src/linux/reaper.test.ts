import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hostCapabilities } from './host.ts';

const caps = hostCapabilities();

/** Runs corral-reaper with `args` after its lifeline (fd 3, held open by this process until it ends). */
function reaper(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(caps.reaper.path!, ['3', ...args], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('corral-reaper --join', { skip: !caps.reaper.available && caps.reaper.detail }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-reaper-join-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('never runs the program when a cgroup it is told to join cannot be joined, and says which', async () => {
    const mark = join(dir, 'ran');
    const r = await reaper(['--join', '/sys/fs/cgroup/no-such-group/tasks', '--', '/bin/sh', '-c', `: > ${mark}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^corral-reaper: cannot join the cgroup \/sys\/fs\/cgroup\/no-such-group\/tasks: No such file or directory\n$/);
    assert.equal(existsSync(mark), false);
  });

  it('refuses a --join without a file, before running anything', async () => {
    const r = await reaper(['--join', '--', '/bin/true']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /usage: corral-reaper FD \[--join TASKS\]\.\.\. -- PROGRAM/);
  });

  const pids = caps.cgroups.controllers.pids;
  it('runs the program already inside every group it joins', { skip: pids?.version !== 1 && 'no writable cgroup v1 pids hierarchy here' }, async () => {
    const group = join(pids!.parent, 'corral', `reaper-test-${process.pid}`);
    mkdirSync(group, { recursive: true });
    try {
      const r = await reaper(['--join', join(group, 'tasks'), '--', '/bin/cat', '/proc/self/cgroup']);
      assert.equal(r.code, 0, r.stderr);
      const own = /^\d+:pids:(.*)$/m.exec(r.stdout)?.[1];
      assert.ok(own !== undefined && group.endsWith(own), `cat ran in ${own}, not in ${group}`);
    } finally {
      rmdirSync(group);
    }
  });
});
