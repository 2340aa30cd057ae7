import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readBoundedText, SMALL_FILE_LIMIT, TooLarge } from './bounded-read.ts';
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

  it('stops reading /dev/zero at the bound (regression: corral audit verify --public-key /dev/zero read for ever)', () => {
    assert.throws(() => readBoundedText('/dev/zero'), TooLarge);
    assert.throws(() => loadPublicKeyFile('/dev/zero'), (e: Error & { code?: string }) => e.code === 'AUDIT_KEY_UNAVAILABLE' && /\/dev\/zero: it is larger than 65536 bytes, not a public key/.test(e.message));
    assert.throws(() => readCheckpointFile('/dev/zero'), (e: Error & { code?: string }) => e.code === 'AUDIT_CHECKPOINT_MALFORMED' && /larger than 65536 bytes/.test(e.message));
  });

  it('passes the file system\'s own error on as it is', () => {
    assert.throws(() => readBoundedText(join(dir, 'missing')), { code: 'ENOENT' });
    assert.throws(() => readBoundedText(dir), { code: 'EISDIR' });
  });
});
