import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdentityError } from '@corral/identity';
import { errorReply } from './error-reply.ts';

describe('errorReply', () => {
  it('answers a sign-in refused because too many passwords are being checked with 503 and Retry-After, as a busy store (regression: a bare 500)', () => {
    for (const code of ['IDENTITY_SIGN_IN_BUSY', 'IDENTITY_STORE_BUSY'] as const) {
      const { reply, unexpected } = errorReply(new IdentityError(code, 'busy'));
      assert.equal(unexpected, false, code);
      assert.equal(reply.status, 503, code);
      assert.ok(Number(reply.headers?.['retry-after']) > 0, code);
      assert.deepEqual([(reply.body as { error: string; code: string }).error, (reply.body as { code: string }).code], ['unavailable', code]);
    }
  });
});
