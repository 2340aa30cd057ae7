import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { buildNative, privateFolder } from './native.ts';

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

describe('building a helper program', () => {
  it('removes the partial builds of that program left by processes that ended while compiling, and no other (regression: each one killed mid-build left a program-sized file behind for good)', () => {
    const name = `corral-test-${randomBytes(4).toString('hex')}`;
    const source = join(mkdtempSync(join(tmpdir(), 'corral-native-build-')), `${name}.c`);
    writeFileSync(source, 'int main(void) { return 0; }\n');
    const ended = spawnSync('true').pid!;
    // Where the build goes: found by building a program of another name once.
    const probe = join(dirname(source), `${name}-probe.c`);
    writeFileSync(probe, 'int main(void) { return 1; }\n');
    const dir = dirname(buildNative(probe).path);
    const abandoned = join(dir, `${name}-0123456789abcdef-static.${ended}.tmp`);
    const underWay = join(dir, `${name}-0123456789abcdef-static.${process.pid}.tmp`);
    const otherProgram = join(dir, `${name}x-0123456789abcdef-static.${ended}.tmp`);
    for (const f of [abandoned, underWay, otherProgram]) writeFileSync(f, 'partial');
    let built: string | undefined;
    try {
      built = buildNative(source).path;
      assert.equal(existsSync(abandoned), false, 'the partial build of a process that ended is gone');
      assert.equal(existsSync(underWay), true, 'a build under way in a live process is left alone');
      assert.equal(existsSync(otherProgram), true, "another program's partial build is left alone");
    } finally {
      for (const f of [abandoned, underWay, otherProgram, built, buildNative(probe).path]) if (f) rmSync(f, { force: true });
    }
  });
});
