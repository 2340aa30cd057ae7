// The console's session table: bounded, and bounded per human, so that one
// human signing in again and again cannot sign everyone else out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Sessions, type SessionUser } from './sessions.ts';

const user = (name: string, roles: SessionUser['roles'] = ['viewer']): SessionUser => ({ id: `local:${name}`, name, roles });

describe('the session table', () => {
  describe('when one human signs in ten thousand times (a script, or a viewer out to sign the admins out)', () => {
    it("keeps everyone else's sessions (regression: the table's oldest went first, whoever's it was)", () => {
      const sessions = new Sessions();
      const admin = sessions.create(user('root', ['admin']));
      for (let i = 0; i < 10_000; i++) sessions.create(user('mallory'));
      assert.ok(sessions.get(admin.token), "the admin's session is live");
    });

    it('keeps that human’s newest sessions and ends the oldest', () => {
      const sessions = new Sessions();
      const first = sessions.create(user('mallory'));
      const made = Array.from({ length: 100 }, () => sessions.create(user('mallory')));
      assert.equal(sessions.get(first.token), undefined, 'the oldest ended');
      assert.ok(sessions.get(made.at(-1)!.token), 'the newest is live');
      assert.equal(made.filter((s) => sessions.get(s.token, { use: false })).length, 50, 'fifty at most');
    });
  });

  it('still holds at most 10,000 sessions in all when many humans sign in', () => {
    const sessions = new Sessions();
    const first = sessions.create(user('u0'));
    for (let i = 1; i <= 10_000; i++) sessions.create(user(`u${i}`));
    assert.equal(sessions.get(first.token), undefined, 'the oldest session went to make room');
  });
});
