// A run's standard input. The caller's own (stdin 'inherit') is often writable too: a terminal, a
// socket (what Node gives a child for 'pipe'), a file opened read-write. Handed to the sandbox as it
// was, the command wrote through it past the output limit and the audit's output digest (a review
// saw 100 KB reach the user's terminal under maxOutputBytes 100, the run exiting 0). The command now
// reads a pipe the runner feeds (Node's, a socket pair): what it writes to its fd 0 reaches nobody,
// and fills a buffer nobody reads until it blocks, or fails (EPIPE) once the input has ended.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { validatePolicy } from './policy/load.ts';
import { planSandbox, type SandboxPlan } from './policy/plan.ts';
import type { ContainerPolicyInput } from './policy/schema.ts';
import { Runner } from './runner.ts';
import { endsByItself, socketPair, underTerminal } from '../../../scripts/testing/standard-input.ts';

const FIXTURE = new URL('./runner-stdin.fixture.ts', import.meta.url).pathname;
const MiB = 2 ** 20;
// The review's command: 2,000 lines (about 24 KB) written to fd 0, then a line on stdout. Now its
// writes block once the pipe's buffer is full, so the runs that give it an input still open stop it by
// their timeout (what is asserted is where its output went, not how it ended).
const THROUGH_FD0 = ['/bin/sh', '-c', 'for i in $(seq 2000); do echo VIA-FD0 $i >&0; done; echo ok'];
const SHORT = { maxOutputBytes: 100, timeoutMs: 3_000 };
const hasScript = spawnSync('script', ['--version']).status === 0;

function plan(policy: ContainerPolicyInput): SandboxPlan {
  return planSandbox({ policy: validatePolicy(policy), source: 'test', baseDir: '/tmp' });
}

interface FixtureResult {
  exitCode: number | null;
  warm: boolean;
  limitsHit: string[];
  stdoutBytes: number;
  stdoutSha256: string;
  stdoutHead: string;
  stderr: string;
  terminal: { before?: string; after?: string };
  second?: { exitCode: number | null; stdoutHead: string };
}

/** A config file for runner-stdin.fixture.ts, and where it writes its result. */
function fixtureConfig(argv: string[], options: { maxOutputBytes?: number; timeoutMs?: number; warm?: boolean; second?: string[] } = {}): { config: string; result: string } {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'corral-stdin-')));
  const config = join(dir, 'config.json');
  const result = join(dir, 'result.json');
  writeFileSync(config, JSON.stringify({ result, argv, maxOutputBytes: options.maxOutputBytes ?? 100, timeoutMs: options.timeoutMs ?? 60_000, warm: options.warm ?? false, second: options.second }));
  return { config, result };
}

/** Starts the fixture with `stdin` as its descriptor 0. */
function startFixture(stdin: number | Socket, config: string): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [FIXTURE, config], { stdio: [stdin, 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return { child, stderr: () => stderr };
}

function readResult(result: string, stderr: string): FixtureResult {
  assert.ok(existsSync(result), `the fixture wrote no result: ${stderr}`);
  return JSON.parse(readFileSync(result, 'utf8')) as FixtureResult;
}

describe("a run given the caller's standard input ('inherit')", () => {
  describe('when it is a socket the caller may also write (the other end held by whoever started it)', () => {
    it('the command cannot write through it: nothing it writes to fd 0 reaches the other end, no more than maxOutputBytes leaves, and the caller ends with that end still open', async () => {
      const { ours, theirs } = await socketPair();
      let received = '';
      ours.setEncoding('utf8').on('data', (c: string) => (received += c));
      const { config, result } = fixtureConfig(THROUGH_FD0, SHORT);
      const { child, stderr } = startFixture(theirs, config);
      theirs.destroy();
      try {
        await endsByItself(child, 30_000, 'the runner, its input open');
        const r = readResult(result, stderr());
        assert.equal(received.length, 0, `what the command wrote to fd 0 reached the other end: ${received.length} bytes`);
        assert.ok(r.stdoutBytes <= 100, JSON.stringify(r));
      } finally {
        ours.destroy();
      }
    });
  });

  describe('when it is a file opened read-write', () => {
    it('the command cannot write into the file through fd 0', async () => {
      const file = join(realpathSync(mkdtempSync(join(tmpdir(), 'corral-stdin-file-'))), 'input.txt');
      writeFileSync(file, 'the caller input\n');
      const fd = openSync(file, 'r+');
      const { config, result } = fixtureConfig(THROUGH_FD0, SHORT);
      const { child, stderr } = startFixture(fd, config);
      closeSync(fd);
      await endsByItself(child, 30_000, 'the runner');
      const r = readResult(result, stderr());
      assert.equal(readFileSync(file, 'utf8'), 'the caller input\n', 'the command wrote into the file through fd 0');
      assert.ok(r.stdoutBytes <= 100, JSON.stringify(r));
    });
  });

  describe('when it is a terminal (a pseudo-terminal under script(1))', { skip: !hasScript && 'no script(1) here' }, () => {
    it("the command cannot write to the terminal through fd 0, the terminal's settings are as they were, and the caller ends with the terminal still open", async () => {
      const { config, result } = fixtureConfig(THROUGH_FD0, SHORT);
      const { child, screen } = underTerminal(`'${process.execPath}' '${FIXTURE}' '${config}'`);
      try {
        // Nothing typed and no Ctrl-D: the terminal stays open while the runner runs and ends.
        await endsByItself(child, 30_000, 'the runner, its terminal open');
        const r = readResult(result, screen());
        const shown = screen().split('VIA-FD0').length - 1;
        assert.equal(shown, 0, `what the command wrote to fd 0 reached the terminal: ${shown} lines`);
        assert.ok(r.stdoutBytes <= 100, JSON.stringify(r));
        assert.ok(r.terminal.before, 'the fixture read no terminal settings');
        assert.equal(r.terminal.after, r.terminal.before);
      } finally {
        child.kill('SIGKILL');
      }
    });
  });

  describe('input still reaches the command', () => {
    for (const warm of [false, true]) {
      it(`${warm ? 'a warm' : 'a new'} sandbox's cat gives back 1.5 MiB given on a socket, byte for byte, and ends at its end`, async () => {
        const { ours, theirs } = await socketPair();
        const input = Buffer.alloc(1.5 * MiB);
        for (let i = 0; i < input.length; i++) input[i] = 0x61 + (i % 26);
        const { config, result } = fixtureConfig(['/bin/cat'], { maxOutputBytes: 4 * MiB, warm });
        const { child, stderr } = startFixture(theirs, config);
        theirs.destroy();
        ours.end(input);
        await endsByItself(child, 60_000, 'the runner');
        const r = readResult(result, stderr());
        assert.deepEqual([r.exitCode, r.warm, r.stdoutBytes, r.stdoutSha256], [0, warm, input.length, createHash('sha256').update(input).digest('hex')], r.stderr);
      });
    }

    it('goes to one run of two given it at once: the other reads its end at once, and neither is held up (two copies would each get every chunk)', async () => {
      const { ours, theirs } = await socketPair();
      const { config, result } = fixtureConfig(['/bin/cat'], { maxOutputBytes: 4096, second: ['/bin/cat'] });
      const { child, stderr } = startFixture(theirs, config);
      theirs.destroy();
      ours.end('for one run\n');
      await endsByItself(child, 30_000, 'the runner');
      const r = readResult(result, stderr());
      assert.deepEqual([r.exitCode, r.second?.exitCode], [0, 0]);
      assert.deepEqual([r.stdoutHead, r.second?.stdoutHead].sort(), ['', 'for one run\n']);
    });

    it('cat gives back the lines typed at a terminal, and ends at Ctrl-D', { skip: !hasScript && 'no script(1) here' }, async () => {
      const { config, result } = fixtureConfig(['/bin/cat'], { maxOutputBytes: 4096 });
      const { child, screen } = underTerminal(`'${process.execPath}' '${FIXTURE}' '${config}'`);
      child.stdin!.end('typed one\ntyped two\n');
      assert.equal(await endsByItself(child, 30_000, 'the runner'), 0, screen());
      const r = readResult(result, screen());
      assert.equal(r.stdoutHead, 'typed one\ntyped two\n');
      assert.equal(r.terminal.after, r.terminal.before);
    });
  });

  describe('when the caller runs in the background of its terminal (a shell job: corral run … &)', { skip: !hasScript && 'no script(1) here' }, () => {
    it('never reads the terminal, so a line typed meanwhile does not stop it (SIGTTIN): the run ends', async () => {
      const { config, result } = fixtureConfig(['/bin/sh', '-c', 'sleep 1; echo done'], { maxOutputBytes: 4096 });
      const job = join(realpathSync(mkdtempSync(join(tmpdir(), 'corral-stdin-job-'))), 'job.sh');
      // Job control on: the fixture is a background job, in a process group that is not the terminal's foreground.
      writeFileSync(job, `set -m\n'${process.execPath}' '${FIXTURE}' '${config}' &\nwait $!\n`);
      const { child, screen } = underTerminal(`/bin/sh ${job}`);
      // Typed at once, and never ended: a line waits on the terminal from the start of the run to its end.
      child.stdin!.write('typed at the shell\n');
      try {
        await endsByItself(child, 30_000, 'the background runner');
        const r = readResult(result, screen());
        assert.deepEqual([r.exitCode, r.stdoutHead], [0, 'done\n']);
      } finally {
        child.kill('SIGKILL');
      }
    });
  });
});

describe('a run given a stream as its standard input', () => {
  let runner: Runner;
  before(() => {
    runner = new Runner();
  });
  after(async () => {
    await runner.close();
  });

  it('takes from the stream only as fast as the command reads: a command that reads nothing leaves all but a pipe or two of an endless stream unread', async () => {
    let pulled = 0;
    const endless = new Readable({
      read() {
        pulled += 64 * 1024;
        this.push(Buffer.alloc(64 * 1024, 0x78));
      },
    });
    const r = await runner.run(plan({ runtime: ['shell'] }), ['/bin/sleep', '1'], { stdin: endless });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.ok(pulled < MiB, `pulled ${pulled} bytes`);
    endless.destroy();
  });

  it('stops taking from the stream when the run ends, leaving it open and paused for its owner', async () => {
    const input = new PassThrough();
    input.write('one line\n');
    const r = await runner.run(plan({ runtime: ['shell'] }), ['/bin/sh', '-c', 'read line; echo "$line"'], { stdin: input });
    assert.equal(r.stdout, 'one line\n');
    assert.deepEqual([input.destroyed, input.readableEnded, input.isPaused(), input.listenerCount('data')], [false, false, true, 0]);
    input.write('for the next reader\n');
    assert.equal(input.read()?.toString(), 'for the next reader\n');
  });

  it('gives the command the end of a stream that had already ended', async () => {
    const input = new PassThrough();
    input.end();
    input.resume();
    await once(input, 'end');
    const r = await runner.run(plan({ runtime: ['shell'] }), ['/bin/cat'], { stdin: input });
    assert.deepEqual([r.exitCode, r.stdout], [0, '']);
  });
});
