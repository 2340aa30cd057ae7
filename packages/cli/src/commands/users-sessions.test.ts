// A console session of a local login ends at every change of the login, even
// one made within the millisecond of its last change (a session was tied to
// the time of change: a password or email address set within that
// millisecond left it as it was, and the session went on).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Identity } from '@corral/identity';
import { consoleGateway } from '../../test/console-gateway.ts';

const PASSWORD = 'a password of some length';
const NEW_PASSWORD = 'another password of some length';
/** The one millisecond every change here is made in. */
const AT = Date.UTC(2026, 0, 1);
const stopped = () => AT;

describe('a local login’s console session, when the login changes within the millisecond of its last change', () => {
  const gateway = consoleGateway(async (state) => {
    const { Identity } = await import('@corral/identity');
    const identity = Identity.open(state, { now: stopped });
    try {
      for (const name of ['admin', 'alice', 'bob', 'carol', 'dave']) await identity.localUsers.create(name, PASSWORD, [name === 'admin' ? 'admin' : 'approver']);
    } finally {
      identity.close();
    }
  });
  const { sessionStatus, store } = gateway;
  const signIn = async (username: string, password = PASSWORD) => {
    const answer = await gateway.signIn(username, password);
    assert.equal(answer.status, 200, `${username} signs in`);
    return answer.session!;
  };

  const changes: Array<[string, string, (identity: Identity) => unknown, string?]> = [
    ['a new password (regression: the session went on)', 'alice', (identity) => identity.localUsers.setPassword('alice', NEW_PASSWORD), NEW_PASSWORD],
    ['a new email address (regression: the session went on)', 'bob', (identity) => identity.localUsers.setEmail('bob', 'bob@example.com')],
    ['other roles', 'carol', (identity) => identity.localUsers.setRoles('carol', ['viewer'])],
    ['its removal and a login made again under its name, with the same password', 'dave', async (identity) => {
      identity.localUsers.remove('dave');
      await identity.localUsers.create('dave', PASSWORD, ['approver']);
    }],
  ];
  for (const [what, username, change, password] of changes) {
    it(`ends at ${what}: 401 at its next request, and the login signs in again`, async () => {
      const session = await signIn(username);
      assert.equal(await sessionStatus(session), 200);
      const before = await store((identity) => identity.localUsers.get(username).updatedAt);
      await store(change, stopped);
      assert.equal(await store((identity) => identity.localUsers.get(username).updatedAt), before, 'the time of change is the same millisecond');
      assert.equal(await sessionStatus(session), 401);
      assert.equal(await sessionStatus(await signIn(username, password)), 200);
    });
  }
});
