import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CORRAL_BIN, corral, tempStateDir } from '../test/corral.ts';

const FAMILIES = ['run', 'doctor', 'agents', 'tokens', 'identity', 'policy', 'audit', 'gateway', 'nodes', 'approvals', 'node', 'up', 'users'];

/** Runs corral with a module hook that lists every module it loads; returns the list. */
async function modulesLoadedBy(args: string[]): Promise<string[]> {
  const log = join(mkdtempSync(join(tmpdir(), 'corral-modules-')), 'loaded.txt');
  writeFileSync(log, '');
  const hook = `import { registerHooks } from 'node:module'; import { appendFileSync } from 'node:fs';
registerHooks({ load(url, context, next) { appendFileSync(${JSON.stringify(log)}, url + '\\n'); return next(url, context); } });`;
  const r = await corral(args, { env: { NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(hook)}` } });
  assert.equal(r.code, 0, r.stderr);
  return readFileSync(log, 'utf8').split('\n').filter(Boolean);
}

function policyFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'corral-main-')), 'policy.yaml');
  writeFileSync(file, 'runtime: [shell]\n');
  return file;
}

describe('the corral command', () => {
  it('lists every command family in its help', async () => {
    const r = await corral(['--help']);
    assert.equal(r.code, 0);
    for (const family of FAMILIES) assert.match(r.stdout, new RegExp(`^  ${family}\\b`, 'm'), family);
  });

  it('exits 2 for an unknown command and names it', async () => {
    const r = await corral(['no-such-command']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'no-such-command'/);
  });

  it('hands the global --state-dir to the command, in either spelling', async () => {
    for (const spelling of [(d: string) => ['--state-dir', d], (d: string) => [`--state-dir=${d}`]]) {
      const stateDir = tempStateDir();
      const r = await corral([...spelling(stateDir), 'run', '--policy', policyFile(), '--', '/bin/true']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(existsSync(join(stateDir, 'audit.db')), 'the run was recorded in the state directory given');
    }
  });

  it('names a mistyped option, with the one meant, before saying a required one is missing (regression: corral run --polciy said only that --policy was not given)', async () => {
    for (const args of [['run', '--polciy', 'p.yaml', '--json', '--', 'true'], ['policy', 'explain', '--requets', 'r.json', '--json'], ['audit', 'export', '--fromat', 'jsonl', '--json']]) {
      const r = await corral(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`^error: unknown option '${args.find((a) => a.startsWith('--'))}'\\n\\(Did you mean --`), args.join(' '));
      assert.equal(JSON.parse(r.stdout).error.code, 'CLI_BAD_ARGUMENT');
    }
    const missing = await corral(['run', '--', 'true']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error: required option '-p, --policy <file>' not specified\n/);
  });

  it('takes --state-dir after the command words too', async () => {
    const stateDir = tempStateDir();
    assert.equal((await corral(['run', '--state-dir', stateDir, '--policy', policyFile(), '--', '/bin/true'])).code, 0);
    const verified = await corral(['audit', 'verify', '--state-dir', stateDir, '--json']);
    assert.equal(verified.code, 0, verified.stderr);
    assert.equal(JSON.parse(verified.stdout).verified, 1);
  });

  describe('when running one contained command', () => {
    it("loads no other command's code, no egress proxy for a policy without network, and neither the parser nor the schema once the policy was validated", async () => {
      const stateDir = tempStateDir();
      const args = ['--state-dir', stateDir, 'run', '--policy', policyFile(), '--', '/bin/true'];
      const first = await modulesLoadedBy(args);
      assert.ok(first.some((url) => url.includes('/node_modules/yaml/')), 'the first run parses the policy');
      const again = await modulesLoadedBy(args);
      const commands = again.filter((url) => url.includes('/packages/cli/src/commands/')).map((url) => url.replace(/.*\/commands\//, ''));
      assert.deepEqual(commands.sort(), ['run-record.ts', 'run.ts']);
      // The node package's two small modules that make the state directory this user's alone (whole-files.ts and its errors) are the only part of another package it loads.
      assert.deepEqual(
        again.filter((url) => /\/packages\/(gateway|identity|policy|node|console)\/|\/packages\/contain\/src\/net\/proxy\.ts|\/node_modules\/(yaml|zod)\//.test(url)).map((url) => url.replace(/.*\/packages\//, '')).sort(),
        ['node/src/errors.ts', 'node/src/whole-files.ts'],
      );
    });
  });

  describe('given a state directory whose name is not UTF-8 (Latin-1 é)', () => {
    for (const [how, script] of [
      ['--state-dir', 'exec "$0" --state-dir "$(printf "%s/st\\351" "$1")" agents create reader-bot --process p --owner a@example.com --json'],
      ['CORRAL_STATE_DIR', 'CORRAL_STATE_DIR="$(printf "%s/st\\351" "$1")" exec "$0" agents create reader-bot --process p --owner a@example.com --json'],
    ] as const) {
      it(`refuses it from ${how}, exit 2, creating nothing (regression: another directory, named with U+FFFD, was made and used)`, () => {
        const parent = mkdtempSync(join(tmpdir(), 'corral-latin1-'));
        const r = spawnSync('/bin/sh', ['-c', script, CORRAL_BIN, parent], { env: { ...process.env, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: '' }, encoding: 'utf8' });
        assert.equal(r.status, 2, r.stderr);
        assert.equal(JSON.parse(r.stdout).error.code, 'CLI_BAD_ARGUMENT');
        assert.match(r.stderr, /not UTF-8/);
        assert.deepEqual(readdirSync(parent), []);
      });
    }
  });

  it('refuses a state directory in /proc, exit 2, at once (regression: Node looped for ever making it, past Ctrl-C and SIGTERM, as mkdir there answers that the folder holding it does not exist)', () => {
    for (const args of [['agents', 'create', 'reader-bot', '--process', 'p', '--owner', 'a@example.com'], ['up', '--port', '0']]) {
      const r = spawnSync(CORRAL_BIN, ['--state-dir', '/proc/self/corral', ...args, '--json'], { env: { ...process.env, CORRAL_NODE: process.execPath }, encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
      assert.equal(r.status, 2, `${args[0]}: ${r.signal ?? ''} ${r.stderr}`);
      assert.deepEqual(JSON.parse(r.stdout).error, { code: 'CLI_BAD_ARGUMENT', message: '/proc/self/corral is in /proc, the kernel\'s view of its processes, where no folder can be made: choose another state directory with --state-dir or CORRAL_STATE_DIR' });
    }
  });

  describe('when standard error cannot be written', () => {
    it('exits with the status of its own failure, 2 for a missing argument, when the reader of `2>&1 | head` went away (regression: exit 1, an uncaught EPIPE)', async () => {
      // As withClosedOutput below, for both streams: the shell starts corral once the pipe's read end is closed.
      for (const args of [['agents', 'create'], ['run', '--polcy', 'x', '--', 'true']]) {
        const child = spawn('/bin/sh', ['-c', 'exec 2>&1; cat >/dev/null; exec "$0" "$@"', CORRAL_BIN, ...args], { env: { ...process.env, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: tempStateDir() }, stdio: ['pipe', 'pipe', 'ignore'] });
        child.stdout!.destroy();
        child.stdin!.end();
        const [code] = (await once(child, 'close')) as [number | null];
        assert.equal(code, 2, args.join(' '));
      }
    });
  });

  describe('when standard output cannot be written', () => {
    const POLICIES = new URL('../../../examples/invoice-intake/cedar', import.meta.url).pathname;
    const COMMANDS = [['identity', 'jwks'], ['agents', 'list'], ['agents', 'list', '--json'], ['identity', 'nodes', 'list'], ['policy', 'validate', POLICIES], ['doctor', '--json'], ['--help'], ['run', '--help']];
    /** A state directory holding an identity store, so that every command above has something to print. */
    async function installed(): Promise<string> {
      const stateDir = tempStateDir();
      const r = await corral(['--state-dir', stateDir, 'agents', 'create', 'reader-bot', '--process', 'p', '--owner', 'a@example.com']);
      assert.equal(r.code, 0, r.stderr);
      return stateDir;
    }

    /**
     * Runs corral with its standard output a pipe whose reader has already gone (`| head -c0`): the shell
     * in front waits for the end of its input, which comes only once the read end is closed, then starts corral.
     */
    function withClosedOutput(args: string[], stateDir: string): Promise<{ code: number | null; stderr: string }> {
      return new Promise((resolve, reject) => {
        const child = spawn('/bin/sh', ['-c', 'cat >/dev/null; exec "$0" "$@"', CORRAL_BIN, ...args], {
          env: { ...process.env, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: stateDir },
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        child.stdout!.destroy();
        child.stdin!.end();
        let stderr = '';
        child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
        child.once('error', reject);
        child.once('close', (code) => resolve({ code, stderr }));
      });
    }

    for (const args of COMMANDS) {
      const named = args.map((a) => (a === POLICIES ? 'DIR' : a)).join(' ');
      it(`${named} ends quietly with its own status when its reader went away (regression: an uncaught EPIPE's stack trace, exit 1)`, async () => {
        const stateDir = await installed();
        const r = await withClosedOutput(args, stateDir);
        assert.equal(r.stderr, '');
        assert.equal(r.code, 0);
      });

      it(`${named} exits 3 naming ENOSPC on a full disk, without a stack trace (regression: an uncaught error's stack trace, exit 1)`, async () => {
        const stateDir = await installed();
        const full = openSync('/dev/full', 'w');
        try {
          const r = spawnSync(CORRAL_BIN, args, { env: { ...process.env, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: stateDir }, stdio: ['ignore', full, 'pipe'], encoding: 'utf8' });
          assert.equal(r.stderr, 'corral: cannot write the output: ENOSPC; what was written is incomplete\n');
          assert.equal(r.status, 3);
        } finally {
          closeSync(full);
        }
      });
    }

    it('users passwd says the new password it printed is lost, and exits 3, when its reader went away (regression: exit 0, the old password gone and the new one shown to nobody)', async () => {
      const stateDir = await installed();
      const { Identity } = await import('@corral/identity');
      const identity = Identity.open(stateDir);
      try {
        await identity.localUsers.create('admin', 'an old password of some length', ['admin']);
      } finally {
        identity.close();
      }
      const r = await withClosedOutput(['users', 'passwd', 'admin'], stateDir);
      assert.equal(r.code, 3);
      assert.equal(r.stderr, 'corral: the new password did not reach standard output (EPIPE) and is lost: run the command again\n');
    });

    it('a failure under --json still exits with its own code when its reader went away', async () => {
      const r = await withClosedOutput(['agents', 'show', 'nobody', '--json'], await installed());
      assert.equal(r.code, 2);
      assert.equal(r.stderr, 'corral: no agent named nobody [IDENTITY_AGENT_NOT_FOUND]\n');
    });
  });
});
