import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { corral, tempStateDir } from '../../test/corral.ts';
import { consoleGateway, renameToOperator } from '../../test/console-gateway.ts';

const OPERATOR_PASSWORD = 'the old operator password';
const ALICE_PASSWORD = 'alice password of some length';

/**
 * A store as Corral left it before the name operator was reserved (the gateway
 * token acts as Human::"operator"): a local admin named operator, and alice.
 */
async function seedOldStore(state: string): Promise<void> {
  const { Identity } = await import('@corral/identity');
  const identity = Identity.open(state);
  try {
    await identity.localUsers.create('soon-operator', OPERATOR_PASSWORD, ['admin']);
    await identity.localUsers.create('alice', ALICE_PASSWORD, ['viewer']);
  } finally {
    identity.close();
  }
  renameToOperator(state, 'soon-operator');
}

describe('corral users, when the store holds a local login named operator made before the name was reserved', () => {
  const { users, audit, signIn, sessionStatus } = consoleGateway(seedOldStore);

  it('the gateway refuses the login operator sign-in, saying why and the corral users command that gives it another name (400 IDENTITY_INPUT_INVALID)', async () => {
    const refused = await signIn('operator', OPERATOR_PASSWORD);
    assert.deepEqual([refused.status, refused.body.code, refused.session], [400, 'IDENTITY_INPUT_INVALID', undefined]);
    assert.match(String(refused.body.message), /reserved/);
    assert.match(String(refused.body.message), /corral users rename operator NEW-NAME/);
  });

  it('users list shows it, and says on stderr that it cannot sign in and how to rename it', async () => {
    const listed = await users('list');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^operator +admin /m);
    assert.match(listed.stderr, /the login operator cannot sign in: .*corral users rename operator NEW-NAME/);
  });

  it('users rename refuses to rename a login whose name is its own (exit 2, IDENTITY_INPUT_INVALID), and a new name that is reserved', async () => {
    for (const args of [['alice', 'alice2'], ['operator', 'operator']]) {
      const r = await users('rename', ...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /\[IDENTITY_INPUT_INVALID\]\n$/);
    }
  });

  it('users rename operator ops-lead gives it a name of its own: the same password and roles sign in as ops-lead, and the audit log records the rename by the host account, not as operator', async () => {
    // Before: no corral users command renamed or removed it; the login stayed, confused with the token's actor.
    const renamed = await users('rename', 'operator', 'ops-lead', '--json');
    assert.equal(renamed.code, 0, renamed.stderr);
    assert.deepEqual([JSON.parse(renamed.stdout).id, JSON.parse(renamed.stdout).roles], ['local:ops-lead', ['admin']]);
    const signedIn = await signIn('ops-lead', OPERATOR_PASSWORD);
    assert.equal(signedIn.status, 200, JSON.stringify(signedIn.body));
    assert.equal((await signIn('operator', OPERATOR_PASSWORD)).status, 400);
    const records = await audit();
    const rename = records.find((r) => r.event.action === 'user.rename');
    assert.deepEqual([rename?.event.resource, rename?.event.details?.to], [{ kind: 'user', id: 'local:operator' }, 'local:ops-lead']);
    assert.notEqual(rename?.event.actor.id, 'operator');
    assert.ok(records.some((r) => r.event.action === 'console.sign-in' && r.event.actor.id === 'ops-lead'));
  });

  it('users remove ends a session the removed login holds at its next request, and the audit log records the removal', async () => {
    const signedIn = await signIn('alice', ALICE_PASSWORD);
    assert.equal(signedIn.status, 200);
    assert.equal(await sessionStatus(signedIn.session!), 200);
    const removed = await users('remove', 'alice');
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(await sessionStatus(signedIn.session!), 401);
    assert.equal((await signIn('alice', ALICE_PASSWORD)).status, 401);
    const removal = (await audit()).find((r) => r.event.action === 'user.remove');
    assert.deepEqual([removal?.event.resource, removal?.event.details?.roles], [{ kind: 'user', id: 'local:alice' }, ['viewer']]);
  });

  it('users remove names a login it does not hold as not found, exit 2', async () => {
    const r = await users('remove', 'alice');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /no user named alice \[IDENTITY_USER_NOT_FOUND\]\n$/);
  });
});

describe('corral users remove admin', () => {
  /** `corral users remove admin` on a state directory holding these admin logins, then `users list`. */
  async function removeAdminBeside(admins: string[]): Promise<{ removed: Awaited<ReturnType<typeof corral>>; listed: string }> {
    const state = tempStateDir();
    try {
      const { Identity } = await import('@corral/identity');
      const identity = Identity.open(state);
      try {
        for (const name of admins) await identity.localUsers.create(name, `a password of some length for ${name}`, ['admin']);
      } finally {
        identity.close();
      }
      const removed = await corral(['--state-dir', state, 'users', 'remove', 'admin']);
      return { removed, listed: (await corral(['--state-dir', state, 'users', 'list'])).stdout };
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  }

  it('refuses to remove the only login that can sign in holding the admin role, exit 1 and IDENTITY_LAST_ADMIN, saying to give another login admin first (before, it was removed and the console had no administrator until corral up made admin again)', async () => {
    const { removed, listed } = await removeAdminBeside(['admin']);
    assert.equal(removed.code, 1, removed.stderr);
    assert.match(removed.stderr, /the login admin is the only one that can sign in holding the admin role: .*give another login the admin role first.*\[IDENTITY_LAST_ADMIN\]\n$/);
    assert.match(listed, /^admin +admin /m);
  });

  it('removes it while another login holds the admin role: corral up keeps that one', async () => {
    const { removed, listed } = await removeAdminBeside(['admin', 'alice']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(removed.stderr, '');
    assert.doesNotMatch(listed, /^admin /m);
  });
});

describe('corral users add and rename to a name another login holds', () => {
  it('refuse it as bad input, exit 2 with IDENTITY_USER_EXISTS, saying where it is shown and to choose another name, and change nothing (regression: exit 1, as a check that failed)', async () => {
    const state = tempStateDir();
    try {
      await seedOldStore(state);
      for (const args of [['add', 'alice', '--role', 'admin'], ['rename', 'operator', 'alice']]) {
        const r = await corral(['--state-dir', state, 'users', ...args, '--json']);
        assert.equal(r.code, 2, r.stderr);
        assert.equal(JSON.parse(r.stdout).error.code, 'IDENTITY_USER_EXISTS');
        assert.match(r.stderr, /^corral: a user named alice already exists: corral users list shows it; choose another name \[IDENTITY_USER_EXISTS\]\n$/);
      }
      const listed = JSON.parse((await corral(['--state-dir', state, 'users', 'list', '--json'])).stdout) as { users: Array<{ username: string; roles: string[] }> };
      assert.deepEqual(listed.users.map((u) => [u.username, u.roles]).sort(), [['alice', ['viewer']], ['operator', ['admin']]]);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});
