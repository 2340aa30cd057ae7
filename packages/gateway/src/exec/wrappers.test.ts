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
import fc from 'fast-check';
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

/** A policy that permits one program, as one permitting `bundle` or `uv` to build a project would. */
function permitting(program: string, command: string[]): string {
  const point = new DecisionPoint();
  point.load(loadPolicies([{ file: 'test.cedar', text: `@id("only") permit (principal == Agent::"bot", action == Action::"system.run", resource == Command::"${program}");` }]));
  return decideRun(point, { type: 'Agent', id: 'bot' }, canonicalRun({ command })).decision;
}

describe('a program that runs a command through a subcommand (bundle exec, uv run, npm exec, docker exec)', () => {
  const runs: string[][] = [
    ['bundle', 'exec', 'rm', '-rf', '/x'],
    ['uv', 'run', 'rm', '-rf', '/x'],
    ['uv', 'tool', 'run', 'rm'],
    ['uvx', 'rm'],
    ['poetry', 'run', 'rm', '-rf', '/x'],
    ['pipenv', 'run', 'rm'],
    ['pdm', 'run', 'rm'],
    ['rye', 'run', 'rm'],
    ['hatch', 'run', 'rm'],
    ['hatch', 'env', 'run', '--', 'rm'],
    ['pipx', 'run', 'rm'],
    ['conda', 'run', '-n', 'base', 'rm'],
    ['mamba', 'run', 'rm'],
    ['micromamba', 'run', 'rm'],
    ['pixi', 'run', 'rm'],
    ['pixi', 'exec', 'rm'],
    ['devbox', 'run', 'rm'],
    ['npm', 'exec', '--', 'rm', '-rf', '/x'],
    ['npm', 'x', 'rm'],
    ['npm', 'exe', 'rm'],
    ['npm', 'exec', '-c', 'rm -rf /x'],
    ['npm', 'explore', 'left-pad', '--', 'rm', '-rf', '/x'],
    ['npx', 'rm'],
    ['pnpm', 'exec', 'rm'],
    ['pnpm', 'dlx', 'rm'],
    ['pnpm', 'rm-rf', '/x'],
    ['pnpm', 'touch', '/x'],
    ['pnpm', '-r', 'exec', 'rm'],
    ['pnpx', 'rm'],
    ['yarn', 'exec', 'rm'],
    ['yarn', 'dlx', 'rm'],
    ['yarn', 'workspace', 'app', 'exec', 'rm'],
    ['yarnpkg', 'dlx', 'rm'],
    ['bunx', 'rm'],
    ['bun', 'x', 'rm'],
    ['bun', 'exec', 'rm -rf /x'],
    ['corepack', 'pnpm', 'exec', 'rm'],
    ['cmake', '-E', 'env', 'rm', '-rf', '/x'],
    ['cmake', '-E', 'time', 'rm'],
    ['cmake', '-E', 'chdir', '/', 'rm'],
    ['rbenv', 'exec', 'rm'],
    ['pyenv', 'exec', 'rm'],
    ['nodenv', 'exec', 'rm'],
    ['fnm', 'exec', '--using=20', 'rm'],
    ['volta', 'run', 'rm'],
    ['rustup', 'run', 'stable', 'rm'],
    ['stack', 'exec', '--', 'rm'],
    ['cabal', 'exec', '--', 'rm'],
    ['opam', 'exec', '--', 'rm'],
    ['tox', 'exec', '-e', 'py', '--', 'rm'],
    ['tox', '-e', 'py', 'e', '--', 'rm'],
    ['guix', 'shell', 'coreutils', '--', 'rm'],
    ['mise', 'exec', '--', 'rm'],
    ['mise', 'x', 'node@20', '--', 'rm'],
    ['asdf', 'exec', 'rm'],
    ['asdf', 'env', 'nodejs', 'rm'],
    ['direnv', 'exec', '.', 'rm'],
    ['nix-shell', '--run', 'rm -rf /x'],
    ['nix', 'develop', '-c', 'rm'],
    ['nix', 'shell', 'nixpkgs#hello', '-c', 'rm'],
    ['nix', 'run', 'nixpkgs#hello'],
    ['scl', 'enable', 'devtoolset-9', 'rm -rf /x'],
    ['docker', 'exec', 'app', 'rm', '-rf', '/x'],
    ['docker', 'run', 'alpine', 'rm'],
    ['docker', 'container', 'exec', 'app', 'rm'],
    ['docker', 'compose', 'exec', 'app', 'rm'],
    ['docker', '-H', 'ssh://host', 'exec', 'app', 'rm'],
    ['podman', 'exec', 'app', 'rm'],
    ['docker-compose', 'run', 'app', 'rm'],
    ['kubectl', 'exec', 'pod', '--', 'rm'],
    ['kubectl', '-n', 'prod', 'exec', 'pod', '--', 'rm'],
    ['kubectl', 'run', 'x', '--image=alpine', '--', 'rm'],
    ['kubectl', 'debug', 'pod', '--', 'rm'],
    ['oc', 'rsh', 'pod', 'rm'],
    ['/usr/bin/npm', 'exec', 'rm'],
  ];

  it('makes each run opaque, naming the subcommand, bare, by its path and in a shell payload (regression: decided on the program alone, so a permit for it ran whatever it was told to)', () => {
    for (const argv of runs) {
      const run = canonicalRun({ command: argv });
      assert.equal(run.opaque, true, argv.join(' '));
      assert.equal(decide(argv), 'deny', argv.join(' '));
      assert.equal(decide(['sh', '-c', argv.map((a) => `'${a}'`).join(' ')]), 'deny', `${argv.join(' ')} in a payload`);
    }
    assert.match(canonicalRun({ command: ['bundle', 'exec', 'rm'] }).opaqueReason!, /bundle exec runs another command/);
    assert.match(canonicalRun({ command: ['docker', 'container', 'exec', 'c', 'rm'] }).opaqueReason!, /docker exec runs another command/);
  });

  it('tells how to run a package.json script by pnpm when a first word none of its commands is refused: pnpm run build', () => {
    assert.equal(canonicalRun({ command: ['pnpm', 'build'] }).opaqueReason, 'pnpm build runs the package.json script of that name if there is one, else the command build, which Corral does not read through: name a script with pnpm run build');
    assert.equal(canonicalRun({ command: ['pnpm', 'run', 'build'] }).opaque, false);
    assert.match(canonicalRun({ command: ['pnpm', 'exec', 'rm'] }).opaqueReason!, /^pnpm exec runs another command/);
  });

  it('denies bundle exec rm -rf /x, uv run rm and npx rm under a policy permitting only bundle, uv or npx, and allows bundle install, uv sync and npm ci under it', () => {
    assert.equal(permitting('bundle', ['bundle', 'exec', 'rm', '-rf', '/x']), 'deny');
    assert.equal(permitting('uv', ['uv', 'run', 'rm', '-rf', '/x']), 'deny');
    assert.equal(permitting('npx', ['npx', 'rm', '-rf', '/x']), 'deny');
    assert.equal(permitting('npm', ['npm', 'exec', '--', 'rm', '-rf', '/x']), 'deny');
    assert.equal(permitting('bundle', ['bundle', 'install']), 'allow');
    assert.equal(permitting('uv', ['uv', 'sync']), 'allow');
    assert.equal(permitting('npm', ['npm', 'ci']), 'allow');
    assert.equal(permitting('poetry', ['poetry', 'install']), 'allow');
  });

  it('keeps a run with no command to run as it is: bundle install, uv sync, npm ci, npm install x, poetry install, pnpm install, docker ps, kubectl get pods, cmake -S . -B build', () => {
    for (const argv of [['bundle', 'install'], ['uv', 'sync'], ['uv', 'pip', 'install', 'run'], ['npm', 'ci'], ['npm', 'install', 'x'], ['poetry', 'install'], ['pnpm', 'install'], ['pnpm', 'test'], ['yarn', 'add', 'left-pad'], ['docker', 'ps'], ['docker', 'logs', 'run'], ['kubectl', 'get', 'pods'], ['cmake', '-S', '.', '-B', 'build'], ['conda', 'list'], ['nix', 'build'], ['rustup', 'update'], ['tox', '-e', 'py'], ['pyenv', 'install', '3.12']]) {
      const run = canonicalRun({ command: argv });
      assert.deepEqual([run.opaque, run.commands], [false, [argv]], argv.join(' '));
    }
  });

  it('makes the run opaque wherever the subcommand stands after an option, whose value Corral does not model (uv --directory D run, npm --prefix P exec)', () => {
    const runners: Array<[string, string[]]> = [['bundle', ['exec']], ['uv', ['run']], ['npm', ['exec', 'x']], ['yarn', ['exec', 'dlx']], ['docker', ['exec', 'run', 'create']], ['kubectl', ['exec', 'run', 'debug']], ['cmake', ['env', 'time', 'chdir']], ['nix', ['develop', 'shell', 'run']]];
    const word = fc.stringMatching(/^[A-Za-z0-9=./:_-]{1,12}$/);
    fc.assert(fc.property(fc.constantFrom(...runners), fc.nat(), fc.string({ minLength: 1, maxLength: 10 }), fc.array(word, { maxLength: 4 }), fc.array(word, { maxLength: 3 }), (runner, pick, option, values, rest) => {
      const [program, subcommands] = runner;
      const argv = [program, `-${option}`, ...values, subcommands[pick % subcommands.length]!, 'rm', ...rest];
      assert.equal(canonicalRun({ command: argv }).opaque, true, JSON.stringify(argv));
    }));
  });

  it('runs the command for real where the node has the program: npm exec -c, npx -c, cmake -E env, time and chdir each run touch', () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-subcommand-'));
    try {
      for (const argv of [['npm', 'exec', '-c', 'touch ran'], ['npx', '-c', 'touch ran'], ['cmake', '-E', 'env', 'touch', 'ran'], ['cmake', '-E', 'time', 'touch', 'ran'], ['cmake', '-E', 'chdir', dir, 'touch', 'ran']]) {
        assert.equal(decide(argv), 'deny', argv.join(' '));
        if (!installed(argv[0]!)) continue;
        rmSync(join(dir, 'ran'), { force: true });
        const result = spawnSync(argv[0]!, argv.slice(1), { cwd: dir, timeout: 60_000, stdio: 'ignore' });
        assert.equal(result.status, 0, argv.join(' '));
        assert.equal(existsSync(join(dir, 'ran')), true, `${argv.join(' ')} runs touch`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
