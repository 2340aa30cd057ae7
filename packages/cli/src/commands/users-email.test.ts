// corral users add --email and corral users email: the address a local
// console login is known by, which four eyes matches against the owners of
// agents (before, a login had only a username, never an owner's address, so
// an owner with a local login allowed their own agent's requests alone).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ApprovalStore, openGatewayDb } from '@corral/gateway';
import { Identity } from '@corral/identity';
import { consoleGateway, type ConsoleSession } from '../../test/console-gateway.ts';

describe('corral users add and corral users email', () => {
  const gateway = consoleGateway((state) => {
    const identity = Identity.open(state);
    identity.agents.create({ name: 'invoice-bot', process: 'invoices', owner: 'alice@example.com' });
    identity.close();
  });
  const { users, audit } = gateway;
  /** `username` signs in to the console's API with `password`: the session's cookie and key. */
  const signIn = async (username: string, password: string) => {
    const answer = await gateway.signIn(username, password);
    assert.equal(answer.status, 200, `${username} signs in`);
    return answer.session!;
  };
  /** `session` decides approval `id` (`approve` or `deny`) over the console's API: the status and body. */
  const decide = async (session: ConsoleSession, id: string, verb: 'approve' | 'deny') => {
    const answer = await fetch(`${gateway.url}/api/approvals/${id}/${verb}`, { method: 'POST', headers: { cookie: session.cookie, 'x-corral-csrf': session.csrf, 'content-type': 'application/json' }, body: '{}' });
    return { status: answer.status, body: (await answer.json()) as { status?: string; code?: string } };
  };
  /** A request of invoice-bot (owned by alice@example.com) waiting in the gateway's store for one approver. */
  const botAsks = () => {
    const db = openGatewayDb(gateway.state);
    try {
      return new ApprovalStore(db).create({ digest: createHash('sha256').update(randomBytes(8)).digest('hex'), action: { principal: 'Agent::invoice-bot', argv: ['pay', '100'] }, quorum: 1 }).id;
    } finally {
      db.close();
    }
  };
  const added = new Map<string, string>();
  /** `corral users add` with these arguments and --json: the login it printed, its password kept for signIn. */
  const add = async (...args: string[]) => {
    const r = await users('add', ...args, '--json');
    assert.equal(r.code, 0, r.stderr);
    const user = JSON.parse(r.stdout) as { username: string; password: string; email?: string; roles: string[] };
    added.set(user.username, user.password);
    return user;
  };

  it('users add --email makes a login with that address and a random password printed once, shown by users list and list --json, and recorded as user.create', async () => {
    const alice = await add('alice', '--role', 'approver', '--email', 'Alice@Example.com');
    assert.deepEqual([alice.username, alice.roles, alice.email, alice.password.length], ['alice', ['approver'], 'Alice@Example.com', 24]);
    const bob = await add('bob', '--role', 'approver', 'auditor');
    assert.deepEqual([bob.roles, 'email' in bob], [['approver', 'auditor'], false]);
    const listed = await users('list');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^USER +ROLES +EMAIL +SINCE\n/);
    assert.match(listed.stdout, /^alice +approver +Alice@Example\.com /m);
    assert.match(listed.stdout, /^bob +approver,auditor +- /m);
    const json = JSON.parse((await users('list', '--json')).stdout) as { users: Array<{ username: string; email?: string }> };
    assert.deepEqual(json.users.map((u) => [u.username, u.email]), [['alice', 'Alice@Example.com'], ['bob', undefined]]);
    const made = (await audit()).find((r) => r.event.action === 'user.create' && r.event.resource.id === 'local:alice');
    assert.deepEqual(made?.event.details, { roles: ['approver'], email: 'Alice@Example.com' });
    assert.notEqual(made?.event.actor.id, 'operator');
  });

  it("the owner's login may not allow the agent's request over the console (403 GATEWAY_APPROVAL_OWN_REQUEST) but may deny one; another login allows it (regression: the owner's local login allowed it alone)", async () => {
    const alice = await signIn('alice', added.get('alice')!);
    const id = botAsks();
    const refused = await decide(alice, id, 'approve');
    assert.deepEqual([refused.status, refused.body.code], [403, 'GATEWAY_APPROVAL_OWN_REQUEST']);
    assert.equal((await decide(alice, botAsks(), 'deny')).body.status, 'denied');
    const allowed = await decide(await signIn('bob', added.get('bob')!), id, 'approve');
    assert.deepEqual([allowed.status, allowed.body.status], [200, 'allowed']);
  });

  it('users email gives a login an address, changes it and takes it away (--clear), each recorded as user.email.set with the address before; bob, given the owner\'s, may then not allow', async () => {
    const given = await users('email', 'bob', 'alice@example.com', '--json');
    assert.equal(given.code, 0, given.stderr);
    assert.equal((JSON.parse(given.stdout) as { email: string }).email, 'alice@example.com');
    const bob = await signIn('bob', added.get('bob')!);
    assert.equal((await decide(bob, botAsks(), 'approve')).body.code, 'GATEWAY_APPROVAL_OWN_REQUEST');
    const changed = await users('email', 'bob', 'bob@example.com');
    assert.equal(changed.code, 0, changed.stderr);
    assert.match(changed.stdout, /^the login bob now has the email address bob@example\.com \(it had alice@example\.com\); a session it held has ended\n$/);
    const cleared = await users('email', 'bob', '--clear', '--json');
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.equal('email' in JSON.parse(cleared.stdout), false);
    const records = (await audit()).filter((r) => r.event.action === 'user.email.set').map((r) => [r.event.resource.id, r.event.details]);
    assert.deepEqual(records, [
      ['local:bob', { email: 'alice@example.com', previous: null }],
      ['local:bob', { email: 'bob@example.com', previous: 'alice@example.com' }],
      ['local:bob', { email: null, previous: 'bob@example.com' }],
    ]);
  });

  describe('given an address Corral does not keep', () => {
    const refused: Array<[string, string, RegExp]> = [
      ['not an email address', 'carol', /email must be an address/],
      ['longer than 254 characters', `${'c'.repeat(60)}@${['d', 'e', 'f', 'g'].map((l) => l.repeat(60)).join('.')}.example`, /email must be at most 254 characters/],
      ['holding an escape sequence', 'carol\u001b[2J@example.com', /email must hold no control/],
      ['holding a line feed', 'carol@example.com\nalice@example.com', /email must hold no control/],
    ];
    for (const [what, address, message] of refused) {
      it(`refuses one ${what} with exit 2 and IDENTITY_INPUT_INVALID naming the field, adding and changing nothing, recording nothing`, async () => {
        const before = (await audit()).length;
        const add = await users('add', 'carol', '--role', 'viewer', '--email', address);
        assert.equal(add.code, 2, add.stderr);
        assert.match(add.stderr, message);
        assert.match(add.stderr, /\[IDENTITY_INPUT_INVALID\]\n$/);
        const set = await users('email', 'alice', address, '--json');
        assert.equal(set.code, 2, set.stderr);
        assert.equal((JSON.parse(set.stdout) as { error: { code: string } }).error.code, 'IDENTITY_INPUT_INVALID');
        const listed = JSON.parse((await users('list', '--json')).stdout) as { users: Array<{ username: string; email?: string }> };
        assert.deepEqual(listed.users.map((u) => [u.username, u.email]), [['alice', 'Alice@Example.com'], ['bob', undefined]]);
        assert.equal((await audit()).length, before);
      });
    }
  });

  it('users email refuses neither an address nor --clear, and both (exit 2), and a login it does not hold (IDENTITY_USER_NOT_FOUND)', async () => {
    for (const args of [['alice'], ['alice', 'a@example.com', '--clear']]) {
      const r = await users('email', ...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /give either an address or --clear/);
    }
    const unknown = await users('email', 'nobody', 'nobody@example.com');
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /\[IDENTITY_USER_NOT_FOUND\]\n$/);
  });
});
