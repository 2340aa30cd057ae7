// Another Corral process holding the identity store's lock past the busy
// timeout is IDENTITY_STORE_BUSY, said in Corral's words, never SQLite's raw
// "database is locked" (which the CLI printed as an internal error, stack and all).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, it } from 'node:test';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { holdWriteLock } from '../../../scripts/testing/sqlite-lock.ts';
import { AgentRegistry } from './agents.ts';
import { openIdentityDb } from './db.ts';
import { IdentityError } from './errors.ts';
import { Identity } from './identity.ts';
import { KeyRing } from './keys.ts';
import { LocalUsers } from './local-users.ts';

/** A store made by Corral, and another connection (another process's, as far as SQLite can tell) holding its write lock. */
function lockedStore(): { dir: string; release(): void } {
  const dir = tempDir('corral-identity-busy-');
  Identity.open(dir).close();
  const other = new DatabaseSync(join(dir, 'identity.db'));
  other.exec('BEGIN IMMEDIATE');
  return {
    dir,
    release() {
      other.exec('ROLLBACK');
      other.close();
    },
  };
}

function assertBusy(error: unknown, dir: string): true {
  assert.ok(error instanceof IdentityError, String(error));
  assert.equal(error.code, 'IDENTITY_STORE_BUSY');
  assert.ok(error.message.includes(join(dir, 'identity.db')));
  return true;
}

describe('when another process holds the identity store', () => {
  it('Identity.open gives up after 5 s with IDENTITY_STORE_BUSY, naming the store', { timeout: 30_000 }, () => {
    // Before: a raw ERR_SQLITE_ERROR "database is locked" escaped, which corral printed as an internal error.
    const { dir, release } = lockedStore();
    try {
      const started = Date.now();
      assert.throws(() => Identity.open(dir), (error) => assertBusy(error, dir));
      assert.ok(Date.now() - started >= 4_900, 'it waited for the busy timeout first');
    } finally {
      release();
    }
  });

  it('Identity.open with a busyTimeoutMs gives up after that long, and so does a write to the store it opens', () => {
    // The gateway waits briefly: SQLite waits synchronously, and the gateway serves everyone from one thread.
    const dir = tempDir('corral-identity-busy-');
    const identity = Identity.open(dir, { busyTimeoutMs: 150 });
    const other = new DatabaseSync(join(dir, 'identity.db'));
    other.exec('BEGIN IMMEDIATE');
    try {
      let started = Date.now();
      assert.throws(() => Identity.open(dir, { busyTimeoutMs: 150 }), (error) => assertBusy(error, dir));
      assert.ok(Date.now() - started < 1_000, `open waited ${Date.now() - started} ms`);
      started = Date.now();
      assert.throws(() => identity.agents.create({ name: 'bot', process: 'p', owner: 'o@example.com' }), (error) => assertBusy(error, dir));
      const waited = Date.now() - started;
      assert.ok(waited >= 100 && waited < 1_000, `the write waited ${waited} ms`);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    assert.equal(identity.agents.create({ name: 'bot', process: 'p', owner: 'o@example.com' }).name, 'bot');
    identity.close();
  });

  it('Identity.open refuses a busyTimeoutMs that is not whole milliseconds, 0 or more', () => {
    const dir = tempDir('corral-identity-busy-');
    for (const busyTimeoutMs of [-1, 0.5, Number.NaN, Infinity]) {
      assert.throws(() => Identity.open(dir, { busyTimeoutMs }), { code: 'IDENTITY_INPUT_INVALID' }, String(busyTimeoutMs));
    }
  });

  describe('a write to an open store', () => {
    const writes: Array<[string, (db: DatabaseSync) => unknown]> = [
      ['creating an agent', (db) => new AgentRegistry(db).create({ name: 'bot', process: 'p', owner: 'o@example.com' })],
      ['rotating the signing key', (db) => new KeyRing(db).rotate(0)],
      ['making the first signing key', (db) => new KeyRing(db).signingKey()],
      ['creating a local user', (db) => new LocalUsers(db).create('admin', 'correct horse battery', ['admin'])],
      ['an SQL statement of its own', (db) => db.prepare("INSERT INTO meta (key, value) VALUES ('k', 'v')").run()],
    ];
    for (const [what, write] of writes) {
      it(`${what} is IDENTITY_STORE_BUSY, and succeeds when tried again once the lock is let go`, async () => {
        // Before: IDENTITY_STORE_FAILED ("cannot store the agent": nothing said another process held the store), or raw ERR_SQLITE_ERROR.
        const { dir, release } = lockedStore();
        const db = openIdentityDb(dir, { busyTimeoutMs: 50 });
        try {
          await assert.rejects(async () => write(db), (error) => assertBusy(error, dir));
          release();
          await write(db);
        } finally {
          db.close();
        }
      });
    }
  });

  it('reads go on while another process writes', () => {
    const { dir, release } = lockedStore();
    const db = openIdentityDb(dir, { busyTimeoutMs: 50 });
    try {
      assert.deepEqual(new AgentRegistry(db).list(), []);
    } finally {
      db.close();
      release();
    }
  });

  it("Identity.open creates a new store while another process holds the new file's write lock a moment (turning it to WAL was refused at once, IDENTITY_STORE_BUSY, without waiting)", async () => {
    const dir = tempDir('corral-identity-busy-');
    // Another process, not a connection of this one: Identity.open waits synchronously, and nothing here could let the lock go meanwhile.
    const holder = await holdWriteLock(join(dir, 'identity.db'), 300);
    try {
      Identity.open(dir).close();
    } finally {
      await holder.ended;
    }
  });

  it('any other SQLite error passes as it was', () => {
    const dir = tempDir('corral-identity-busy-');
    const db = openIdentityDb(dir);
    try {
      assert.throws(() => db.prepare('SELECT * FROM no_such_table'), { code: 'ERR_SQLITE_ERROR' });
    } finally {
      db.close();
    }
  });
});
