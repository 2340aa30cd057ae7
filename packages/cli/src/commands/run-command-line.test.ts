// corral run with a command line no sandbox can be handed (the record's own limit aside: --no-audit).
import assert from 'node:assert/strict';
import { mkdtempSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { corral } from '../../test/corral.ts';

function policyFile(text: string): string {
  const file = join(realpathSync(mkdtempSync(join(tmpdir(), 'corral-cli-run-line-'))), 'policy.yaml');
  writeFileSync(file, text);
  return file;
}

describe('corral run --no-audit with a command line no sandbox can be handed', () => {
  it("exits 2 saying why, with --json an error document coded CONTAIN_BAD_COMMAND, and runs nothing (regression: 70,000 words reached the sandbox's launcher, which refused them, reported as the command's own exit 125)", async () => {
    const words = Array.from({ length: 70_000 }, (_, i) => String(i));
    const r = await corral(['run', '--no-audit', '--json', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/sh', '-c', 'echo RAN', 'sh', ...words]);
    assert.equal(r.code, 2, r.stderr);
    assert.doesNotMatch(r.stderr, /RAN/);
    assert.equal(JSON.parse(r.stdout).error.code, 'CONTAIN_BAD_COMMAND');
  });

  it('runs a command of more words than bubblewrap reads on its own command line, with every word', async () => {
    const words = Array.from({ length: 10_000 }, (_, i) => String(i));
    const r = await corral(['run', '--no-audit', '--policy', policyFile('runtime: [shell]\n'), '--', '/bin/sh', '-c', 'echo $#', 'sh', ...words]);
    assert.deepEqual([r.code, r.stdout], [0, '10000\n'], r.stderr);
  });
});
