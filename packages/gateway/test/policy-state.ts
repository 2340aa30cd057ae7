// Temporary state directories holding one Cedar policy file, removed after
// the test file has run.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/** Returns a maker of fresh state directories (`corral-PREFIX-…`) whose `policies/run.cedar` is `policy`. */
export function policyStateDirs(prefix: string, policy: string): () => string {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), `corral-${prefix}-`));
    dirs.push(dir);
    mkdirSync(join(dir, 'policies'));
    writeFileSync(join(dir, 'policies', 'run.cedar'), policy);
    return dir;
  };
}
