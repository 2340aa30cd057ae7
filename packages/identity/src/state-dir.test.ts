// The state directory holds the token-signing private keys: Corral makes it
// its user's alone, or refuses one another user owns.
import assert from 'node:assert/strict';
import fs, { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { Identity } from './identity.ts';

/** A new directory for one test, removed once all this file's tests have run. */
const freshDir = () => tempDir('corral-identity-state-');

const modeOf = (path: string) => statSync(path).mode & 0o7777;
const root = process.getuid?.() === 0;

describe('the state directory', { skip: process.getuid === undefined && 'no user ids on this platform' }, () => {
  for (const loose of [0o777, 0o775, 0o755, 0o750, 0o1777]) {
    it(`is made 0700 when this user's and ${loose.toString(8)}, so nobody else lists, reads or replaces the identity store`, () => {
      // Before: an existing directory was used as it was, and a world-writable one let anyone swap identity.db.
      const parent = freshDir();
      chmodSync(parent, 0o755);
      const dir = join(parent, 'state');
      mkdirSync(dir);
      chmodSync(dir, loose);
      Identity.open(dir).close();
      assert.equal(modeOf(dir), 0o700);
      assert.equal(modeOf(parent), 0o755, 'nothing outside the state directory is changed');
      assert.equal(modeOf(join(dir, 'identity.db')), 0o600);
    });
  }

  it('is made 0700 with any missing parent when it does not exist', () => {
    const parent = freshDir();
    const dir = join(parent, 'a', 'state');
    Identity.open(dir).close();
    assert.equal(modeOf(dir), 0o700);
    assert.equal(modeOf(join(parent, 'a')), 0o700);
  });

  it('is the directory a symbolic link names, when the state directory is one', () => {
    const parent = freshDir();
    mkdirSync(join(parent, 'real'), { mode: 0o777 });
    chmodSync(join(parent, 'real'), 0o777);
    symlinkSync(join(parent, 'real'), join(parent, 'link'));
    Identity.open(join(parent, 'link')).close();
    assert.equal(modeOf(join(parent, 'real')), 0o700);
  });

  it('is refused when another user owns it: IDENTITY_STATE_DIR_UNSAFE, naming it, and nothing is written in it', () => {
    // Before: the store was made in it, for its owner to read or replace.
    let dir: string;
    if (root) {
      dir = freshDir();
      chmodSync(dir, 0o755);
      chownSync(dir, 65534, 65534);
    } else {
      dir = '/'; // root's, and never this user's
    }
    assert.throws(() => Identity.open(dir), (error: Error) => {
      assert.equal((error as { code?: string }).code, 'IDENTITY_STATE_DIR_UNSAFE');
      assert.ok(error.message.includes(dir));
      return true;
    });
    if (root) {
      assert.equal(modeOf(dir), 0o755);
      assert.throws(() => statSync(join(dir, 'identity.db')), { code: 'ENOENT' });
    }
  });
});

describe('a symbolic link planted in the state directory', () => {
  for (const name of ['identity.db', 'identity.db-wal', 'identity.db-shm', 'identity.db-journal']) {
    it(`at ${name} is refused, not followed: IDENTITY_STORE_SYMLINK, and what it points to is left as it was`, () => {
      // Before: the store (and the signing keys written to it) went wherever the link pointed, a file there was made 0600, or one created.
      const dir = freshDir();
      const elsewhere = freshDir();
      const target = join(elsewhere, 'planted');
      writeFileSync(target, '');
      chmodSync(target, 0o644);
      symlinkSync(target, join(dir, name));
      assert.throws(() => Identity.open(dir), (error: Error) => {
        assert.equal((error as { code?: string }).code, 'IDENTITY_STORE_SYMLINK');
        assert.ok(error.message.includes(join(dir, name)));
        return true;
      });
      assert.equal(modeOf(target), 0o644);
      assert.equal(statSync(target).size, 0);
    });
  }

  it('at identity.db pointing nowhere is refused, and nothing is created where it points', () => {
    const dir = freshDir();
    const target = join(freshDir(), 'created-by-corral');
    symlinkSync(target, join(dir, 'identity.db'));
    assert.throws(() => Identity.open(dir), { code: 'IDENTITY_STORE_SYMLINK' });
    assert.throws(() => statSync(target), { code: 'ENOENT' });
  });

  it('is told apart from the store’s own files: a store Corral made opens again', () => {
    const dir = freshDir();
    Identity.open(dir).close();
    const again = Identity.open(dir);
    again.close();
    assert.equal(lstatSync(join(dir, 'identity.db')).isFile(), true);
  });
});

describe('identity.db that is not a file', () => {
  it('is refused: IDENTITY_STORE_FAILED', () => {
    const dir = freshDir();
    mkdirSync(join(dir, 'identity.db'));
    assert.throws(() => Identity.open(dir), { code: 'IDENTITY_STORE_FAILED' });
  });
});

describe('a file of the identity store that another user owns', { skip: !root && 'only root can give a file to another user' }, () => {
  // Left from a time the state directory was open to others (0777, made 0700 since): its owner may still hold it open,
  // and would read the signing keys written through it, or write keys of their own in.
  for (const name of ['identity.db', 'identity.db-wal', 'identity.db-shm', 'identity.db-journal']) {
    it(`at ${name} is refused: IDENTITY_STATE_DIR_UNSAFE, naming it, and nothing is written to it`, () => {
      // Before: identity.db was made 0600 but kept its owner (Corral runs as root here), and a -wal or -shm file was used as it was.
      const dir = freshDir();
      chmodSync(dir, 0o777);
      const planted = join(dir, name);
      writeFileSync(planted, '');
      chmodSync(planted, 0o666);
      chownSync(planted, 65534, 65534);
      assert.throws(() => Identity.open(dir), (error: Error) => {
        assert.equal((error as { code?: string }).code, 'IDENTITY_STATE_DIR_UNSAFE');
        assert.ok(error.message.includes(planted));
        return true;
      });
      assert.equal(statSync(planted).size, 0);
      assert.equal(statSync(planted).uid, 65534);
      assert.equal(modeOf(planted), 0o666);
    });
  }
});

describe('a state directory given as a symbolic link that someone moves while Corral opens the store', () => {
  // A link in a directory others share (/tmp/corral → ~/corral-state) may be retargeted in a loop by whoever made it.
  it('keeps the store in the directory Corral checked, never in the one the link names afterwards', () => {
    // Before: the directory was checked through the link, then identity.db opened through it again by name: a link moved
    // in between had the store, and the signing keys written to it, made (mode 644) in a directory of the mover's.
    const parent = freshDir();
    const checked = join(parent, 'checked');
    mkdirSync(checked, { mode: 0o700 });
    const theirs = join(parent, 'theirs');
    mkdirSync(theirs);
    chmodSync(theirs, 0o777);
    const link = join(parent, 'link');
    symlinkSync(checked, link);
    // The link is moved as the first descriptor Corral opens is closed: the state directory's, once it has been checked.
    const closeSync = fs.closeSync;
    let moved = false;
    fs.closeSync = (fd: number) => {
      closeSync(fd);
      if (moved) return;
      moved = true;
      rmSync(link);
      symlinkSync(theirs, link);
    };
    syncBuiltinESMExports();
    try {
      Identity.open(link).close();
    } finally {
      fs.closeSync = closeSync;
      syncBuiltinESMExports();
    }
    assert.ok(moved, 'the link was moved while the store was opened');
    assert.deepEqual(readdirSync(theirs), []);
    assert.ok(existsSync(join(checked, 'identity.db')));
    assert.equal(modeOf(join(checked, 'identity.db')), 0o600);
  });
});
