import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createDeviceIdentity } from '@corral/identity';
import { GatewayClient, openGatewayDb } from '@corral/gateway';
import { CORRAL_BIN, corral, tempStateDir } from '../../test/corral.ts';
import { pendingNode } from '../../test/pending-node.ts';
import { auditEvents } from '../../../../scripts/testing/audit-events.ts';

const state = tempStateDir();
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(state, { recursive: true, force: true });
});
const run = (args: string[], env: NodeJS.ProcessEnv = {}) => corral(['--state-dir', state, ...args], { env });

/** Starts `corral gateway --port 0` and resolves with its URL once it listens. */
function startGateway(env: NodeJS.ProcessEnv = {}): Promise<{ url: string; child: ChildProcess; exited: Promise<number | null> }> {
  const child = spawn(CORRAL_BIN, ['--state-dir', state, 'gateway', '--port', '0'], { env: { ...process.env, CORRAL_NODE: process.execPath, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${err}`)), 15_000);
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const match = /listening on (ws:\/\/\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ url: match[1]!, child, exited });
      }
    });
    child.once('exit', () => reject(new Error(`gateway exited: ${err}`)));
  });
}

describe('corral gateway token', () => {
  it('generates a token into the state directory (mode 0600) once, saying so on stderr, and prints the same one after (regression: a mistyped --state-dir made a token no gateway knows, without a word)', async () => {
    const first = await run(['gateway', 'token']);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stderr, `corral: made a new token in ${join(state, 'gateway-token')}: no gateway has used this state directory yet, and one running on another state directory will not take it\n`);
    const second = await run(['gateway', 'token', '--json']);
    assert.deepEqual(JSON.parse(second.stdout), { token: first.stdout.trim(), source: 'file' });
    assert.equal(second.stderr, '');
    assert.equal(statSync(join(state, 'gateway-token')).mode & 0o777, 0o600);
  });

  it('gives processes that make it at the same moment one and the same whole token, and leaves no draft behind', async () => {
    const fresh = tempStateDir();
    const runs = await Promise.all(Array.from({ length: 8 }, () => corral(['--state-dir', fresh, 'gateway', 'token'])));
    assert.deepEqual(runs.map((r) => r.code), Array(8).fill(0), runs.map((r) => r.stderr).join(''));
    assert.equal(new Set(runs.map((r) => r.stdout)).size, 1);
    assert.match(runs[0]!.stdout, /^[A-Za-z0-9_-]{43}\n$/);
    assert.deepEqual(readdirSync(fresh), ['gateway-token']);
    rmSync(fresh, { recursive: true, force: true });
  });

  it('prefers CORRAL_GATEWAY_TOKEN', async () => {
    const shown = await run(['gateway', 'token'], { CORRAL_GATEWAY_TOKEN: 'an-operator-chosen-token' });
    assert.equal(shown.stdout.trim(), 'an-operator-chosen-token');
  });
});

describe('corral nodes with a running corral gateway', () => {
  it('shows a connecting node as pending, pairs it so it connects, lists it, and revokes it', async () => {
    const token = (await run(['gateway', 'token'])).stdout.trim();
    const gateway = await startGateway();
    assert.match(gateway.url, /^ws:\/\/127\.0\.0\.1:\d+$/);
    const device = createDeviceIdentity();
    const options = { url: gateway.url, token, role: 'node' as const, device, client: { displayName: 'build-07' }, commands: ['system.which'] };
    await assert.rejects(GatewayClient.connect(options), (e: { wire?: { code: string } }) => e.wire?.code === 'NOT_PAIRED');

    const pending = await run(['nodes', 'pending', '--json']);
    assert.equal(pending.code, 0, pending.stderr);
    const rows = JSON.parse(pending.stdout) as Array<{ deviceId: string; displayName: string; commands: string[]; surfaceRequest?: { commands: string[] }; remoteIp?: string }>;
    assert.deepEqual(rows.map((r) => [r.deviceId, r.displayName, r.commands, r.surfaceRequest?.commands, r.remoteIp]), [[device.deviceId, 'build-07', [], ['system.which'], '127.0.0.1']]);
    assert.match((await run(['nodes', 'pending'])).stdout, /build-07 +\S+ +127\.0\.0\.1 +system\.which/);

    const paired = await run(['nodes', 'pair', device.deviceId.slice(0, 12), '--json']);
    assert.equal(paired.code, 0, paired.stderr);
    assert.deepEqual([JSON.parse(paired.stdout).status, JSON.parse(paired.stdout).commands], ['paired', ['system.which']]);
    const node = await GatewayClient.connect(options);

    const list = await run(['nodes', 'list', '--json']);
    assert.deepEqual((JSON.parse(list.stdout) as Array<{ status: string }>).map((n) => n.status), ['paired']);
    const revoked = await run(['nodes', 'revoke', device.deviceId]);
    assert.match(revoked.stdout, /is revoked/);
    await node.close();
    await assert.rejects(GatewayClient.connect(options), (e: { wire?: { code: string } }) => e.wire?.code === 'NOT_PAIRED');

    gateway.child.kill('SIGTERM');
    assert.equal(await gateway.exited, 0);
  });

  it('shows what a paired node adds as a request, approves only the commands named, and rejecting leaves it with what it had', async () => {
    const token = (await run(['gateway', 'token'])).stdout.trim();
    const gateway = await startGateway();
    const device = createDeviceIdentity();
    const connect = (commands: string[]) => GatewayClient.connect({ url: gateway.url, token, role: 'node', device, client: { displayName: 'build-08' }, commands });
    await assert.rejects(connect(['system.which']));
    assert.equal((await run(['nodes', 'pair', device.deviceId])).code, 0);
    const node = await connect(['fs.listDir', 'system.run', 'system.which']);
    try {
      assert.match((await run(['nodes', 'pending'])).stdout, /build-08 .* \+fs\.listDir,\+system\.run\n/);
      assert.match((await run(['nodes', 'list'])).stdout, /paired .*build-08 .* system\.which\n/);
      const typo = await run(['nodes', 'pair', device.deviceId, '--commands', 'system.rn']);
      assert.equal(typo.code, 2);
      assert.match(typo.stderr, /the node did not ask for "system\.rn"; it asks for fs\.listDir, system\.run, system\.which \[IDENTITY_NODE_SURFACE_INVALID\]/);
      const some = await run(['nodes', 'pair', device.deviceId, '--commands', 'system.which,system.run']);
      assert.match(some.stdout, /is paired; it may be sent: system\.run, system\.which; it may ask for agents: none\n/);
      assert.equal((await run(['nodes', 'pending'])).stdout, 'no pending requests\n');
    } finally {
      await node.close();
    }
    const wider = await connect(['fs.listDir', 'system.run', 'system.which', 'system.execApprovals.get']);
    await wider.close();
    assert.match((await run(['nodes', 'reject', device.deviceId])).stdout, /is paired\n/);
    const listed = JSON.parse((await run(['nodes', 'list', '--json'])).stdout) as Array<{ deviceId: string; commands: string[] }>;
    assert.deepEqual(listed.find((n) => n.deviceId === device.deviceId)?.commands, ['system.run', 'system.which']);
    gateway.child.kill('SIGTERM');
    assert.equal(await gateway.exited, 0);
  });

  it('approves by the request id pending shows, so a node that changes its surface after the listing is not paired with what no operator saw (regression: pair took whatever it asked for by then)', async () => {
    const token = (await run(['gateway', 'token'])).stdout.trim();
    const gateway = await startGateway();
    const device = createDeviceIdentity();
    const connect = (commands: string[]) => GatewayClient.connect({ url: gateway.url, token, role: 'node', device, client: { displayName: 'build-09' }, commands });
    await assert.rejects(connect(['system.which']));
    const listed = /^([0-9a-f]{32}) +[0-9a-f]{16} +pending +build-09 .* system\.which\n/m.exec((await run(['nodes', 'pending'])).stdout);
    assert.ok(listed, 'pending shows the request id first');
    await assert.rejects(connect(['system.run', 'system.which']));
    const stale = await run(['nodes', 'pair', listed[1]!]);
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /\[IDENTITY_NODE_REQUEST_STALE\]/);
    assert.equal((await run(['nodes', 'reject', listed[1]!])).code, 1);
    const rows = JSON.parse((await run(['nodes', 'pending', '--json'])).stdout) as Array<{ deviceId: string; status: string; surfaceRequest: { requestId: string; commands: string[] } }>;
    const row = rows.find((r) => r.deviceId === device.deviceId)!;
    assert.deepEqual([row.status, row.surfaceRequest.commands], ['pending', ['system.run', 'system.which']]);
    const paired = await run(['nodes', 'pair', row.surfaceRequest.requestId, '--json']);
    assert.equal(paired.code, 0, paired.stderr);
    assert.deepEqual(JSON.parse(paired.stdout).commands, ['system.run', 'system.which']);
    gateway.child.kill('SIGTERM');
    assert.equal(await gateway.exited, 0);
  });

  it('names the agents a node may ask the control plane for, at pairing or later, shows and records them, and refuses an unknown or retired agent changing nothing', async () => {
    const token = (await run(['gateway', 'token'])).stdout.trim();
    const gateway = await startGateway();
    for (const name of ['billing-bot', 'payroll-bot', 'gone-bot']) assert.equal((await run(['agents', 'create', name, '--process', 'p', '--owner', 'ops@example.com'])).code, 0);
    assert.equal((await run(['agents', 'retire', 'gone-bot'])).code, 0);
    const device = createDeviceIdentity();
    await assert.rejects(GatewayClient.connect({ url: gateway.url, token, role: 'node', device, client: { displayName: 'build-10' }, commands: ['system.run'] }));
    const paired = await run(['nodes', 'pair', device.deviceId, '--agents', 'billing-bot', '--by', 'alice']);
    assert.match(paired.stdout, /is paired; it may be sent: system\.run; it may ask for agents: billing-bot\n/);
    assert.match((await run(['nodes', 'list'])).stdout, /AGENTS +COMMANDS\n(.*\n)*.*build-10 +\S+ +\S+ +billing-bot +system\.run\n/);
    const set = await run(['nodes', 'agents', device.deviceId.slice(0, 12), 'payroll-bot,billing-bot', '--by', 'alice', '--json']);
    assert.equal(set.code, 0, set.stderr);
    const names = JSON.parse(set.stdout).agentNames as string[];
    assert.deepEqual([...names].sort(), ['billing-bot', 'payroll-bot']);
    for (const [list, code, says] of [['ghost-bot', 2, /no agent named ghost-bot \[IDENTITY_AGENT_NOT_FOUND\]/], ['gone-bot', 1, /agent gone-bot is retired \[IDENTITY_AGENT_STATE\]/]] as const) {
      const refused = await run(['nodes', 'agents', device.deviceId, `billing-bot,${list}`]);
      assert.equal(refused.code, code, refused.stderr);
      assert.match(refused.stderr, says);
    }
    assert.equal((await run(['nodes', 'agents', device.deviceId])).stdout, `node ${device.deviceId.slice(0, 16)} may ask for agents: ${names.join(', ')}\n`);
    assert.match((await run(['nodes', 'agents', device.deviceId, 'none', '--by', 'bob'])).stdout, /may ask for agents: none\n/);
    const audit = (await run(['audit', 'tail', '-n', '20', '--json'])).stdout.trim().split('\n').map((line) => (JSON.parse(line) as { event: { action: string; details?: { by?: string; agents?: string[] } } }).event);
    assert.deepEqual(audit.filter((r) => r.action === 'node.pair' || r.action === 'node.agents').slice(-3).map((r) => [r.action, r.details?.by, r.details?.agents]), [
      ['node.pair', 'alice', ['billing-bot']],
      ['node.agents', 'alice', names],
      ['node.agents', 'bob', []],
    ]);
    gateway.child.kill('SIGTERM');
    assert.equal(await gateway.exited, 0);
  });

  it('refuses a --bind that is not an address', async () => {
    const bad = await run(['gateway', '--bind', 'everywhere']);
    assert.equal(bad.code, 2);
  });
});

describe('corral nodes given a state directory no gateway has used', () => {
  it('says there is no gateway state, with exit 3, and creates nothing (regression: a mistyped --state-dir listed "no nodes")', async () => {
    const typo = join(state, 'typo');
    for (const args of [['nodes', 'list'], ['nodes', 'pending', '--json'], ['nodes', 'pair', '0123456789abcdef']]) {
      const result = await corral(['--state-dir', typo, ...args]);
      assert.equal(result.code, 3, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, /no gateway state in .*typo/);
    }
    assert.equal(existsSync(typo), false, 'nothing was created');
  });
});

describe('corral nodes pair, reject and revoke --by', () => {
  it('refuses an operator name a listing could not show, or the name corral up pairs its own nodes under, before anything changes (exit 2; regression: stored as given)', async () => {
    for (const [verb, by, says] of [
      ['pair', '', /--by must name the operator/],
      ['reject', 'alice\u001b[2J', /--by must name the operator/],
      ['revoke', 'x'.repeat(151), /--by must name the operator/],
      ['pair', 'corral up', /--by 'corral up' is the name corral up pairs its own nodes under/],
    ] as const) {
      const r = await run(['nodes', verb, '0123456789abcdef', '--by', by]);
      assert.equal(r.code, 2, `${verb} --by ${JSON.stringify(by)}: ${r.stderr}`);
      assert.match(r.stderr, says);
    }
  });
});

describe('corral nodes pair and reject given the name a node asked to be paired under', () => {
  it('refuses it as neither a request id nor a device id, saying which command lists the ids, exit 2 (regression: "no node build-01", and no word of where the id is)', async () => {
    const fresh = tempStateDir();
    try {
      // A gateway's state and an identity store, as a gateway leaves them: without, the state directory is refused first.
      openGatewayDb(fresh).close();
      assert.equal((await corral(['--state-dir', fresh, 'agents', 'create', 'a-bot', '--process', 'p', '--owner', 'a@example.com'])).code, 0);
      for (const verb of ['pair', 'reject']) {
        const r = await corral(['--state-dir', fresh, 'nodes', verb, 'build-01', '--json']);
        assert.equal(r.code, 2, r.stderr);
        assert.equal(JSON.parse(r.stdout).error.code, 'IDENTITY_NODE_NOT_FOUND');
        assert.match(r.stderr, /build-01 is not a request id nor a device id: corral nodes pending lists each request by id/);
      }
      for (const args of [['revoke', 'build-01'], ['agents', 'build-01'], ['agents', 'build-01', 'a-bot']]) {
        const r = await corral(['--state-dir', fresh, 'nodes', ...args, '--json']);
        assert.equal(r.code, 2, r.stderr);
        assert.equal(JSON.parse(r.stdout).error.code, 'IDENTITY_NODE_NOT_FOUND');
        assert.match(r.stderr, /build-01 is not a device id: corral nodes list shows each node's id \(a node goes by its id here, never by its name\)/, `${args.join(' ')} (regression: "no node build-01" for a node of that name)`);
      }
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });
});

describe('corral nodes pair --commands', () => {
  it('refuses --commands naming no command, exit 2, changing nothing (regression: --commands "" paired the node with no command, recorded as a pairing)', async () => {
    const fresh = tempStateDir();
    try {
      openGatewayDb(fresh).close();
      assert.equal((await corral(['--state-dir', fresh, 'agents', 'create', 'a-bot', '--process', 'p', '--owner', 'a@example.com'])).code, 0);
      const r = await corral(['--state-dir', fresh, 'nodes', 'pair', '0123456789abcdef', '--commands', ' , ']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /--commands names no command: name those it may be sent/);
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });
});

describe('corral nodes pair and revoke without --by', () => {
  it('record the signed-in system account as the operator, as corral approvals does, not $USER (regression: $USER, which anyone sets, so one person was two names in the audit log)', async () => {
    const fresh = tempStateDir();
    try {
      const deviceId = pendingNode(fresh);
      const env = { USER: 'someone-else' };
      assert.equal((await corral(['--state-dir', fresh, 'nodes', 'pair', deviceId], { env })).code, 0);
      assert.equal((await corral(['--state-dir', fresh, 'nodes', 'revoke', deviceId], { env })).code, 0);
      const by = (await auditEvents(fresh)).filter((e) => e.action.startsWith('node.')).map((e) => [e.action, e.details?.by]);
      assert.deepEqual(by, [['node.pair', userInfo().username], ['node.revoke', userInfo().username]]);
      const listed = JSON.parse((await corral(['--state-dir', fresh, 'nodes', 'list', '--json'])).stdout) as Array<{ pairedBy?: string }>;
      assert.equal(listed[0]!.pairedBy, userInfo().username);
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });
});
