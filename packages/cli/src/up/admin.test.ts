import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    assert.equal(made.username, 'admin');
    assert.equal(typeof made.password, 'string');
    assert.deepEqual((await ensureAdmin(identity)).password, undefined, 'kept the next time');
  });

  it('is not made again once an administrator removed it and another login holds the admin role (regression: the next corral up made admin again, with a new password shown)', async () => {
    await ensureAdmin(identity);
    await identity.localUsers.create('alice', 'a long enough password 1', ['admin']);
    identity.localUsers.remove('admin');
    assert.deepEqual(await ensureAdmin(identity), { username: 'alice' });
    assert.deepEqual(identity.localUsers.list().map((u) => u.username), ['alice']);
  });
});
