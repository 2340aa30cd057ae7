// corral up's record of a completed first start: absent means "set up the
// example", present is read back, damaged is a usage error naming the file.
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CliFailure } from '../output.ts';
import { UP_MARKER, readMarker, writeMarker } from './state.ts';

describe("corral up's first-start marker", () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-marker-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is written whole and renamed into place: a link planted at up.json is replaced, never written through (regression: written in place)', () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'corral-marker-elsewhere-'));
    try {
      const own = mkdtempSync(join(dir, 'linked-'));
      writeFileSync(join(elsewhere, 'victim'), 'untouched');
      symlinkSync(join(elsewhere, 'victim'), join(own, UP_MARKER));
      writeMarker(own, { createdAt: '2026-11-25T00:00:00.000Z', example: 'invoice-intake' });
      assert.equal(readFileSync(join(elsewhere, 'victim'), 'utf8'), 'untouched');
      assert.equal(lstatSync(join(own, UP_MARKER)).isFile(), true);
      assert.deepEqual(readdirSync(own), [UP_MARKER], 'no temporary file left behind');
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('is absent before the first start and read back after it', () => {
    assert.equal(readMarker(dir), undefined);
    writeMarker(dir, { createdAt: '2026-11-25T00:00:00.000Z', example: 'invoice-intake' });
    assert.deepEqual(readMarker(dir), { createdAt: '2026-11-25T00:00:00.000Z', example: 'invoice-intake' });
  });

  it('refuses a damaged marker (not JSON, null, a field missing) as a usage error naming the file', () => {
    for (const text of ['{', 'null', JSON.stringify({ createdAt: 'x' })]) {
      writeFileSync(join(dir, UP_MARKER), text);
      assert.throws(() => readMarker(dir), (e: unknown) => e instanceof CliFailure && e.message.includes(join(dir, UP_MARKER)), text);
    }
  });
});
