// Temporary state directories holding a policy directory, removed after the
// test file has run.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/** A policy directory's contents: `run.cedar`'s text, or its files (name → text). */
export type PolicySet = string | Record<string, string>;

/** Makes a fresh state directory (`corral-PREFIX-…`) whose `policies/` holds `policy`; the caller removes it. */
export function policyStateDir(prefix: string, policy: PolicySet): string {
  const dir = mkdtempSync(join(tmpdir(), `corral-${prefix}-`));
  mkdirSync(join(dir, 'policies'));
  for (const [name, text] of Object.entries(typeof policy === 'string' ? { 'run.cedar': policy } : policy)) writeFileSync(join(dir, 'policies', name), text);
  return dir;
}

/** Returns a maker of fresh state directories (`corral-PREFIX-…`) whose `policies/run.cedar` is `policy`, or whose policy directory holds `policy`'s files (name → text). */
export function policyStateDirs(prefix: string, policy: PolicySet): () => string {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = policyStateDir(prefix, policy);
    dirs.push(dir);
    return dir;
  };
}
