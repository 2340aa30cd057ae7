import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { openAuditReader, readRecord } from '@corral/audit';
import { CORRAL_BIN, corral, tempStateDir } from '../../test/corral.ts';
import { installExampleFiles, workspaceDir } from '../up/example.ts';

function policyFile(text: string, name = 'policy.yaml'): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'corral-cli-run-')));
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

const NO_STACK = /^\s+at .+:\d+:\d+\)?$/m;

/** What a --json summary says of how the run ended. */
function pick(summary: { exit?: unknown; exitCode?: unknown; exitReason?: unknown }) {
  return { exit: summary.exit, exitCode: summary.exitCode, exitReason: summary.exitReason };
}

describe('corral run', () => {
  describe('when the policy is invalid', () => {
    it('exits 2 naming file, line and field, without a stack trace, and runs nothing', async () => {
      const file = policyFile('runtime: [shell]\nfilesystem:\n  readonyl: [./x]\n');
      const r = await corral(['run', '--policy', file, '--', '/bin/sh', '-c', 'echo ran']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, new RegExp(`${file}:3:3: filesystem\\.readonyl: unknown field`));
      assert.doesNotMatch(r.stderr, NO_STACK);
      assert.equal(r.stdout, '');
    });

    it('exits 2 when the policy file does not exist', async () => {
      const r = await corral(['run', '--policy', '/nonexistent/p.yaml', '--', '/bin/true']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /cannot read policy \/nonexistent\/p\.yaml: no such file/);
    });

    it('exits 2 when a granted path is missing, naming the field', async () => {
      const file = policyFile('filesystem: { readonly: [./missing] }\n');
      const r = await corral(['run', '--policy', file, '--', '/bin/true']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /filesystem\.readonly\[0\]: .*missing does not exist/);
    });
  });

  describe('when the policy grants a folder that holds the state directory', () => {
    it('the command finds it empty and can neither read nor write it', async () => {
      const file = policyFile('runtime: [shell]\nfilesystem: { readwrite: [./project] }\n');
      const state = join(file, '../project/state');
      const r = await corral(['--state-dir', state, 'run', '--policy', file, '--', '/bin/sh', '-c', 'ls -A state && echo LISTED; echo planted > state/planted && echo WROTE']);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /Permission denied/);
      assert.ok(existsSync(join(state, 'audit.db')), 'the run was still recorded');
      assert.ok(!existsSync(join(state, 'planted')));
    });

    it('exits 2 naming the field that grants a path inside it', async () => {
      const file = policyFile('runtime: [shell]\nfilesystem: { readonly: [./state/policy-cache] }\n');
      const r = await corral(['--state-dir', join(file, '../state'), 'run', '--policy', file, '--', '/bin/true']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /filesystem\.readonly\[0\]: .*state directory/);
      assert.doesNotMatch(r.stderr, NO_STACK);
    });
  });

  describe("when the run keeps a state directory of its own and the policy grants the home that holds the default one (~/.corral)", () => {
    it("the command finds the default one, and the one CORRAL_STATE_DIR names, masked: their keys and tokens stay out of reach", async () => {
      const home = realpathSync(mkdtempSync(join(tmpdir(), 'corral-cli-home-')));
      mkdirSync(join(home, '.corral'));
      writeFileSync(join(home, '.corral', 'audit-signing-key.pem'), 'default key\n');
      const named = join(home, 'gateway-state');
      mkdirSync(named);
      writeFileSync(join(named, 'gateway-token'), 'named token\n');
      writeFileSync(join(home, 'notes.txt'), 'visible\n');
      const own = realpathSync(tempStateDir());
      const script = `cat ${home}/notes.txt; cat ${home}/.corral/audit-signing-key.pem || echo default-hidden; cat ${named}/gateway-token || echo named-hidden`;
      const r = await corral(['--state-dir', own, 'run', '--policy', policyFile(`runtime: [shell]\nfilesystem: { readonly: ["${home}"] }\n`), '--', '/bin/sh', '-c', script], { env: { HOME: home, CORRAL_STATE_DIR: named } });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'visible\ndefault-hidden\nnamed-hidden\n');
    });
  });

  describe("when the policy lives in a process workspace of the state directory (STATE/processes, where corral up installs the example)", () => {
    it('runs the example job there, writing its outbox, while the rest of the state directory stays hidden (regression: refused as inside the state directory, so the README\'s example could not run)', async () => {
      const state = realpathSync(tempStateDir());
      installExampleFiles(state);
      writeFileSync(join(state, 'audit.key'), 'secret\n');
      const workspace = workspaceDir(state);
      const r = await corral(['--state-dir', state, 'run', '--policy', join(workspace, 'policy.yaml'), '--', '/bin/sh', '-c', `sh summarise.sh >/dev/null 2>&1; cat ${join(state, 'audit.key')} || echo key-hidden`]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'key-hidden\n');
      assert.match(readFileSync(join(workspace, 'outbox', 'summary.txt'), 'utf8'), /^total: 1540 EUR$/m);
    });
  });

  describe('when the command runs', () => {
    it("streams its output and exits with its exit code", async () => {
      const r = await corral(['run', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/sh', '-c', 'echo out; echo err >&2; exit 3']);
      assert.equal(r.code, 3);
      assert.equal(r.stdout, 'out\n');
      assert.equal(r.stderr, 'err\n');
    });

    it('passes its own options through untouched', async () => {
      const r = await corral(['run', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/echo', '--json', '-p']);
      assert.equal(r.stdout, '--json -p\n');
    });

    it('feeds it standard input', async () => {
      const r = await corral(['run', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/cat'], { input: 'piped in\n' });
      assert.equal(r.stdout, 'piped in\n');
    });
  });

  describe('with --json', () => {
    it("prints one summary object on stdout and the command's output on stderr", async () => {
      const r = await corral(['run', '--json', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/sh', '-c', 'echo hello; exit 4']);
      assert.equal(r.code, 4);
      assert.equal(r.stderr, 'hello\n');
      const summary = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.equal(summary.exit, 4);
      assert.deepEqual(summary.command, ['/bin/sh', '-c', 'echo hello; exit 4']);
      assert.match((summary.policy as { digest: string }).digest, /^[0-9a-f]{64}$/);
      for (const key of ['signal', 'durationMs', 'peakMemoryBytes', 'limitsHit', 'refused', 'connections']) assert.ok(key in summary, key);
    });
  });

  describe('documented exit codes', () => {
    it('124 when the timeout killed it', async () => {
      const r = await corral(['run', '--json', '--policy', policyFile('runtime: [shell]\nprocess: { timeoutMs: 200 }\n'), '--', '/bin/sleep', '10']);
      assert.equal(r.code, 124);
      assert.deepEqual(JSON.parse(r.stdout).limitsHit, ['timeout']);
    });

    it('125 when a limit stopped it', async () => {
      const r = await corral(['run', '--policy', policyFile('runtime: [shell]\nprocess: { maxOutputBytes: 1000 }\n'), '--', '/usr/bin/yes']);
      assert.equal(r.code, 125);
      assert.equal(r.stdout.length, 1000);
      assert.match(r.stderr, /maxOutputBytes 1000/);
    });

    it('126 when the host cannot enforce what the policy asks', async () => {
      mkdirSync('/tmp/.X11-unix', { recursive: true });
      writeFileSync('/tmp/.X11-unix/X95', '');
      const r = await corral(['run', '--policy', policyFile('runtime: [shell]\nui: { display: true }\n'), '--', '/bin/true'], { env: { DISPLAY: ':95' } });
      assert.equal(r.code, 126);
      assert.match(r.stderr, /ui\.clipboard/);
    });

    it('127 when the command does not exist inside the sandbox', async () => {
      const r = await corral(['run', '--policy', policyFile('{}\n', 'empty.json'), '--', '/bin/sh']);
      assert.equal(r.code, 127);
    });

    describe("when the command's own exit status is one Corral also uses", () => {
      for (const [status, ours, policy, argv] of [
        [124, 'timeout', 'runtime: [shell]\nprocess: { timeoutMs: 200 }\n', ['/bin/sleep', '10']],
        [125, 'limit', 'runtime: [shell]\nprocess: { maxOutputBytes: 10 }\n', ['/bin/echo', 'more than ten bytes']],
        [127, 'not-found', 'runtime: [shell]\n', ['/no/such/tool']],
      ] as const) {
        it(`--json tells the command's own ${status} (exitReason "command") from Corral's ${status} (exitReason "${ours}")`, async () => {
          const own = await corral(['run', '--json', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/sh', '-c', `exit ${status}`]);
          assert.equal(own.code, status);
          assert.deepEqual(pick(JSON.parse(own.stdout)), { exit: status, exitCode: status, exitReason: 'command' });
          const corrals = await corral(['run', '--json', '--policy', policyFile(policy), '--', ...argv]);
          assert.equal(corrals.code, status);
          assert.deepEqual(pick(JSON.parse(corrals.stdout)), { exit: status === 127 ? 127 : null, exitCode: status, exitReason: ours });
        });
      }

      it('--json tells the command\'s own 126 (a summary, exitReason "command") from a refusal (an error document with its code)', async () => {
        const own = await corral(['run', '--json', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/sh', '-c', 'exit 126']);
        assert.deepEqual([own.code, pick(JSON.parse(own.stdout))], [126, { exit: 126, exitCode: 126, exitReason: 'command' }]);
        mkdirSync('/tmp/.X11-unix', { recursive: true });
        writeFileSync('/tmp/.X11-unix/X97', '');
        const refused = await corral(['run', '--json', '--policy', policyFile('runtime: [shell]\nui: { display: true }\n'), '--', '/bin/true'], { env: { DISPLAY: ':97' } });
        assert.equal(refused.code, 126);
        assert.equal(JSON.parse(refused.stdout).error.code, 'CONTAIN_UNENFORCEABLE');
      });

      it('--json tells a command killed by a signal of its own (exitReason "command") from one Corral stopped', async () => {
        const own = await corral(['run', '--json', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/sh', '-c', 'kill -TERM $$; sleep 1']);
        assert.equal(own.code, 143);
        const { exitCode, exitReason } = pick(JSON.parse(own.stdout));
        assert.deepEqual({ exitCode, exitReason }, { exitCode: 143, exitReason: 'command' });
      });

      it('--json says "interrupted" when Corral stopped the command at Ctrl-C (130), and "command" when the command exits 130 itself', async () => {
        const child = spawn(CORRAL_BIN, ['run', '--json', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/sh', '-c', 'echo started; exec sleep 30'], {
          env: { ...process.env, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: tempStateDir() },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
        await once(createInterface({ input: child.stderr! }), 'line');
        child.kill('SIGINT');
        const [code] = (await once(child, 'close')) as [number | null];
        assert.equal(code, 130);
        assert.deepEqual(pick(JSON.parse(stdout)), { exit: null, exitCode: 130, exitReason: 'interrupted' });
        const own = await corral(['run', '--json', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/sh', '-c', 'exit 130']);
        assert.deepEqual([own.code, pick(JSON.parse(own.stdout))], [130, { exit: 130, exitCode: 130, exitReason: 'command' }]);
      });

      it('says on stderr that Corral did not find the command, and nothing of its own when the command exits 127 itself (regression: only the launcher\'s execvp message)', async () => {
        const missing = await corral(['run', '--policy', policyFile('runtime: [shell]\n'), '--', '/no/such/tool']);
        assert.equal(missing.code, 127);
        assert.match(missing.stderr, /^corral: \/no\/such\/tool was not found inside the sandbox/m);
        const own = await corral(['run', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/sh', '-c', 'exit 127']);
        assert.deepEqual([own.code, own.stderr], [127, '']);
      });
    });

    it('2 for bad usage', async () => {
      const r = await corral(['run', '--', '/bin/true']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--policy/);
    });

    it('2 for a policy that is not one, with its code in the --json error document', async () => {
      const r = await corral(['run', '--json', '--policy', policyFile('filesystem: { readwrite: 42 }\n'), '--', '/bin/true']);
      assert.equal(r.code, 2);
      const { error } = JSON.parse(r.stdout) as { error: { code?: string; message: string } };
      assert.equal(error.code, 'CONTAIN_POLICY_INVALID');
      assert.match(error.message, /readwrite/);
      assert.match(r.stderr, /\[CONTAIN_POLICY_INVALID\]/);
    });

    it("2 for a policy that is not one, with nothing on stdout when --json is only among the command's own arguments (regression: the error document went to stdout)", async () => {
      const r = await corral(['run', '--policy', policyFile('filesystem: { readwrite: 42 }\n'), '--', '/bin/echo', '--json']);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /\[CONTAIN_POLICY_INVALID\]/);
    });

    it('2 for bad usage under --json, as an error document on stdout with a code', async () => {
      const r = await corral(['run', '--json', '--policy', policyFile('runtime: [shell]\n'), '--bogus', '--', '/bin/true']);
      assert.equal(r.code, 2);
      assert.deepEqual(JSON.parse(r.stdout), { error: { code: 'CLI_BAD_ARGUMENT', message: "unknown option '--bogus'" } });
      assert.match(r.stderr, /unknown option '--bogus'/);
    });

    it('3 when the audit log cannot be opened, under --json with a code', async () => {
      const r = await corral(['--state-dir', policyFile('x'), 'run', '--json', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/true']);
      assert.equal(r.code, 3);
      assert.equal(JSON.parse(r.stdout).error.code, 'CLI_UNAVAILABLE');
    });
  });
});

describe('the audit record of corral run', () => {
  async function records(stateDir: string) {
    const reader = await openAuditReader({ stateDir });
    try {
      const head = await reader.store.head();
      const out = [];
      for (let seq = 0; seq < head.size; seq++) out.push(await readRecord(reader.store, seq));
      return out;
    } finally {
      await reader.close();
    }
  }

  it('records the policy digest, the command, the exit, the limits hit and the output digests', async () => {
    const stateDir = tempStateDir();
    const policy = policyFile('runtime: [shell]\nprocess: { timeoutMs: 300 }\n');
    const ok = await corral(['--state-dir', stateDir, 'run', '--json', '--policy', policy, '--', '/bin/sh', '-c', 'echo hello']);
    await corral(['--state-dir', stateDir, 'run', '--policy', policy, '--', '/bin/sleep', '5']);
    const [first, second] = await records(stateDir);
    assert.equal(first?.event.action, 'run.exec');
    assert.equal(first?.event.decision?.effect, 'allow');
    assert.deepEqual(first?.event.details?.argv, ['/bin/sh', '-c', 'echo hello']);
    assert.equal(first?.event.context?.inputs?.policy, `sha256:${JSON.parse(ok.stdout).policy.digest}`);
    assert.equal(first?.event.context?.outputs?.stdout, `sha256:${createHash('sha256').update('hello\n').digest('hex')}`);
    assert.deepEqual(first?.event.outcome, { status: 'success', exitCode: 0 });
    assert.deepEqual(second?.event.details?.limitsHit, ['timeout']);
    assert.equal(second?.event.outcome?.status, 'failure');
  });

  it('stops the command at Ctrl-C and still records the run, however often it is pressed, exiting 130 (regression: a second Ctrl-C ended corral with the run unrecorded; exit 137)', async () => {
    const stateDir = tempStateDir();
    const child = spawn(CORRAL_BIN, ['--state-dir', stateDir, 'run', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/sh', '-c', 'echo started; exec sleep 30'], {
      env: { ...process.env, CORRAL_NODE: process.execPath },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await once(createInterface({ input: child.stdout! }), 'line');
    for (let i = 0; i < 5; i++) child.kill('SIGINT');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 130);
    const [run] = await records(stateDir);
    assert.deepEqual([run?.event.action, run?.event.details?.argv], ['run.exec', ['/bin/sh', '-c', 'echo started; exec sleep 30']]);
  });

  describe('when Ctrl-C comes after the policy is decided and before the command starts', () => {
    // strace delivers SIGINT to corral exactly as it opens one file: a granted path, which only the sandbox's start
    // opens (as it binds it), or the audit log's signing key, which only opening the log reads. No timing is assumed.
    const windows = [
      ['as the sandbox is set up (a granted path is bound)', (policy: string) => join(policy, '../project'), '(regression: corral died at once, the attempt unrecorded)'],
      ['as the audit log opens (its signing key is read)', (_policy: string, stateDir: string) => join(stateDir, 'audit-signing-key.pem'), '(regression: exit 130 and no record)'],
    ] as const;
    for (const [when, path, regression] of windows) {
      it(`records the run as stopped before it started, naming SIGINT, runs nothing and exits 130, ${when} ${regression}`, async () => {
        const stateDir = tempStateDir();
        const policy = policyFile('runtime: [shell]\nfilesystem: { readonly: [./project] }\n');
        mkdirSync(join(policy, '../project'));
        // A first run creates the log and its key.
        assert.equal((await corral(['--state-dir', stateDir, 'run', '--policy', policy, '--', '/bin/true'])).code, 0);
        const r = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-P', path(policy, stateDir), '-e', 'trace=openat', '-e', 'inject=openat:signal=SIGINT:when=1', CORRAL_BIN, '--state-dir', stateDir, 'run', '--policy', policy, '--', '/bin/sh', '-c', 'echo ran'], {
          encoding: 'utf8',
          env: { ...process.env, CORRAL_NODE: process.execPath },
          timeout: 60_000,
        });
        assert.equal(r.status, 130, `${r.signal ?? ''} ${r.stderr}`);
        assert.equal(r.stdout, '');
        assert.doesNotMatch(r.stderr, NO_STACK);
        const [, attempt, ...more] = await records(stateDir);
        assert.equal(more.length, 0);
        assert.deepEqual(attempt?.event.details?.argv, ['/bin/sh', '-c', 'echo ran']);
        assert.equal(attempt?.event.decision?.effect, 'allow');
        assert.deepEqual(attempt?.event.outcome, { status: 'failure', detail: 'not started: interrupted (SIGINT)' });
        assert.equal(attempt?.event.details?.signal, 'SIGINT');
      });
    }
  });

  describe('when the reader of its output goes away (corral run … | head)', () => {
    for (const json of [false, true]) {
      it(`stops the command, records the run and exits 141 like a pipeline's writer, without a stack trace${json ? ' (--json)' : ''} (regression: EPIPE crashed corral with the run unrecorded)`, async () => {
        const stateDir = tempStateDir();
        const child = spawn(CORRAL_BIN, ['--state-dir', stateDir, 'run', ...(json ? ['--json'] : []), '--policy', policyFile('runtime: [shell]\n'), '--', '/usr/bin/yes'], {
          env: { ...process.env, CORRAL_NODE: process.execPath },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stderr = '';
        child.stderr!.setEncoding('latin1').on('data', (c: string) => (stderr += c.slice(0, 10_000)));
        // The reader takes one chunk and leaves: with --json the command's output is on stderr.
        const reader = json ? child.stderr! : child.stdout!;
        await once(reader, 'data');
        reader.destroy();
        const [code] = (await once(child, 'close')) as [number | null];
        assert.equal(code, 141, stderr.slice(0, 2000));
        if (!json) assert.doesNotMatch(stderr, NO_STACK);
        const [run] = await records(stateDir);
        assert.deepEqual(run?.event.details?.argv, ['/usr/bin/yes']);
        assert.deepEqual(run?.event.outcome, { status: 'failure', detail: 'stopped: its output was closed' });
      });
    }
  });

  for (const [signal, code] of [['SIGHUP', 129], ['SIGQUIT', 131]] as const) {
    it(`stops the command at ${signal} (${signal === 'SIGHUP' ? 'its terminal closed' : 'Ctrl-\\'}) and still records the run, exiting ${code} (regression: corral died at once with the run unrecorded)`, async () => {
      const stateDir = tempStateDir();
      const child = spawn(CORRAL_BIN, ['--state-dir', stateDir, 'run', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/sh', '-c', 'echo started; exec sleep 30'], {
        env: { ...process.env, CORRAL_NODE: process.execPath },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      await once(createInterface({ input: child.stdout! }), 'line');
      child.kill(signal);
      const [exit] = (await once(child, 'exit')) as [number | null];
      assert.equal(exit, code);
      const [run] = await records(stateDir);
      assert.deepEqual([run?.event.details?.argv, run?.event.outcome?.detail], [['/bin/sh', '-c', 'echo started; exec sleep 30'], `stopped: interrupted (${signal})`]);
    });
  }

  describe('when its standard output cannot be written (a full disk: /dev/full)', () => {
    function runToFullDisk(stateDir: string, args: string[]) {
      const full = openSync('/dev/full', 'w');
      try {
        return spawnSync(CORRAL_BIN, ['--state-dir', stateDir, 'run', ...args], { env: { ...process.env, CORRAL_NODE: process.execPath }, stdio: ['ignore', full, 'pipe'], encoding: 'utf8', timeout: 60_000 });
      } finally {
        closeSync(full);
      }
    }

    it("stops the command, records the run and exits 3 naming ENOSPC (regression: a stack trace, and the run went unrecorded)", async () => {
      const stateDir = tempStateDir();
      const r = runToFullDisk(stateDir, ['--policy', policyFile('runtime: [shell]\n'), '--', '/usr/bin/yes']);
      assert.equal(r.status, 3, r.stderr);
      assert.match(r.stderr, /output could not be written \(ENOSPC\)/);
      assert.doesNotMatch(r.stderr, NO_STACK);
      const [run] = await records(stateDir);
      assert.deepEqual(run?.event.outcome, { status: 'failure', detail: 'stopped: its output could not be written (ENOSPC)' });
    });

    it('with --json, exits 3 when the summary cannot be written (regression: exit 0 with no summary)', async () => {
      const stateDir = tempStateDir();
      const r = runToFullDisk(stateDir, ['--json', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/true']);
      assert.equal(r.status, 3, r.stderr);
      assert.match(r.stderr, /summary could not be written \(ENOSPC\)/);
      const [run] = await records(stateDir);
      assert.deepEqual(run?.event.outcome, { status: 'success', exitCode: 0 });
    });
  });

  it('records a run Corral refused to start as a deny', async () => {
    const stateDir = tempStateDir();
    mkdirSync('/tmp/.X11-unix', { recursive: true });
    writeFileSync('/tmp/.X11-unix/X96', '');
    const r = await corral(['--state-dir', stateDir, 'run', '--policy', policyFile('runtime: [shell]\nui: { display: true }\n'), '--', '/bin/true'], { env: { DISPLAY: ':96' } });
    assert.equal(r.code, 126);
    const [refused] = await records(stateDir);
    assert.equal(refused?.event.decision?.effect, 'deny');
    assert.match(refused?.event.decision?.reason ?? '', /ui\.clipboard/);
  });

  it('refuses a command line too long to record with exit 2, running nothing (regression: it ran, then its record was refused: exit 1 and no record)', async () => {
    const stateDir = tempStateDir();
    const policy = policyFile('runtime: [shell]\n');
    const argv = ['/bin/sh', '-c', 'echo RAN', 'x'.repeat(70_000)];
    const r = await corral(['--state-dir', stateDir, 'run', '--json', '--policy', policy, '--', ...argv]);
    assert.equal(r.code, 2, r.stderr);
    assert.doesNotMatch(r.stderr, /RAN/);
    assert.match(r.stderr, /cannot be recorded in the audit log.*--no-audit/s);
    assert.equal(JSON.parse(r.stdout).error.code, 'CLI_BAD_ARGUMENT');
    await assert.rejects(records(stateDir), { code: 'AUDIT_STORE_UNAVAILABLE' });
    const unrecorded = await corral(['--state-dir', stateDir, 'run', '--no-audit', '--policy', policy, '--', ...argv]);
    assert.deepEqual([unrecorded.code, unrecorded.stdout], [0, 'RAN\n']);
  });

  it('says the command ran, and how it ended, when its record cannot be written after it (every fsync fails: EIO injected under strace), exiting 3', async () => {
    const stateDir = tempStateDir();
    const policy = policyFile('runtime: [shell]\n');
    assert.equal((await corral(['--state-dir', stateDir, 'run', '--policy', policy, '--', '/bin/true'])).code, 0);
    const r = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=fsync,fdatasync', '-e', 'inject=fsync,fdatasync:error=EIO', CORRAL_BIN, '--state-dir', stateDir, 'run', '--policy', policy, '--', '/bin/sh', '-c', 'exit 4'], {
      encoding: 'utf8',
      env: { ...process.env, CORRAL_NODE: process.execPath },
      timeout: 60_000,
    });
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /the command ran and exited 4, but its run could not be recorded/);
    assert.doesNotMatch(r.stderr, NO_STACK);
  });

  it('records a run refused because a granted path changed after planning (CONTAIN_PATH_CHANGED, injected under strace) as a deny, exiting 126 (regression: not recorded, exit 3)', async () => {
    const stateDir = tempStateDir();
    const policy = policyFile('runtime: [shell]\nfilesystem: { readonly: [./project] }\n');
    const project = join(policy, '../project');
    mkdirSync(project);
    // Planning only stats the path; opening it to bind it (O_PATH) is the start's, and fails as if it had been removed since.
    const r = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-P', project, '-e', 'trace=openat', '-e', 'inject=openat:error=ENOENT', CORRAL_BIN, '--state-dir', stateDir, 'run', '--policy', policy, '--', '/bin/sh', '-c', 'echo ran'], {
      encoding: 'utf8',
      env: { ...process.env, CORRAL_NODE: process.execPath },
      timeout: 60_000,
    });
    assert.equal(r.status, 126, r.stderr);
    assert.match(r.stderr, /CONTAIN_PATH_CHANGED/);
    assert.equal(r.stdout, '');
    const [refused] = await records(stateDir);
    assert.equal(refused?.event.decision?.effect, 'deny');
    assert.deepEqual(refused?.event.outcome, { status: 'failure', detail: 'not started: CONTAIN_PATH_CHANGED' });
    assert.match(refused?.event.decision?.reason ?? '', /project is gone since the sandbox was planned/);
  });

  it('records a run refused as it is planned, because a protection cannot be enforced on this host (CONTAIN_UNENFORCEABLE), as a deny that did not start, exiting 126 (regression: refused unrecorded); a policy with a mistake is refused unrecorded, exiting 2', async () => {
    const stateDir = tempStateDir();
    // A worktree's .git is a file: the hooks denied below it cannot be masked, and the sandbox could make them a folder.
    const policy = policyFile('runtime: [shell]\nfilesystem: { readwrite: [./outbox], denied: [./outbox/.git/hooks] }\n');
    mkdirSync(join(policy, '../outbox'));
    writeFileSync(join(policy, '../outbox/.git'), 'gitdir: /elsewhere\n');
    const r = await corral(['--state-dir', stateDir, 'run', '--policy', policy, '--', '/bin/true', 'planned']);
    assert.equal(r.code, 126, r.stderr);
    assert.match(r.stderr, /CONTAIN_UNENFORCEABLE/);
    const [refused, ...more] = await records(stateDir);
    assert.deepEqual([refused?.event.action, refused?.event.decision?.effect, refused?.event.outcome, refused?.event.details?.argv, more.length], ['run.exec', 'deny', { status: 'failure', detail: 'not started: CONTAIN_UNENFORCEABLE' }, ['/bin/true', 'planned'], 0]);
    assert.match(refused?.event.decision?.reason ?? '', /is a file where a folder should be/);
    const mistaken = await corral(['--state-dir', stateDir, 'run', '--policy', policyFile('runtime: [shell]\nfilesystem: { readWrite: [./x] }\n'), '--', '/bin/true']);
    assert.equal(mistaken.code, 2);
    assert.equal((await records(stateDir)).length, 1);
  });

  describe('when the sandbox cannot start', () => {
    /** corral run under strace: each of `inject` ({syscall: error}) fails as asked, only for `path` when one is given. */
    function runUnder(inject: Record<string, string>, args: string[], options: { path?: string; env?: NodeJS.ProcessEnv } = {}) {
      const calls = Object.keys(inject).join(',');
      const injections = Object.entries(inject).flatMap(([call, error]) => ['-e', `inject=${call}:error=${error}`]);
      return spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', ...(options.path ? ['-P', options.path] : []), '-e', `trace=${calls}`, ...injections, CORRAL_BIN, ...args], {
        encoding: 'utf8',
        env: { ...process.env, CORRAL_NODE: process.execPath, ...options.env },
        timeout: 60_000,
      });
    }

    /** A TMPDIR so deep that the runner's proxy socket cannot be bound under it: a real failure to set up the sandbox's network. */
    function deepTmpdir(): string {
      const dir = join(realpathSync(mkdtempSync(join(tmpdir(), 'corral-cli-deep-'))), 'd'.repeat(100));
      mkdirSync(dir);
      return dir;
    }

    const EGRESS = 'runtime: [shell]\nnetwork:\n  egress:\n    allow: ["example.com:443"]\n';

    it('records the attempt with the policy digest, the command and the error code, no exit code, exiting 3 (bubblewrap cannot be executed: execve refused under strace) (regression: nothing was recorded)', async () => {
      const stateDir = tempStateDir();
      const policy = policyFile('runtime: [shell]\n');
      const digest = (JSON.parse((await corral(['run', '--no-audit', '--json', '--policy', policy, '--', '/bin/true'])).stdout) as { policy: { digest: string } }).policy.digest;
      const bwrap = spawnSync('sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' }).stdout.trim();
      const r = runUnder({ execve: 'ENOENT' }, ['--state-dir', stateDir, 'run', '--policy', policy, '--', '/bin/sh', '-c', 'echo ran'], { path: bwrap });
      assert.equal(r.status, 3, r.stderr);
      assert.match(r.stderr, /\[CONTAIN_SPAWN_FAILED\]/);
      assert.doesNotMatch(r.stderr, NO_STACK);
      assert.equal(r.stdout, '');
      const [attempt, ...more] = await records(stateDir);
      assert.equal(more.length, 0);
      assert.equal(attempt?.event.action, 'run.exec');
      assert.deepEqual(attempt?.event.resource, { kind: 'command', id: '/bin/sh' });
      assert.deepEqual(attempt?.event.details?.argv, ['/bin/sh', '-c', 'echo ran']);
      assert.equal(attempt?.event.context?.inputs?.policy, `sha256:${digest}`);
      assert.deepEqual(attempt?.event.decision?.policies, [`container:sha256:${digest}`]);
      assert.deepEqual(attempt?.event.outcome, { status: 'failure', detail: 'not started: CONTAIN_SPAWN_FAILED' });
    });

    it('records the attempt when the egress proxy cannot be set up (a TMPDIR too deep for its socket), exiting 3 (regression: nothing was recorded)', async () => {
      const stateDir = tempStateDir();
      const r = await corral(['--state-dir', stateDir, 'run', '--json', '--policy', policyFile(EGRESS), '--', '/bin/sh', '-c', 'echo ran'], { env: { TMPDIR: deepTmpdir() } });
      assert.equal(r.code, 3, r.stderr);
      assert.equal(JSON.parse(r.stdout).error.code, 'CONTAIN_PROXY_FAILED');
      assert.doesNotMatch(r.stderr, /ran/);
      const [attempt] = await records(stateDir);
      assert.deepEqual(attempt?.event.details?.argv, ['/bin/sh', '-c', 'echo ran']);
      assert.deepEqual(attempt?.event.outcome, { status: 'failure', detail: 'not started: CONTAIN_PROXY_FAILED' });
    });

    it('says the command did not run and the attempt could not be recorded when the log cannot be written (every fsync fails: EIO injected under strace), exiting 3', async () => {
      const stateDir = tempStateDir();
      assert.equal((await corral(['--state-dir', stateDir, 'run', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/true'])).code, 0);
      const r = runUnder({ fsync: 'EIO', fdatasync: 'EIO' }, ['--state-dir', stateDir, 'run', '--json', '--policy', policyFile(EGRESS), '--', '/bin/sh', '-c', 'echo ran'], { env: { TMPDIR: deepTmpdir() } });
      assert.equal(r.status, 3, r.stderr);
      assert.match(r.stderr, /the command was not started.*could not be recorded in the audit log/s);
      assert.doesNotMatch(r.stderr, NO_STACK);
      assert.match(JSON.parse(r.stdout).error.code, /^AUDIT_/);
      assert.equal((await records(stateDir)).length, 1, 'no part of a record of the attempt was written');
    });
  });

  it('runs without a record only when told --no-audit', async () => {
    const stateDir = tempStateDir();
    const r = await corral(['--state-dir', stateDir, 'run', '--no-audit', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/true']);
    assert.equal(r.code, 0);
    await assert.rejects(records(stateDir), { code: 'AUDIT_STORE_UNAVAILABLE' });
  });

  it("refuses an empty --state-dir with exit 2, running nothing and recording nowhere (regression: the run was recorded in ~/.corral)", async () => {
    const home = tempStateDir();
    for (const spelling of [['--state-dir', ''], ['--state-dir=']]) {
      const r = await corral([...spelling, 'run', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/sh', '-c', 'echo ran'], { env: { HOME: home } });
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /--state-dir/);
    }
    assert.equal(existsSync(join(home, '.corral')), false);
  });

  it('refuses to run when the audit log cannot be opened, and says how to go on', async () => {
    const notADir = policyFile('x');
    const r = await corral(['--state-dir', notADir, 'run', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/sh', '-c', 'echo ran']);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /--no-audit/);
  });
});

describe('corral doctor', () => {
  it('says in words what this host can enforce', async () => {
    const r = await corral(['doctor']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /bubblewrap/);
    assert.match(r.stdout, /^(ok|no) +tmpfs size +\S/m, 'whether files in /tmp count against the memory limit without a memory cgroup');
    assert.match(r.stdout, /^ok +sandbox reaper +corral-reaper at \S+/m, 'whether a sandbox ends whole with a Corral process that is killed outright');
    assert.match(r.stdout, /Corral can contain commands on this host/);
  });

  it('prints the same as one JSON object with --json', async () => {
    const r = await corral(['doctor', '--json']);
    const report = JSON.parse(r.stdout) as { canContain: boolean; seccompRefuses: string[]; cgroups: { controllers: Record<string, unknown> } };
    assert.equal(report.canContain, true);
    assert.ok(report.seccompRefuses.includes('ptrace'));
    assert.ok('landlock' in report && 'userNamespaces' in report);
  });
});

describe('corral run under a user id with no passwd entry (a container under an arbitrary uid)', () => {
  const uid = 43_210;
  const setpriv = spawnSync('setpriv', ['--version']).status === 0;
  const unnamed = spawnSync('getent', ['passwd', String(uid)]).status !== 0;
  const skip = process.getuid?.() !== 0 ? 'needs root to switch user' : !setpriv ? 'needs setpriv' : !unnamed ? `uid ${uid} has a passwd entry here` : false;
  it('runs the command and records it under uid<N> (regression: os.userInfo() threw ERR_SYSTEM_ERROR, exit 1)', { skip }, () => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'corral-cli-run-nouid-')));
    const state = join(dir, 'state');
    writeFileSync(join(dir, 'policy.yaml'), 'runtime: [shell]\n');
    spawnSync('chmod', ['-R', 'a+rwX', dir]);
    const env = { ...process.env, CORRAL_NODE: process.execPath, HOME: dir };
    const run = spawnSync('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', CORRAL_BIN, '--state-dir', state, 'run', '--policy', join(dir, 'policy.yaml'), '--', 'sh', '-c', 'echo ran as $(id -u)'], { env, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, `ran as ${uid}\n`);
    assert.doesNotMatch(run.stderr, NO_STACK);
    const tail = spawnSync('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', CORRAL_BIN, '--state-dir', state, 'audit', 'tail', '--json'], { env, encoding: 'utf8' });
    assert.equal(tail.status, 0, tail.stderr);
    assert.match((JSON.parse(tail.stdout.trim().split('\n').at(-1)!) as { event: { actor: { id: string } } }).event.actor.id, new RegExp(`^uid${uid}@`));
  });
});
