import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { privateFolder } from './native.ts';

describe("the folder Corral's helper programs are built in, when the install cannot hold them", () => {
  const base = () => mkdtempSync(join(tmpdir(), 'corral-native-test-'));

  it('is made owner-only', () => {
    const dir = join(base(), 'corral-native-0');
    assert.equal(privateFolder(dir), dir);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(privateFolder(dir), dir, 'and taken again once made');
  });

  describe('when someone made it first in the shared temp folder', () => {
    it('refuses one others may write, where a planted program would run in every sandbox', () => {
      const dir = join(base(), 'corral-native-0');
      mkdirSync(dir);
      chmodSync(dir, 0o777);
      assert.throws(() => privateFolder(dir), { code: 'CONTAIN_BACKEND_UNAVAILABLE' });
    });

    it('refuses a symlink to a folder elsewhere', () => {
      const root = base();
      mkdirSync(join(root, 'elsewhere'), { mode: 0o700 });
      symlinkSync(join(root, 'elsewhere'), join(root, 'corral-native-0'));
      assert.throws(() => privateFolder(join(root, 'corral-native-0')), { code: 'CONTAIN_BACKEND_UNAVAILABLE' });
    });

    it("refuses another user's", { skip: process.getuid?.() !== 0 && 'needs root to give a folder away' }, () => {
      const dir = join(base(), 'corral-native-0');
      mkdirSync(dir, { mode: 0o700 });
      chownSync(dir, 65534, 65534);
      assert.throws(() => privateFolder(dir), { code: 'CONTAIN_BACKEND_UNAVAILABLE' });
    });
  });
});
