// What every change of a local login does to it: its generation (what a
// console session is tied to) moves on, however close together the changes;
// and no change leaves the console without a login that can sign in holding
// the admin role.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { Identity } from './identity.ts';

const PASSWORD = 'a password of some length';
/** A clock that never moves: every change is made within one millisecond. */
const stopped = () => Date.UTC(2026, 0, 1);

/** Runs `use` on a store in a new state directory (in `dir` when given), closed afterwards. */
async function withStore<T>(use: (identity: Identity) => Promise<T> | T, options: { now?: () => number; dir?: string } = {}): Promise<T> {
  const identity = Identity.open(options.dir ?? tempDir('corral-users-changes-'), options.now ? { now: options.now } : {});
  try {
    return await use(identity);
  } finally {
    identity.close();
  }
}

describe("a local login's generation", () => {
  it('moves on at every change made within one millisecond, password, email and roles alike, while its time of change stays (regression: sessions compared that time only)', () =>
    withStore(
      async (identity) => {
        const users = identity.localUsers;
        const made = await users.create('alice', PASSWORD, ['approver']);
        const seen = [
          made.generation,
          (await users.setPassword('alice', 'another password of some length')).generation,
          users.setEmail('alice', 'alice@example.com').generation,
          users.setEmail('alice', null).generation,
          users.setRoles('alice', ['viewer']).generation,
        ];
        assert.deepEqual(seen, [...seen].sort((a, b) => a - b));
        assert.equal(new Set(seen).size, seen.length, 'each change has a generation of its own');
        assert.equal(users.get('alice').updatedAt, made.updatedAt);
      },
      { now: stopped },
    ));

  it('is one no login held before for a login removed and made again under its name within the millisecond', () =>
    withStore(
      async (identity) => {
        const first = await identity.localUsers.create('alice', PASSWORD, ['approver']);
        identity.localUsers.remove('alice');
        const again = await identity.localUsers.create('alice', PASSWORD, ['approver']);
        assert.equal(again.updatedAt, first.updatedAt);
        assert.ok(again.generation > first.generation);
      },
      { now: stopped },
    ));

  it('stays as it is at a refused change', () =>
    withStore(async (identity) => {
      const made = await identity.localUsers.create('alice', PASSWORD, ['admin']);
      assert.throws(() => identity.localUsers.setRoles('alice', ['viewer']), { code: 'IDENTITY_LAST_ADMIN' });
      assert.throws(() => identity.localUsers.setEmail('alice', 'not an address'), { code: 'IDENTITY_INPUT_INVALID' });
      assert.equal(identity.localUsers.get('alice').generation, made.generation);
    }));
});

describe('a store an older Corral made, whose local users have no generation column', () => {
  it('opens, gains the column, and its logins sign in as before; their next change gives a generation above theirs', async () => {
    const dir = tempDir('corral-users-changes-old-');
    await withStore((identity) => identity.localUsers.create('admin', PASSWORD, ['admin']), { dir });
    const db = new DatabaseSync(join(dir, 'identity.db'));
    db.exec("ALTER TABLE local_users DROP COLUMN generation; DELETE FROM meta WHERE key = 'local_users.generation'");
    db.close();

    await withStore(async (identity) => {
      const admin = await identity.localUsers.verify('admin', PASSWORD);
      assert.deepEqual([admin?.username, admin?.generation], ['admin', 0]);
      assert.ok(identity.localUsers.setEmail('admin', 'admin@example.com').generation > 0);
    }, { dir, now: stopped });
  });
});

describe('the last login that can sign in holding the admin role', () => {
  /** A store holding admin (admin), alice (approver) and, as an older Corral made it before the name was reserved, operator (admin). */
  async function seeded(use: (identity: Identity) => Promise<void> | void): Promise<void> {
    const dir = tempDir('corral-users-last-admin-');
    await withStore(async (identity) => {
      await identity.localUsers.create('admin', PASSWORD, ['admin']);
      await identity.localUsers.create('alice', PASSWORD, ['approver']);
      await identity.localUsers.create('soon-operator', PASSWORD, ['admin']);
    }, { dir });
    const db = new DatabaseSync(join(dir, 'identity.db'));
    db.exec("UPDATE local_users SET username = 'operator' WHERE username = 'soon-operator'");
    db.close();
    await withStore(use, { dir });
  }
  const roles = (identity: Identity) => identity.localUsers.list().map((u) => [u.username, u.roles]);

  it('keeps it when given other roles (IDENTITY_LAST_ADMIN; operator, which cannot sign in, counts for none), and keeps its roles', () =>
    seeded((identity) => {
      const before = roles(identity);
      assert.throws(() => identity.localUsers.setRoles('admin', ['viewer', 'approver']), (error: unknown) => {
        assert.equal((error as { code?: string }).code, 'IDENTITY_LAST_ADMIN');
        assert.match((error as Error).message, /the login admin is the only one that can sign in holding the admin role.*give another login the admin role first/);
        return true;
      });
      assert.deepEqual(roles(identity), before);
    }));

  it('is not removed (IDENTITY_LAST_ADMIN), and still signs in', () =>
    seeded(async (identity) => {
      assert.throws(() => identity.localUsers.remove('admin'), { code: 'IDENTITY_LAST_ADMIN' });
      assert.equal((await identity.localUsers.verify('admin', PASSWORD))?.username, 'admin');
    }));

  it('keeps admin given with other roles: that is no demotion', () =>
    seeded((identity) => assert.deepEqual(identity.localUsers.setRoles('admin', ['auditor', 'admin']).roles, ['admin', 'auditor'])));

  it('gives it up once another login that can sign in holds it, which then keeps it', () =>
    seeded((identity) => {
      identity.localUsers.setRoles('alice', ['admin']);
      assert.deepEqual(identity.localUsers.setRoles('admin', ['viewer']).roles, ['viewer']);
      assert.throws(() => identity.localUsers.remove('alice'), { code: 'IDENTITY_LAST_ADMIN' });
      identity.localUsers.setRoles('admin', ['admin']);
      assert.equal(identity.localUsers.remove('alice').username, 'alice');
    }));

  it('leaves operator, which cannot sign in, free to be removed, and logins without admin free to change', () =>
    seeded((identity) => {
      assert.equal(identity.localUsers.remove('operator').username, 'operator');
      assert.deepEqual(identity.localUsers.setRoles('alice', ['viewer']).roles, ['viewer']);
      assert.equal(identity.localUsers.remove('alice').username, 'alice');
    }));
});

describe('two demotions of the last two admins at once, from two threads on one store', () => {
  it('lets one through and refuses the other (IDENTITY_LAST_ADMIN): one admin is left, every round', async () => {
    const dir = tempDir('corral-users-last-admin-race-');
    await withStore(async (identity) => {
      await identity.localUsers.create('alice', PASSWORD, ['admin']);
      await identity.localUsers.create('bob', PASSWORD, ['admin']);
    }, { dir });
    // Each thread waits at `start` and demotes its login when the round begins, then answers how it went.
    const start = new Int32Array(new SharedArrayBuffer(4));
    const demoter = (username: string) =>
      new Worker(
        `const { parentPort, workerData } = require('node:worker_threads');
        import(workerData.identity).then(({ Identity }) => {
          const identity = Identity.open(workerData.dir);
          parentPort.on('message', (round) => {
            Atomics.wait(workerData.start, 0, round - 1);
            try {
              identity.localUsers.setRoles(workerData.username, ['viewer']);
              parentPort.postMessage('demoted');
            } catch (error) {
              parentPort.postMessage(error.code);
            }
          });
          parentPort.postMessage('ready');
        });`,
        { eval: true, workerData: { identity: new URL('./identity.ts', import.meta.url).href, dir, username, start } },
      );
    const threads = [demoter('alice'), demoter('bob')];
    const next = (worker: Worker) => new Promise<string>((resolve) => worker.once('message', resolve));
    try {
      assert.deepEqual(await Promise.all(threads.map(next)), ['ready', 'ready']);
      for (let round = 1; round <= 20; round++) {
        const answers = threads.map(next);
        for (const worker of threads) worker.postMessage(round);
        Atomics.store(start, 0, round);
        Atomics.notify(start, 0);
        assert.deepEqual((await Promise.all(answers)).sort(), ['IDENTITY_LAST_ADMIN', 'demoted'], `round ${round}`);
        await withStore((identity) => {
          assert.equal(identity.localUsers.list().filter((u) => u.roles.includes('admin')).length, 1);
          for (const name of ['alice', 'bob']) identity.localUsers.setRoles(name, ['admin']);
        }, { dir });
      }
    } finally {
      await Promise.all(threads.map((worker) => worker.terminate()));
    }
  });
});
