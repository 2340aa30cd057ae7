// Approving from the console after single sign-on: a person is named by the
// address their provider verified, and that name can change while they stay
// the same person (their issuer and subject). Toward a quorum they count once.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Identity } from '@corral/identity';
import { freePort } from '../../../../scripts/testing/free-port.ts';
import { publicClient, startTestIssuer, type TestIssuer } from '../../../../scripts/testing/oidc-issuer.ts';
import { signInThroughIssuer, startTestGateway, type ApiClient, type TestGateway } from './testing.ts';

describe('approving after single sign-on', () => {
  let issuer: TestIssuer;
  let t: TestGateway;
  /** What the provider says of erin now: she can change her address (and its case) in its self-service page. */
  let erin: Record<string, unknown> = { email: 'erin@example.com', email_verified: true };
  const people: Record<string, () => Record<string, unknown>> = {
    erin: () => erin,
    frank: () => ({ email: 'frank@example.com', email_verified: true }),
    // As Entra ID signs people in: an address, and no email_verified.
    gina: () => ({ email: 'gina@example.com' }),
    hal: () => ({ email: 'hal@example.com' }),
  };

  before(async () => {
    const port = await freePort();
    const redirectUri = `http://127.0.0.1:${port}/api/auth/oidc/callback`;
    issuer = await startTestIssuer({ clients: [publicClient('corral-console', redirectUri)], accounts: (sub) => (people[sub] ? { ...people[sub]!(), name: sub, groups: ['approvers'] } : undefined) });
    t = await startTestGateway({ port, oidc: { issuer: issuer.issuer, clientId: 'corral-console', redirectUri, roleMap: { approver: ['approvers'] } } });
  });
  after(async () => {
    await t.close();
    await issuer.close();
  });

  /** A console signed in as `subject` through the provider, with its session's key. */
  async function signedIn(subject: string): Promise<ApiClient> {
    const { browser } = await signInThroughIssuer(t, subject);
    assert.ok(browser.cookie, `${subject} has a session`);
    return browser;
  }

  const twoNeeded = (what: string) => t.gw.approvals.create({ digest: createHash('sha256').update(what).digest('hex'), action: { argv: [what] }, quorum: 2 });

  it("ends a person's sessions when an admin signs them out in another process (corral identity sign-out), and lets a later sign-in of theirs work (regression: a person the provider no longer let in kept their session up to 12 hours)", async () => {
    const earlier = await signedIn('frank');
    assert.equal((await earlier.get('/api/session')).status, 200);
    const identity = Identity.open(t.state);
    try {
      assert.deepEqual(identity.humans.signOut('frank@example.com').map((h) => h.subject), ['frank']);
    } finally {
      identity.close();
    }
    assert.equal((await earlier.get('/api/session')).status, 401);
    const again = await signedIn('frank');
    assert.equal((await again.get('/api/session')).status, 200);
  });

  it('counts one person once toward a quorum of two under each name their provider gave them: a verified address, the same in other case, and issuer and subject once it is unverified (regression: each name counted as another approver, so erin alone allowed it)', async () => {
    const approval = twoNeeded('pay 50000');
    const first = await (await signedIn('erin')).post(`/api/approvals/${approval.id}/approve`, {});
    assert.deepEqual([first.status, first.body.status, first.body.approvers], [200, 'pending', ['erin@example.com']]);
    erin = { email: 'Erin@Example.com', email_verified: true };
    const recased = await (await signedIn('erin')).post(`/api/approvals/${approval.id}/approve`, {});
    assert.deepEqual([recased.status, recased.body.status, recased.body.approvers], [200, 'pending', ['erin@example.com']]);
    erin = { email: 'erin.new@example.com', email_verified: false };
    const unverified = await (await signedIn('erin')).post(`/api/approvals/${approval.id}/approve`, {});
    assert.deepEqual([unverified.status, unverified.body.status, unverified.body.approvers], [200, 'pending', ['erin@example.com']]);
    const frank = await (await signedIn('frank')).post(`/api/approvals/${approval.id}/approve`, {});
    assert.deepEqual([frank.status, frank.body.status, frank.body.approvers], [200, 'allowed', ['erin@example.com', 'frank@example.com']]);
  });

  it("refuses the owner of the agent that asked when they allow its request (403 GATEWAY_APPROVAL_OWN_REQUEST), signed in or named under the gateway token; another person allows it", async () => {
    const agent = t.gw.identity.agents.create({ name: 'frank-bot', process: 'payments', owner: 'Frank@Example.com' });
    const asked = () => t.gw.approvals.create({ digest: createHash('sha256').update(randomBytes(8)).digest('hex'), action: { principal: `Agent::${agent.name}`, argv: ['pay', '10'] }, quorum: 1 });
    const approval = asked();
    const frank = await signedIn('frank');
    for (const decision of ['allow-once', 'allow-always']) {
      const refused = await frank.post(`/api/approvals/${approval.id}/approve`, { decision });
      assert.deepEqual([refused.status, refused.body.code], [403, 'GATEWAY_APPROVAL_OWN_REQUEST'], decision);
    }
    const relayed = await t.tool().post(`/api/approvals/${approval.id}/approve`, { approver: 'frank@example.com' });
    assert.deepEqual([relayed.status, relayed.body.code], [403, 'GATEWAY_APPROVAL_OWN_REQUEST']);
    assert.equal(t.gw.approvals.get(approval.id).status, 'pending', 'nothing counted');
    const other = await (await signedIn('erin')).post(`/api/approvals/${approval.id}/approve`, {});
    assert.deepEqual([other.status, other.body.status], [200, 'allowed']);
    assert.equal((await frank.post(`/api/approvals/${asked().id}/deny`, {})).body.status, 'denied', 'the owner may deny it');
  });
  it("refuses the owner of the agent that asked when their provider sends their address without email_verified (Entra ID), though they are named by issuer and subject; someone else so signed in allows it (regression: gina allowed gina-bot's request alone)", async () => {
    const agent = t.gw.identity.agents.create({ name: 'gina-bot', process: 'payments', owner: 'Gina@Example.com' });
    const asked = () => t.gw.approvals.create({ digest: createHash('sha256').update(randomBytes(8)).digest('hex'), action: { principal: `Agent::${agent.name}`, argv: ['pay', '10'] }, quorum: 1 });
    const approval = asked();
    const gina = await signedIn('gina');
    assert.match((await gina.get('/api/session')).body.user.name, /^oidc:http:\/\/127\.0\.0\.1:\d+#gina$/, 'not named by the address her provider did not verify');
    for (const decision of ['allow-once', 'allow-always']) {
      const refused = await gina.post(`/api/approvals/${approval.id}/approve`, { decision });
      assert.deepEqual([refused.status, refused.body.code], [403, 'GATEWAY_APPROVAL_OWN_REQUEST'], decision);
    }
    assert.deepEqual([t.gw.approvals.get(approval.id).status, t.gw.approvals.get(approval.id).approvers], ['pending', []], 'nothing counted');
    const hal = await (await signedIn('hal')).post(`/api/approvals/${approval.id}/approve`, {});
    assert.deepEqual([hal.status, hal.body.status, hal.body.approvers.length], [200, 'allowed', 1]);
    assert.equal((await gina.post(`/api/approvals/${asked().id}/deny`, {})).body.status, 'denied', 'the owner may deny it');
  });
});
