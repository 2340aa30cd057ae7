// The sign-in throttle on its own, with a clock the test moves.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SignInThrottle } from './throttle.ts';

/** Local users' credentials (deviceCredential) as a test's identity store holds them, changed by the test. */
function store(credentials: Record<string, string>): (username: string) => string | undefined {
  return (username) => (Object.hasOwn(credentials, username) ? credentials[username] : undefined);
}

/** `count` failed tries, each for a fresh username from a fresh address (at most 30 from one address get tried). */
function flood(throttle: SignInThrottle, count: number): void {
  for (let i = 0; i < count; i++) assert.equal(throttle.attempt(`spray-${i}`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`), 0);
}

describe('the sign-in throttle', () => {
  describe('when many other usernames and addresses fail meanwhile', () => {
    it("keeps a locked-out username locked out (regression: 10,000 other failures pushed the oldest entries out, and with them a username's count)", () => {
      const clock = 1_000_000;
      const throttle = new SignInThrottle(() => clock);
      for (let i = 0; i < 5; i++) assert.equal(throttle.attempt('alice', '192.0.2.1'), 0);
      assert.ok(throttle.attempt('alice', '192.0.2.1') > 0);
      flood(throttle, 20_000);
      assert.ok(throttle.attempt('alice', '192.0.2.7') > 0, 'alice is still refused');
    });

    it('keeps a locked-out username locked out when the table fills with addresses far from their own limit (regression: 5 failures for a name ranked below 10 for an address, whose limit is 30)', () => {
      const clock = 1_000_000;
      const throttle = new SignInThrottle(() => clock);
      // 3,300 addresses, each failing two names five times: ten failures an address, a third of its limit.
      for (let a = 0; a < 3300; a++) {
        for (let i = 0; i < 10; i++) assert.equal(throttle.attempt(`name-${a}-${i % 2}`, `172.16.${a >> 8}.${a & 255}`), 0);
      }
      for (let i = 0; i < 5; i++) assert.equal(throttle.attempt('alice', '192.0.2.1'), 0);
      flood(throttle, 200);
      assert.ok(throttle.attempt('alice', '192.0.2.7') > 0, 'alice is still refused');
    });

    it('keeps a username locked out last, behind the lockouts that end sooner (regression: the newest lockout went first, so locking alice after 9,800 others and a little flood unlocked her)', () => {
      const clock = 1_000_000;
      const throttle = new SignInThrottle(() => clock);
      // 1,400 addresses, each locking out six names: every entry of the table at its limit.
      for (let a = 0; a < 1400; a++) {
        for (let i = 0; i < 30; i++) assert.equal(throttle.attempt(`name-${a}-${i % 6}`, `172.16.${a >> 8}.${a & 255}`), 0);
      }
      for (let i = 0; i < 5; i++) assert.equal(throttle.attempt('alice', '192.0.2.1'), 0);
      flood(throttle, 200);
      assert.ok(throttle.attempt('alice', '192.0.2.7') > 0, 'alice is still refused');
    });

    it('keeps a username’s failures short of a lockout too, so that each flood does not buy more guesses', () => {
      const clock = 1_000_000;
      const throttle = new SignInThrottle(() => clock);
      for (let i = 0; i < 4; i++) assert.equal(throttle.attempt('alice', '192.0.2.1'), 0);
      flood(throttle, 20_000);
      assert.equal(throttle.attempt('alice', '192.0.2.1'), 0);
      assert.ok(throttle.attempt('alice', '192.0.2.1') > 0, 'the sixth try in five minutes is refused');
    });
  });

  describe('when one network tries from many of its addresses', () => {
    it('counts an IPv6 /64 as one address: 30 failures from ::1 to ::1e of one /64 hold up the rest of it, not another /64', () => {
      const throttle = new SignInThrottle(() => 1_000_000);
      for (let i = 1; i <= 30; i++) assert.equal(throttle.attempt(`guess-${i}`, `2001:db8:0:7::${i.toString(16)}`), 0);
      assert.ok(throttle.attempt('alice', '2001:db8:0:7:ffff:ffff:ffff:ffff') > 0);
      assert.ok(throttle.attempt('alice', '2001:db8::7:0:0:0:9') > 0, 'the same /64 spelled another way');
      assert.equal(throttle.attempt('alice', '2001:db8:0:8::1'), 0);
    });

    it('counts an IPv4 address the same whether or not it arrives mapped into IPv6 (::ffff:192.0.2.1)', () => {
      const throttle = new SignInThrottle(() => 1_000_000);
      for (let i = 0; i < 15; i++) assert.equal(throttle.attempt(`guess-${i}`, '192.0.2.1'), 0);
      for (let i = 15; i < 30; i++) assert.equal(throttle.attempt(`guess-${i}`, '::ffff:192.0.2.1'), 0);
      assert.ok(throttle.attempt('alice', '192.0.2.1') > 0);
    });
  });

  describe('when someone keeps failing for a username its owner signs in with', () => {
    it('lets a browser its owner signed in from before try on, counting its tries for that device alone (regression: one wrong password a minute for admin, from anywhere, kept admin out)', () => {
      let clock = 1_000_000;
      const users = { admin: 'local:admin\n2026-01-01T00:00:00.000Z', bob: 'local:bob\n2026-01-01T00:00:00.000Z' };
      const throttle = new SignInThrottle(() => clock, store(users));
      assert.equal(throttle.attempt('admin', '127.0.0.1'), 0);
      const device = throttle.succeed('admin', '127.0.0.1', users.admin);
      for (let i = 0; i < 40; i++) throttle.attempt('admin', '127.0.0.1');
      assert.ok(throttle.attempt('admin', '127.0.0.1') > 0, 'without the token, admin is locked out');
      assert.equal(throttle.attempt('admin', '127.0.0.1', ['junk', device]), 0, 'with it, admin may try');
      // The device's own failures lock it alone, and only for its username.
      for (let i = 0; i < 4; i++) assert.equal(throttle.attempt('admin', '127.0.0.1', [device]), 0);
      assert.ok(throttle.attempt('admin', '127.0.0.1', [device]) > 0);
      assert.equal(throttle.attempt('root', '127.0.0.1', [device]), 0, 'for another username the token counts for nothing: its lock is not root\'s');
      // A token sealed for another username, altered, or from another process vouches for nothing; it expires.
      const other = new SignInThrottle(() => clock, store(users));
      assert.equal(other.attempt('bob', '192.0.2.9'), 0);
      const bobs = other.succeed('bob', '192.0.2.9', users.bob);
      assert.ok(throttle.attempt('admin', '127.0.0.1', [bobs, `${device.slice(0, -2)}AA`]) > 0);
      clock += 31 * 24 * 3600_000;
      const fresh = throttle.succeed('admin', '127.0.0.1', users.admin);
      clock += 31 * 24 * 3600_000;
      for (let i = 0; i < 5; i++) throttle.attempt('admin', '127.0.0.1');
      assert.ok(throttle.attempt('admin', '127.0.0.1', [fresh]) > 0, 'a token older than 30 days');
    });
  });
  describe('when the password a device token was minted under is set again, or its user removed and another made under the name', () => {
    it('counts the tokens minted before as no device: their tries count against the username, which its lockout then refuses (regression: each gave 5 more tries in 5 minutes, past the lockout, for 30 days)', () => {
      const clock = 1_000_000;
      const users: Record<string, string> = { alice: 'local:alice\n2026-01-01T00:00:00.000Z' };
      const throttle = new SignInThrottle(() => clock, store(users));
      const before = Array.from({ length: 4 }, () => throttle.succeed('alice', '127.0.0.1', users.alice!));
      users.alice = 'local:alice\n2026-01-02T00:00:00.000Z';
      const after = throttle.succeed('alice', '127.0.0.1', users.alice);
      for (const token of before) assert.equal(throttle.attempt('alice', '192.0.2.1', [token]), 0, 'counted, against alice');
      assert.equal(throttle.attempt('alice', '192.0.2.1'), 0);
      for (const token of before) assert.ok(throttle.attempt('alice', '192.0.2.1', [token]) > 0, 'alice is locked out, old tokens and all');
      assert.equal(throttle.attempt('alice', '127.0.0.1', [after]), 0, 'a token minted under the new password is a device');
      delete users.alice;
      assert.ok(throttle.attempt('alice', '127.0.0.1', [after]) > 0, 'once alice is removed, it is none');
      users.alice = 'local:alice\n2026-01-03T00:00:00.000Z';
      assert.ok(throttle.attempt('alice', '127.0.0.1', [after]) > 0, 'nor for another alice made later');
    });
  });

  describe('when one username holds many device tokens', () => {
    it('counts the tries of all of them together, 15 in 5 minutes, however many there are (regression: each token a browser was given at a sign-in brought 5 tries of its own)', () => {
      let clock = 1_000_000;
      const users = { alice: 'local:alice\n2026-01-01T00:00:00.000Z' };
      const throttle = new SignInThrottle(() => clock, store(users));
      const tokens = Array.from({ length: 10 }, () => throttle.succeed('alice', '127.0.0.1', users.alice));
      for (let i = 0; i < 15; i++) assert.equal(throttle.attempt('alice', '127.0.0.1', [tokens[Math.floor(i / 5)]!]), 0, `try ${i + 1}`);
      for (const token of tokens) assert.ok(throttle.attempt('alice', '127.0.0.1', [token]) > 0, 'no token tries on');
      assert.equal(throttle.attempt('bob', '127.0.0.1'), 0, 'nor does it hold up anyone else');
      clock += 5 * 60_000 + 1000;
      assert.equal(throttle.attempt('alice', '127.0.0.1', [tokens[9]!]), 0, 'once the window passes');
    });

    it('lets a token of alice\'s try while others fail at her name without one, and without one, while her tokens fail (neither limit holds up the other)', () => {
      const clock = 1_000_000;
      const users = { alice: 'local:alice\n2026-01-01T00:00:00.000Z' };
      const throttle = new SignInThrottle(() => clock, store(users));
      const tokens = Array.from({ length: 4 }, () => throttle.succeed('alice', '127.0.0.1', users.alice));
      for (let i = 0; i < 5; i++) assert.equal(throttle.attempt('alice', '198.51.100.7'), 0);
      assert.ok(throttle.attempt('alice', '198.51.100.7') > 0);
      for (let i = 0; i < 15; i++) assert.equal(throttle.attempt('alice', '127.0.0.1', [tokens[i % 3]!]), 0);
      assert.ok(throttle.attempt('alice', '127.0.0.1', [tokens[3]!]) > 0);
    });
  });
});
