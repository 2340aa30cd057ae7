// The state directory as `corral up` claims it, before it writes anything
// there: this user's, and theirs alone.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, lchownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { EXIT } from '../exit-codes.ts';
import { CliFailure } from '../output.ts';
import { claimStateDir } from './state.ts';

const root = mkdtempSync(join(tmpdir(), 'corral-up-claim-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe("corral up's claim on its state directory", () => {
  it('makes a new one 0700', () => {
    const dir = join(root, 'new');
    claimStateDir(dir);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
  });

  it('makes one others may read, enter or write 0700 before anything is written in it (regression: it stayed open until the gateway opened its identity store, after the example files, profile and lock were written there)', () => {
    const dir = join(root, 'open');
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    claimStateDir(dir);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
  });

  it('refuses one another user owns (exit 3, naming the owner), changing nothing in it', { skip: process.getuid?.() !== 0 && 'only root can give a directory to another user' }, () => {
    const dir = join(root, 'theirs');
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    chownSync(dir, 65534, 65534);
    assert.throws(() => claimStateDir(dir), (e: unknown) => e instanceof CliFailure && e.exitCode === EXIT.environment && /belongs to another user \(uid 65534\)/.test(e.message));
    assert.equal(statSync(dir).mode & 0o777, 0o777);
    assert.deepEqual(readdirSync(dir), []);
  });

  describe('when another user put something in it while others could write it', { skip: process.getuid?.() !== 0 && 'only root can give a file to another user' }, () => {
    const planted = (name: string, plant: (path: string) => void) => {
      const dir = join(root, `planted-${name}`);
      mkdirSync(dir);
      chmodSync(dir, 0o777);
      plant(join(dir, name));
      return dir;
    };
    const refusedNaming = (dir: string, name: string) => (e: unknown) =>
      e instanceof CliFailure && e.exitCode === EXIT.environment && e.code === 'IDENTITY_STATE_DIR_UNSAFE' && e.message.includes(`${join(dir, name)} belongs to another user (uid 65534)`);

    it('refuses a link of theirs (exit 3, naming it), so nothing is written through it (regression: corral up appended its log to whatever file a gateway.log planted there linked to)', () => {
      const victim = join(root, 'victim');
      writeFileSync(victim, 'kept\n');
      const dir = planted('gateway.log', (path) => {
        symlinkSync(victim, path);
        lchownSync(path, 65534, 65534);
      });
      assert.throws(() => claimStateDir(dir), refusedNaming(dir, 'gateway.log'));
      assert.equal(readFileSync(victim, 'utf8'), 'kept\n');
      assert.equal(statSync(dir).mode & 0o777, 0o700, 'no longer open to them');
    });

    it('refuses a folder of theirs (exit 3, naming it): held open, it would let them write Cedar rules or profiles into it later', () => {
      const dir = planted('policies', (path) => {
        mkdirSync(path);
        chownSync(path, 65534, 65534);
      });
      assert.throws(() => claimStateDir(dir), refusedNaming(dir, 'policies'));
    });
  });
});
