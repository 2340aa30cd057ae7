// Programs that run the command their arguments name are opaque, as nice
// and timeout are: a permit for one of them, or a forbid on the program it
// runs, must not be decided on the wrapper alone. Each is run for real where
// the node has it, to show the command runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { DecisionPoint, loadPolicies } from '@corral/policy';
import { canonicalRun } from './canonical.ts';
import { decideRun } from './decide.ts';
import { runsCode } from '../approvals/runs-code.ts';

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

/**
 * Asserts that `argv` is opaque and denied: as it is (under a policy permitting `permit` alone, when given), by the
 * program's path in /usr/bin (`byPath`), and inside a shell payload, its words written there by `quote` (single-quoted).
 */
function assertDeniedOpaque(argv: string[], options: { permit?: string; byPath?: boolean; quote?: (word: string) => string } = {}): void {
  const judge = (command: string[]) => (options.permit !== undefined ? permitting(options.permit, command) : decide(command));
  assert.equal(canonicalRun({ command: argv }).opaque, true, argv.join(' '));
  assert.equal(judge(argv), 'deny', argv.join(' '));
  if (options.byPath) assert.equal(judge([`/usr/bin/${argv[0]!}`, ...argv.slice(1)]), 'deny', `/usr/bin/${argv.join(' ')}`);
  assert.equal(decide(['sh', '-c', argv.map(options.quote ?? ((a) => `'${a}'`)).join(' ')]), 'deny', `${argv.join(' ')} in a payload`);
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
    for (const argv of runs) assertDeniedOpaque(argv);
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

describe('a package manager that runs a package or command its first word names (npm init PKG, yarn create, bun X)', () => {
  const runs: string[][] = [
    ['npm', 'init', 'vite'],
    ['npm', 'init', '-y', 'vite'],
    ['npm', 'init', '@scope'],
    ['npm', 'create', 'vite@latest', 'app'],
    ['npm', 'innit', 'vite'],
    ['npm', 'ini', 'vite'],
    ['npm', 'cr', 'vite'],
    ['npm', 'creat', 'vite'],
    ['npm', '--prefix', 'p', 'init', 'vite'],
    ['yarn', 'create', 'react-app', 'x'],
    ['yarn', 'node', 'x.js'],
    ['yarn', 'workspaces', 'foreach', 'run', 'rm'],
    ['yarn', 'workspace', 'app', 'rm'],
    ['yarnpkg', 'create', 'x'],
    ['bun', 'rm-rf', '/x'],
    ['bun', 'touch', '/x'],
    ['bun', 'run', 'rm', '-rf', '/x'],
    ['bun', 'run', '--bun', 'rm'],
    ['bun', 'create', 'vite'],
    ['bun', 'c', 'vite'],
    ['bun', '--cwd', 'app', 'touch', 'x'],
  ];

  it('makes each run opaque and denies it, bare, by its path and in a shell payload (regression: decided on npm, yarn or bun alone, so a permit for it ran create-vite, rm or touch)', () => {
    for (const argv of runs) assertDeniedOpaque(argv, { byPath: true });
  });

  it('says what npm init PKG runs, and that npm init -y runs none', () => {
    assert.equal(canonicalRun({ command: ['npm', 'init', 'vite'] }).opaqueReason, "npm init vite fetches and runs an initializer package (create-vite), which Corral does not read through: permit the initializer's own command and run it directly; npm init with options alone (-y) runs none");
    assert.match(canonicalRun({ command: ['npm', 'create', '@scope/app'] }).opaqueReason!, /^npm create @scope\/app fetches and runs an initializer package, which/);
  });

  it('tells how to run a package.json script alone when bun would run a program of that name instead: npm run dev', () => {
    assert.equal(canonicalRun({ command: ['bun', 'run', 'dev'] }).opaqueReason, "bun run dev runs the package.json script of that name if there is one, else the file, a dependency's program or the command dev, which Corral does not read through: name a script with npm run dev");
    assert.match(canonicalRun({ command: ['yarn', 'dlx', 'rm'] }).opaqueReason!, /^yarn dlx runs another command/);
  });

  it('keeps a run that runs no command its arguments name as it is: npm init, npm init -y, yarn, yarn install, yarn run, bun install, bun test, bun x.ts, bun run ./build.ts', () => {
    for (const argv of [['npm', 'init'], ['npm', 'init', '-y'], ['npm', 'create', '--yes'], ['npm', 'run', 'build'], ['npm', 'test'], ['yarn'], ['yarn', 'install'], ['yarn', 'add', 'left-pad'], ['yarn', 'run'], ['yarn', 'why', 'left-pad'], ['yarn', '--version'], ['yarnpkg', 'install'], ['bun', 'install'], ['bun', 'add', 'left-pad'], ['bun', 'test'], ['bun', 'build', './index.ts'], ['bun', 'x.ts'], ['bun', './scripts/build'], ['bun', 'run', './build.ts'], ['bun', 'run'], ['bun', '--version']]) {
      const run = canonicalRun({ command: argv });
      assert.deepEqual([run.opaque, run.commands], [false, [argv]], argv.join(' '));
    }
  });

  it('denies npm init vite, yarn create vite and bun run rm under a policy permitting only npm, yarn or bun, and allows npm init -y, yarn install and bun test under it', () => {
    assert.equal(permitting('npm', ['npm', 'init', 'vite']), 'deny');
    assert.equal(permitting('yarn', ['yarn', 'create', 'vite']), 'deny');
    assert.equal(permitting('bun', ['bun', 'run', 'rm', '-rf', '/x']), 'deny');
    assert.equal(permitting('npm', ['npm', 'init', '-y']), 'allow');
    assert.equal(permitting('yarn', ['yarn', 'install']), 'allow');
    assert.equal(permitting('bun', ['bun', 'test']), 'allow');
  });

  it("decides yarn X and yarn run X on yarn, as npm run X is on npm, and tells an approver they run the project's code: the package.json script of that name, else a program of its dependencies, never one of the PATH", () => {
    for (const argv of [['yarn', 'build'], ['yarn', 'test'], ['yarn', 'run', 'build'], ['yarn', 'tsc', '--noEmit'], ['yarn', '--cwd', 'app', 'lint'], ['yarnpkg', 'build']]) {
      const run = canonicalRun({ command: argv });
      assert.deepEqual([run.opaque, run.commands], [false, [argv]], argv.join(' '));
      assert.match(runsCode(argv)?.reason ?? '', /^yarn(?:pkg)? (?:runs a script|run runs the scripts) of package\.json, else a dependency's program, in its working directory; what it does is what the project holds when it runs: approve it once/, argv.join(' '));
    }
    assert.equal(permitting('yarn', ['yarn', 'build']), 'allow');
    assert.equal(runsCode(['yarn', 'why', 'left-pad']), null, "one of yarn's own commands runs no script");
  });

  it('runs the initializer for real where the node has npm: npm init corral-probe and npm cr corral-probe run create-corral-probe (from the project, offline)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-npm-init-'));
    try {
      const pkg = join(dir, 'node_modules', 'create-corral-probe');
      mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
      mkdirSync(pkg);
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'p', version: '1.0.0', dependencies: { 'create-corral-probe': '1.0.0' } }));
      writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'create-corral-probe', version: '1.0.0', bin: { 'create-corral-probe': 'bin.js' } }));
      writeFileSync(join(pkg, 'bin.js'), "#!/usr/bin/env node\nrequire('node:fs').writeFileSync('ran', '')\n");
      chmodSync(join(pkg, 'bin.js'), 0o755);
      symlinkSync('../create-corral-probe/bin.js', join(dir, 'node_modules', '.bin', 'create-corral-probe'));
      for (const argv of [['npm', 'init', 'corral-probe', '--offline', '--yes'], ['npm', 'cr', 'corral-probe', '--offline', '--yes']]) {
        assert.equal(decide(argv), 'deny', argv.join(' '));
        if (!installed('npm')) continue;
        rmSync(join(dir, 'ran'), { force: true });
        const result = spawnSync(argv[0]!, argv.slice(1), { cwd: dir, timeout: 60_000, stdio: 'ignore' });
        assert.equal(result.status, 0, argv.join(' '));
        assert.equal(existsSync(join(dir, 'ran')), true, `${argv.join(' ')} runs create-corral-probe`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('makes npm init PKG opaque however npm spells init, by any start of the name npm reads as init or create (as npm itself resolves it where the node has npm)', () => {
    const spellings = ['init', 'ini', 'innit', 'inni', 'inn', 'create', 'creat', 'crea', 'cre', 'cr'];
    for (const word of spellings) assert.equal(canonicalRun({ command: ['npm', word, 'vite'] }).opaque, true, word);
    // npm's own table of commands: every spelling it reads as init is among them, and none other.
    const found = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' });
    if (found.status !== 0) return;
    // npm's bin/npm-cli.js, through its link; its table is lib/utils/cmd-list.js beside bin.
    const cmdList = join(realpathSync(found.stdout.trim()), '..', '..', 'lib', 'utils', 'cmd-list.js');
    if (!existsSync(cmdList)) return;
    const script = `const { commands, aliases, deref } = require(${JSON.stringify(cmdList)}); const out = new Set(); for (const w of [...commands, ...Object.keys(aliases)]) for (let i = 1; i <= w.length; i++) if (deref(w.slice(0, i)) === 'init') out.add(w.slice(0, i)); console.log(JSON.stringify([...out].sort()))`;
    const read = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(read.stdout) as string[], [...spellings].sort(), read.stderr);
  });
});

describe('a build tool or task runner told on its command line to run a command (make --eval, make SHELL=, just --command, cargo --config, go -toolexec)', () => {
  const runs: string[][] = [
    ['make', '--eval=$(shell touch x)'],
    ['make', '--ev', '$(shell touch x)'],
    ['make', '-E', '$(shell touch x)'],
    ['make', '-kE', '$(shell touch x)'],
    ['make', 'SHELL=/tmp/x/sh', 'all'],
    ['gmake', '.SHELLFLAGS=-c touch x;', 'all'],
    ['just', '--command', 'touch', 'x'],
    ['just', '-c', 'touch', 'x'],
    ['just', '--shell', '/tmp/x/sh', 'build'],
    ['just', '--choose', '--chooser', 'touch x'],
    ['cargo', '--config', 'build.rustc-wrapper="/tmp/x/w"', 'build'],
    ['cargo', 'run', '--config=target.x86_64-unknown-linux-gnu.runner="touch"'],
    ['go', 'run', '-exec', 'touch', '.'],
    ['go', 'build', '-toolexec=touch', './...'],
    ['go', 'vet', '--vettool=/tmp/x/v', './...'],
    ['deno', 'task', '--eval', 'touch x'],
    ['deno', 'x', 'cowsay'],
  ];

  it('makes each run opaque and denies it, bare and in a shell payload (regression: decided on the build tool alone, so a permit for make or cargo ran the command named)', () => {
    for (const argv of runs) assertDeniedOpaque(argv, { quote: (a) => `'${a.replaceAll('$', '')}'` });
    assert.equal(canonicalRun({ command: ['make', 'SHELL=/tmp/x/sh'] }).opaqueReason, 'make SHELL=/tmp/x/sh runs a command named on its command line, which Corral does not read through: permit that command and run it directly');
  });

  it('keeps a run of recipes, tasks or a build as it is: make, make -C dir all, make CFLAGS=-O2, just build, cargo build --release, go build ./..., go test -run X, deno task build', () => {
    for (const argv of [['make'], ['make', '-C', 'dir', 'all'], ['make', '-j8', 'CFLAGS=-O2'], ['make', '-e', 'install'], ['just', 'build'], ['just', '--list'], ['cargo', 'build', '--release'], ['cargo', 'run', '--', '--help'], ['go', 'build', './...'], ['go', 'test', '-run', 'X', './...'], ['deno', 'task', 'build'], ['deno', 'run', 'main.ts']]) {
      const run = canonicalRun({ command: argv });
      assert.deepEqual([run.opaque, run.commands], [false, [argv]], argv.join(' '));
    }
  });

  it('runs the command for real where the node has the program: make --eval, make -E, make SHELL= and cargo --config build.rustc-wrapper each run it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-build-runs-'));
    try {
      const touch = join(dir, 'touch-ran');
      writeFileSync(touch, `#!/bin/sh\n: > '${join(dir, 'ran')}'\n`);
      chmodSync(touch, 0o755);
      writeFileSync(join(dir, 'Makefile'), 'all:\n\t@echo hi\n');
      mkdirSync(join(dir, 'src'));
      writeFileSync(join(dir, 'Cargo.toml'), '[package]\nname = "probe"\nversion = "0.1.0"\nedition = "2021"\n');
      writeFileSync(join(dir, 'src', 'main.rs'), 'fn main() {}\n');
      for (const argv of [['make', `--eval=$(shell ${touch})`], ['make', '-E', `$(shell ${touch})`], ['make', `SHELL=${touch}`], ['cargo', '--config', `build.rustc-wrapper="${touch}"`, 'build', '--offline']]) {
        assert.equal(decide(argv), 'deny', argv.join(' '));
        if (!installed(argv[0]!)) continue;
        rmSync(join(dir, 'ran'), { force: true });
        spawnSync(argv[0]!, argv.slice(1), { cwd: dir, timeout: 120_000, stdio: 'ignore', env: { ...process.env, CARGO_TARGET_DIR: join(dir, 'target') } });
        assert.equal(existsSync(join(dir, 'ran')), true, `${argv.join(' ')} runs the command`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('npm told on its command line which program to start (--editor, --browser, --script-shell, any start of their names)', () => {
  const runs: string[][] = [
    ['npm', 'config', 'edit', '--editor=touch x'],
    ['npm', 'config', 'edit', '--editor', 'touch x'],
    ['npm', 'config', 'edit', '--edit=touch x'],
    ['npm', 'help', 'install', '--viewer=browser', '--browser=touch x'],
    ['npm', 'docs', 'left-pad', '--br=touch x'],
    ['npm', 'test', '--script-shell=/tmp/x/sh'],
    ['npm', 'test', '--script-shell=/tmp/x/sh', '--', 'arg'],
    ['npm', 'install', '--node-options=--require=/tmp/x.js'],
    ['npm', 'ci', '--userconfig=/tmp/x/npmrc'],
    ['npm', 'init', '-y', '--init-module=/tmp/x.js'],
    ['npm', 'install', '--git=/tmp/x/git'],
  ];

  it('makes each run opaque and denies it under a permit for npm, bare and in a shell payload (regression: decided on npm alone, so a permit for npm ran the program named)', () => {
    for (const argv of runs) assertDeniedOpaque(argv, { permit: 'npm' });
  });

  it('keeps npm as it is with options that name no program, and with words after -- that npm hands to its script: npm install --global x, npm ci --ignore-scripts, npm version --no-git-tag-version, npm test --silent, npm test -- --browser=firefox (regression: refused as npm starting a browser)', () => {
    for (const argv of [['npm', 'install', '--global', 'x'], ['npm', 'ci', '--ignore-scripts'], ['npm', 'version', 'patch', '--no-git-tag-version'], ['npm', 'test', '--silent'], ['npm', 'publish', '--registry=https://r.example'], ['npm', 'test', '--', '--browser=firefox'], ['npm', 'run', 'e2e', '--', '--shell', 'zsh'], ['pnpm', 'test', '--', '--config.script-shell=x']]) {
      const run = canonicalRun({ command: argv });
      assert.deepEqual([run.opaque, run.commands], [false, [argv]], argv.join(' '));
    }
  });

  it('runs the program for real where the node has npm: npm config edit --editor=CMD and --edit=CMD each run it', () => {
    if (!installed('npm')) return;
    const dir = mkdtempSync(join(tmpdir(), 'corral-npm-runs-'));
    try {
      for (const option of ['--editor', '--edit']) {
        rmSync(join(dir, 'ran'), { force: true });
        spawnSync('npm', ['config', 'edit', `${option}=touch ${join(dir, 'ran')}`], { cwd: dir, timeout: 60_000, stdio: 'ignore', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir } });
        assert.equal(existsSync(join(dir, 'ran')), true, `npm config edit ${option}=CMD runs CMD`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('npm config edit and npm edit, which only start the editor npm\'s settings name, any program a project\'s .npmrc sets', () => {
  const runs: string[][] = [
    ['npm', 'config', 'edit'],
    ['npm', 'c', 'edit'],
    ['npm', 'conf', 'edit', '--global'],
    ['npm', 'config', '--location', 'user', 'edit'],
    ['npm', '--prefix', 'app', 'config', 'edit'],
    ['npm', 'edit', 'left-pad'],
    ['npm', 'ed', 'left-pad'],
  ];

  it('makes each run opaque and denies it under a permit for npm, bare and in a shell payload, saying what to do instead (regression: decided on npm alone, so a permit for npm ran the editor a project\'s .npmrc named)', () => {
    for (const argv of runs) assertDeniedOpaque(argv, { permit: 'npm', quote: (a) => a });
    assert.equal(canonicalRun({ command: ['npm', 'config', 'edit'] }).opaqueReason, "npm config edit only starts the editor npm's settings name, any program a project's .npmrc sets, which Corral does not read through: edit the file, or use npm config set");
    assert.match(canonicalRun({ command: ['npm', 'ed', 'x'] }).opaqueReason!, /^npm ed only starts the editor .*: edit the package's files and run npm rebuild$/);
  });

  it('keeps npm config set, get and list, and a package named edit, as they are', () => {
    for (const argv of [['npm', 'config', 'set', 'save-exact', 'true'], ['npm', 'config', 'get', 'registry'], ['npm', 'c', 'list'], ['npm', 'install', 'edit'], ['npm', 'config']]) {
      const run = canonicalRun({ command: argv });
      assert.deepEqual([run.opaque, run.commands], [false, [argv]], argv.join(' '));
    }
  });

  it("runs the project's editor for real where the node has npm: npm config edit with editor= in the project's .npmrc runs it", () => {
    if (!installed('npm')) return;
    const dir = mkdtempSync(join(tmpdir(), 'corral-npm-editor-'));
    try {
      writeFileSync(join(dir, '.npmrc'), `editor=touch ${join(dir, 'ran')}\n`);
      writeFileSync(join(dir, 'package.json'), '{"name":"p","version":"1.0.0"}\n');
      spawnSync('npm', ['config', 'edit'], { cwd: dir, timeout: 60_000, stdio: 'ignore', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir } });
      assert.equal(existsSync(join(dir, 'ran')), true, "npm config edit runs the .npmrc's editor");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pnpm told on its command line which program to start (--script-shell, --node-options, --npm-path, --config.NAME=), as npm is', () => {
  const runs: string[][] = [
    ['pnpm', 'test', '--script-shell=/tmp/x/sh'],
    ['pnpm', 'install', '--script-shell', '/tmp/x/sh'],
    ['pnpm', 'test', '--config.script-shell=/tmp/x/sh'],
    ['pnpm', 'run', 'build', '--config.node-options=--require=/tmp/x.js'],
    ['pnpm', 'install', '--node-options=--require=/tmp/x.js'],
    ['pnpm', 'publish', '--npm-path=/tmp/x/npm'],
    ['pnpm', 'test', '--use-node-version=22.0.0'],
    ['pnpm', 'install', '--config.userconfig=/tmp/x/npmrc'],
  ];

  it('makes each run opaque and denies it under a permit for pnpm, bare and in a shell payload (regression: decided on pnpm alone, so a permit for pnpm ran the shell named)', () => {
    for (const argv of runs) assertDeniedOpaque(argv, { permit: 'pnpm', quote: (a) => a });
  });

  it('keeps pnpm as it is with settings that name no program: --frozen-lockfile, --config.node-linker=hoisted, --shell-emulator', () => {
    for (const argv of [['pnpm', 'install', '--frozen-lockfile'], ['pnpm', 'install', '--config.node-linker=hoisted'], ['pnpm', 'test', '--shell-emulator'], ['pnpm', 'add', 'x', '--ignore-scripts']]) {
      const run = canonicalRun({ command: argv });
      assert.deepEqual([run.opaque, run.commands], [false, [argv]], argv.join(' '));
    }
  });
});
