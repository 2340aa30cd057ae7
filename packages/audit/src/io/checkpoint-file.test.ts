import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { checkpointJson } from '../checkpoint/checkpoint.ts';
import { generateSigningKey, keyIdOf } from '../checkpoint/key.ts';
import { signCheckpoint } from '../checkpoint/sign.ts';
import { readCheckpointFile } from './checkpoint-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'corral-checkpoint-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const key = generateSigningKey();
const checkpoint = signCheckpoint(key.privateKey, { size: 5, root: 'ab'.repeat(32), time: '2026-01-01T00:00:00.000Z', keyId: keyIdOf(key.publicKey) });
let n = 0;
function file(text: string): string {
  const path = join(dir, `cp-${++n}.json`);
  writeFileSync(path, text);
  return path;
}

describe('readCheckpointFile', () => {
  it('reads a bare checkpoint (the witness file)', () => {
    assert.deepEqual(readCheckpointFile(file(JSON.stringify(checkpointJson(checkpoint)))), checkpoint);
  });
  it('reads the {"checkpoint":…} line of an export', () => {
    assert.deepEqual(readCheckpointFile(file(JSON.stringify({ checkpoint: checkpointJson(checkpoint) }))), checkpoint);
  });
  describe('refuses with AUDIT_CHECKPOINT_MALFORMED naming the file, never a SyntaxError or TypeError', () => {
    for (const [name, text] of [
      ['text that is not JSON', 'not json\n'],
      ['an empty file', ''],
      ['null', 'null\n'],
      ['an array', '[]'],
      ['{"checkpoint": null}', '{"checkpoint":null}'],
      ['a checkpoint without a signature', JSON.stringify({ ...checkpointJson(checkpoint), signature: undefined })],
      ['a version String() cannot print, {"toString":1} (regression: a TypeError and a stack trace)', JSON.stringify({ ...checkpointJson(checkpoint), v: { toString: 1 } })],
    ] as const) {
      it(`when it holds ${name}`, () => {
        const path = file(text);
        assert.throws(() => readCheckpointFile(path), (e: Error & { code?: string }) => e.code === 'AUDIT_CHECKPOINT_MALFORMED' && e.message.includes(path));
      });
    }
  });
  it('refuses any JSON in any member, objects whose toString is no function included, with AUDIT_CHECKPOINT_MALFORMED (property)', () => {
    const hostile = fc.oneof(fc.jsonValue(), fc.record({ toString: fc.jsonValue() }), fc.record({ toString: fc.jsonValue(), valueOf: fc.jsonValue() }));
    const good = checkpointJson(checkpoint);
    fc.assert(
      fc.property(fc.constantFrom(...Object.keys(good)), hostile, fc.boolean(), (member, value, wrapped) => {
        const body = { ...good, [member]: value };
        fc.pre(JSON.stringify(body[member]) !== JSON.stringify(good[member]));
        // Another size is another well-formed checkpoint (its signature is checked against a key, later): not this property's.
        fc.pre(!(member === 'size' && Number.isSafeInteger(value) && (value as number) >= 0));
        const path = file(JSON.stringify(wrapped ? { checkpoint: body } : body));
        assert.throws(() => readCheckpointFile(path), (e: Error & { code?: string }) => e.code === 'AUDIT_CHECKPOINT_MALFORMED');
      }),
      { numRuns: 200 },
    );
  });
  it('says what to keep when given a whole export instead of its last line, and names a byte-order mark', () => {
    const line = JSON.stringify({ checkpoint: checkpointJson(checkpoint) });
    for (const [text, says] of [
      [`{"export":{}}\n${line}\n`, /holds 2 lines.*tail -n 1/],
      [`\ufeff${line}\n`, /byte-order mark/],
    ] as const) {
      assert.throws(() => readCheckpointFile(file(text)), (e: Error & { code?: string }) => e.code === 'AUDIT_CHECKPOINT_MALFORMED' && says.test(e.message));
    }
  });
  it('refuses a file that cannot be read with AUDIT_BAD_ARGUMENT', () => {
    assert.throws(() => readCheckpointFile(join(dir, 'missing.json')), { code: 'AUDIT_BAD_ARGUMENT' });
  });
});
