// Interop with the real upstream: OpenClaw's own node host and operator CLI
// (npm openclaw@2026.9.6) against the Corral gateway, on loopback, in
// temporary OPENCLAW_HOMEs.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Gateway, GatewayClient, type PairingRequest } from './index.ts';
import { ensureOpenclaw, openclaw, openclawHome, startOpenclaw } from '../test/openclaw.ts';

const unavailable = ensureOpenclaw();
const token = randomBytes(24).toString('base64url');
const POLICY = `
@id("echo") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"echo");
@id("printf-asks") @approval("required") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"printf");
@id("bot-sleeps") permit (principal == Agent::"sleepy-bot", action == Action::"system.run", resource == Command::"sleep");
`;

/** The pids of processes running exactly `argv`. */
function running(argv: string[]): number[] {
  const wanted = `${argv.join('\0')}\0`;
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === wanted;
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('upstream OpenClaw node host and operator CLI against the Corral gateway', { skip: unavailable }, () => {
  const homes: string[] = [];
  let state: string;
  let gw: Gateway;
  let node: ReturnType<typeof startOpenclaw>;
  let request: PairingRequest;
  const cli = (args: string[]) => {
    const home = openclawHome();
    homes.push(home);
    return openclaw([...args, '--url', gw.url, '--token', token], { home });
  };

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'corral-interop-'));
    mkdirSync(join(state, 'policies'));
    writeFileSync(join(state, 'policies', 'run.cedar'), POLICY);
    gw = await Gateway.start({ stateDir: state, token, port: 0 });
    const requested = new Promise<PairingRequest>((resolve) => gw.server.onPairingRequest(resolve));
    const home = openclawHome();
    homes.push(home);
    node = startOpenclaw(['node', 'run', '--host', '127.0.0.1', '--port', String(gw.server.port), '--display-name', 'upstream-node'], { home, env: { OPENCLAW_GATEWAY_TOKEN: token } });
    const exited = new Promise<never>((_, reject) => node.child.once('exit', () => reject(new Error(`the upstream node host exited:\n${node.log().slice(-2000)}`))));
    request = await Promise.race([requested, exited]);
  });
  after(async () => {
    await node?.stop();
    await gw?.close();
    for (const dir of [state, ...homes]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the upstream node host signs its device proof and waits as a pending pairing request, declaring its commands', () => {
    assert.match(request.deviceId, /^[0-9a-f]{64}$/);
    assert.equal(request.displayName, 'upstream-node');
    for (const command of ['system.run', 'system.which']) assert.ok(request.commands.includes(command), command);
  });

  it('openclaw nodes pending lists it, with the address it came from, and openclaw nodes approve pairs it; the node then connects', async () => {
    const pending = await cli(['nodes', 'pending']);
    assert.equal(pending.code, 0, pending.stderr);
    assert.ok(pending.stdout.includes(request.requestId), pending.stdout);
    assert.ok(pending.stdout.includes('127.0.0.1'), pending.stdout);
    const approved = await cli(['nodes', 'approve', request.requestId]);
    assert.equal(approved.code, 0, approved.stderr);
    assert.equal(gw.identity.nodes.get(request.deviceId).status, 'paired');
    await node.waitFor(/gateway connected/, 45_000);
    const deadline = Date.now() + 10_000;
    while (!gw.inventory.list().some((n) => n.nodeId === request.deviceId && n.connected)) {
      assert.ok(Date.now() < deadline, 'not connected');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it('openclaw nodes status shows it, and openclaw nodes invoke system.which is answered by it', async () => {
    const [status, which] = await Promise.all([cli(['nodes', 'status']), cli(['nodes', 'invoke', '--node', 'upstream-node', '--command', 'system.which', '--params', '{"bins":["sh"]}'])]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /Paired: 1 · Connected: 1/);
    assert.match(status.stdout, /paired · connected/);
    assert.equal(which.code, 0, which.stderr);
    assert.match(which.stdout, /"sh":\s*"\/[^"]*\/sh"/);
  });

  it('a system.run Corral allows runs on the upstream node; one Corral denies never reaches it', async () => {
    const operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
    try {
      const ran = (await operator.request('node.invoke', { nodeId: request.deviceId, command: 'system.run', params: { command: ['echo', 'governed'] }, timeoutMs: 20_000, idempotencyKey: randomUUID() }, { timeoutMs: 30_000 })) as { payload: { stdout: string; exitCode: number } };
      assert.equal(ran.payload.exitCode, 0);
      assert.equal(ran.payload.stdout.trim(), 'governed');
      await assert.rejects(
        operator.request('node.invoke', { nodeId: request.deviceId, command: 'system.run', params: { command: ['sh', '-c', 'echo hi; touch /tmp/corral-should-not-exist'] }, idempotencyKey: randomUUID() }),
        (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'SYSTEM_RUN_DENIED',
      );
    } finally {
      await operator.close();
    }
  });

  it('a system.run Corral asks a human for runs on the upstream node once approved, with the plan the node prepared for it', async () => {
    const operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
    try {
      const running = operator.request('node.invoke', { nodeId: request.deviceId, command: 'system.run', params: { command: ['printf', 'approved'] }, timeoutMs: 20_000, idempotencyKey: randomUUID() }, { timeoutMs: 60_000 });
      let pending: { id: string } | undefined;
      for (let i = 0; i < 250 && !pending; i++) {
        pending = gw.approvals.list({ status: 'pending' })[0];
        if (!pending) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(pending, 'an approval was asked');
      await gw.invoker.resolveApprovalWhenFree(pending.id, 'allow-once', 'alice');
      const ran = (await running) as { payload: { stdout: string; exitCode: number } };
      assert.deepEqual([ran.payload.exitCode, ran.payload.stdout], [0, 'approved']);
    } finally {
      await operator.close();
    }
  });

  it("stops an agent's command running on the upstream node host when the agent is suspended (node.invoke.cancel), and the agent hears it ended", async () => {
    const argv = ['sleep', `${600 + Math.floor(Math.random() * 1000)}`];
    gw.identity.agents.create({ name: 'sleepy-bot', process: 'p', owner: 'owner@example.com' });
    const agent = await GatewayClient.connect({ url: gw.url, role: 'operator', scopes: ['operator.write'], agentToken: (await gw.identity.issueToken('sleepy-bot')).token });
    try {
      const answer = agent.request('node.invoke', { nodeId: request.deviceId, command: 'system.run', params: { command: argv }, timeoutMs: 600_000, idempotencyKey: randomUUID() }, { timeoutMs: 605_000 }).then(
        () => 'answered',
        (e: { wire?: { code?: string } }) => e.wire?.code ?? 'closed',
      );
      for (let i = 0; i < 500 && running(argv).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(running(argv).length, 1, 'the upstream node host runs it');
      const suspended = await fetch(`${gw.httpUrl}/api/agents/sleepy-bot/suspend`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
      assert.equal(suspended.status, 200);
      assert.notEqual(await answer, undefined);
      for (let i = 0; i < 500 && running(argv).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(running(argv), [], 'stopped, not left to run for 10 minutes');
    } finally {
      await agent.close();
    }
  });
});
