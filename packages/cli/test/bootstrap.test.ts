// The README's commands start with scripts/bootstrap.mjs: it installs what a
// task needs, then runs it. Run here from a copy in a root of its own, with
// an `npm` on PATH that only says what npm says.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const BOOTSTRAP = fileURLToPath(new URL('../../../scripts/bootstrap.mjs', import.meta.url));
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('the bootstrap, installing the npm dependencies before a task', () => {
  it("writes what npm prints to stderr, so that stdout holds the task's output alone (regression: `npm start -- --json` printed npm's \"added 147 packages\" ahead of its JSON)", () => {
    const root = mkdtempSync(join(tmpdir(), 'corral-bootstrap-'));
    dirs.push(root);
    mkdirSync(join(root, 'scripts'));
    copyFileSync(BOOTSTRAP, join(root, 'scripts', 'bootstrap.mjs'));
    writeFileSync(join(root, 'package-lock.json'), '{}\n');
    // The task: a program that prints one line, where the CLI would be.
    mkdirSync(join(root, 'packages', 'cli', 'src'), { recursive: true });
    writeFileSync(join(root, 'packages', 'cli', 'src', 'main.ts'), "process.stdout.write('the task\\n');\n");
    const bin = join(root, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'npm'), '#!/bin/sh\necho "added 147 packages in 3s"\nmkdir -p node_modules && touch node_modules/.package-lock.json\n');
    chmodSync(join(bin, 'npm'), 0o755);
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'bootstrap.mjs'), 'corral'], { cwd: root, encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, CI: '' } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'the task\n');
    assert.match(r.stderr, /corral: installing npm dependencies \(npm install\) …\nadded 147 packages in 3s\n/);
  });
});
