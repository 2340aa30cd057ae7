// The console's single sign-on keeps nothing per login started, and only the
// states of logins finished, so that each callback is taken once: a bounded
// set, emptied as the logins it remembers expire.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { publicClient, startTestIssuer, type TestIssuer } from '../../../../scripts/testing/oidc-issuer.ts';
import { LOGIN_TTL_MS, MAX_USED, OidcSignIn } from './oidc-sign-in.ts';

const REDIRECT = 'http://127.0.0.1:1/api/auth/oidc/callback';

describe('the states of finished single sign-on logins', () => {
  let issuer: TestIssuer;
  before(async () => {
    issuer = await startTestIssuer({ clients: [publicClient('corral-console', REDIRECT)], accounts: () => undefined });
  });
  after(() => issuer.close());

  /** Starts a login and comes back from the issuer with an error (no code to exchange): the state is used all the same. */
  async function finishOnce(signIn: OidcSignIn): Promise<{ state: string; binding: string; replay: () => Promise<unknown> }> {
    const { url, binding } = await signIn.start('key');
    const state = new URL(url).searchParams.get('state')!;
    const callback = `${REDIRECT}?state=${state}&error=access_denied`;
    const replay = () => signIn.finish(callback, [binding]);
    await assert.rejects(replay(), { code: 'IDENTITY_OIDC_AUTHORIZATION_FAILED' });
    return { state, binding, replay };
  }

  it('refuses a callback taken already for as long as its login lives, and forgets it once expired', async () => {
    let now = 1_000_000;
    const signIn = new OidcSignIn({ issuer: issuer.issuer, clientId: 'corral-console', redirectUri: REDIRECT, roleMap: { viewer: ['staff'] } }, () => now);
    const first = await finishOnce(signIn);
    await assert.rejects(first.replay(), { code: 'IDENTITY_OIDC_STATE_MISMATCH' });
    now += LOGIN_TTL_MS - 1;
    await assert.rejects(first.replay(), { code: 'IDENTITY_OIDC_STATE_MISMATCH' });
    // Past its life the binding is refused for its age alone: the state need not be kept.
    now += 2;
    await finishOnce(signIn);
    assert.equal(signIn.usedCount, 1);
    await assert.rejects(first.replay(), { code: 'IDENTITY_OIDC_STATE_MISMATCH' });
  });

  it(`remembers at most ${MAX_USED} states however many logins finish within a login's life`, { timeout: 60_000 }, async () => {
    const now = 1_000_000;
    const signIn = new OidcSignIn({ issuer: issuer.issuer, clientId: 'corral-console', redirectUri: REDIRECT, roleMap: { viewer: ['staff'] } }, () => now);
    const first = await finishOnce(signIn);
    for (let i = 0; i < MAX_USED; i++) await finishOnce(signIn);
    assert.equal(signIn.usedCount, MAX_USED);
    // The oldest made room; the issuer's own one-time codes still stop its callback from signing anyone in twice.
    await assert.rejects(first.replay(), { code: 'IDENTITY_OIDC_AUTHORIZATION_FAILED' });
  });
});
