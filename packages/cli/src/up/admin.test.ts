import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Identity } from '@corral/identity';
import { ensureAdmin } from './admin.ts';

describe("corral up's first login", () => {
  let dir = '';
  let identity: Identity;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-up-admin-'));
    identity = Identity.open(dir);
  });
  afterEach(() => {
    identity.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is made, with a password handed back once, when no login holds the admin role', async () => {
    await identity.localUsers.create('viewer', 'a long enough password 1', ['viewer']);
    const made = await ensureAdmin(identity);
    assert.equal(made?.username, 'admin');
    assert.equal(typeof made?.password, 'string');
    assert.deepEqual(await ensureAdmin(identity), { username: 'admin' }, 'kept the next time');
  });

  it('is not made again once an administrator removed it and another login holds the admin role (regression: the next corral up made admin again, with a new password shown)', async () => {
    await ensureAdmin(identity);
    await identity.localUsers.create('alice', 'a long enough password 1', ['admin']);
    identity.localUsers.remove('admin');
    assert.deepEqual(await ensureAdmin(identity), { username: 'alice' });
    assert.deepEqual(identity.localUsers.list().map((u) => u.username), ['alice']);
  });

  it('is not the login admin once it lost the admin role and another login holds it: that one is kept (regression: admin was kept as the administrator whatever its roles)', async () => {
    await ensureAdmin(identity);
    await identity.localUsers.create('alice', 'a long enough password 1', ['admin']);
    identity.localUsers.setRoles('admin', ['viewer']);
    assert.deepEqual(await ensureAdmin(identity), { username: 'alice' });
    assert.deepEqual(identity.localUsers.list().map((u) => [u.username, u.roles]), [['admin', ['viewer']], ['alice', ['admin']]]);
  });

  describe('when admin lost the admin role and no login that can sign in holds it (as an older Corral left it: admin demoted, then the other admin removed)', () => {
    beforeEach(async () => {
      await ensureAdmin(identity);
      await identity.localUsers.create('alice', 'a long enough password 1', ['admin']);
      identity.localUsers.setRoles('admin', ['viewer']);
      const db = new DatabaseSync(join(dir, 'identity.db'));
      db.exec("DELETE FROM local_users WHERE username = 'alice'");
      db.close();
    });

    it('is none: admin is neither given the role back nor made again, nor another login made (regression: admin was kept as the administrator)', async () => {
      const before = identity.localUsers.get('admin');
      assert.equal(await ensureAdmin(identity), null);
      assert.deepEqual(identity.localUsers.list(), [before]);
    });

    it('is none though a login of the reserved name operator holds the admin role: it cannot sign in', async () => {
      await identity.localUsers.create('soon-operator', 'a long enough password 1', ['admin']);
      const db = new DatabaseSync(join(dir, 'identity.db'));
      db.exec("UPDATE local_users SET username = 'operator' WHERE username = 'soon-operator'");
      db.close();
      assert.equal(await ensureAdmin(identity), null);
    });
  });
});
