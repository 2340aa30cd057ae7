// The console's first page load in JavaScript, gzip, against the 300 KB
// budget (issue 6), from a fresh production build.
import { report } from '../../../bench/lib/stats.ts';
import { buildConsole } from '../src/index.ts';
import { measureFirstLoad } from '../src/first-load.ts';

const BUDGET_BYTES = 300 * 1024;
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

const load = measureFirstLoad(await buildConsole());
report(
  'console-bundle',
  { budgetBytes: BUDGET_BYTES, withinBudget: load.jsGzipBytes <= BUDGET_BYTES, ...load },
  [
    `first load JavaScript: ${kb(load.jsGzipBytes)} gzip (${kb(load.jsBytes)} raw), budget ${kb(BUDGET_BYTES)}: ${load.jsGzipBytes <= BUDGET_BYTES ? 'within' : 'OVER'}`,
    `first load CSS: ${kb(load.cssGzipBytes)} gzip`,
    ...load.files.map((f) => `${f.path}: ${kb(f.gzipBytes)} gzip`),
  ],
);
if (load.jsGzipBytes > BUDGET_BYTES) process.exitCode = 1;
