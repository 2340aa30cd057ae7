import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ContainError } from './errors.ts';
import { validatePolicy } from './policy/load.ts';
import { planSandbox } from './policy/plan.ts';
import type { ContainerPolicyInput } from './policy/schema.ts';
import { Runner } from './runner.ts';

// What the security review ran: replace what stops the denied path, then make it and write a hook git would run.
const MAKE_HOOK = 'rm .git; mkdir -p .git/hooks && echo forged > .git/hooks/post-checkout; true';

/** A git worktree's folder: its .git is a file naming the repository's folder for it. */
function worktree(root: string, name: string): string {
  const work = join(root, name);
  mkdirSync(work);
  writeFileSync(join(work, '.git'), 'gitdir: /srv/repo/.git/worktrees/w\n');
  return work;
}

describe('a denied path below a file where a folder should be, inside a read-write grant', () => {
  let runner: Runner;
  let root: string;
  before(() => {
    runner = new Runner();
    root = realpathSync(mkdtempSync(join(tmpdir(), 'corral-blocked-deny-')));
  });
  after(() => runner.close());

  /** Plans the policy in `work` and runs `script` there: the refusal, or the run's result. */
  async function planAndRun(work: string, policy: ContainerPolicyInput, script: string) {
    try {
      const plan = planSandbox({ policy: validatePolicy(policy), source: join(root, 'policy.yaml'), baseDir: work });
      return { result: await runner.run(plan, ['/bin/sh', '-c', script]) };
    } catch (error) {
      return { refusal: error as ContainError };
    }
  }

  // Regression: the deny was left out of the plan without a word; the command replaced .git with a folder, made
  // .git/hooks/post-checkout and exited 0.
  it('is refused before anything runs (CONTAIN_UNENFORCEABLE, naming the file), so the command never makes it', async () => {
    const work = worktree(root, 'refused');
    const { refusal, result } = await planAndRun(work, { runtime: ['shell'], filesystem: { readwrite: ['.'], denied: ['./.git/hooks'] } }, MAKE_HOOK);
    const made = existsSync(join(work, '.git/hooks/post-checkout'));
    assert.ok(refusal !== undefined, `the command ran (exit ${result?.exitCode}, warnings ${JSON.stringify(result?.warnings)}) and ${made ? 'made' : 'did not make'} the denied path`);
    assert.equal(refusal.code, 'CONTAIN_UNENFORCEABLE');
    assert.ok(refusal.message.includes(`${join(work, '.git')} is a file where a folder should be`), refusal.message);
    assert.equal(readFileSync(join(work, '.git'), 'utf8'), 'gitdir: /srv/repo/.git/worktrees/w\n');
  });

  it('is refused along with a symbolic link loop in its place, each named (the review\'s policy)', async () => {
    const work = worktree(root, 'refused-loop');
    symlinkSync('loop', join(work, 'loop'));
    const { refusal } = await planAndRun(work, { runtime: ['shell'], filesystem: { readwrite: ['.'], denied: ['./.git/hooks', './loop/x'] } }, `${MAKE_HOOK}; rm loop; mkdir -p loop/x`);
    assert.ok(refusal !== undefined, 'the command ran');
    assert.equal(refusal.code, 'CONTAIN_PATH_UNRESOLVABLE');
    assert.deepEqual(
      refusal.issues.map((i) => i.field),
      ['filesystem.denied[1]', 'filesystem.denied[0]'],
    );
    assert.ok(lstatSync(join(work, 'loop')).isSymbolicLink());
  });

  it('stays unmade with the file granted read-only, as the refusal advises: the command can neither replace the file nor make the path', async () => {
    const work = worktree(root, 'read-only');
    const { refusal, result } = await planAndRun(work, { runtime: ['shell'], filesystem: { readwrite: ['.'], readonly: ['./.git'], denied: ['./.git/hooks'] } }, `${MAKE_HOOK}; mv .git moved; true`);
    assert.equal(refusal, undefined, refusal?.message);
    assert.equal(result!.exitCode, 0, result!.stderr);
    assert.deepEqual(result!.warnings, []);
    assert.equal(readFileSync(join(work, '.git'), 'utf8'), 'gitdir: /srv/repo/.git/worktrees/w\n');
    assert.equal(existsSync(join(work, 'moved')), false);
  });

  it("runs under onUnenforceable: warn, the run's warnings saying the path is not masked", async () => {
    const work = worktree(root, 'warned');
    const { refusal, result } = await planAndRun(work, { runtime: ['shell'], filesystem: { readwrite: ['.'], denied: ['./.git/hooks'] }, onUnenforceable: 'warn' }, 'true');
    assert.equal(refusal, undefined, refusal?.message);
    assert.equal(result!.exitCode, 0, result!.stderr);
    assert.ok(
      result!.warnings.some((w) => w.startsWith(`not enforced: ${join(work, '.git/hooks')} is not masked: ${join(work, '.git')} is a file where a folder should be`)),
      JSON.stringify(result!.warnings),
    );
  });
});
