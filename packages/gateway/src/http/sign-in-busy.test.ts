// A sign-in the gateway was too busy to check (more passwords being hashed
// than it allows at once: 503 IDENTITY_SIGN_IN_BUSY, Retry-After) tells no
// one anything about the password, so it must not count as a failure: anyone
// who keeps the hasher full would otherwise turn every retry of the people
// signing in meanwhile into a failed try, and lock them out for five minutes
// after, device tokens and all.
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { IdentityError } from '@corral/identity';
import { startTestGateway, TEST_PASSWORD } from './testing.ts';

describe('when the gateway is too busy to check a password', () => {
  it('answers 503 with Retry-After and does not count the try: after five such answers from her browser and five from another, alice signs in at once from either (regression: each counted as a failed password, the next try was 429 and she was locked out for five minutes)', async () => {
    const t = await startTestGateway();
    try {
      await t.gw.identity.localUsers.create('alice', TEST_PASSWORD, ['approver']);
      const first = await t.anonymous().signIn('alice');
      assert.equal(first.status, 200);
      const device = { 'x-corral-device': first.body.device as string };
      const busy = mock.method(t.gw.identity.localUsers, 'verify', async () => {
        throw new IdentityError('IDENTITY_SIGN_IN_BUSY', 'too many passwords are being checked');
      });
      for (let i = 0; i < 10; i++) {
        const refused = await t.anonymous().post('/api/session', { username: 'alice', password: TEST_PASSWORD }, i < 5 ? device : {});
        assert.equal(refused.status, 503, `try ${i + 1}`);
        assert.equal(refused.headers.get('retry-after'), '1');
      }
      busy.mock.restore();
      assert.equal((await t.anonymous().post('/api/session', { username: 'alice', password: TEST_PASSWORD }, device)).status, 200, 'from her browser');
      assert.equal((await t.anonymous().post('/api/session', { username: 'alice', password: TEST_PASSWORD })).status, 200, 'from another browser');
    } finally {
      await t.close();
    }
  });
});
