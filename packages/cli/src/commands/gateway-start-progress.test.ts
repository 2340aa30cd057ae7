// `corral gateway` saying on stderr what its start is doing once it takes long, its stdout the listening line alone.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openAuditLog } from '@corral/audit';
import { CORRAL_BIN, tempStateDir } from '../../test/corral.ts';

const RECORDS = 20_000;
let dir: string;
before(async () => {
  dir = tempStateDir();
  // A set to decide with: a gateway with none says so on stderr once it listens, which is no start progress.
  mkdirSync(join(dir, 'policies'));
  writeFileSync(join(dir, 'policies', 'run.cedar'), 'permit (principal, action == Action::"system.run", resource == Command::"ls");\n');
  const log = await openAuditLog({ stateDir: dir });
  const appends: Promise<unknown>[] = [];
  for (let i = 0; i < RECORDS; i++) appends.push(log.append({ actor: { kind: 'agent', id: 'invoice-bot' }, action: 'run.exec', resource: { kind: 'command', id: `/bin/echo ${i}` }, outcome: { status: 'success' } }));
  await Promise.all(appends);
  await log.close();
});
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * `corral gateway ARGS` on the seeded state directory, its progress shown after
 * 100 ms (CORRAL_START_PROGRESS_MS; a user waits 2 s), stopped with SIGTERM once
 * it has said it listens: what it wrote until it exited.
 */
async function startAndStop(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const child = spawn(CORRAL_BIN, ['--state-dir', dir, 'gateway', '--port', '0', ...args], {
    env: { ...process.env, CORRAL_NODE: process.execPath, CORRAL_GATEWAY_TOKEN: 'a-token-of-sixteen-or-more', CORRAL_START_PROGRESS_MS: '100' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  await new Promise<void>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      if (stdout.endsWith('\n')) resolve();
    });
    void exited.then(() => resolve());
  });
  child.kill('SIGTERM');
  await exited;
  return { stdout, stderr };
}

describe('corral gateway start progress, with a large audit log', () => {
  it('names on stderr what the start is doing once it takes long (the audit log it opens among it), its stdout the listening line alone (regression: nothing until it listened, a hung start looking like a slow one)', async () => {
    const r = await startAndStop([]);
    assert.match(r.stdout, /^corral gateway listening on ws:\/\/127\.0\.0\.1:\d+\n$/);
    assert.match(r.stderr, /^corral: gateway start: opening the audit log \(audit\.db\)$/m);
    const progress = r.stderr.split('\n').filter((l) => l.startsWith('corral: '));
    assert.ok(progress.every((l) => l.startsWith('corral: gateway start: ')), progress.join('\n'));
  });

  it('shows none of it under --json: stdout the one JSON document, stderr the log\'s JSON lines alone', async () => {
    const r = await startAndStop(['--json']);
    assert.match(JSON.parse(r.stdout).url, /^ws:\/\/127\.0\.0\.1:\d+$/);
    for (const line of r.stderr.split('\n').filter((l) => l !== '')) assert.doesNotThrow(() => JSON.parse(line), line);
  });
});
