// corral run writes in its state directory (the policy cache, the audit log)
// only once that directory is this user's alone: never in one another user
// owns, who could have a link put where it writes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, existsSync, lchownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CORRAL_BIN } from '../../test/corral.ts';

const root = mkdtempSync(join(tmpdir(), 'corral-cli-run-state-'));
after(() => rmSync(root, { recursive: true, force: true }));

const OTHER = 65534;
const POLICY_TEXT = 'runtime: [shell]\n';
const policy = join(root, 'policy.yaml');
writeFileSync(policy, POLICY_TEXT);
const digest = createHash('sha256').update(POLICY_TEXT).digest('hex');

/**
 * Runs `corral --state-dir STATE run ... -- /bin/true` and, as soon as its pid
 * is known, plants what another user would where the policy cache writes its
 * entry (`plant(pid)`), long before that write.
 */
function runPlanting(state: string, args: string[], plant: (pid: number) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(CORRAL_BIN, ['--state-dir', state, 'run', ...args, '--policy', policy, '--', '/bin/true'], { env: { ...process.env, CORRAL_NODE: process.execPath }, stdio: ['ignore', 'pipe', 'pipe'] });
  plant(child.pid!);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

describe('corral run on a state directory another user owns', { skip: process.getuid?.() !== 0 && 'only root can give a folder to another user' }, () => {
  for (const [what, owned] of [
    ['the state directory', (state: string) => [state, join(state, 'policy-cache')]],
    ['the policy cache in a state directory of its own (left from when others could write it)', (state: string) => [join(state, 'policy-cache')]],
  ] as const) {
    it(`refuses ${what} (exit 3, naming it), and writes through no link planted there (regression: a link at the cache's next entry had the file it named overwritten)`, async () => {
      const state = join(root, `theirs-${owned('x').length}`);
      mkdirSync(join(state, 'policy-cache'), { recursive: true });
      for (const dir of owned(state)) chownSync(dir, OTHER, OTHER);
      const victim = join(root, `victim-${owned('x').length}`);
      writeFileSync(victim, 'kept\n');
      const r = await runPlanting(state, ['--no-audit', '--json'], (pid) => {
        const link = join(state, 'policy-cache', `${digest}.json.${pid}.tmp`);
        symlinkSync(victim, link);
        lchownSync(link, OTHER, OTHER);
      });
      assert.equal(readFileSync(victim, 'utf8'), 'kept\n');
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /belongs to another user \(uid 65534\)/);
      assert.equal(JSON.parse(r.stdout).error.code, 'NODE_STATE_DIR_UNAVAILABLE');
      assert.equal(existsSync(join(state, 'audit.db')), false, 'no audit log made there');
    });
  }
});
