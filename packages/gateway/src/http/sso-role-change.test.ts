// A single sign-on person's roles are what their issuer's groups said at
// their last sign-in. Once a sign-in maps other roles, or none, a session
// begun under the old ones ends, as a local user's does when an admin sets theirs.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../../../scripts/testing/free-port.ts';
import { publicClient, startTestIssuer, type TestIssuer } from '../../../../scripts/testing/oidc-issuer.ts';
import { signInThroughIssuer, startTestGateway, type TestGateway } from './testing.ts';

describe('when the issuer changes the groups of a person signed in to the console', () => {
  let issuer: TestIssuer;
  let t: TestGateway;
  /** Each account's groups at the issuer now: an admin there moves people between them. */
  const groups: Record<string, string[]> = { bob: ['corral-admins'], stranger: ['marketing'] };

  before(async () => {
    const port = await freePort();
    const redirectUri = `http://127.0.0.1:${port}/api/auth/oidc/callback`;
    issuer = await startTestIssuer({
      clients: [publicClient('corral-console', redirectUri)],
      accounts: (sub) => (groups[sub] ? { email: `${sub}@example.com`, email_verified: true, name: sub, groups: groups[sub] } : undefined),
    });
    t = await startTestGateway({ port, oidc: { issuer: issuer.issuer, clientId: 'corral-console', redirectUri, roleMap: { admin: ['corral-admins'], viewer: ['staff'] } } });
  });
  after(async () => {
    await t.close();
    await issuer.close();
  });

  const signIn = (subject: string) => signInThroughIssuer(t, subject);

  it('ends the session bob began as an admin once a later sign-in of his maps him to viewer only, and keeps the new one (regression: the older session stayed admin for up to 12 hours though the gateway had recorded the demotion)', async () => {
    groups.bob = ['corral-admins'];
    const earlier = (await signIn('bob')).browser;
    assert.deepEqual((await earlier.get('/api/session')).body.user.roles, ['admin']);
    assert.equal((await earlier.get('/api/agents')).status, 200, 'an admin reads the agents');
    groups.bob = ['staff'];
    const later = (await signIn('bob')).browser;
    assert.deepEqual((await later.get('/api/session')).body.user.roles, ['viewer']);
    assert.equal((await earlier.get('/api/agents')).status, 401, 'the admin session is over');
    assert.equal((await earlier.get('/api/session')).status, 401);
    assert.equal((await later.get('/api/session')).status, 200, 'the session with his roles now lives on');
  });

  it('ends the session bob began as an admin once a later sign-in of his maps no role at all, which is refused (regression: the refusal recorded nothing, and the admin session lived on)', async () => {
    groups.bob = ['corral-admins'];
    const earlier = (await signIn('bob')).browser;
    assert.deepEqual((await earlier.get('/api/session')).body.user.roles, ['admin']);
    groups.bob = ['marketing'];
    const refused = await signIn('bob');
    assert.equal(refused.location, '/?signin_error=no_role');
    assert.equal(refused.browser.cookie, undefined, 'no session for him');
    assert.equal((await earlier.get('/api/agents')).status, 401, 'the admin session is over');
  });

  it('records no one whose sign-in maps no role and who never signed in before: not every person the issuer knows is kept', async () => {
    assert.equal((await signIn('stranger')).location, '/?signin_error=no_role');
    assert.equal(t.gw.identity.humans.list().find((h) => h.subject === 'stranger'), undefined);
  });
});
