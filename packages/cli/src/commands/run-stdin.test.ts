// corral run's standard input, when it is also writable: a terminal (the usual case), or a socket
// (what Node, and many supervisors, give a child for a pipe). A review saw a command write 100 KB
// to the user's terminal through its fd 0 under maxOutputBytes 100, the run exiting 0 with its
// output digest none the wiser. The command reads a pipe corral feeds instead.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openAuditReader, readRecord } from '@corral/audit';
import { CORRAL_BIN, tempStateDir } from '../../test/corral.ts';
import { endsByItself, socketPair, underTerminal } from '../../../../scripts/testing/standard-input.ts';

// 2,000 lines (about 24 KB) written to fd 0, then a line on stdout. Its writes now fill a buffer
// nobody reads and block, so the policy's short timeout stops it: where its output went is what counts.
const THROUGH_FD0 = ['/bin/sh', '-c', 'for i in $(seq 2000); do echo VIA-FD0 $i >&0; done; echo ok'];
const POLICY = 'runtime: [shell]\nprocess: { maxOutputBytes: 100, timeoutMs: 3000 }\n';
const hasScript = spawnSync('script', ['--version']).status === 0;

function policyFile(text: string): string {
  const file = join(realpathSync(mkdtempSync(join(tmpdir(), 'corral-cli-stdin-'))), 'policy.yaml');
  writeFileSync(file, text);
  return file;
}

/** The stdout digest the audit log recorded for the state directory's first run. */
async function recordedStdoutDigest(stateDir: string): Promise<unknown> {
  const reader = await openAuditReader({ stateDir });
  try {
    return (await readRecord(reader.store, 0)).event.context?.outputs?.stdout;
  } finally {
    await reader.close();
  }
}

describe('corral run, its standard input writable too', () => {
  describe('when it is a socket whose other end the caller holds and reads', () => {
    it('the command writes nothing to that end through its fd 0: no more than maxOutputBytes leaves, the record digests exactly what corral printed, and corral ends with that end still open', async () => {
      const { ours, theirs } = await socketPair();
      let received = 0;
      ours.on('data', (c: Buffer) => (received += c.length));
      const stateDir = tempStateDir();
      const child = spawn(CORRAL_BIN, ['--state-dir', stateDir, 'run', '--policy', policyFile(POLICY), '--', ...THROUGH_FD0], {
        env: { ...process.env, CORRAL_NODE: process.execPath },
        stdio: [theirs, 'pipe', 'pipe'],
      });
      theirs.destroy();
      const stdout: Buffer[] = [];
      let stderr = '';
      child.stdout!.on('data', (c: Buffer) => stdout.push(c));
      child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      try {
        await endsByItself(child, 30_000, 'corral run, its input open');
        const printed = Buffer.concat(stdout);
        assert.equal(received, 0, `what the command wrote to fd 0 reached the other end: ${received} bytes`);
        assert.ok(printed.length <= 100, `${printed.length} bytes printed`);
        assert.equal(await recordedStdoutDigest(stateDir), `sha256:${createHash('sha256').update(printed).digest('hex')}`, stderr);
      } finally {
        ours.destroy();
      }
    });
  });

  describe('when it is a terminal (a pseudo-terminal under script(1))', { skip: !hasScript && 'no script(1) here' }, () => {
    /** `corral run ARGV` under script(1): its stdin, stdout and stderr are the terminal, whose screen comes out of `child.stdout`. */
    function corralOnTerminal(policy: string, argv: string[]): { child: ChildProcess; screen: () => string } {
      const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
      const command = [CORRAL_BIN, 'run', '--policy', policy, '--', ...argv].map(quote).join(' ');
      return underTerminal(command, { ...process.env, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: tempStateDir() });
    }

    it('the command cannot write to the terminal through its fd 0, and corral ends with the terminal still open', async () => {
      const { child, screen } = corralOnTerminal(policyFile(POLICY), THROUGH_FD0);
      try {
        // Nothing typed and no Ctrl-D: the terminal stays open while corral runs and ends.
        await endsByItself(child, 30_000, 'corral run, its terminal open');
        const shown = screen().split('VIA-FD0').length - 1;
        assert.equal(shown, 0, `what the command wrote to fd 0 reached the terminal: ${shown} lines`);
      } finally {
        child.kill('SIGKILL');
      }
    });

    it('still gives the command the lines typed at the terminal, and its end at Ctrl-D', async () => {
      const { child, screen } = corralOnTerminal(policyFile('runtime: [shell]\n'), ['/bin/sh', '-c', 'while read line; do echo "got: $line"; done; echo "input over"']);
      child.stdin!.end('typed one\ntyped two\n');
      assert.equal(await endsByItself(child, 30_000, 'corral run'), 0, screen());
      assert.match(screen(), /got: typed one\r?\ngot: typed two\r?\ninput over/);
    });
  });
});
