// `corral up` on a later start names the login it keeps as the console's
// administrator: admin, or, once an administrator removed admin, another
// login holding the admin role.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Identity } from '@corral/identity';
import { startUp } from '../../test/corral-up.ts';

const root = join(tmpdir(), `corral-up-kept-admin-${randomUUID().slice(0, 8)}`);
mkdirSync(root);
after(() => rmSync(root, { recursive: true, force: true }));

describe('corral up, when admin was removed and another login holds the admin role', { timeout: 240_000 }, () => {
  it('names that login and how to set its password (regression: it said to sign in as admin and to run corral users passwd admin, a login that no longer exists)', async () => {
    const state = join(root, 'state');
    const first = startUp(state, ['--port', '0', '--no-console']);
    await first.waitFor(/password: \S+\n/, 120_000);
    assert.equal(await first.stop('SIGINT'), 0, first.stderr());
    const identity = Identity.open(state);
    try {
      await identity.localUsers.create('alice', 'a-long-password-for-alice-1', ['admin']);
      identity.localUsers.remove('admin');
    } finally {
      identity.close();
    }
    const second = startUp(state, ['--port', '0', '--no-console']);
    try {
      const line = (await second.waitFor(/^sign in as .*\n/m, 120_000))[0];
      assert.match(line, /^sign in as alice \(.*corral users passwd alice\)\n$/);
      assert.doesNotMatch(second.stdout(), /\badmin with password|passwd admin\b/);
    } finally {
      assert.equal(await second.stop('SIGINT'), 0, second.stderr());
    }
  });
});
