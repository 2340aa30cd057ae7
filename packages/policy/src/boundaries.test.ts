// Dependencies point one way: the policy decision point knows nothing of
// identity, audit or the CLI (they compose it), and identity knows nothing
// of policy or audit. This test fails when a source file imports across.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const PACKAGES = fileURLToPath(new URL('../../', import.meta.url));
const RULES: Record<string, RegExp> = {
  policy: /from ['"]@corral\/(?!policy['"])/,
  identity: /from ['"]@corral\/(?!identity['"])/,
};

function sources(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f));
}

describe('package boundaries', () => {
  for (const [pkg, forbidden] of Object.entries(RULES)) {
    it(`@corral/${pkg} imports no other Corral package`, () => {
      const offenders = sources(join(PACKAGES, pkg, 'src')).filter((f) => forbidden.test(readFileSync(f, 'utf8')));
      assert.deepEqual(offenders, []);
    });
  }

  it('@corral/policy and @corral/identity export only named bindings from src/index.ts', () => {
    for (const pkg of Object.keys(RULES)) {
      const index = readFileSync(join(PACKAGES, pkg, 'src', 'index.ts'), 'utf8');
      assert.doesNotMatch(index, /export \*/);
    }
  });
});
