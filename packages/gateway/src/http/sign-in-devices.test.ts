// A device token vouches for a browser that knew a local user's password: its
// tries count for it alone, past a lockout of the username. Only while that
// password is still the user's, though, and however many tokens a username's
// browsers hold, their tries together are bounded. Every sign-in mints a
// token, so whoever once knew a password could otherwise bank any number and
// keep guessing with them after an admin set a new one.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it, mock } from 'node:test';
import { startTestGateway, TEST_PASSWORD, type TestGateway } from './testing.ts';

const NEW_PASSWORD = 'the password an admin set';

describe('device tokens of a local user', () => {
  let t: TestGateway;
  /** How far the gateway's clock is ahead of this machine's: it moves on, as a real clock does, and a test skips five minutes by adding to it. */
  let skew = 0;
  /** When set, the gateway's clock stands still there: every change and sign-in is made within that millisecond. */
  let stopped: number | undefined;
  before(async () => {
    t = await startTestGateway({ now: () => stopped ?? Date.now() + skew });
  });
  // Each test starts with every lockout of the one before over.
  afterEach(() => {
    stopped = undefined;
    skew += 5 * 60_000 + 1000;
  });
  after(() => t.close());

  const signIn = (username: string, password: string, device?: string) => t.anonymous().post('/api/session', { username, password }, device === undefined ? {} : { 'x-corral-device': device });
  /** Device tokens from `count` sign-ins as `username`. */
  async function mint(username: string, password: string, count: number): Promise<string[]> {
    const tokens: string[] = [];
    for (let i = 0; i < count; i++) {
      const answer = await signIn(username, password);
      assert.equal(answer.status, 200);
      tokens.push(answer.body.device as string);
    }
    return tokens;
  }
  /** Each password tried meanwhile found wrong, without the cost of hashing it (the throttle counts a try before it is checked). */
  async function guessing<T>(run: () => Promise<T>): Promise<T> {
    const wrong = mock.method(t.gw.identity.localUsers, 'verify', async () => null);
    try {
      return await run();
    } finally {
      wrong.mock.restore();
    }
  }
  /** Fails five times as `username` without a token, which locks it out. */
  const lockOut = (username: string) =>
    guessing(async () => {
      for (let i = 0; i < 5; i++) assert.equal((await signIn(username, `someone guessing ${i}`)).status, 401);
      assert.equal((await signIn(username, 'someone guessing 5')).status, 429);
    });

  describe('when an admin sets a new password (corral users passwd)', () => {
    it('counts the tokens minted under the old one as no device: with the username locked out, each is refused at once (regression: each of 4 gave 5 more guesses, 20 in all, past the lockout)', async () => {
      await t.gw.identity.localUsers.create('alice', TEST_PASSWORD, ['admin']);
      const old = await mint('alice', TEST_PASSWORD, 4);
      await t.gw.identity.localUsers.setPassword('alice', NEW_PASSWORD);
      await lockOut('alice');
      for (const token of old) {
        for (const guess of ['g0', 'g1']) assert.equal((await signIn('alice', guess, token)).status, 429, 'an old token is no device');
      }
      assert.equal((await signIn('alice', NEW_PASSWORD, old[0])).status, 429, 'the new password waits too: the lockout holds');
    });

    it('counts them as no device when it is set within the millisecond the user was made in (regression: their time of change stayed the same, and they kept vouching)', async () => {
      stopped = Date.now() + skew;
      await t.gw.identity.localUsers.create('dana', TEST_PASSWORD, ['viewer']);
      const [old] = await mint('dana', TEST_PASSWORD, 1);
      await t.gw.identity.localUsers.setPassword('dana', NEW_PASSWORD);
      assert.equal(t.gw.identity.localUsers.get('dana').updatedAt, new Date(stopped).toISOString());
      await lockOut('dana');
      assert.equal((await signIn('dana', 'a guess', old)).status, 429, 'an old token is no device');
    });

    it('lets a token minted under the new password through the lockout', async () => {
      const [fresh] = await mint('alice', NEW_PASSWORD, 1);
      await lockOut('alice');
      assert.equal((await signIn('alice', NEW_PASSWORD, fresh)).status, 200);
    });
  });

  describe('when the user is removed and another made under the same name', () => {
    it("counts the first one's tokens as no device of the second's (regression: they gave the first tries at the second's password, past its lockout)", async () => {
      await t.gw.identity.localUsers.create('bob', TEST_PASSWORD, ['viewer']);
      const [first] = await mint('bob', TEST_PASSWORD, 1);
      t.gw.identity.localUsers.remove('bob');
      await t.gw.identity.localUsers.create('bob', NEW_PASSWORD, ['approver']);
      await lockOut('bob');
      assert.equal((await signIn('bob', 'a guess at the new bob', first)).status, 429);
    });
  });

  describe('when one username holds many current tokens', () => {
    it('counts their tries together, 15 in 5 minutes, whichever token each comes with (regression: every sign-in minted a token with 5 more)', async () => {
      await t.gw.identity.localUsers.create('carol', TEST_PASSWORD, ['viewer']);
      const tokens = await mint('carol', TEST_PASSWORD, 4);
      const statuses = await guessing(async () => {
        const seen: number[] = [];
        for (const token of tokens) for (let i = 0; i < 5; i++) seen.push((await signIn('carol', `guess ${i}`, token)).status);
        return seen;
      });
      assert.deepEqual(statuses, [...Array<number>(15).fill(401), ...Array<number>(5).fill(429)]);
      assert.equal((await signIn('carol', TEST_PASSWORD)).status, 200, 'without a token, carol signs in: her name was not locked by her devices');
    });
  });
});
