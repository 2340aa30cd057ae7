// corral up's hold on its state directory (STATE/up.lock): one corral up per
// state directory, a lock left by a process that is gone is taken over, and a
// lock that names no process is never taken for one left behind.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, linkSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { EXIT } from '../exit-codes.ts';
import { CliFailure } from '../output.ts';
import { removeIfSame } from '@corral/node';
import { UP_LOCK, lockStateDir } from './state.ts';

const root = mkdtempSync(join(tmpdir(), 'corral-up-lock-'));
after(() => rmSync(root, { recursive: true, force: true }));

const fresh = (name: string) => mkdtempSync(join(root, `${name}-`));
const refused = (pattern: RegExp) => (e: unknown) => e instanceof CliFailure && e.exitCode === EXIT.environment && pattern.test(e.message);

describe("corral up's lock on its state directory", () => {
  it("removes only the lock it judged left behind: one another start has taken since is put back (regression: the second of two starts that both found a dead process's lock removed the first one's, and both ran)", () => {
    const dir = fresh('raced');
    const path = join(dir, UP_LOCK);
    writeFileSync(path, '999999999\n');
    const judged = lstatSync(path, { bigint: true }).ino;
    // The file judged stays somewhere (as it does while the first start takes over), so its inode is not reused.
    linkSync(path, join(fresh('kept'), 'judged'));
    // The first start took it over: the dead process's lock gone, its own linked in its place.
    rmSync(path);
    writeFileSync(path, `${process.pid}\n`);
    const taken = lstatSync(path, { bigint: true }).ino;
    removeIfSame(path, judged);
    assert.equal(lstatSync(path, { bigint: true }).ino, taken, "the first start's lock is where it was");
    assert.deepEqual(readdirSync(dir), [UP_LOCK]);
    // The lock judged is removed when it is still the one there.
    removeIfSame(path, taken);
    assert.deepEqual(readdirSync(dir), []);
  });

  it('is written whole, naming this process, with nothing else left in the directory; the release removes it', () => {
    const dir = fresh('whole');
    const release = lockStateDir(dir);
    assert.equal(readFileSync(join(dir, UP_LOCK), 'utf8'), `${process.pid}\n`);
    assert.deepEqual(readdirSync(dir), [UP_LOCK]);
    release();
    assert.deepEqual(readdirSync(dir), []);
  });

  it('never writes through a symbolic link planted under the name it writes its pid to first (up.lock.PID)', () => {
    const dir = fresh('planted');
    const victim = join(fresh('victim'), 'file');
    writeFileSync(victim, 'kept\n');
    symlinkSync(victim, join(dir, `${UP_LOCK}.${process.pid}`));
    const release = lockStateDir(dir);
    assert.equal(readFileSync(victim, 'utf8'), 'kept\n');
    assert.equal(readFileSync(join(dir, UP_LOCK), 'utf8'), `${process.pid}\n`);
    assert.deepEqual(readdirSync(dir), [UP_LOCK]);
    release();
  });

  it('refuses a state directory a running process holds (exit 3, naming its pid), and leaves its lock', async () => {
    const dir = fresh('held');
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      writeFileSync(join(dir, UP_LOCK), `${holder.pid}\n`);
      assert.throws(() => lockStateDir(dir), refused(new RegExp(`another corral up \\(pid ${holder.pid}\\)`)));
      assert.equal(readFileSync(join(dir, UP_LOCK), 'utf8'), `${holder.pid}\n`);
      assert.deepEqual(readdirSync(dir), [UP_LOCK]);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('takes over a lock naming a process that is gone', () => {
    const dir = fresh('gone');
    writeFileSync(join(dir, UP_LOCK), `${spawnSync('true').pid}\n`);
    const release = lockStateDir(dir);
    assert.equal(readFileSync(join(dir, UP_LOCK), 'utf8'), `${process.pid}\n`);
    release();
    assert.equal(existsSync(join(dir, UP_LOCK)), false);
  });

  describe('when up.lock names no process (regression: a lock another corral up had created but not yet written its pid to was removed as left behind, and both ran on one state directory)', () => {
    for (const [what, text] of [
      ['empty', ''],
      ['not a number', 'corral\n'],
      ['a pid with trailing text', `${process.pid}x\n`],
    ] as const) {
      it(`does not take it over (${what}): exit 3, naming the file, which stays as it was`, () => {
        const dir = fresh('nameless');
        writeFileSync(join(dir, UP_LOCK), text);
        assert.throws(() => lockStateDir(dir), refused(new RegExp(`${join(dir, UP_LOCK).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} names no process`)));
        assert.equal(readFileSync(join(dir, UP_LOCK), 'utf8'), text);
        assert.deepEqual(readdirSync(dir), [UP_LOCK]);
      });
    }
  });
});
