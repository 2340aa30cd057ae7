// The state directories a sandbox Corral starts is kept out of, besides its own.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { hiddenState } from './state-dir.ts';

describe('the state directories a sandbox is kept out of (hiddenState)', () => {
  const home = process.env.HOME;
  afterEach(() => {
    if (home === undefined) delete process.env.HOME;
    else process.env.HOME = home;
  });

  it("keeps out the account's own ~/.corral when HOME names another folder (a service's), beside HOME's", () => {
    const other = mkdtempSync(join(tmpdir(), 'corral-service-home-'));
    try {
      process.env.HOME = other;
      const { others } = hiddenState(join(other, 'state'));
      assert.ok(others.includes(join(other, '.corral')), JSON.stringify(others));
      assert.ok(others.includes(join(userInfo().homedir, '.corral')), JSON.stringify(others));
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});
