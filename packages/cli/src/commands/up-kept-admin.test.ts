// `corral up` on a later start names the login it keeps as the console's
// administrator: admin, or, once an administrator removed admin or took the
// admin role from it, another login holding the admin role; and says so when
// none that can sign in holds it, making or promoting none.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { Identity } from '@corral/identity';
import { until } from '../../../../scripts/testing/until.ts';
import { startUp } from '../../test/corral-up.ts';

const root = join(tmpdir(), `corral-up-kept-admin-${randomUUID().slice(0, 8)}`);
mkdirSync(root);
after(() => rmSync(root, { recursive: true, force: true }));

/** Runs corral up once on `state`, which makes admin, then changes its logins with `change`. */
async function upOnceThen(state: string, change: (identity: Identity) => Promise<void>): Promise<void> {
  const first = startUp(state, ['--port', '0', '--no-console']);
  await first.waitFor(/password: \S+\n/, 120_000);
  // Told it serves the API alone because it was asked to, not that the console is missing its build.
  assert.match(first.stdout(), /^\(--no-console: this URL serves the HTTP API only\)$/m);
  assert.equal(await first.stop('SIGINT'), 0, first.stderr());
  const identity = Identity.open(state);
  try {
    await change(identity);
  } finally {
    identity.close();
  }
}

describe('corral up, when admin was removed and another login holds the admin role', { timeout: 240_000 }, () => {
  it('names that login and how to set its password (regression: it said to sign in as admin and to run corral users passwd admin, a login that no longer exists)', async () => {
    const state = join(root, 'state');
    await upOnceThen(state, async (identity) => {
      await identity.localUsers.create('alice', 'a-long-password-for-alice-1', ['admin']);
      identity.localUsers.remove('admin');
    });
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

describe('corral up, when admin lost the admin role', { timeout: 360_000 }, () => {
  const state = join(root, 'demoted');

  it('names another login holding the admin role, not admin (regression: it named admin, which could administer nothing)', async () => {
    await upOnceThen(state, async (identity) => {
      await identity.localUsers.create('alice', 'a-long-password-for-alice-1', ['admin']);
      identity.localUsers.setRoles('admin', ['viewer']);
    });
    const second = startUp(state, ['--port', '0', '--no-console']);
    try {
      const line = (await second.waitFor(/^sign in as .*\n/m, 120_000))[0];
      assert.match(line, /^sign in as alice \(it holds the admin role; .*corral users passwd alice\)\n$/);
    } finally {
      assert.equal(await second.stop('SIGINT'), 0, second.stderr());
    }
  });

  it('and no login that can sign in holds it (as an older Corral left it: the other admin removed after), says so and how to give it back, making and promoting none', async () => {
    // Older Corrals removed the last admin without refusing it.
    const db = new DatabaseSync(join(state, 'identity.db'));
    db.exec("DELETE FROM local_users WHERE username = 'alice'");
    db.close();
    const third = startUp(state, ['--port', '0', '--no-console']);
    try {
      await third.waitFor(/^http:\/\/\S+\n/m, 120_000);
      await until('corral up says no login holds the admin role', () => /corral: no login that can sign in holds the admin role/.test(third.stderr()));
      assert.match(third.stderr(), /the login admin no longer holds it, .*To give it back: corral users roles admin --role admin/);
      assert.doesNotMatch(third.stdout(), /sign in as|password/);
    } finally {
      assert.equal(await third.stop('SIGINT'), 0, third.stderr());
    }
    const identity = Identity.open(state);
    try {
      assert.deepEqual(identity.localUsers.list().map((u) => [u.username, u.roles]), [['admin', ['viewer']]]);
    } finally {
      identity.close();
    }
  });
});
