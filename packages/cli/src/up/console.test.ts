// Which console `corral up` serves: none without a build, the build when it is
// fresh, and a new one when the build is older than its sources.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { findConsole } from './console.ts';

const root = mkdtempSync(join(tmpdir(), 'corral-up-console-'));
after(() => rmSync(root, { recursive: true, force: true }));

function build(dir: string, fresh: boolean) {
  const calls: string[] = [];
  return { calls, build: { consoleDir: () => dir, consoleIsFresh: () => fresh, buildConsole: async () => (calls.push('build'), dir) } };
}

describe('the console corral up serves', () => {
  it('is none without a build: the HTTP API alone, nothing built', async () => {
    const { calls, build: b } = build(join(root, 'none'), false);
    assert.equal(await findConsole(b), undefined);
    assert.deepEqual(calls, []);
  });

  it('is the build when it is as new as its sources, and a new build when it is older (regression: a stale build was served after an upgrade)', async () => {
    const dir = join(root, 'dist');
    mkdirSync(dir);
    writeFileSync(join(dir, 'index.html'), '<!doctype html>');
    const fresh = build(dir, true);
    assert.equal(await findConsole(fresh.build), dir);
    assert.deepEqual(fresh.calls, []);
    const stale = build(dir, false);
    assert.equal(await findConsole(stale.build), dir);
    assert.deepEqual(stale.calls, ['build']);
  });
});
