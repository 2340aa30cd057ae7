// The project's test command: type check (the Node packages, then the
// console's browser code with its own DOM/JSX settings), build the console,
// then every *.test.ts under packages/ with Node's own runner. `--typecheck-only` stops after the type check; any
// other arguments are test file paths or globs that replace the default set.
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const typecheckOnly = args.includes('--typecheck-only');
const files = args.filter((a) => !a.startsWith('--'));

function step(title: string, cmd: string, argv: string[], timeoutMs?: number): void {
  process.stderr.write(`\n== ${title}\n`);
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, ...(timeoutMs ? { timeout: timeoutMs, killSignal: 'SIGKILL' as const } : {}) });
  if (r.status !== 0) {
    const why = r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? `no result after ${(timeoutMs ?? 0) / 60_000} minutes: a test file did not end (a failed test may have left a server or a sandbox open)` : `exit ${r.status ?? r.signal}`;
    process.stderr.write(`\n== ${title} failed (${why})\n`);
    process.exit(r.status || 1);
  }
}

step('type check (tsc --noEmit)', process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', root]);
step('type check the console (tsc --noEmit -p packages/console)', process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', join(root, 'packages/console')]);
if (typecheckOnly) process.exit(0);

// Built once here so that parallel test files find it ready (buildConsole() skips a fresh build).
step('build the console (vite)', process.execPath, ['--input-type=module', '-e', "await (await import('@corral/console')).buildConsole()"]);

const concurrency = String(Math.max(2, availableParallelism()));
step('tests (node --test)', process.execPath, [
  '--test',
  `--test-concurrency=${concurrency}`,
  // A test waiting for something that never comes fails after 10 minutes instead of holding CI until its own limit.
  '--test-timeout=600000',
  '--test-reporter=spec',
  ...(files.length > 0 ? files : ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts']),
  // Not --test-force-exit, which ends a file early and silently drops the tests it had not reached
  // (seen here: half of a file's describes missing, nothing failed). A file a failed test kept open is
  // stopped by this limit instead (the whole run takes about 8 minutes here).
], 45 * 60_000);
