// A program Corral permits can be told through its environment to run a
// command of the caller's choosing. Each test runs the real program, where
// the node has it, to show that it does, and that the run is now denied.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DecisionPoint, loadPolicies } from '@corral/policy';
import { canonicalRun } from './canonical.ts';
import { decideRun } from './decide.ts';

const PROGRAMS = ['tar', 'zip', 'make', 'wget', 'go', 'cargo', 'cc', 'yarn', 'bun', 'pnpm'];
const POLICY = PROGRAMS.map((name) => `@id("${name}-allowed") permit (principal == Agent::"bot", action == Action::"system.run", resource == Command::"${name}");`).join('\n');

function decide(command: string[], env: Record<string, string>): string {
  const point = new DecisionPoint();
  point.load(loadPolicies([{ file: 'test.cedar', text: POLICY }]));
  return decideRun(point, { type: 'Agent', id: 'bot' }, canonicalRun({ command, env })).decision;
}

const installed = (program: string): boolean => spawnSync('sh', ['-c', `command -v ${program}`]).status === 0;

describe('an environment that makes a permitted program run a command', () => {
  let dir = '';
  let marker = '';
  const run = (argv: string[], env: Record<string, string>): boolean => {
    rmSync(marker, { force: true });
    // The environment of a login session, whatever this one holds: make reads
    // MAKEFLAGS' --eval before it sets its own SHELL, so without SHELL in the
    // environment (as under CI) its $(shell) runs nothing.
    const session = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, SHELL: '/bin/sh' };
    spawnSync(argv[0]!, argv.slice(1), { cwd: dir, env: { ...session, ...env }, timeout: 60_000, stdio: 'ignore' });
    return existsSync(marker);
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-execution-env-'));
    marker = join(dir, 'ran');
    writeFileSync(join(dir, 'f.txt'), 'hi\n');
    writeFileSync(join(dir, 'Makefile'), 'all:\n\t@true\n');
    writeFileSync(join(dir, 'askpass'), `#!/bin/sh\n: > '${marker}'\n`);
    chmodSync(join(dir, 'askpass'), 0o755);
    writeFileSync(join(dir, 'wgetrc'), `use_askpass = ${join(dir, 'askpass')}\n`);
    if (installed('tar')) spawnSync('tar', ['cf', 'a.tar', 'f.txt'], { cwd: dir });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const cases: Array<{ name: string; argv: string[]; env: () => Record<string, string> }> = [
    { name: 'TAR_OPTIONS=--checkpoint-action=exec=CMD tar tf x.tar', argv: ['tar', 'tf', 'a.tar'], env: () => ({ TAR_OPTIONS: `--checkpoint=1 --checkpoint-action=exec=${join(dir, 'askpass')}` }) },
    { name: "ZIPOPT='-T -TT CMD' zip x.zip f", argv: ['zip', '-q', 'b.zip', 'f.txt'], env: () => ({ ZIPOPT: `-T -TT ${join(dir, 'askpass')}` }) },
    { name: 'MAKEFLAGS=--eval=$(shell CMD) make', argv: ['make', '-s'], env: () => ({ MAKEFLAGS: `--eval=$(shell ${join(dir, 'askpass')})` }) },
    { name: 'WGETRC naming use_askpass = CMD, wget URL', argv: ['wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:9/'], env: () => ({ WGETRC: join(dir, 'wgetrc') }) },
  ];
  for (const { name, argv, env } of cases) {
    it(`denies ${name} under a permit for ${argv[0]} (regression: allowed, and the command ran)`, () => {
      if (installed(argv[0]!)) assert.equal(run(argv, env()), true, `${argv[0]} runs the command its environment names`);
      assert.equal(decide(argv, env()), 'deny');
      assert.equal(decide(['sh', '-c', `env ${Object.keys(env())[0]}=x ${argv.join(' ')}`], {}), 'deny', 'set behind env in a payload');
    });
  }

  it('denies GOFLAGS=-toolexec=CMD, CARGO_TARGET_…_RUNNER, RUSTC_WRAPPER, CC and SHELL, which name a program a permitted one runs', () => {
    for (const [argv, env] of [[['go', 'build'], { GOFLAGS: '-toolexec=/tmp/x' }], [['cargo', 'run'], { CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER: '/tmp/x' }], [['cargo', 'build'], { RUSTC_WRAPPER: '/tmp/x' }], [['make'], { CC: '/tmp/x' }], [['make'], { SHELL: '/tmp/x' }]] as const) {
      assert.equal(decide([...argv], { ...env }), 'deny', Object.keys(env)[0]);
    }
    assert.equal(decide(['tar', 'tf', 'a.tar'], { TZ: 'UTC' }), 'allow');
  });

  it("denies yarn's and bun's settings and corepack's from the environment (YARN_YARN_PATH, yarn_…, BUN_OPTIONS, COREPACK_HOME), which make a permitted package manager run a file in its own place or besides, as npm_config_… is denied (regression: allowed)", () => {
    for (const [argv, env] of [[['yarn', 'install'], { YARN_YARN_PATH: '/tmp/x.cjs' }], [['yarn', 'install'], { yarn_yarn_path: '/tmp/x.cjs' }], [['bun', 'install'], { BUN_OPTIONS: '--preload /tmp/x.ts' }], [['yarn', 'install'], { COREPACK_HOME: '/tmp/x' }]] as const) {
      assert.equal(decide([...argv], { ...env }), 'deny', Object.keys(env)[0]);
      assert.equal(decide(['sh', '-c', `env ${Object.keys(env)[0]}=x ${argv.join(' ')}`], {}), 'deny', `${Object.keys(env)[0]} set behind env in a payload`);
    }
    assert.equal(decide(['yarn', 'install'], { TZ: 'UTC' }), 'allow');
  });

  it("denies pnpm's settings from the environment (pnpm_config_script_shell, PNPM_CONFIG_NODE_OPTIONS), which make a permitted pnpm run the shell or code they name, as npm_config_… is denied (regression: allowed)", () => {
    for (const env of [{ pnpm_config_script_shell: '/tmp/x/sh' }, { PNPM_CONFIG_NODE_OPTIONS: '--require=/tmp/x.js' }] as Array<Record<string, string>>) {
      assert.equal(decide(['pnpm', 'test'], env), 'deny', Object.keys(env)[0]);
    }
    assert.equal(decide(['pnpm', 'test'], {}), 'allow');
  });
});
