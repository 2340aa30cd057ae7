// Four eyes for local console users: an agent's owner is an address, and a
// local login's name is not one, so the address an admin gives the login
// (corral users add --email, corral users email) is what names the owner.
// Before, an owner who also had a local login allowed their own agent's
// requests alone.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Identity, type CorralRole } from '@corral/identity';
import { ApiClient, startTestGateway, TEST_PASSWORD, type TestGateway } from './testing.ts';

describe('approving from the console with a local login', () => {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway();
    t.gw.identity.agents.create({ name: 'invoice-bot', process: 'invoices', owner: 'Alice@Example.com' });
  });
  after(() => t.close());

  /** A request of invoice-bot waiting for one approver. */
  const botAsks = () => t.gw.approvals.create({ digest: createHash('sha256').update(randomBytes(8)).digest('hex'), action: { principal: 'Agent::invoice-bot', argv: ['pay', '100'] }, quorum: 1 });

  /** A console signed in as the local user `username`, made first (with `email`, if given) when the store does not hold them. */
  async function signedIn(username: string, roles: CorralRole[], email?: string): Promise<ApiClient> {
    if (!t.gw.identity.localUsers.list().some((u) => u.username === username)) await t.gw.identity.localUsers.create(username, TEST_PASSWORD, roles, email === undefined ? {} : { email });
    const client = new ApiClient(t.gw.httpUrl);
    assert.equal((await client.signIn(username)).status, 200, `sign-in as ${username}`);
    return client;
  }

  it("refuses the owner's login, given the owner's address in another case, when it allows the agent's request once or always (403 GATEWAY_APPROVAL_OWN_REQUEST), counting nothing (regression: a local login was never matched, and the owner allowed it alone)", async () => {
    const alice = await signedIn('alice', ['approver'], 'alice@example.COM');
    const approval = botAsks();
    for (const decision of ['allow-once', 'allow-always']) {
      const refused = await alice.post(`/api/approvals/${approval.id}/approve`, { decision });
      assert.deepEqual([refused.status, refused.body.error, refused.body.code], [403, 'forbidden', 'GATEWAY_APPROVAL_OWN_REQUEST'], decision);
    }
    assert.deepEqual([t.gw.approvals.get(approval.id).status, t.gw.approvals.get(approval.id).approvers], ['pending', []]);
  });

  it("lets the owner's login deny the agent's request", async () => {
    const alice = await signedIn('alice', ['approver']);
    const denied = await alice.post(`/api/approvals/${botAsks().id}/deny`, {});
    assert.deepEqual([denied.status, denied.body.status, denied.body.approvers], [200, 'denied', ['alice']]);
  });

  it('lets another local login allow it, with an address of its own or none', async () => {
    const bob = await signedIn('bob', ['approver'], 'bob@example.com');
    const carol = await signedIn('carol', ['approver']);
    for (const [client, name] of [[bob, 'bob'], [carol, 'carol']] as const) {
      const allowed = await client.post(`/api/approvals/${botAsks().id}/approve`, {});
      assert.deepEqual([allowed.status, allowed.body.status, allowed.body.approvers], [200, 'allowed', [name]], name);
    }
  });

  it('refuses a login given the owner\'s address by an admin in another process (corral users email) after it signed in: that session ends, and once signed in again it may not allow; without the address it may, as before', async () => {
    const dave = await signedIn('dave', ['approver']);
    const approval = botAsks();
    const cli = Identity.open(t.state);
    try {
      cli.localUsers.setEmail('dave', 'alice@example.com');
      assert.equal((await dave.get('/api/session')).status, 401, 'a change of the user ends its sessions');
      const again = await signedIn('dave', ['approver']);
      const refused = await again.post(`/api/approvals/${approval.id}/approve`, {});
      assert.deepEqual([refused.status, refused.body.code], [403, 'GATEWAY_APPROVAL_OWN_REQUEST']);
      cli.localUsers.setEmail('dave', null);
      const allowed = await (await signedIn('dave', ['approver'])).post(`/api/approvals/${approval.id}/approve`, {});
      assert.deepEqual([allowed.status, allowed.body.status], [200, 'allowed']);
    } finally {
      cli.close();
    }
  });

  it("leaves the gateway token as it was: the approver it names is matched by that name alone, not by a local login's address", async () => {
    const refused = await t.tool().post(`/api/approvals/${botAsks().id}/approve`, { approver: 'alice@example.com' });
    assert.deepEqual([refused.status, refused.body.code], [403, 'GATEWAY_APPROVAL_OWN_REQUEST']);
    const allowed = await t.tool().post(`/api/approvals/${botAsks().id}/approve`, { approver: 'alice' });
    assert.deepEqual([allowed.status, allowed.body.status], [200, 'allowed']);
  });
});
