// Temporary state directories holding a policy directory, removed after the
// test file has run.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/** Returns a maker of fresh state directories (`corral-PREFIX-…`) whose `policies/run.cedar` is `policy`, or whose policy directory holds `policy`'s files (name → text). */
export function policyStateDirs(prefix: string, policy: string | Record<string, string>): () => string {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), `corral-${prefix}-`));
    dirs.push(dir);
    mkdirSync(join(dir, 'policies'));
    for (const [name, text] of Object.entries(typeof policy === 'string' ? { 'run.cedar': policy } : policy)) writeFileSync(join(dir, 'policies', name), text);
    return dir;
  };
}
