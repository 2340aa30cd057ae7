import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import fsp from 'node:fs/promises';
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

/**
 * Runs `work` with each file handle's sync() and fs/promises' rename observed
 * (witness-file.ts imports rename by name: synced into its bindings).
 */
async function observingSyncs(work: () => Promise<void>, syncFails?: NodeJS.ErrnoException): Promise<Step[]> {
  const steps: Step[] = [];
  const probe = await fsp.open(root, 'r');
  const handleProto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
  await probe.close();
  const { sync } = handleProto;
  const { rename } = fsp;
  const fsync = mock.method(handleProto, 'sync', async function (this: fsp.FileHandle) {
    steps.push({ op: 'fsync', directory: (await this.stat()).isDirectory() });
    if (syncFails) throw syncFails;
    return sync.call(this);
  });
  const renaming = mock.method(fsp, 'rename', async (from: string, to: string) => {
    steps.push({ op: 'rename', from, to });
    return rename(from, to);
  });
  syncBuiltinESMExports();
  try {
    await work();
  } finally {
    fsync.mock.restore();
    renaming.mock.restore();
    syncBuiltinESMExports();
  }
  return steps;
}

describe('advanceWitness', () => {
  it('writes a witness that reads back as the same checkpoint, and leaves nothing else in its directory', async () => {
    const { dir, path } = place();
    await advanceWitness(path, at(5));
    assert.deepEqual(readWitness(path), at(5));
    assert.deepEqual(readdirSync(dir), ['audit-witness.json']);
  });

  it('replaces a witness only with a larger checkpoint', async () => {
    const { path } = place();
    await advanceWitness(path, at(10));
    await advanceWitness(path, at(7));
    assert.equal(readWitness(path)?.size, 10);
    await advanceWitness(path, at(12));
    assert.equal(readWitness(path)?.size, 12);
  });

  it('syncs the new witness to disk before it replaces the old one, then the directory holding it (regression: after a crash the witness could be empty or old)', async () => {
    const { path } = place();
    await advanceWitness(path, at(5));
    const steps = await observingSyncs(() => advanceWitness(path, at(9)));
    assert.deepEqual(
      steps.map((s) => (s.op === 'fsync' ? `fsync ${s.directory ? 'directory' : 'file'}` : `rename to ${s.to === path ? 'the witness' : s.to}`)),
      ['fsync file', 'rename to the witness', 'fsync directory'],
    );
    assert.equal(readWitness(path)?.size, 9);
  });

  describe('when it cannot replace the witness', () => {
    it('removes its temporary file when the rename fails (the witness path is a directory) and throws the errno error callers warn about (regression: the .tmp file was left behind)', async () => {
      const { dir, path } = place();
      mkdirSync(path);
      await assert.rejects(advanceWitness(path, at(5)), (e: NodeJS.ErrnoException) => typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code));
      assert.deepEqual(readdirSync(dir), ['audit-witness.json']);
    });

    it('removes its temporary file when the disk refuses to sync it, and keeps the old witness whole', async () => {
      const { dir, path } = place();
      await advanceWitness(path, at(5));
      const eio = Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', errno: -5, syscall: 'fsync' });
      await assert.rejects(observingSyncs(() => advanceWitness(path, at(9)), eio), { code: 'EIO' });
      assert.deepEqual(readdirSync(dir), ['audit-witness.json']);
      assert.equal(readWitness(path)?.size, 5);
    });
  });
});

describe('advanceWitness, when a symbolic link is planted at its temporary file\'s name', () => {
  it('writes nothing through it, and the witness is a file of its own (regression: the checkpoint overwrote the file the link named, and the link became the witness)', async () => {
    const { dir, path } = place();
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'keep me\n');
    symlinkSync(victim, `${path}.${process.pid}.tmp`);
    await advanceWitness(path, at(5));
    assert.equal(readFileSync(victim, 'utf8'), 'keep me\n');
    assert.ok(lstatSync(path).isFile());
    assert.equal(readWitness(path)?.size, 5);
    assert.deepEqual(readdirSync(dir).sort(), ['audit-witness.json', 'victim.txt']);
  });
});
