// A Runner in a process of its own whose standard input is what the test gave it (a socket, a file
// opened read-write, a terminal), for tests of runs given the caller's standard input ('inherit').
// Argument: a JSON file { result, argv, maxOutputBytes, timeoutMs, warm, second }. It runs argv once
// with stdin 'inherit' (in a warm sandbox when `warm`; with `second`, that command too, at the same time), writes to `result` what the run reported and what its
// output was (its SHA-256, its first bytes), with the terminal's settings (stty -g) before and
// after the run when its input is one, closes the runner and ends by itself: it never calls
// process.exit, so a copy of its input still under way after the run would keep it alive.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { isatty } from 'node:tty';
import { validatePolicy } from './policy/load.ts';
import { planSandbox } from './policy/plan.ts';
import { Runner } from './runner.ts';

interface Config {
  result: string;
  argv: string[];
  maxOutputBytes: number;
  timeoutMs: number;
  warm: boolean;
  second?: string[];
}

const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Config;
const terminal = () => (isatty(0) ? spawnSync('stty', ['-g'], { stdio: [0, 'pipe', 'ignore'], encoding: 'utf8' }).stdout.trim() : undefined);
const before = terminal();
const runner = new Runner();
try {
  const plan = planSandbox({ policy: validatePolicy({ runtime: ['shell'], process: { maxOutputBytes: config.maxOutputBytes, timeoutMs: config.timeoutMs } }), source: 'test', baseDir: '/tmp' });
  if (config.warm) await runner.keepWarm(plan, 1);
  const [r, second] = await Promise.all([runner.run(plan, config.argv, { stdin: 'inherit' }), config.second && runner.run(plan, config.second, { stdin: 'inherit' })]);
  if (config.warm) await runner.keepWarm(plan, 0);
  writeFileSync(
    config.result,
    JSON.stringify({
      exitCode: r.exitCode,
      warm: r.warm,
      limitsHit: r.limitsHit,
      stdoutBytes: r.stdoutBytes,
      stdoutSha256: createHash('sha256').update(r.stdout).digest('hex'),
      stdoutHead: r.stdout.slice(0, 200),
      stderr: r.stderr.slice(0, 500),
      terminal: { before, after: terminal() },
      second: second && { exitCode: second.exitCode, stdoutHead: second.stdout.slice(0, 200) },
    }),
  );
} finally {
  await runner.close();
}
