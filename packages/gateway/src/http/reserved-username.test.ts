// The gateway token acts as the human `operator` (actingHuman, Human::"operator"):
// a local user of that name would be indistinguishable from the token holder in
// the audit log and in Cedar decisions, so none may sign in as one.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { auditEvents, startTestGateway, TEST_PASSWORD, type TestGateway } from './testing.ts';

describe('console sign-in as operator', () => {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway();
  });
  after(async () => {
    await t.close();
  });

  describe('when the identity store already holds a local user named operator (made before the name was refused)', () => {
    before(async () => {
      await t.gw.identity.localUsers.create('soon-operator', TEST_PASSWORD, ['admin']);
      const db = new DatabaseSync(join(t.state, 'identity.db'));
      db.prepare("UPDATE local_users SET username = 'operator' WHERE username = 'soon-operator'").run();
      db.close();
    });

    it('answers 400 invalid_request (IDENTITY_INPUT_INVALID) saying the name is reserved, opens no session and records no sign-in', async () => {
      const client = t.anonymous();
      const answer = await client.signIn('operator');
      assert.deepEqual([answer.status, answer.body.error, answer.body.code], [400, 'invalid_request', 'IDENTITY_INPUT_INVALID']);
      assert.match(String(answer.body.message), /reserved/);
      assert.equal(client.cookie, undefined, 'no session cookie');
      assert.equal((await client.get('/api/session')).status, 401);
      assert.equal((await auditEvents(t.state)).some((e) => e.action === 'console.sign-in' && e.actor.id === 'operator'), false);
    });
  });
});
