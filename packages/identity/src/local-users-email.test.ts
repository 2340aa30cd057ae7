// A local console user's email address: what four eyes matches against the
// owners of agents (a username holds no `@`, so an owner who signed in with
// a local login was never recognised, and allowed their own agent's requests).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, it } from 'node:test';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { Identity } from './identity.ts';

const PASSWORD = 'a password of some length';

/** Runs `use` on a store in a new state directory, closed afterwards. */
async function withStore<T>(use: (identity: Identity) => Promise<T> | T, now?: () => number): Promise<T> {
  const dir = tempDir('corral-users-email-');
  const identity = Identity.open(dir, now ? { now } : {});
  try {
    return await use(identity);
  } finally {
    identity.close();
  }
}

describe("a local user's email address", () => {
  it('is kept when the user is made with one, and absent for a user made without', () =>
    withStore(async (identity) => {
      await identity.localUsers.create('alice', PASSWORD, ['approver'], { email: 'Alice@Example.com' });
      await identity.localUsers.create('bob', PASSWORD, ['approver']);
      assert.equal(identity.localUsers.get('alice').email, 'Alice@Example.com');
      assert.equal('email' in identity.localUsers.get('bob'), false);
      assert.deepEqual(identity.localUsers.list().map((u) => [u.username, u.email]), [['alice', 'Alice@Example.com'], ['bob', undefined]]);
      assert.equal((await identity.localUsers.verify('alice', PASSWORD))?.email, 'Alice@Example.com');
    }));

  it('is given, changed and taken away by setEmail, each a change of the user (a new updatedAt, so the sessions it holds end)', () => {
    let now = 1_000;
    return withStore(async (identity) => {
      await identity.localUsers.create('bob', PASSWORD, ['approver']);
      now = 2_000;
      assert.deepEqual([identity.localUsers.setEmail('bob', 'bob@example.com').email, identity.localUsers.get('bob').updatedAt], ['bob@example.com', new Date(2_000).toISOString()]);
      now = 3_000;
      assert.equal(identity.localUsers.setEmail('bob', 'robert@example.com').email, 'robert@example.com');
      now = 4_000;
      const cleared = identity.localUsers.setEmail('bob', null);
      assert.deepEqual(['email' in cleared, cleared.updatedAt], [false, new Date(4_000).toISOString()]);
    }, () => now);
  });

  describe('when it is not an address Corral keeps', () => {
    const refused: Array<[string, unknown, RegExp]> = [
      ['not an address', 'alice', /^email must be an address/],
      ['empty', '', /^email must be an address/],
      ['not text', 42, /^email must be an address/],
      ['longer than 254 characters', `${'a'.repeat(60)}@${['b', 'c', 'd', 'e'].map((l) => l.repeat(60)).join('.')}.example`, /^email must be at most 254 characters/],
      ['holding a line feed', 'alice@example.com\nbob@example.com', /^email must hold no control/],
      ['holding an escape sequence', 'alice\u001b[2J@example.com', /^email must hold no control/],
      ['holding a right-to-left override', 'alice\u202e@example.com', /^email must hold no control/],
      ['holding a space', 'alice @example.com', /^email must hold no control/],
      ['two addresses', 'alice@example.com,bob@example.com', /^email must be an address/],
    ];
    for (const [what, email, message] of refused) {
      it(`refuses one ${what} with IDENTITY_INPUT_INVALID naming the field, and keeps the user as they were`, () =>
        withStore(async (identity) => {
          await identity.localUsers.create('alice', PASSWORD, ['approver'], { email: 'alice@example.com' });
          assert.throws(() => identity.localUsers.setEmail('alice', email as string), (error: unknown) => {
            assert.equal((error as { code?: string }).code, 'IDENTITY_INPUT_INVALID');
            assert.match((error as Error).message, message);
            return true;
          });
          await assert.rejects(identity.localUsers.create('carol', PASSWORD, ['approver'], { email: email as string }), { code: 'IDENTITY_INPUT_INVALID' });
          assert.deepEqual(identity.localUsers.list().map((u) => [u.username, u.email]), [['alice', 'alice@example.com']]);
        }));
    }
  });

  it('is refused for a user the store does not hold (IDENTITY_USER_NOT_FOUND)', () =>
    withStore((identity) => assert.throws(() => identity.localUsers.setEmail('nobody', 'nobody@example.com'), { code: 'IDENTITY_USER_NOT_FOUND' })));
});

describe('a store an older Corral made, whose local users have no email column', () => {
  it('opens, gains the column, and its logins sign in as before, without an address until one is given', async () => {
    const dir = tempDir('corral-users-email-old-');
    const made = Identity.open(dir);
    await made.localUsers.create('admin', PASSWORD, ['admin']);
    made.close();
    const db = new DatabaseSync(join(dir, 'identity.db'));
    db.exec('ALTER TABLE local_users DROP COLUMN email');
    db.close();

    const identity = Identity.open(dir);
    try {
      const admin = await identity.localUsers.verify('admin', PASSWORD);
      assert.deepEqual([admin?.username, admin && 'email' in admin], ['admin', false]);
      assert.equal(identity.localUsers.setEmail('admin', 'admin@example.com').email, 'admin@example.com');
    } finally {
      identity.close();
    }
  });
});
