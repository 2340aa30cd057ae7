import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NotRegularFile, readBoundedText, SMALL_FILE_LIMIT, TooLarge } from './bounded-read.ts';
import { readCheckpointFile } from './checkpoint-file.ts';
import { loadPublicKeyFile } from './key-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'corral-bounded-read-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('reading a small file a person names', () => {
  it('reads a file of exactly the bound, and refuses one byte more', () => {
    const at = join(dir, 'at');
    writeFileSync(at, 'a'.repeat(SMALL_FILE_LIMIT));
    assert.equal(readBoundedText(at).length, SMALL_FILE_LIMIT);
    writeFileSync(at, 'a'.repeat(SMALL_FILE_LIMIT + 1));
    assert.throws(() => readBoundedText(at), TooLarge);
  });

  it('refuses /dev/zero as a device without reading it (regression: corral audit verify --public-key /dev/zero read for ever)', () => {
    assert.throws(() => readBoundedText('/dev/zero'), (e) => e instanceof NotRegularFile && e.kind === 'a device');
    assert.throws(() => loadPublicKeyFile('/dev/zero'), (e: Error & { code?: string }) => e.code === 'AUDIT_KEY_UNAVAILABLE' && /\/dev\/zero: it is a device, not a regular file/.test(e.message));
    assert.throws(() => readCheckpointFile('/dev/zero'), (e: Error & { code?: string }) => e.code === 'AUDIT_BAD_ARGUMENT' && /\/dev\/zero: it is a device, not a regular file/.test(e.message));
  });

  it('refuses a directory as not a regular file', () => {
    assert.throws(() => readBoundedText(dir), (e) => e instanceof NotRegularFile && e.kind === 'a directory');
    assert.throws(() => loadPublicKeyFile(dir), { code: 'AUDIT_KEY_UNAVAILABLE' });
    assert.throws(() => readCheckpointFile(dir), { code: 'AUDIT_BAD_ARGUMENT' });
  });

  it('refuses a socket file as not a regular file', async () => {
    const path = join(dir, 'key.sock');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      assert.throws(() => readBoundedText(path), (e) => e instanceof NotRegularFile && e.kind === 'a socket');
      assert.throws(() => loadPublicKeyFile(path), (e: Error & { code?: string }) => e.code === 'AUDIT_KEY_UNAVAILABLE' && /it is a socket, not a regular file/.test(e.message));
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('passes the file system\'s own error on as it is', () => {
    assert.throws(() => readBoundedText(join(dir, 'missing')), { code: 'ENOENT' });
  });
});

describe('when --public-key or --checkpoint names a FIFO no one writes to', () => {
  // Run in a child process: on a blocking open the test would hang the runner itself, not fail.
  const readIn = (fn: 'loadPublicKeyFile' | 'readCheckpointFile', path: string) => {
    const module = new URL(fn === 'loadPublicKeyFile' ? './key-file.ts' : './checkpoint-file.ts', import.meta.url).href;
    const script = `import(${JSON.stringify(module)}).then((m) => m.${fn}(${JSON.stringify(path)})).then(() => console.log('read'), (e) => console.log(e.code + ' ' + e.message));`;
    return spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
  };
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);

  it('refuses it as a public key with AUDIT_KEY_UNAVAILABLE naming it a FIFO, without blocking (regression: the open waited for a writer for ever)', () => {
    const r = readIn('loadPublicKeyFile', fifo);
    assert.equal(r.signal, null, 'the read blocked until the child was killed');
    assert.match(r.stdout, /^AUDIT_KEY_UNAVAILABLE cannot read the public key .*fifo: it is a FIFO \(named pipe\), not a regular file/);
  });

  it('refuses it as a kept checkpoint with AUDIT_BAD_ARGUMENT naming it a FIFO, without blocking', () => {
    const r = readIn('readCheckpointFile', fifo);
    assert.equal(r.signal, null, 'the read blocked until the child was killed');
    assert.match(r.stdout, /^AUDIT_BAD_ARGUMENT cannot read the checkpoint .*fifo: it is a FIFO \(named pipe\), not a regular file/);
  });
});
