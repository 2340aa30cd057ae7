// `npm run bench`: every benchmark of every package, one after another (never
// in parallel: they would measure each other). Each prints its figures and
// writes bench/results/NAME.json. Arguments filter by file name.
import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const filters = process.argv.slice(2);
const files = globSync(['packages/*/bench/*.bench.ts', 'bench/*.bench.ts'], { cwd: root })
  .sort()
  .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)));

let failed = 0;
for (const file of files) {
  process.stdout.write(`\n# ${relative(root, join(root, file))}\n`);
  const r = spawnSync(process.execPath, [file], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    process.stdout.write(`# ${file} failed (exit ${r.status ?? r.signal})\n`);
  }
}
process.stdout.write(`\n${files.length - failed} benchmarks ran, ${failed} failed\n`);
process.exit(failed === 0 ? 0 : 1);
