// Programs that run the command their arguments name are opaque, as nice
// and timeout are: a permit for one of them, or a forbid on the program it
// runs, must not be decided on the wrapper alone. Each is run for real where
// the node has it, to show the command runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DecisionPoint, loadPolicies } from '@corral/policy';
import { canonicalRun } from './canonical.ts';
import { decideRun } from './decide.ts';

/** Anything but touch: a forbid must catch touch however it is reached. */
const ALL_BUT_TOUCH = `
@id("anything") permit (principal == Agent::"bot", action == Action::"system.run", resource);
@id("no-touch") forbid (principal, action == Action::"system.run", resource == Command::"touch");
`;

function decide(command: string[]): string {
  const point = new DecisionPoint();
  point.load(loadPolicies([{ file: 'test.cedar', text: ALL_BUT_TOUCH }]));
  return decideRun(point, { type: 'Agent', id: 'bot' }, canonicalRun({ command })).decision;
}

const installed = (program: string): boolean => spawnSync('sh', ['-c', `command -v ${program}`]).status === 0;

describe('a wrapper that runs the command its arguments name', () => {
  let dir = '';
  let marker = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-wrappers-'));
    marker = join(dir, 'ran');
    mkdirSync(join(dir, 'parts'));
    writeFileSync(join(dir, 'parts', 'a'), `#!/bin/sh\ntouch '${marker}'\n`);
    chmodSync(join(dir, 'parts', 'a'), 0o755);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const cases = (): string[][] => [
    ['setarch', 'x86_64', 'touch', marker],
    ['linux64', 'touch', marker],
    ['ssh-agent', 'touch', marker],
    ['fakeroot', 'touch', marker],
    ['capsh', '--', '-c', `touch '${marker}'`],
    ['run-parts', join(dir, 'parts')],
    ['dbus-run-session', 'touch', marker],
    ['perf', 'stat', '-o', '/dev/null', 'touch', marker],
  ];
  it('denies setarch, linux64, ssh-agent, fakeroot, capsh, run-parts, dbus-run-session and perf stat running touch under a policy forbidding touch (regression: decided as the wrapper, and allowed)', () => {
    for (const argv of cases()) {
      if (installed(argv[0]!)) {
        rmSync(marker, { force: true });
        const result = spawnSync(argv[0]!, argv.slice(1), { cwd: dir, timeout: 60_000, stdio: 'ignore' });
        // Some need what a sandbox may lack (perf its counters, a session bus): only one that ran is asserted on.
        if (result.status === 0) assert.equal(existsSync(marker), true, `${argv[0]} runs touch`);
      }
      assert.equal(decide(argv), 'deny', argv[0]);
      assert.equal(decide(['sh', '-c', argv.map((a) => `'${a}'`).join(' ')]), 'deny', `${argv[0]} in a payload`);
    }
  });

  it('denies ip netns exec and ip vrf exec by any prefix ip reads, and ip -batch; allows ip addr and ip -br a', () => {
    for (const argv of [['ip', 'netns', 'exec', 'ns', 'touch', 'x'], ['ip', 'net', 'exec', 'ns', 'touch', 'x'], ['ip', 'v', 'exec', 'blue', 'touch', 'x'], ['ip', '-batch', 'cmds'], ['ip', '-b', 'cmds']]) {
      assert.equal(decide(argv), 'deny', argv.join(' '));
    }
    assert.equal(decide(['ip', 'addr']), 'allow');
    assert.equal(decide(['ip', '-br', 'a']), 'allow');
  });
});
