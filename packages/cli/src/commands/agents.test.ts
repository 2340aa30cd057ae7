import assert from 'node:assert/strict';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { openAuditReader, toAuditRecord } from '@corral/audit';
import { corral, type CorralRun } from '../../test/corral.ts';

const state = mkdtempSync(join(tmpdir(), 'corral-cli-agents-'));
after(() => rmSync(state, { recursive: true, force: true }));
const run = (...args: string[]) => corral(['--state-dir', state, ...args]);
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

describe('corral agents and tokens', () => {
  it('creates, lists and shows an agent, as text and as JSON', async () => {
    const created = await run('agents', 'create', 'invoice-bot', '--process', 'invoice-intake', '--owner', 'alice@example.com', '--scope', 'records:read', 'payments:create', '--json');
    assert.equal(created.code, 0, created.stderr);
    const agent = JSON.parse(created.stdout);
    assert.deepEqual([agent.name, agent.status, agent.scopes], ['invoice-bot', 'active', ['records:read', 'payments:create']]);
    const list = await run('agents', 'list', '--json');
    assert.deepEqual(JSON.parse(list.stdout).map((a: { name: string }) => a.name), ['invoice-bot']);
    const show = await run('agents', 'show', 'invoice-bot');
    assert.match(show.stdout, /owner: +alice@example\.com/);
  });

  it('prints the token alone on stdout, and tokens verify accepts it with its claims', async () => {
    const issued = await run('agents', 'token', 'invoice-bot', '--ttl', '5m');
    assert.equal(issued.code, 0, issued.stderr);
    assert.match(issued.stdout, /^[^\n]+\n$/);
    const token = issued.stdout.trim();
    assert.match(token, JWT);
    const verified = await run('tokens', 'verify', token, '--json');
    assert.equal(verified.code, 0, verified.stderr);
    const out = JSON.parse(verified.stdout);
    assert.equal(out.valid, true);
    assert.equal(out.claims.agent, 'invoice-bot');
    assert.equal(out.claims.exp - out.claims.iat, 300);
  });

  it('refuses a tampered token with a non-zero exit and the forged code, never echoing the token', async () => {
    const token = (await run('agents', 'token', 'invoice-bot')).stdout.trim();
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, scope: 'everything' })).toString('base64url')}.${s}`;
    const r = await run('tokens', 'verify', forged);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\[IDENTITY_TOKEN_SIGNATURE_INVALID\]/);
    assert.ok(!r.stderr.includes(s) && !r.stdout.includes(s));
  });

  it('is the kill switch: after suspend, a token that verified is refused by the next verification', async () => {
    const token = (await run('agents', 'token', 'invoice-bot')).stdout.trim();
    assert.equal((await run('tokens', 'verify', token)).code, 0);
    assert.equal((await run('agents', 'suspend', 'invoice-bot')).code, 0);
    const refused = await run('tokens', 'verify', token, '--json');
    assert.equal(refused.code, 1);
    assert.deepEqual([JSON.parse(refused.stdout).code, JSON.parse(refused.stdout).kind], ['IDENTITY_TOKEN_REVOKED', 'refused']);
    const noToken = await run('agents', 'token', 'invoice-bot');
    assert.equal(noToken.code, 1);
    assert.equal(noToken.stdout, '');
    assert.match(noToken.stderr, /IDENTITY_AGENT_STATE/);
    assert.equal((await run('agents', 'resume', 'invoice-bot')).code, 0);
    assert.equal((await run('tokens', 'verify', token)).code, 1);
  });

  it('withdraws on suspend the approvals of the agent a gateway here holds, pending or approved and unspent, and the grants those allowed always made, taken out of the set in one activation, so that none runs once it is resumed (regression: the grant stayed in the set and counted)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-cli-agents-withdraw-'));
    try {
      assert.equal((await corral(['--state-dir', dir, 'agents', 'create', 'pay-bot', '--process', 'payments', '--owner', 'o@example.com'])).code, 0);
      const { ApprovalStore, grantFile, grantPolicy, openGatewayDb } = await import('@corral/gateway');
      const ids = (() => {
        const db = openGatewayDb(dir);
        try {
          const store = new ApprovalStore(db);
          const pending = store.create({ digest: 'ab'.repeat(32), action: { principal: 'Agent::pay-bot' }, quorum: 1 });
          const approved = store.create({ digest: 'cd'.repeat(32), action: { principal: 'Agent::pay-bot' }, quorum: 1 });
          store.resolve(approved.id, 'allow-once', 'token:carol');
          // Two allowed always, their grants made, as a gateway here makes them.
          const [always, always2] = [['pay', '7'], ['pay', '8']].map((argv, i) => {
            const made = store.create({ digest: `${12 + i}`.repeat(32), action: { principal: 'Agent::pay-bot', command: 'system.run', argv, nodeId: 'n' }, quorum: 1 });
            const allowed = store.resolve(made.id, 'allow-always', 'token:carol');
            assert.equal(store.claimGrant(made.id), true);
            mkdirSync(join(dir, 'policies', 'grants'), { recursive: true });
            writeFileSync(join(dir, 'policies', grantFile(made.id)), grantPolicy(allowed));
            return made.id;
          });
          const other = store.create({ digest: 'ef'.repeat(32), action: { principal: 'Agent::other-bot' }, quorum: 1 });
          return { pending: pending.id, approved: approved.id, always: always!, always2: always2!, other: other.id };
        } finally {
          db.close();
        }
      })();
      const suspended = await corral(['--state-dir', dir, 'agents', 'suspend', 'pay-bot']);
      assert.equal(suspended.code, 0, suspended.stderr);
      assert.equal(suspended.stdout, 'agent pay-bot is suspended; 4 approvals withdrawn, 2 standing grants taken out of the policy set\n');
      const db = openGatewayDb(dir);
      try {
        const store = new ApprovalStore(db);
        assert.deepEqual([ids.pending, ids.approved, ids.always, ids.always2, ids.other].map((id) => store.get(id).status), ['denied', 'denied', 'denied', 'denied', 'pending']);
        assert.deepEqual([store.grantWithdrawn(ids.always), store.grantWithdrawn(ids.always2)], [true, true]);
      } finally {
        db.close();
      }
      assert.deepEqual([ids.always, ids.always2].map((id) => existsSync(join(dir, 'policies', grantFile(id)))), [false, false], 'the grants left the set');
      // Both in one activation: the set was compiled and swapped once, not once a grant.
      assert.equal(readdirSync(join(dir, 'policies.versions')).filter((name) => /^[0-9a-f]{64}$/.test(name)).length, 1, 'one set was activated');
      const reader = await openAuditReader({ stateDir: dir });
      try {
        const head = await reader.store.head();
        const events = [];
        for await (const batch of reader.store.scan(0, head.size)) for (const r of batch) events.push(toAuditRecord(r).event);
        assert.deepEqual(new Set(events.find((e) => e.action === 'agent.suspend')?.details?.deniedApprovals as string[]), new Set([ids.pending, ids.approved, ids.always, ids.always2]));
        assert.deepEqual(new Set(events.filter((e) => e.action === 'policy.grant.revoke').map((e) => `${e.resource.id} ${e.outcome?.status}`)), new Set([`approval-${ids.always} success`, `approval-${ids.always2} success`]));
      } finally {
        await reader.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('suspends at once when a running gateway holds its database locked, and warns that the approvals were not withdrawn and how to deny them before a resume', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-cli-agents-locked-'));
    try {
      assert.equal((await corral(['--state-dir', dir, 'agents', 'create', 'pay-bot', '--process', 'payments', '--owner', 'o@example.com'])).code, 0);
      const token = (await corral(['--state-dir', dir, 'agents', 'token', 'pay-bot'])).stdout.trim();
      const { ApprovalStore, GATEWAY_DB_FILE, openGatewayDb } = await import('@corral/gateway');
      const pending = (() => {
        const db = openGatewayDb(dir);
        try {
          return new ApprovalStore(db).create({ digest: 'ab'.repeat(32), action: { principal: 'Agent::pay-bot' }, quorum: 1 }).id;
        } finally {
          db.close();
        }
      })();
      // A gateway's write lock, held past the CLI's busy timeout (5 s, so this test takes about 6 s).
      const gateway = new DatabaseSync(join(dir, GATEWAY_DB_FILE));
      const identity = new DatabaseSync(join(dir, 'identity.db'), { readOnly: true });
      const status = () => (identity.prepare("SELECT status FROM agents WHERE name = 'pay-bot'").get() as { status: string }).status;
      let suspended: CorralRun;
      try {
        gateway.exec('BEGIN IMMEDIATE');
        let exited = false;
        const running = corral(['--state-dir', dir, 'agents', 'suspend', 'pay-bot']).finally(() => (exited = true));
        while (status() !== 'suspended' && !exited) await new Promise((r) => setTimeout(r, 20));
        assert.equal(exited, false, 'suspended while it still waits for the gateway');
        suspended = await running;
      } finally {
        gateway.exec('ROLLBACK');
        gateway.close();
        identity.close();
      }
      assert.equal(suspended.code, 0, suspended.stderr);
      assert.equal(suspended.stdout, 'agent pay-bot is suspended\n');
      assert.ok(suspended.stderr.startsWith(`corral: warning: the agent is suspended, but its approvals in ${dir} could not be withdrawn: database is locked;`), suspended.stderr);
      assert.match(suspended.stderr, /before resuming it, deny each one \(corral approvals list --all, then corral approvals deny ID\)\n$/);
      const db = openGatewayDb(dir);
      try {
        assert.equal(new ApprovalStore(db).get(pending).status, 'pending', 'not withdrawn, as the warning says');
      } finally {
        db.close();
      }
      const reader = await openAuditReader({ stateDir: dir });
      try {
        const records = [];
        for await (const batch of reader.store.scan(0, (await reader.store.head()).size)) for (const r of batch) records.push(toAuditRecord(r).event);
        const details = records.find((e) => e.action === 'agent.suspend')?.details;
        assert.deepEqual([details?.approvalsNotWithdrawn, details?.deniedApprovals], ['database is locked', undefined], 'the record says the withdrawal failed, not that none were pending');
      } finally {
        await reader.close();
      }
      assert.equal((await corral(['--state-dir', dir, 'tokens', 'verify', token])).code, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a malformed TTL as bad usage (exit 2)', async () => {
    const r = await run('agents', 'token', 'invoice-bot', '--ttl', 'forever');
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
  });

  it('names the option at fault, and gives the code under --json, for each input it refuses', async () => {
    // Before: the JSON error had no code (only "[IDENTITY_INPUT_INVALID]" inside its message), and "a token lives 1 to 3600 seconds" named no option.
    const cases: Array<[string[], RegExp]> = [
      [['agents', 'token', 'invoice-bot', '--ttl', 'forever'], /^--ttl: /],
      [['agents', 'token', 'invoice-bot', '--ttl', '2h'], /^--ttl: a token lives at most 3600 seconds/],
      [['agents', 'create', 'Invoice Bot', '--process', 'p', '--owner', 'alice@example.com'], /^name must be/],
      [['agents', 'create', 'x', '--process', 'p', '--owner', 'alice'], /^owner must be an email address/],
    ];
    for (const [args, message] of cases) {
      const r = await run(...args, '--json');
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      const { error } = JSON.parse(r.stdout);
      assert.equal(error.code, 'IDENTITY_INPUT_INVALID', args.join(' '));
      assert.match(error.message, message);
      assert.equal(r.stderr.split('[IDENTITY_INPUT_INVALID]').length, 2, 'the code once on stderr');
    }
  });

  it('publishes the JWKS, and takes the state directory from CORRAL_STATE_DIR too', async () => {
    const r = await corral(['identity', 'jwks'], { env: { CORRAL_STATE_DIR: state } });
    assert.equal(r.code, 0, r.stderr);
    const jwks = JSON.parse(r.stdout);
    assert.equal(jwks.keys[0].alg, 'EdDSA');
    assert.ok(!('d' in jwks.keys[0]));
  });

  it('records each identity change in the audit log of the state directory', async () => {
    const reader = await openAuditReader({ stateDir: state });
    try {
      const head = await reader.store.head();
      const actions: string[] = [];
      for await (const batch of reader.store.scan(0, head.size)) for (const r of batch) actions.push(toAuditRecord(r).event.action);
      assert.deepEqual(actions.filter((a) => a.startsWith('agent.')), ['agent.create', 'agent.suspend', 'agent.resume']);
    } finally {
      await reader.close();
    }
  });
});

describe('corral agents create of a name another agent holds', () => {
  it('refuses it as bad input, exit 2 with IDENTITY_AGENT_EXISTS, saying how to show that agent and to give the new one another name, and changes nothing (regression: exit 1, as a check that failed)', async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'corral-cli-agents-taken-'));
    try {
      const create = (owner: string, ...more: string[]) => corral(['--state-dir', fresh, 'agents', 'create', 'invoice-bot', '--process', 'invoice-intake', '--owner', owner, ...more]);
      assert.equal((await create('alice@example.com')).code, 0);
      const again = await create('mallory@example.com', '--json');
      assert.equal(again.code, 2, again.stderr);
      assert.equal(JSON.parse(again.stdout).error.code, 'IDENTITY_AGENT_EXISTS');
      assert.match(again.stderr, /^corral: an agent named invoice-bot already exists: corral agents show invoice-bot shows it; give the new agent another name \[IDENTITY_AGENT_EXISTS\]\n$/);
      const shown = JSON.parse((await corral(['--state-dir', fresh, 'agents', 'show', 'invoice-bot', '--json'])).stdout) as { owner: string };
      assert.equal(shown.owner, 'alice@example.com');
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });
});

describe('when an older store holds an owner address that could write to the terminal', () => {
  it('lists and shows it with its control and format characters escaped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-cli-owner-'));
    try {
      assert.equal((await corral(['--state-dir', dir, 'agents', 'create', 'old-bot', '--process', 'p', '--owner', 'ops@example.com'])).code, 0);
      // Written as a store from before owners were checked could hold it.
      const db = new DatabaseSync(join(dir, 'identity.db'));
      db.prepare("UPDATE agents SET owner = ? WHERE name = 'old-bot'").run('\x1b[2J\x1b[Halice\u202e@example.com');
      db.close();
      for (const verb of [['list'], ['show', 'old-bot']]) {
        const r = await corral(['--state-dir', dir, 'agents', ...verb]);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(!r.stdout.includes('\x1b') && !r.stdout.includes('\u202e'), verb.join(' '));
        assert.match(r.stdout, /\\u001b\[2J\\u001b\[Halice\\u202e@example\.com/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('when the identity store cannot be opened', () => {
  it('names the file and why, and exits 3', async () => {
    // Before: "cannot open the identity store in DIR", and nothing about what was wrong with it.
    const dir = mkdtempSync(join(tmpdir(), 'corral-cli-broken-'));
    try {
      writeFileSync(join(dir, 'identity.db'), 'this is not a SQLite database, whatever its name says.\n'.repeat(20));
      const r = await corral(['--state-dir', dir, 'agents', 'list', '--json']);
      assert.equal(r.code, 3, r.stderr);
      const { error } = JSON.parse(r.stdout);
      assert.equal(error.code, 'IDENTITY_STORE_FAILED');
      assert.equal(error.message, `cannot open the identity store ${join(dir, 'identity.db')}: file is not a database`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('exits 3 with the code when the identity store is a symbolic link or the state directory another user\'s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-cli-unsafe-'));
    try {
      writeFileSync(join(dir, 'elsewhere.db'), '');
      symlinkSync(join(dir, 'elsewhere.db'), join(dir, 'identity.db'));
      const linked = await corral(['--state-dir', dir, 'agents', 'list', '--json']);
      assert.equal(linked.code, 3, linked.stderr);
      assert.equal(JSON.parse(linked.stdout).error.code, 'IDENTITY_STORE_SYMLINK');
      if (process.getuid?.() === 0) {
        rmSync(join(dir, 'identity.db'));
        writeFileSync(join(dir, 'identity.db'), '');
        chownSync(dir, 65534, 65534);
        const foreign = await corral(['--state-dir', dir, 'agents', 'list', '--json']);
        assert.equal(foreign.code, 3, foreign.stderr);
        assert.equal(JSON.parse(foreign.stdout).error.code, 'IDENTITY_STATE_DIR_UNSAFE');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('when the state directory belongs to another user', () => {
  it('refuses a change to record there (exit 3) before anything is made in it, the audit log\'s signing key included (regression: the key and log were made there before the identity store refused the folder)', { skip: process.getuid?.() !== 0 && 'only root can give a folder to another user' }, async () => {
    const theirs = mkdtempSync(join(tmpdir(), 'corral-cli-theirs-'));
    try {
      chownSync(theirs, 65534, 65534);
      const r = await corral(['--state-dir', theirs, 'agents', 'create', 'bot', '--process', 'p', '--owner', 'ops@example.com']);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /belongs to another user \(uid 65534\)/);
      assert.deepEqual(readdirSync(theirs), []);
    } finally {
      rmSync(theirs, { recursive: true, force: true });
    }
  });
});

describe('when the state directory holds no identity store (a mistyped --state-dir)', () => {
  const empty = join(state, 'no-such-install');
  const commands = [
    ['agents', 'list'],
    ['agents', 'suspend', 'invoice-bot'],
    ['agents', 'token', 'invoice-bot'],
    ['tokens', 'verify', 'a.b.c'],
    ['identity', 'keys'],
    ['identity', 'rotate'],
    ['identity', 'nodes', 'pair', '3f9a0c1e2b4d5a6f'],
    ['users', 'list'],
    ['users', 'passwd', 'admin'],
  ];
  for (const args of commands) {
    it(`corral ${args.join(' ')} says so, exits 3 and creates nothing`, async () => {
      const r = await corral(['--state-dir', empty, ...args, '--json']);
      assert.equal(r.code, 3, r.stderr);
      assert.match(JSON.parse(r.stdout).error.message, /no identity store/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(existsSync(empty), false);
    });
  }
});

describe('when the audit log of the state directory cannot be written', () => {
  it('makes no change that lets more happen (an agent created or resumed: exit 3, nothing changed), and still suspends at once, with a warning (regression: created and resumed unrecorded)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-cli-nolog-'));
    try {
      assert.equal((await corral(['--state-dir', dir, 'agents', 'create', 'kept-bot', '--process', 'p', '--owner', 'ops@example.com'])).code, 0);
      // A log file that is not a Corral audit log: it cannot take a record.
      writeFileSync(join(dir, 'audit.db'), 'this is not a database, and never was one.'.repeat(100));
      const created = await corral(['--state-dir', dir, 'agents', 'create', 'new-bot', '--process', 'p', '--owner', 'ops@example.com']);
      assert.equal(created.code, 3, created.stderr);
      assert.match(created.stderr, /cannot record this change, so it was not made/);
      const suspended = await corral(['--state-dir', dir, 'agents', 'suspend', 'kept-bot']);
      assert.equal(suspended.code, 0, suspended.stderr);
      assert.match(suspended.stderr, /warning: the change was made but could not be recorded/);
      assert.equal((await corral(['--state-dir', dir, 'agents', 'resume', 'kept-bot'])).code, 3);
      const listed = await corral(['--state-dir', dir, 'agents', 'list', '--json']);
      assert.deepEqual(JSON.parse(listed.stdout).map((a: { name: string; status: string }) => [a.name, a.status]), [['kept-bot', 'suspended']]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
