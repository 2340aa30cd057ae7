import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { which } from './host.ts';
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

describe("the compiler's environment", { skip: !['cc', 'gcc', 'clang'].some((c) => which(c)) && 'no C compiler here' }, () => {
  // A folder a contained run could write (a project's node_modules/.bin), holding an `as` and an
  // `ld` that leave a marker and then do the real work, so the build itself goes through either way.
  const planted = (t: TestContext): { bin: string; marker: string } => {
    const root = mkdtempSync(join(tmpdir(), 'corral-native-env-'));
    t.after(() => rmSync(root, { recursive: true, force: true }));
    const bin = join(root, 'node_modules/.bin');
    mkdirSync(bin, { recursive: true });
    const marker = join(root, 'ran');
    for (const tool of ['as', 'ld']) {
      const real = ['/usr/bin', '/bin'].map((d) => join(d, tool)).find((p) => existsSync(p)) ?? tool;
      writeFileSync(join(bin, tool), `#!/bin/sh\necho ${tool} >> '${marker}'\nexec '${real}' "$@"\n`, { mode: 0o755 });
    }
    return { bin, marker };
  };
  const build = (env: Record<string, string>): string[] => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'corral-native-cache-'));
    const source = join(cacheDir, 'corral-env-test.c');
    // Fresh source in a fresh cache: a build really runs.
    writeFileSync(source, `int main(void) { return ${randomBytes(2).readUInt16LE(0) % 100}; }\n`);
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    try {
      buildNative(source, { cacheDir });
      return readdirSync(cacheDir).filter((f) => f.startsWith('corral-env-test-'));
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      rmSync(cacheDir, { recursive: true, force: true });
    }
  };

  it('does not run an assembler or linker planted in the first folder of PATH (a folder a contained run wrote)', (t) => {
    const { bin, marker } = planted(t);
    const built = build({ PATH: `${bin}:${process.env.PATH ?? ''}` });
    assert.equal(existsSync(marker), false, 'the planted tools ran as this user');
    assert.equal(built.length, 1, 'the build went through');
  });

  it("takes nothing else from the caller's environment (COMPILER_PATH names where gcc looks for its tools first)", (t) => {
    const { bin, marker } = planted(t);
    const built = build({ COMPILER_PATH: bin });
    assert.equal(existsSync(marker), false, 'the planted tools ran as this user');
    assert.equal(built.length, 1, 'the build went through');
  });
});
