// The trust boundary, enforced: the code an auditor relies on (records,
// Merkle proofs, checkpoints, verification, OCSF mapping) imports no file
// system, network or database; only store/, io/ and log/ do I/O.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const PURE = ['record', 'merkle', 'checkpoint', 'verify'];
const PURE_FILES = ['export/ocsf.ts', 'errors.ts'];
const IO = /from '(node:(fs|net|http|https|http2|dgram|dns|tls|sqlite|child_process|worker_threads)(\/promises)?|fs|pg|[^']*\/(store|io|log)\/[^']*)'/;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [join(dir, e.name)] : []));
}

describe('the verifier and primitives', () => {
  const files = [...PURE.flatMap((d) => sources(join(import.meta.dirname, d))), ...PURE_FILES.map((f) => join(import.meta.dirname, f))];
  it('are found', () => assert.ok(files.length >= 10));
  for (const file of files) {
    it(`${file.slice(import.meta.dirname.length + 1)} imports no file system, network or store`, () => {
      const bad = readFileSync(file, 'utf8').split('\n').filter((l) => /^\s*(import|export|} from)\b/.test(l) && IO.test(l));
      assert.deepEqual(bad, []);
    });
  }
});
