import assert from 'node:assert/strict';
import fs, { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, mock } from 'node:test';
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { generateSigningKey, keyIdOf } from '../checkpoint/key.ts';
import { signCheckpoint } from '../checkpoint/sign.ts';
import { advanceWitness, readWitness } from './witness-file.ts';

const root = mkdtempSync(join(tmpdir(), 'corral-witness-file-'));
after(() => rmSync(root, { recursive: true, force: true }));
const key = generateSigningKey();
const at = (size: number): SignedCheckpoint => signCheckpoint(key.privateKey, { size, root: size.toString(16).padStart(2, '0').repeat(32), time: '2026-01-01T00:00:00.000Z', keyId: keyIdOf(key.publicKey) });
let n = 0;
/** A fresh directory, and the witness path in it. */
function place(): { dir: string; path: string } {
  const dir = join(root, `d${++n}`);
  mkdirSync(dir);
  return { dir, path: join(dir, 'audit-witness.json') };
}

type Step = { op: 'fsync'; directory: boolean } | { op: 'rename'; from: string; to: string };

/** Runs `work` with fs.fsyncSync and fs.renameSync observed (witness-file.ts imports them by name: synced into its bindings). */
function observingSyncs(work: () => void, fsyncFails?: NodeJS.ErrnoException): Step[] {
  const steps: Step[] = [];
  const { fsyncSync, renameSync, fstatSync } = fs;
  const fsync = mock.method(fs, 'fsyncSync', (fd: number) => {
    steps.push({ op: 'fsync', directory: fstatSync(fd).isDirectory() });
    if (fsyncFails) throw fsyncFails;
    fsyncSync(fd);
  });
  const rename = mock.method(fs, 'renameSync', (from: string, to: string) => {
    steps.push({ op: 'rename', from, to });
    renameSync(from, to);
  });
  syncBuiltinESMExports();
  try {
    work();
  } finally {
    fsync.mock.restore();
    rename.mock.restore();
    syncBuiltinESMExports();
  }
  return steps;
}

describe('advanceWitness', () => {
  it('writes a witness that reads back as the same checkpoint, and leaves nothing else in its directory', () => {
    const { dir, path } = place();
    advanceWitness(path, at(5));
    assert.deepEqual(readWitness(path), at(5));
    assert.deepEqual(readdirSync(dir), ['audit-witness.json']);
  });

  it('replaces a witness only with a larger checkpoint', () => {
    const { path } = place();
    advanceWitness(path, at(10));
    advanceWitness(path, at(7));
    assert.equal(readWitness(path)?.size, 10);
    advanceWitness(path, at(12));
    assert.equal(readWitness(path)?.size, 12);
  });

  it('syncs the new witness to disk before it replaces the old one, then the directory holding it (regression: after a crash the witness could be empty or old)', () => {
    const { path } = place();
    advanceWitness(path, at(5));
    const steps = observingSyncs(() => advanceWitness(path, at(9)));
    assert.deepEqual(
      steps.map((s) => (s.op === 'fsync' ? `fsync ${s.directory ? 'directory' : 'file'}` : `rename to ${s.to === path ? 'the witness' : s.to}`)),
      ['fsync file', 'rename to the witness', 'fsync directory'],
    );
    assert.equal(readWitness(path)?.size, 9);
  });

  describe('when it cannot replace the witness', () => {
    it('removes its temporary file when the rename fails (the witness path is a directory) and throws the errno error callers warn about (regression: the .tmp file was left behind)', () => {
      const { dir, path } = place();
      mkdirSync(path);
      assert.throws(() => advanceWitness(path, at(5)), (e: NodeJS.ErrnoException) => typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code));
      assert.deepEqual(readdirSync(dir), ['audit-witness.json']);
    });

    it('removes its temporary file when the disk refuses to sync it, and keeps the old witness whole', () => {
      const { dir, path } = place();
      advanceWitness(path, at(5));
      const eio = Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', errno: -5, syscall: 'fsync' });
      assert.throws(() => observingSyncs(() => advanceWitness(path, at(9)), eio), { code: 'EIO' });
      assert.deepEqual(readdirSync(dir), ['audit-witness.json']);
      assert.equal(readWitness(path)?.size, 5);
    });
  });
});
