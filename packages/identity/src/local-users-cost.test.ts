// The cost local users' passwords are hashed with: raised to N=2^16 r=8 p=2,
// hashes stored with the old one (N=2^15 r=8 p=1) verified with theirs and
// made again on sign-in, a stored cost read as hostile input, and the hasher's
// bound on how many passwords are checked at once. Hashes run at the
// production cost: nothing here lowers it.
import assert from 'node:assert/strict';
import crypto, { randomBytes, scryptSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { Identity } from './identity.ts';
import { HASHER } from './password-hash.ts';

interface Cost {
  N: number;
  r: number;
  p: number;
}

type ScryptCallback = (error: Error | null, key: Buffer) => void;

/**
 * Runs `body` with node:crypto's scrypt wrapped (live ESM bindings follow it
 * through syncBuiltinESMExports): each call's cost is listed in `calls`, and
 * `hook` may fail a call (return an Error) or act before it runs.
 */
async function withScrypt<T>(body: (calls: Cost[]) => Promise<T>, hook: (cost: Cost) => Error | void = () => {}): Promise<T> {
  const original = crypto.scrypt;
  const calls: Cost[] = [];
  (crypto as { scrypt: unknown }).scrypt = (password: string, salt: Buffer, keylen: number, options: Cost, callback: ScryptCallback) => {
    const cost = { N: options.N, r: options.r, p: options.p };
    calls.push(cost);
    const refusal = hook(cost);
    if (refusal) return process.nextTick(callback, refusal, Buffer.alloc(0));
    return original(password, salt, keylen, options as crypto.ScryptOptions, callback);
  };
  syncBuiltinESMExports();
  try {
    return await body(calls);
  } finally {
    crypto.scrypt = original;
    syncBuiltinESMExports();
  }
}

/** A hash as Corral stored it before the cost was raised: scrypt N=2^15 r=8 p=1, written here from RFC 7914's parameters, not by Corral. */
function oldHash(password: string): string {
  const salt = randomBytes(16);
  const key = scryptSync(password.normalize('NFKC'), salt, 32, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 2 ** 20 });
  return ['scrypt', 2 ** 15, 8, 1, salt.toString('base64url'), key.toString('base64url')].join('$');
}

const PASSWORD = 'an older password of some length';

describe('local users\' password cost', () => {
  let dir: string;
  let identity: Identity;
  let db: DatabaseSync;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-users-cost-'));
    identity = Identity.open(dir);
    db = new DatabaseSync(join(dir, 'identity.db'));
  });
  after(() => {
    db.close();
    identity.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const stored = (username: string) => (db.prepare('SELECT password_hash FROM local_users WHERE username = ?').get(username) as { password_hash: string }).password_hash;
  const store = (username: string, hash: string) => db.prepare('UPDATE local_users SET password_hash = ? WHERE username = ?').run(hash, username);
  /** A user whose stored hash is one made with the old cost. */
  const oldUser = async (username: string) => {
    await identity.localUsers.create(username, 'a first password of some length', ['viewer']);
    const hash = oldHash(PASSWORD);
    store(username, hash);
    return hash;
  };

  describe('a new password', () => {
    it('is hashed once, with N=2^16 r=8 p=2, and stored with that cost beside it', async () => {
      await withScrypt(async (calls) => {
        await identity.localUsers.create('nina', 'nina password 1', ['viewer']);
        assert.deepEqual(calls, [{ N: 2 ** 16, r: 8, p: 2 }]);
      });
      assert.match(stored('nina'), /^scrypt\$65536\$8\$2\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    });
  });

  describe('a hash stored with the old cost (N=2^15 r=8 p=1)', () => {
    it('refuses a wrong password, hashing with the stored cost and then as much more as makes the current cost\'s work, and is left as it was', async () => {
      const hash = await oldUser('olga');
      await withScrypt(async (calls) => {
        assert.equal(await identity.localUsers.verify('olga', 'not the password at all'), null);
        assert.deepEqual(calls, [{ N: 2 ** 15, r: 8, p: 1 }, { N: 2 ** 15, r: 8, p: 3 }]);
      });
      assert.equal(stored('olga'), hash);
    });

    it('takes as much scrypt work (N·r·p) for a wrong password as an unknown username does, so that its time does not tell the user exists', async () => {
      // Before: a quarter of it (N=2^15 p=1 against the decoy's N=2^16 p=2), so a user whose hash is older
      // answered four times sooner than a name no one has, and could be found by timing sign-ins.
      await oldUser('oksana');
      const work = (calls: Cost[]) => calls.reduce((sum, c) => sum + c.N * c.r * c.p, 0);
      const unknown = await withScrypt(async (calls) => (await identity.localUsers.verify('nobody-at-all', 'not the password at all'), work(calls)));
      const older = await withScrypt(async (calls) => (await identity.localUsers.verify('oksana', 'not the password at all'), work(calls)));
      assert.equal(older, unknown);
    });

    it('signs its user in and is made again with the current cost, leaving updated_at (and so sessions) alone', async () => {
      const hash = await oldUser('oscar');
      const before = identity.localUsers.get('oscar');
      await withScrypt(async (calls) => {
        assert.equal((await identity.localUsers.verify('oscar', PASSWORD))?.username, 'oscar');
        assert.deepEqual(calls, [{ N: 2 ** 15, r: 8, p: 1 }, { N: 2 ** 15, r: 8, p: 3 }, { N: 2 ** 16, r: 8, p: 2 }]);
      });
      assert.notEqual(stored('oscar'), hash);
      assert.match(stored('oscar'), /^scrypt\$65536\$8\$2\$/);
      assert.deepEqual(identity.localUsers.get('oscar'), before);
      // The new hash is of the same password: it signs in, once hashed, and a wrong one does not.
      await withScrypt(async (calls) => {
        assert.equal((await identity.localUsers.verify('oscar', PASSWORD))?.username, 'oscar');
        assert.deepEqual(calls, [{ N: 2 ** 16, r: 8, p: 2 }]);
      });
      assert.equal(await identity.localUsers.verify('oscar', 'not the password at all'), null);
    });

    it('still signs its user in, and keeps the old hash, when making the new one fails', async () => {
      const hash = await oldUser('otto');
      await withScrypt(
        async () => assert.equal((await identity.localUsers.verify('otto', PASSWORD))?.username, 'otto'),
        (cost) => (cost.p === 2 ? new Error('scrypt: memory limit exceeded') : undefined),
      );
      assert.equal(stored('otto'), hash);
      // Upgraded at the next sign-in that can make it.
      assert.equal((await identity.localUsers.verify('otto', PASSWORD))?.username, 'otto');
      assert.match(stored('otto'), /^scrypt\$65536\$8\$2\$/);
    });

    it('does not overwrite a password changed while the new hash was being made', async () => {
      await oldUser('oona');
      const changed = oldHash('a password set meanwhile');
      await withScrypt(
        async () => assert.equal((await identity.localUsers.verify('oona', PASSWORD))?.username, 'oona'),
        // The re-hash's scrypt call: another process changes the password just as it starts.
        (cost) => void (cost.p === 2 && store('oona', changed)),
      );
      assert.equal(stored('oona'), changed);
    });
  });

  describe('a stored hash asking for an absurd cost, or malformed', () => {
    const salt = randomBytes(16).toString('base64url');
    const key = randomBytes(32).toString('base64url');
    const cases: Array<[string, string]> = [
      ['N above 2^20', `scrypt$${2 ** 21}$8$1$${salt}$${key}`],
      ['N of 2^30', `scrypt$${2 ** 30}$8$1$${salt}$${key}`],
      ['N not a power of two', `scrypt$65535$8$2$${salt}$${key}`],
      ['N of 1', `scrypt$1$8$1$${salt}$${key}`],
      ['p above 16', `scrypt$32768$8$17$${salt}$${key}`],
      ['p of 0', `scrypt$32768$8$0$${salt}$${key}`],
      ['r above 16', `scrypt$1024$17$1$${salt}$${key}`],
      ['over 256 MiB (N=2^20 r=8)', `scrypt$${2 ** 20}$8$1$${salt}$${key}`],
      ['over eight times the current work (N=2^18 r=8 p=16)', `scrypt$${2 ** 18}$8$16$${salt}$${key}`],
      ['N in hexadecimal', `scrypt$0x8000$8$1$${salt}$${key}`],
      ['N with a leading zero', `scrypt$032768$8$1$${salt}$${key}`],
      ['N in exponent form', `scrypt$3.2768e4$8$1$${salt}$${key}`],
      ['a field missing', `scrypt$32768$8$${salt}$${key}`],
      ['a field more', `scrypt$32768$8$1$${salt}$${key}$x`],
      ['another scheme', `argon2id$32768$8$1$${salt}$${key}`],
      ['a key of 16 bytes', `scrypt$32768$8$1$${salt}$${randomBytes(16).toString('base64url')}`],
      ['an empty salt', `scrypt$32768$8$1$$${key}`],
      ['a salt that is not base64url', `scrypt$32768$8$1$${salt.slice(0, -2)}+/$${key}`],
      ['nothing', ''],
    ];
    for (const [name, hash] of cases) {
      it(`refuses with IDENTITY_STORE_FAILED, hashing nothing: ${name}`, async () => {
        if (!identity.localUsers.list().some((u) => u.username === 'mallory')) await identity.localUsers.create('mallory', 'mallory password', ['viewer']);
        store('mallory', hash);
        await withScrypt(async (calls) => {
          await assert.rejects(identity.localUsers.verify('mallory', 'mallory password'), { code: 'IDENTITY_STORE_FAILED' });
          assert.deepEqual(calls, []);
        });
        assert.equal(stored('mallory'), hash);
      });
    }
  });

  describe('when as many passwords as the hasher takes are being checked', () => {
    it('refuses one more sign-in at once with IDENTITY_SIGN_IN_BUSY (retryable), hashing nothing, and takes it again once one is done', async () => {
      await identity.localUsers.create('queenie', 'queenie password', ['viewer']);
      // The hasher's 2 places and 14 queued, each held until released.
      const releases: Array<() => void> = [];
      const held = Array.from({ length: 16 }, () => HASHER.run(() => new Promise<void>((resolve) => releases.push(resolve))));
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(HASHER.load, { running: 2, waiting: 14 });
      await withScrypt(async (calls) => {
        await assert.rejects(identity.localUsers.verify('queenie', 'queenie password'), { code: 'IDENTITY_SIGN_IN_BUSY' });
        await assert.rejects(identity.localUsers.verify('nobody', 'queenie password'), { code: 'IDENTITY_SIGN_IN_BUSY' });
        await assert.rejects(identity.localUsers.create('quinn', 'quinn password', ['viewer']), { code: 'IDENTITY_SIGN_IN_BUSY' });
        assert.deepEqual(calls, []);
      });
      // One place freed: a sign-in waits its turn (queued), and is answered once the others are done.
      releases.shift()!();
      await new Promise((resolve) => setImmediate(resolve));
      const answer = identity.localUsers.verify('queenie', 'queenie password');
      while (releases.length > 0) {
        releases.shift()!();
        await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(held);
      assert.equal((await answer)?.username, 'queenie');
      assert.deepEqual(HASHER.load, { running: 0, waiting: 0 });
      assert.equal(identity.localUsers.list().some((u) => u.username === 'quinn'), false);
    });
  });
});
