// The sign-in throttle on its own, with a clock the test moves.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SignInThrottle } from './throttle.ts';

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
      const throttle = new SignInThrottle(() => clock);
      assert.equal(throttle.attempt('admin', '127.0.0.1'), 0);
      const device = throttle.succeed('admin', '127.0.0.1');
      for (let i = 0; i < 40; i++) throttle.attempt('admin', '127.0.0.1');
      assert.ok(throttle.attempt('admin', '127.0.0.1') > 0, 'without the token, admin is locked out');
      assert.equal(throttle.attempt('admin', '127.0.0.1', ['junk', device]), 0, 'with it, admin may try');
      // The device's own failures lock it alone, and only for its username.
      for (let i = 0; i < 4; i++) assert.equal(throttle.attempt('admin', '127.0.0.1', [device]), 0);
      assert.ok(throttle.attempt('admin', '127.0.0.1', [device]) > 0);
      assert.equal(throttle.attempt('root', '127.0.0.1', [device]), 0, 'for another username the token counts for nothing: its lock is not root\'s');
      // A token sealed for another username, altered, or from another process vouches for nothing; it expires.
      const other = new SignInThrottle(() => clock);
      assert.equal(other.attempt('bob', '192.0.2.9'), 0);
      const bobs = other.succeed('bob', '192.0.2.9');
      assert.ok(throttle.attempt('admin', '127.0.0.1', [bobs, `${device.slice(0, -2)}AA`]) > 0);
      clock += 31 * 24 * 3600_000;
      const fresh = throttle.succeed('admin', '127.0.0.1');
      clock += 31 * 24 * 3600_000;
      for (let i = 0; i < 5; i++) throttle.attempt('admin', '127.0.0.1');
      assert.ok(throttle.attempt('admin', '127.0.0.1', [fresh]) > 0, 'a token older than 30 days');
    });
  });
});
