// A policy set over as large an org chart as a policy directory holds, what
// compiling a set on the gateway's thread costs (the stall the gateway once
// made every connection wait), and a version linked in as another process
// (or an older Corral) could link it: for the tests of sets compiled off the
// gateway's thread.
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { orgChart } from '../../../scripts/testing/org-chart.ts';
import { compileCandidate, type PolicyFile } from '../src/http/policy-control.ts';

/** 5,000 people in 1,000 groups (entities.json): as large an org chart as a policy directory's 1 MiB holds. */
export const LARGE_ORG = JSON.stringify(orgChart(5_000, { seed: 1, attributes: 'minimal' }));

/**
 * What compiling `files` on this thread takes now (the faster of two). A
 * stall under half of it is the compile gone off the thread; what stays
 * (reading the result in slices) took 24–122 ms on a loaded machine against
 * 0.4–1.6 s, so a quarter was too tight there.
 */
export function syncCompileMs(files: PolicyFile[]): number {
  let best = Infinity;
  for (let i = 0; i < 2; i++) {
    const start = performance.now();
    compileCandidate(files);
    best = Math.min(best, performance.now() - start);
  }
  return best;
}

/**
 * Points the policy directory's link at a version holding `files`, as
 * another process would, without checking them (a version written by an
 * older Corral, or edited where it lies).
 */
export function linkUnchecked(dir: string, files: PolicyFile[]): void {
  const version = join(`${dir}.versions`, `unchecked-${randomBytes(4).toString('hex')}`);
  mkdirSync(version, { recursive: true });
  for (const f of files) writeFileSync(join(version, f.name), f.text);
  // A plain directory is moved aside first, as the first activation does.
  if (!lstatSync(dir).isSymbolicLink()) renameSync(dir, join(`${dir}.versions`, 'previous-by-hand'));
  const link = `${dir}.link-test`;
  symlinkSync(join(basename(`${dir}.versions`), basename(version)), link);
  renameSync(link, dir);
}
