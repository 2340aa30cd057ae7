// corral users roles: an admin changes a local console login's roles (before,
// there was no command for it: demoting someone meant removing and adding
// them again, with a new password).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Identity } from '@corral/identity';
import { corral } from '../../test/corral.ts';
import { consoleGateway, renameToOperator } from '../../test/console-gateway.ts';

const PASSWORD = 'a password of some length';

/**
 * The logins admin (admin) and alice (approver), and operator holding admin
 * as an older Corral made it, before its name was reserved: it cannot sign
 * in, so it administers nothing.
 */
async function seed(state: string): Promise<void> {
  const identity = Identity.open(state);
  try {
    await identity.localUsers.create('admin', PASSWORD, ['admin']);
    await identity.localUsers.create('alice', PASSWORD, ['approver']);
    await identity.localUsers.create('soon-operator', PASSWORD, ['admin']);
  } finally {
    identity.close();
  }
  renameToOperator(state, 'soon-operator');
}

describe('corral users roles', () => {
  const gateway = consoleGateway(seed);
  const { users, audit, sessionStatus } = gateway;
  const rolesSet = async () => (await audit()).filter((r) => r.event.action === 'user.roles.set').map((r) => [r.event.resource.id, r.event.details]);
  const listed = async () => (JSON.parse((await users('list', '--json')).stdout) as { users: Array<{ username: string; roles: string[] }> }).users.map((u) => [u.username, u.roles]);
  /** `username` signs in to the console's API: the session's cookie and key, and the roles it holds. */
  const signIn = async (username: string) => {
    const answer = await gateway.signIn(username, PASSWORD);
    assert.equal(answer.status, 200, `${username} signs in`);
    return { ...answer.session!, roles: answer.body.user!.roles };
  };

  it("replaces alice's roles, says what she had, shows the new ones in users list, and records user.roles.set with the roles before and after (regression: no command changed a login's roles)", async () => {
    const changed = await users('roles', 'alice', '--role', 'viewer', 'auditor');
    assert.equal(changed.code, 0, changed.stderr);
    assert.equal(changed.stdout, 'the login alice now has the roles auditor,viewer (it had approver); a session it held has ended\n');
    assert.match((await users('list')).stdout, /^alice +auditor,viewer +- /m);
    const json = await users('roles', 'alice', '--role', 'approver', '--json');
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual([JSON.parse(json.stdout).id, JSON.parse(json.stdout).roles], ['local:alice', ['approver']]);
    assert.deepEqual(await rolesSet(), [
      ['local:alice', { roles: ['auditor', 'viewer'], previous: ['approver'] }],
      ['local:alice', { roles: ['approver'], previous: ['auditor', 'viewer'] }],
    ]);
    assert.notEqual((await audit()).find((r) => r.event.action === 'user.roles.set')?.event.actor.id, 'operator');
  });

  it('ends the session alice holds (401 on the console API at its next request); she signs in again holding the new roles only', async () => {
    const before = await signIn('alice');
    assert.equal(await sessionStatus(before), 200);
    const changed = await users('roles', 'alice', '--role', 'viewer');
    assert.equal(changed.code, 0, changed.stderr);
    assert.equal(await sessionStatus(before), 401);
    const again = await signIn('alice');
    assert.deepEqual([again.roles, await sessionStatus(again)], [['viewer'], 200]);
  });

  describe('given roles or a login it cannot set', () => {
    const refused: Array<[string, string[], RegExp]> = [
      ['an unknown role, naming it and the roles there are', ['alice', '--role', 'root'], /role "root" is not one of admin, approver, auditor, viewer \[IDENTITY_INPUT_INVALID\]\n$/],
      ['an empty role', ['alice', '--role', ''], /role "" is not one of admin, approver, auditor, viewer \[IDENTITY_INPUT_INVALID\]\n$/],
      ['an unknown role beside admin for the only admin', ['admin', '--role', 'viewer', 'superuser'], /role "superuser" is not one of .*\[IDENTITY_INPUT_INVALID\]\n$/],
      ['no role (no --role)', ['alice'], /required option '--role <role\.\.\.>' not specified/],
      ['no role (--role with none)', ['alice', '--role'], /option '--role <role\.\.\.>' argument missing/],
      ['the reserved login operator, saying how to rename it', ['operator', '--role', 'viewer'], /its name is reserved .*corral users rename operator NEW-NAME.*\[IDENTITY_INPUT_INVALID\]\n$/],
      ['a login it does not hold', ['nobody', '--role', 'viewer'], /no user named nobody \[IDENTITY_USER_NOT_FOUND\]\n$/],
    ];
    for (const [what, args, message] of refused) {
      it(`refuses ${what} with exit 2, changing and recording nothing`, async () => {
        const users0 = await listed();
        const records = (await audit()).length;
        const r = await users('roles', ...args);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, message);
        assert.deepEqual(await listed(), users0);
        assert.equal((await audit()).length, records);
      });
    }

    it('under --json, answers an unknown role with the error document, code IDENTITY_INPUT_INVALID', async () => {
      const r = await users('roles', 'alice', '--role', 'root', '--json');
      assert.equal(r.code, 2, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'IDENTITY_INPUT_INVALID');
    });
  });

  describe('when the login loses the admin role', () => {
    it('refuses to take it from the only login holding it that can sign in (operator, reserved, counts for none), exit 1 and IDENTITY_LAST_ADMIN, saying to give another login admin first; its session goes on', async () => {
      const admin = await signIn('admin');
      const records = (await audit()).length;
      const r = await users('roles', 'admin', '--role', 'viewer');
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /the login admin is the only one that can sign in holding the admin role: .*give another login the admin role first \(corral users roles NAME --role admin.*\[IDENTITY_LAST_ADMIN\]\n$/);
      const json = await users('roles', 'admin', '--role', 'approver', '--json');
      assert.deepEqual([json.code, (JSON.parse(json.stdout) as { error: { code: string } }).error.code], [1, 'IDENTITY_LAST_ADMIN']);
      assert.deepEqual((await listed()).find(([name]) => name === 'admin'), ['admin', ['admin']]);
      assert.equal((await audit()).length, records);
      assert.equal(await sessionStatus(admin), 200);
    });

    it('takes it once another login holds it, and then refuses to take it from that one', async () => {
      assert.equal((await users('roles', 'alice', '--role', 'admin', 'approver')).code, 0);
      const demoted = await users('roles', 'admin', '--role', 'viewer');
      assert.equal(demoted.code, 0, demoted.stderr);
      const last = await users('roles', 'alice', '--role', 'approver');
      assert.equal(last.code, 1, last.stderr);
      assert.match(last.stderr, /the login alice is the only one that can sign in holding the admin role/);
      assert.deepEqual((await listed()).filter(([name]) => name !== 'operator'), [['admin', ['viewer']], ['alice', ['admin', 'approver']]]);
      assert.deepEqual((await rolesSet()).slice(-2), [
        ['local:alice', { roles: ['admin', 'approver'], previous: ['viewer'] }],
        ['local:admin', { roles: ['viewer'], previous: ['admin'] }],
      ]);
    });

    it('keeps it in the roles given: an admin given admin and others is no demotion', async () => {
      const r = await users('roles', 'alice', '--role', 'auditor', 'admin', '--json');
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout).roles, ['admin', 'auditor']);
    });
  });
});

describe('corral users roles, when the audit log of the state directory cannot be written', () => {
  it('changes no roles (exit 3, saying the log cannot record it): more roles let the login do more', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-cli-nolog-'));
    try {
      const identity = Identity.open(dir);
      try {
        await identity.localUsers.create('alice', PASSWORD, ['viewer']);
      } finally {
        identity.close();
      }
      // A log file that is not a Corral audit log: it cannot take a record.
      writeFileSync(join(dir, 'audit.db'), 'this is not a database, and never was one.'.repeat(100));
      const r = await corral(['--state-dir', dir, 'users', 'roles', 'alice', '--role', 'admin']);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /cannot record this change, so it was not made/);
      const listed = await corral(['--state-dir', dir, 'users', 'list', '--json']);
      assert.deepEqual(JSON.parse(listed.stdout).users.map((u: { roles: string[] }) => u.roles), [['viewer']]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
