// The state directory as `corral up` claims it, before it writes anything
// there: this user's, and theirs alone.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
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
});
