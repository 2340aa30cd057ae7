// corral gateway, corral node run, corral nodes pair and corral approvals,
// each as a real process, with an operator connected over the protocol.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ApprovalStore, GatewayClient, grantFile, grantPolicy, openGatewayDb } from '@corral/gateway';
import { corral, killStarted, startCorral, tempStateDir } from '../../test/corral.ts';
import { pendingNode } from '../../test/pending-node.ts';
import { damageTable } from '../../../../scripts/testing/damage-sqlite.ts';
import { EXIT } from '../exit-codes.ts';

const gatewayState = tempStateDir();
const nodeState = tempStateDir();
after(() => {
  killStarted();
  rmSync(gatewayState, { recursive: true, force: true });
  rmSync(nodeState, { recursive: true, force: true });
});

describe('corral approvals with a running gateway and node', () => {
  it('pairs a corral node, holds an asking command until corral approvals approve, then runs it contained', async () => {
    mkdirSync(join(gatewayState, 'policies'));
    writeFileSync(join(gatewayState, 'policies', 'run.cedar'), '@id("printf-asks") @approval("required") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"printf");\n');
    const token = (await corral(['--state-dir', gatewayState, 'gateway', 'token'])).stdout.trim();
    const gateway = await startCorral(['--state-dir', gatewayState, 'gateway', '--port', '0'], /listening on (ws:\/\/\S+)/);
    const url = gateway.match[1]!;
    const node = await startCorral(['--state-dir', nodeState, 'node', 'run', '--gateway', url, '--token', token, '--name', 'cli-node'], /waiting for an operator to pair node ([0-9a-f]{64})/);
    const deviceId = node.match[1]!;
    const paired = await corral(['--state-dir', gatewayState, 'nodes', 'pair', deviceId]);
    assert.equal(paired.code, 0, paired.stderr);

    const operator = await GatewayClient.connect({ url, token, role: 'operator', scopes: ['operator.admin'] });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { nodes } = (await operator.request('node.list', {})) as { nodes: Array<{ nodeId: string; connected: boolean }> };
      if (nodes.some((n) => n.nodeId === deviceId && n.connected)) break;
      assert.ok(Date.now() < deadline, 'the node did not connect after pairing');
      await new Promise((r) => setTimeout(r, 100));
    }
    const pendingApproval = async (): Promise<{ id: string }> => {
      for (;;) {
        const list = JSON.parse((await corral(['--state-dir', gatewayState, 'approvals', 'list', '--json'])).stdout) as Array<{ id: string }>;
        if (list.length > 0) return list[0]!;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const invoke = (text: string) => operator.request('node.invoke', { nodeId: deviceId, command: 'system.run', params: { command: ['printf', text] }, timeoutMs: 15_000, idempotencyKey: randomUUID() }, { timeoutMs: 20_000 });

    const allowed = invoke('from the cli');
    let pending: Array<{ id: string; action: { argv: string[] } }> = [];
    while (pending.length === 0) {
      pending = JSON.parse((await corral(['--state-dir', gatewayState, 'approvals', 'list', '--json'])).stdout);
      if (pending.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(pending[0]!.action.argv, ['printf', 'from the cli']);
    const approved = await corral(['--state-dir', gatewayState, 'approvals', 'approve', pending[0]!.id, '--by', 'alice', '--json']);
    assert.equal(JSON.parse(approved.stdout).status, 'allowed');
    assert.equal(((await allowed) as { payload: { stdout: string } }).payload.stdout, 'from the cli');

    const refused = assert.rejects(invoke('refused'), (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'SYSTEM_RUN_DENIED');
    let second: Array<{ id: string }> = [];
    while (second.length === 0) {
      second = JSON.parse((await corral(['--state-dir', gatewayState, 'approvals', 'list', '--json'])).stdout);
      if (second.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await corral(['--state-dir', gatewayState, 'approvals', 'deny', second[0]!.id, '--by', 'bob'])).code, 0);
    await refused;
    assert.equal((await corral(['--state-dir', gatewayState, 'approvals', 'approve', 'no-such-id'])).code, 2);

    // allow-always, then `corral approvals revoke` from this other process: the running gateway asks again at its next decision.
    const always = invoke('always');
    const third = await pendingApproval();
    assert.equal((await corral(['--state-dir', gatewayState, 'approvals', 'approve', third.id, '--always', '--by', 'alice'])).code, 0);
    assert.equal(((await always) as { payload: { stdout: string } }).payload.stdout, 'always');
    assert.equal(((await invoke('always')) as { payload: { stdout: string } }).payload.stdout, 'always', 'the standing grant answers without asking');
    const revoked = await corral(['--state-dir', gatewayState, 'approvals', 'revoke', third.id, '--by', 'carol', '--json']);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.deepEqual(JSON.parse(revoked.stdout), { id: third.id, grant: `approval-${third.id}`, outcome: 'revoked' });
    assert.equal(existsSync(join(gatewayState, 'policies', 'grants', `approval-${third.id}.cedar`)), false);
    const asksAgain = assert.rejects(invoke('always'), (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'SYSTEM_RUN_DENIED');
    const fourth = await pendingApproval();
    assert.notEqual(fourth.id, third.id);
    assert.equal((await corral(['--state-dir', gatewayState, 'approvals', 'deny', fourth.id, '--by', 'carol'])).code, 0);
    await asksAgain;
    const shown = await corral(['--state-dir', gatewayState, 'audit', 'tail', '-n', '1000', '--json']);
    const records = shown.stdout.trim().split('\n').map((line) => JSON.parse(line) as { event: { action: string; actor: { id: string }; resource: { id: string } } });
    const revocations = records.filter((r) => r.event.action === 'policy.grant.revoke');
    assert.deepEqual(revocations.map((r) => [r.event.actor.id, r.event.resource.id]), [['carol', `approval-${third.id}`]]);
    assert.equal((await corral(['--state-dir', gatewayState, 'approvals', 'revoke', third.id])).code, 2, 'nothing left to revoke');
    assert.equal((await corral(['--state-dir', gatewayState, 'approvals', 'revoke', 'not-an-id'])).code, 2);

    await operator.close();
    node.child.kill('SIGTERM');
    gateway.child.kill('SIGTERM');
    assert.equal(await node.exited, 0);
    assert.equal(await gateway.exited, 0);
  });
});

describe('corral approvals list, reading what an agent asked', () => {
  it('writes escape sequences and bidi overrides in a command line as \\u escapes, so the argv cannot redraw the terminal or pose as another command (regression: an ESC reached the approver\'s terminal)', async () => {
    const state = tempStateDir();
    try {
      const db = openGatewayDb(state);
      new ApprovalStore(db).create({ digest: 'c'.repeat(64), action: { argv: ['rm', '-rf', '/srv\u001b[2K\u001b[1Gls', 'x\u202etxt.exe', 'a\u0085b'] }, quorum: 1 });
      db.close();
      const result = await corral(['--state-dir', state, 'approvals', 'list']);
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stdout, /[\u001b\u202e\u0085]/u);
      assert.match(result.stdout, /rm -rf '\/srv\\u001b\[2K\\u001b\[1Gls' 'x\\u202etxt\.exe' 'a\\u0085b'\n$/);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });

  it("quotes each argument as a shell would need it, so an argument holding spaces or a ';' never reads as several arguments or a second command (regression: joined with spaces)", async () => {
    const state = tempStateDir();
    try {
      const db = openGatewayDb(state);
      const store = new ApprovalStore(db);
      store.create({ digest: 'd'.repeat(64), action: { argv: ['echo', "it's done; rm -rf ~"] }, quorum: 1 });
      store.create({ digest: 'e'.repeat(64), action: { argv: ['cp', 'a b', 'c'] }, quorum: 1 });
      db.close();
      const lines = (await corral(['--state-dir', state, 'approvals', 'list'])).stdout.trim().split('\n').slice(1);
      assert.equal(lines.length, 2);
      assert.ok(lines.some((l) => l.endsWith("  cp 'a b' c")), lines.join('\n'));
      assert.ok(lines.some((l) => l.endsWith("  echo 'it'\\''s done; rm -rf ~'")), lines.join('\n'));
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('corral approvals approve when the audit log cannot take the record', () => {
  it('leaves the approval pending and says why, with exit 3', async () => {
    const state = tempStateDir();
    try {
      const db = openGatewayDb(state);
      const approval = new ApprovalStore(db).create({ digest: 'a'.repeat(64), action: { argv: ['printf', 'x'] }, quorum: 1 });
      db.close();
      writeFileSync(join(state, 'audit.db'), 'not a database');
      const result = await corral(['--state-dir', state, 'approvals', 'approve', approval.id, '--by', 'alice']);
      assert.equal(result.code, 3, result.stderr);
      assert.match(result.stderr, /not approved: the audit log in .* cannot be opened .*the approval is unchanged/);
      const reopened = openGatewayDb(state);
      assert.equal(new ApprovalStore(reopened).get(approval.id).status, 'pending');
      reopened.close();
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('corral approvals approve under a quorum', () => {
  it('counts one system account as one approver, whatever names it gives with --by (regression: --by alice then --by bob met a quorum of two)', async () => {
    const state = tempStateDir();
    try {
      const db = openGatewayDb(state);
      const approval = new ApprovalStore(db).create({ digest: 'b'.repeat(64), action: { argv: ['pay', '20000'] }, quorum: 2 });
      db.close();
      const alice = await corral(['--state-dir', state, 'approvals', 'approve', approval.id, '--by', 'alice', '--json']);
      assert.equal(alice.code, 0, alice.stderr);
      assert.equal(JSON.parse(alice.stdout).status, 'pending');
      const bob = await corral(['--state-dir', state, 'approvals', 'approve', approval.id, '--by', 'bob']);
      assert.equal(bob.code, EXIT.failed);
      assert.match(bob.stderr, /not approved: the system account \S+ already approved \S+ as alice, and an account counts once toward a quorum; 1 more approval is needed from another person/);
      const shown = await corral(['--state-dir', state, 'approvals', 'list', '--json']);
      assert.deepEqual(JSON.parse(shown.stdout)[0].approvers.length, 1);
      const tail = await corral(['--state-dir', state, 'audit', 'tail', '--json']);
      const resolves = tail.stdout.trim().split('\n').map((line) => JSON.parse(line) as { event: { action: string; actor: { id: string } } }).filter((r) => r.event.action === 'approval.resolve');
      assert.deepEqual(resolves.map((r) => r.event.actor.id), ['alice'], 'no record names bob as an approver (regression: "human:bob approval.resolve allow → success", counted for nothing)');
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('corral approvals deny --reason', () => {
  it('keeps the reason with the approval and in its approval.resolve record, and refuses one past 500 characters with exit 2, leaving the approval pending', async () => {
    const state = tempStateDir();
    try {
      const db = openGatewayDb(state);
      const store = new ApprovalStore(db);
      const first = store.create({ digest: 'c'.repeat(64), action: { argv: ['pay', '20000'] }, quorum: 1 });
      const second = store.create({ digest: 'd'.repeat(64), action: { argv: ['pay', '30000'] }, quorum: 1 });
      db.close();
      const long = await corral(['--state-dir', state, 'approvals', 'deny', second.id, '--reason', 'x'.repeat(501)]);
      assert.equal(long.code, 2, long.stderr);
      assert.match(long.stderr, /--reason: reason must be text of at most 500 characters/);
      const denied = await corral(['--state-dir', state, 'approvals', 'deny', first.id, '--reason', 'no payments during the freeze', '--json']);
      assert.equal(denied.code, 0, denied.stderr);
      assert.deepEqual([JSON.parse(denied.stdout).status, JSON.parse(denied.stdout).reason], ['denied', 'no payments during the freeze']);
      const listed = await corral(['--state-dir', state, 'approvals', 'list', '--all']);
      assert.match(listed.stdout, new RegExp(`${first.id} .*— no payments during the freeze`));
      assert.match(listed.stdout, new RegExp(`${second.id}  pending`));
      const shown = await corral(['--state-dir', state, 'audit', 'tail', '--json']);
      const resolves = shown.stdout.trim().split('\n').map((line) => JSON.parse(line) as { event: { action: string; resource: { id: string }; details?: Record<string, unknown> } }).filter((r) => r.event.action === 'approval.resolve');
      assert.deepEqual(resolves.map((r) => [r.event.resource.id, r.event.details?.reason]), [[first.id, 'no payments during the freeze']]);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('corral approvals given what names nothing', () => {
  it('says there is no gateway state, with exit 3, and creates nothing, for a state directory no gateway has used', async () => {
    const state = join(tempStateDir(), 'typo');
    try {
      for (const args of [['approvals', 'list'], ['approvals', 'approve', randomUUID(), '--by', 'alice'], ['approvals', 'deny', randomUUID()], ['approvals', 'revoke', randomUUID()]]) {
        const result = await corral(['--state-dir', state, ...args]);
        assert.equal(result.code, 3, `${args.join(' ')}: ${result.stderr}`);
        assert.match(result.stderr, /no gateway state in .*typo/);
      }
      assert.equal(existsSync(state), false, 'nothing was created');
    } finally {
      rmSync(join(state, '..'), { recursive: true, force: true });
    }
  });

  it('names the unknown id and where the ids are listed, and under --json gives its code in the error document, with exit 2, to approve, deny and revoke alike (regression: revoke gave CLI_BAD_ARGUMENT, and none said where to find an id)', async () => {
    const state = tempStateDir();
    try {
      openGatewayDb(state).close();
      for (const args of [['approve', 'no-such-id', '--by', 'alice'], ['deny', 'no-such-id'], ['revoke', 'no-such-id']]) {
        const result = await corral(['--state-dir', state, 'approvals', ...args, '--json']);
        assert.equal(result.code, 2, result.stderr);
        const { error } = JSON.parse(result.stdout);
        assert.equal(error.code, 'GATEWAY_APPROVAL_NOT_FOUND', args.join(' '));
        assert.match(error.message, new RegExp(`${args[1]}.*: corral approvals list --all shows the id of every approval$`), args.join(' '));
      }
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('corral approvals revoke of a well-formed id that names no grant', () => {
  it('says there is no grant with that id and where the ids are, exit 2 with GATEWAY_APPROVAL_NOT_FOUND as audit show and nodes revoke give for what is not there, for an unknown approval and one allowed once alike (regression: a bare CLI_BAD_ARGUMENT, as if the command were misused)', async () => {
    const state = tempStateDir();
    try {
      const db = openGatewayDb(state);
      const store = new ApprovalStore(db);
      const once = store.resolve(store.create({ digest: 'f'.repeat(64), action: { command: 'system.run', argv: ['printf', 'x'], principal: 'Human::"operator"', nodeId: 'n' }, quorum: 1 }).id, 'allow-once', 'account:alice:alice');
      db.close();
      for (const id of [randomUUID(), once.id, `approval-${once.id}`]) {
        const json = await corral(['--state-dir', state, 'approvals', 'revoke', id, '--json']);
        assert.equal(json.code, 2, json.stderr);
        const { error } = JSON.parse(json.stdout);
        assert.equal(error.code, 'GATEWAY_APPROVAL_NOT_FOUND', id);
        assert.match(error.message, /^no grant approval-\S+ .*: corral approvals list --all shows the id of every approval$/, id);
        const human = await corral(['--state-dir', state, 'approvals', 'revoke', id]);
        assert.equal(human.code, 2, human.stderr);
        assert.match(human.stderr, /^corral: no grant approval-\S+ .*\[GATEWAY_APPROVAL_NOT_FOUND\]\n$/);
        assert.equal(human.stdout, '');
      }
      assert.ok(!readdirSync(state).includes('audit.db'), 'nothing was recorded');
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('corral approvals and nodes when the gateway state cannot be opened', () => {
  it('exit 3, naming gateway.db, why and what to do, with its code under --json (regression: "the gateway state could not be opened", exit 2, as bad usage; then GATEWAY_CONFIG_INVALID, as if the configuration were wrong)', async () => {
    const dir = tempStateDir();
    try {
      assert.equal((await corral(['--state-dir', dir, 'agents', 'create', 'invoice-bot', '--process', 'p', '--owner', 'a@example.com'])).code, 0);
      writeFileSync(join(dir, 'gateway.db'), 'not a database: text long enough for SQLite to read a header from it\n', { mode: 0o600 });
      for (const args of [['approvals', 'list'], ['nodes', 'list']]) {
        const r = await corral(['--state-dir', dir, ...args, '--json']);
        assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
        const { error } = JSON.parse(r.stdout);
        assert.equal(error.code, 'GATEWAY_STORE_FAILED');
        assert.ok(error.message.startsWith(`cannot open the gateway state ${join(dir, 'gateway.db')}: it is not a database, or is damaged: restore it from a backup, or move it aside`), error.message);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('corral approvals revoke, before the grant is made', () => {
  it('withholds the grant of an approval resolved always whose run has not come yet, says so and records it (regression: it answered "no active grant", exit 2, and the run made the grant when it came)', async () => {
    const state = tempStateDir();
    try {
      mkdirSync(join(state, 'policies'));
      writeFileSync(join(state, 'policies', 'run.cedar'), 'permit (principal, action == Action::"system.run", resource == Command::"ls");\n');
      const db = openGatewayDb(state);
      const created = new ApprovalStore(db).create({ digest: 'e'.repeat(64), action: { command: 'system.run', argv: ['printf', 'x'], principal: 'Human::"operator"', nodeId: 'n' }, quorum: 1 });
      db.close();
      assert.equal((await corral(['--state-dir', state, 'approvals', 'approve', created.id, '--always', '--by', 'alice'])).code, 0);
      const withheld = await corral(['--state-dir', state, 'approvals', 'revoke', created.id, '--by', 'carol']);
      assert.equal(withheld.code, 0, withheld.stderr);
      assert.match(withheld.stdout, /^withheld grant approval-\S+ before it was made: its approval still allows the one run waiting on it/);
      const reopened = openGatewayDb(state);
      try {
        assert.equal(new ApprovalStore(reopened).claimGrant(created.id), false, 'no gateway makes the grant when the run spends the approval');
      } finally {
        reopened.close();
      }
      const shown = await corral(['--state-dir', state, 'audit', 'tail', '--json']);
      const revocation = shown.stdout.trim().split('\n').map((line) => JSON.parse(line) as { event: { action: string; details?: Record<string, unknown> } }).find((r) => r.event.action === 'policy.grant.revoke');
      assert.equal(revocation?.event.details?.withheldBeforeMade, true);
      const again = await corral(['--state-dir', state, 'approvals', 'revoke', created.id, '--json']);
      assert.equal(again.code, 2, 'nothing left to withhold');
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('corral approvals revoke, while the approval is pending', () => {
  it('refuses (exit 1, GATEWAY_APPROVAL_PENDING) and says to deny it instead, leaving nothing behind: the allow-always it is given later makes its grant (regression: it answered "no active grant", exit 2, and silently withheld that grant)', async () => {
    const state = tempStateDir();
    try {
      mkdirSync(join(state, 'policies'));
      writeFileSync(join(state, 'policies', 'run.cedar'), 'permit (principal, action == Action::"system.run", resource == Command::"ls");\n');
      const db = openGatewayDb(state);
      const created = new ApprovalStore(db).create({ digest: 'c'.repeat(64), action: { command: 'system.run', argv: ['printf', 'x'], principal: 'Human::"operator"', nodeId: 'n' }, quorum: 1 });
      db.close();
      const refused = await corral(['--state-dir', state, 'approvals', 'revoke', created.id, '--by', 'carol', '--json']);
      assert.equal(refused.code, 1, refused.stderr);
      assert.equal(JSON.parse(refused.stdout).error.code, 'GATEWAY_APPROVAL_PENDING');
      assert.match(refused.stderr, /still pending.*deny it/);
      assert.ok(!readdirSync(state).includes('audit.db'), 'no revocation was recorded');
      assert.equal((await corral(['--state-dir', state, 'approvals', 'approve', created.id, '--always', '--by', 'alice'])).code, 0);
      const reopened = openGatewayDb(state);
      try {
        const store = new ApprovalStore(reopened);
        assert.equal(store.grantWithdrawn(created.id), false, 'the refused revoke withdrew nothing');
        assert.equal(store.claimGrant(created.id), true, 'the gateway makes the grant when the run spends the approval');
      } finally {
        reopened.close();
      }
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('corral approvals revoke --by', () => {
  it('refuses a name the audit record cannot carry (empty, too long, a line break), with exit 2, and leaves the grant in force (regression: the grant was withdrawn with no record)', async () => {
    const state = tempStateDir();
    try {
      const db = openGatewayDb(state);
      const store = new ApprovalStore(db);
      const created = store.create({ digest: 'd'.repeat(64), action: { command: 'system.run', argv: ['printf', 'x'], principal: 'Human::"operator"', nodeId: 'n' }, quorum: 1 });
      const approval = store.resolve(created.id, 'allow-always', 'account:alice:alice');
      db.close();
      const grant = join(state, 'policies', grantFile(approval.id));
      mkdirSync(join(grant, '..'), { recursive: true });
      writeFileSync(grant, grantPolicy(approval));
      for (const by of ['', 'x'.repeat(600), 'carol\nseq 7: revoked by dave']) {
        const result = await corral(['--state-dir', state, 'approvals', 'revoke', approval.id, '--by', by, '--json']);
        assert.equal(result.code, 2, `--by ${JSON.stringify(by.slice(0, 20))}: ${result.stderr}`);
        assert.match(result.stderr, /--by/);
        assert.doesNotMatch(result.stderr, /could not be recorded/);
        assert.equal(JSON.parse(result.stdout).error.code, 'GATEWAY_PARAMS_INVALID');
        assert.ok(existsSync(grant), 'the grant is still in force');
      }
      assert.ok(!readdirSync(state).includes('audit.db'), 'nothing was recorded');
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('corral approvals withdraw', () => {
  it('takes back an approval allowed always and not yet used: denied, its grant out of the set, both recorded; one still pending is refused, changing nothing', async () => {
    const state = tempStateDir();
    try {
      const db = openGatewayDb(state);
      const store = new ApprovalStore(db);
      const action = { command: 'system.run', argv: ['printf', 'x'], principal: 'Human::"operator"', nodeId: 'n' };
      const pending = store.create({ digest: 'e'.repeat(64), action, quorum: 1 });
      const created = store.create({ digest: 'f'.repeat(64), action, quorum: 1 });
      const approval = store.resolve(created.id, 'allow-always', 'account:alice:alice');
      db.close();
      // As a gateway makes it when the approval is allowed there.
      const grant = join(state, 'policies', grantFile(approval.id));
      mkdirSync(join(grant, '..'), { recursive: true });
      writeFileSync(grant, grantPolicy(approval));

      const early = await corral(['--state-dir', state, 'approvals', 'withdraw', pending.id, '--by', 'bob', '--json']);
      assert.equal(early.code, 1, early.stderr);
      assert.equal(JSON.parse(early.stdout).error.code, 'GATEWAY_APPROVAL_PENDING');
      assert.match(early.stderr, /deny it instead/);

      const withdrawn = await corral(['--state-dir', state, 'approvals', 'withdraw', approval.id, '--by', 'bob', '--reason', 'allowed by mistake', '--json']);
      assert.equal(withdrawn.code, 0, withdrawn.stderr);
      const answer = JSON.parse(withdrawn.stdout);
      assert.deepEqual([answer.status, answer.reason, answer.grant], ['denied', 'allowed by mistake', { id: `approval-${approval.id}`, status: 'revoked' }]);
      assert.equal(existsSync(grant), false, 'the grant left the set');
      const reread = openGatewayDb(state);
      try {
        const after = new ApprovalStore(reread);
        assert.deepEqual([after.get(pending.id).status, after.grantWithdrawn(approval.id)], ['pending', true]);
      } finally {
        reread.close();
      }
      const shown = await corral(['--state-dir', state, 'audit', 'tail', '-n', '10', '--json']);
      const events = shown.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { event: { action: string; actor: { id: string }; resource: { id: string }; details?: { withdrawn?: boolean } } }).event);
      assert.deepEqual(events.map((e) => [e.action, e.actor.id, e.resource.id, e.details?.withdrawn]), [
        ['approval.resolve', 'bob', approval.id, true],
        ['policy.grant.revoke', 'bob', `approval-${approval.id}`, undefined],
      ]);
      assert.equal((await corral(['--state-dir', state, 'approvals', 'withdraw', approval.id, '--by', 'bob'])).code, 1, 'withdrawn once');
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('says and records that the grant\'s file stayed in a policy set that does not load, with the command that removes it later; the approval is withdrawn all the same', async () => {
    const state = tempStateDir();
    try {
      const db = openGatewayDb(state);
      const store = new ApprovalStore(db);
      const created = store.create({ digest: 'a'.repeat(64), action: { command: 'system.run', argv: ['printf', 'y'], principal: 'Human::"operator"', nodeId: 'n' }, quorum: 1 });
      const approval = store.resolve(created.id, 'allow-always', 'account:alice:alice');
      db.close();
      const grant = join(state, 'policies', grantFile(approval.id));
      mkdirSync(join(grant, '..'), { recursive: true });
      writeFileSync(grant, grantPolicy(approval));
      writeFileSync(join(state, 'policies', 'broken.cedar'), 'permit (principal,\n');

      const withdrawn = await corral(['--state-dir', state, 'approvals', 'withdraw', approval.id, '--by', 'bob', '--json']);
      assert.equal(withdrawn.code, 0, withdrawn.stderr);
      const answer = JSON.parse(withdrawn.stdout);
      assert.equal(answer.status, 'denied');
      assert.equal(answer.grant.status, 'failed');
      assert.match(answer.grant.code, /^POLICY_/);
      assert.match(withdrawn.stderr, new RegExp(`its file could not be taken out of the policy set .*run 'corral approvals revoke ${approval.id}'`));
      assert.equal(existsSync(grant), true, 'the file stayed');
      const shown = await corral(['--state-dir', state, 'audit', 'tail', '-n', '10', '--json']);
      const events = shown.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { event: { action: string; outcome?: { status: string; detail?: string }; details?: { fileLeft?: boolean } } }).event);
      const left = events.find((e) => e.action === 'policy.grant.revoke');
      assert.deepEqual([left?.outcome?.status, left?.outcome?.detail, left?.details?.fileLeft], ['failure', answer.grant.code, true]);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('corral approvals list', () => {
  it('says of an approval allowed always whether its standing grant is in force or withdrawn, and gives standingGrant under --json', async () => {
    const state = tempStateDir();
    try {
      const db = openGatewayDb(state);
      const store = new ApprovalStore(db);
      const created = store.create({ digest: '9'.repeat(64), action: { command: 'system.run', argv: ['printf', 'x'], principal: 'Agent::a', nodeId: 'n' }, quorum: 1 });
      store.resolve(created.id, 'allow-always', 'account:alice:alice');
      // Its run made the grant, as a gateway does.
      assert.equal(store.claimGrant(created.id), true);
      db.close();
      const listed = await corral(['--state-dir', state, 'approvals', 'list', '--all']);
      assert.match(listed.stdout, new RegExp(`standing grant approval-${created.id} in force \\(corral approvals revoke ${created.id} withdraws it\\)`));
      assert.equal((await corral(['--state-dir', state, 'approvals', 'revoke', created.id, '--by', 'bob'])).code, 0);
      assert.match((await corral(['--state-dir', state, 'approvals', 'list', '--all'])).stdout, new RegExp(`standing grant approval-${created.id} withdrawn$`, 'm'));
      const json = JSON.parse((await corral(['--state-dir', state, 'approvals', 'list', '--all', '--json'])).stdout) as Array<{ id: string; standingGrant: unknown }>;
      assert.equal(json.find((a) => a.id === created.id)?.standingGrant, 'withdrawn');
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('corral approvals list, as corral nodes list and the other listings', () => {
  it('prints a header line over the approvals, each column of a row under its title, and none over no approvals (regression: rows with no header)', async () => {
    const state = tempStateDir();
    try {
      const db = openGatewayDb(state);
      const store = new ApprovalStore(db);
      const asked = store.create({ digest: '7'.repeat(64), action: { command: 'system.run', argv: ['ls', 'inbox'], principal: 'Agent::invoice-bot', nodeId: 'a'.repeat(64) }, quorum: 2 });
      const named = store.create({ digest: '8'.repeat(64), action: { command: 'payment.create', params: { amount: 120 } }, quorum: 1 });
      db.close();
      const listed = await corral(['--state-dir', state, 'approvals', 'list']);
      assert.equal(listed.code, 0, listed.stderr);
      const [header, ...rows] = listed.stdout.trimEnd().split('\n');
      assert.deepEqual(header!.split(/ {2,}/), ['ID', 'STATUS', 'QUORUM', 'NODE', 'REQUEST']);
      const at = ['ID', 'STATUS', 'QUORUM', 'NODE', 'REQUEST'].map((title) => header!.indexOf(title));
      for (const [line, cells] of [
        [rows[0]!, [asked.id, 'pending', '0/2', 'a'.repeat(16), 'Agent::invoice-bot']],
        [rows[1]!, [named.id, 'pending', '0/1', '-', '-']],
      ] as const) {
        assert.deepEqual(at.map((start) => line.slice(start).split('  ')[0]), cells, line);
      }
      assert.equal((await corral(['--state-dir', state, 'approvals', 'deny', asked.id, '--by', 'bob'])).code, 0);
      assert.equal((await corral(['--state-dir', state, 'approvals', 'deny', named.id, '--by', 'bob'])).code, 0);
      assert.equal((await corral(['--state-dir', state, 'approvals', 'list'])).stdout, 'no pending approvals\n');
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('corral approvals list and corral nodes pending', () => {
  it('name a node by the same 16 digits, which corral nodes pair takes (regression: 12 digits in approvals list, 16 in nodes pending)', async () => {
    const state = tempStateDir();
    try {
      const deviceId = pendingNode(state);
      const db = openGatewayDb(state);
      try {
        new ApprovalStore(db).create({ digest: '6'.repeat(64), action: { command: 'system.run', argv: ['ls'], principal: 'Agent::invoice-bot', nodeId: deviceId }, quorum: 1 });
      } finally {
        db.close();
      }
      const shownIn = async (args: string[]) => {
        const r = await corral(['--state-dir', state, ...args]);
        assert.equal(r.code, 0, r.stderr);
        return r.stdout.split(/\s+/).filter((word) => word.length >= 8 && deviceId.startsWith(word));
      };
      const pending = await shownIn(['nodes', 'pending']);
      assert.deepEqual(pending, [deviceId.slice(0, 16)]);
      assert.deepEqual(await shownIn(['approvals', 'list']), pending);
      assert.deepEqual(await shownIn(['nodes', 'pair', pending[0]!, '--by', 'alice']), pending);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('corral approvals list when the gateway state is damaged part way through the approvals', () => {
  it('under --json prints the error document alone, never part of an array, exit 3 with GATEWAY_STORE_FAILED naming gateway.db and what to do (regression: the pages read before the damage as an array never closed, the error document after them, exit 1 with SQLite\'s bare message)', async () => {
    const state = tempStateDir();
    try {
      const db = openGatewayDb(state);
      const store = new ApprovalStore(db);
      // Listed --all, a page of 200 at a time: the rows at the end of the table, where the damage is, are read on the third.
      for (let i = 0; i < 500; i++) store.create({ digest: i.toString(16).padStart(64, '0'), action: { argv: ['echo', `run ${i}`, 'x'.repeat(200)] }, quorum: 1 });
      db.close();
      damageTable(join(state, 'gateway.db'), 'approvals', { at: 'last-leaf' });
      for (const args of [['--all', '--json'], ['--json']]) {
        const r = await corral(['--state-dir', state, 'approvals', 'list', ...args]);
        // One whole JSON document on stdout, whatever else: the error document, and no approval before it.
        const { error } = JSON.parse(r.stdout) as { error: { code: string; message: string } };
        assert.equal(r.code, EXIT.environment, r.stderr);
        assert.equal(error.code, 'GATEWAY_STORE_FAILED', args.join(' '));
        assert.match(r.stderr, new RegExp(`^corral: cannot use the gateway state ${join(state, 'gateway.db').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: it is not a database, or is damaged: restore it from a backup`, 'm'));
      }
      // Listed for people, the approvals before the damage are printed as they are read.
      const human = await corral(['--state-dir', state, 'approvals', 'list', '--all']);
      assert.equal(human.code, EXIT.environment, human.stderr);
      assert.match(human.stdout, /^ID .*\n\S+ {2}pending/, 'the damage is past the pages read first');
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('prints every approval of a list longer than a page as one JSON array, and no approval as an empty one, as before', async () => {
    const state = tempStateDir();
    try {
      const db = openGatewayDb(state);
      const store = new ApprovalStore(db);
      for (let i = 0; i < 450; i++) store.create({ digest: i.toString(16).padStart(64, '0'), action: { argv: ['echo', `run ${i}`] }, quorum: 1 });
      db.close();
      const r = await corral(['--state-dir', state, 'approvals', 'list', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const listed = JSON.parse(r.stdout) as Array<{ action: { argv: string[] } }>;
      assert.deepEqual(listed.map((a) => a.action.argv[1]), Array.from({ length: 450 }, (_, i) => `run ${i}`));
      assert.equal(r.stdout, `${JSON.stringify(listed, null, 2)}\n`);
      const none = tempStateDir();
      try {
        openGatewayDb(none).close();
        assert.equal((await corral(['--state-dir', none, 'approvals', 'list', '--json'])).stdout, '[]\n', 'and none as an empty one');
      } finally {
        rmSync(none, { recursive: true, force: true });
      }
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});
