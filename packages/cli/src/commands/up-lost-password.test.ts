// `corral up` prints the admin password once, on the first start, and keeps
// only its hash: when standard output cannot take it (its reader went away),
// it says so on stderr and, once stopped, exits 3 rather than 0 — in words
// and under --json alike.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startUp } from '../../test/corral-up.ts';

const root = join(tmpdir(), `corral-up-lost-${randomUUID().slice(0, 8)}`);
mkdirSync(root);
after(() => rmSync(root, { recursive: true, force: true }));

/** Resolves once `read()` matches `pattern`; rejects after `timeoutMs`. */
async function until(read: () => string, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!pattern.test(read())) {
    if (performance.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${read()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('corral up, when the admin password cannot reach standard output (its reader went away)', { timeout: 240_000 }, () => {
  for (const [mode, args] of [
    ['in words', []],
    ['under --json (regression: it was printed as any other output: nothing said, exit 0)', ['--json']],
  ] as const) {
    it(`${mode}: says on stderr that it is lost and how to set a new one, and exits 3 once stopped (regression: exit 0)`, async () => {
      const up = startUp(join(root, args.length > 0 ? 'json' : 'words'), ['--port', '0', '--no-console', ...args]);
      try {
        // The reader goes away before anything is printed.
        up.child.stdout!.destroy();
        await until(up.stderr, /ready in \d+ ms/);
        await until(up.stderr, /the admin password.* did not reach standard output/);
        assert.match(up.stderr(), /corral users passwd admin/);
        assert.equal(await up.stop('SIGINT'), 3, up.stderr());
      } finally {
        up.child.kill('SIGKILL');
      }
    });
  }
});
