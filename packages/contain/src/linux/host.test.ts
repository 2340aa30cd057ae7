import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { hostCapabilities, which } from './host.ts';

describe('the programs Corral runs on the host to build and limit a sandbox', () => {
  // A folder early on PATH that a sandbox may write: a project's node_modules/.bin or an activated .venv/bin.
  function planted(name: string): { dir: string; restore: () => void } {
    const dir = mkdtempSync(join(tmpdir(), 'corral-path-'));
    writeFileSync(join(dir, name), '#!/bin/sh\nexec "$@"\n', { mode: 0o755 });
    const path = process.env.PATH;
    process.env.PATH = `${dir}:${path ?? ''}`;
    return { dir, restore: () => void (process.env.PATH = path) };
  }

  for (const name of ['bwrap', 'prlimit', 'gcc']) {
    it(`come from the system folders before a ${name} planted earlier on PATH`, { skip: !existsSync(`/usr/bin/${name}`) && `no /usr/bin/${name} here` }, () => {
      const { dir, restore } = planted(name);
      try {
        const found = which(name);
        assert.ok(found !== undefined && !found.startsWith(dir), `${found} was taken from PATH`);
      } finally {
        restore();
      }
    });
  }

  it('so bubblewrap is the system one, whatever PATH holds', { skip: !existsSync('/usr/bin/bwrap') && 'no /usr/bin/bwrap here' }, () => {
    const { dir, restore } = planted('bwrap');
    try {
      assert.ok(!hostCapabilities(true).bwrap.path?.startsWith(dir));
    } finally {
      restore();
    }
  });
});
