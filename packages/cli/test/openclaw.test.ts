// OpenClaw, contained, end to end with no cloud: the upstream OpenClaw
// gateway (npm openclaw@2026.9.6) runs inside a Corral container; its agent,
// driven by a scripted model on loopback, asks through its exec tool
// (host=node) to run commands on the Corral node: one Corral's Cedar rules
// allow, one they forbid (it touches ~/.ssh), one that needs a human
// approval, given with `corral approvals approve`, and an allowed one chained
// to a forbidden one; and once on OpenClaw's own host instead of the node,
// which OpenClaw refuses. The audit log then verifies with `corral audit verify`.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openAuditReader, toAuditRecord } from '@corral/audit';
import { Gateway } from '@corral/gateway';
import { ensureOpenclaw, OPENCLAW_CACHE, openclaw, openclawHome } from '../../gateway/test/openclaw.ts';
import { startOpenClaw, type OpenClaw } from '../src/up/openclaw.ts';
import { corral } from './corral.ts';
import { ScriptedModel } from './scripted-model.ts';

const unavailable = ensureOpenclaw();
const MODEL_HOST = 'scripted-model.corral.test';

const RULES = `
@id("bot-echoes") permit (principal == Agent::"invoice-bot", action == Action::"system.run", resource == Command::"echo");
@id("bot-lists") permit (principal == Agent::"invoice-bot", action == Action::"system.run", resource == Command::"ls");
@id("bot-prints-with-approval") @approval("required") permit (principal == Agent::"invoice-bot", action == Action::"system.run", resource == Command::"printf");
@id("no-ssh") @reason("nothing touches SSH keys") forbid (principal, action, resource) when { context has argv && context.argv.containsAny(["~/.ssh", "/root/.ssh"]) };
`;

interface AuditEvent {
  action: string;
  actor?: { kind: string; id: string };
  decision?: { effect: string; policies?: string[]; approval?: string };
  outcome?: { status: string; exitCode?: number };
  details?: Record<string, unknown>;
}

async function auditEvents(stateDir: string): Promise<AuditEvent[]> {
  const reader = await openAuditReader({ stateDir });
  try {
    const head = await reader.store.head();
    const events: AuditEvent[] = [];
    for await (const batch of reader.store.scan(0, head.size)) for (const r of batch) events.push(toAuditRecord(r).event as AuditEvent);
    return events;
  } finally {
    await reader.close();
  }
}

describe('OpenClaw contained, its exec tool governed by Corral', { skip: unavailable, timeout: 900_000 }, () => {
  const dirs: string[] = [];
  const temp = (prefix: string): string => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
  const token = randomBytes(24).toString('base64url');
  let control: string;
  let gateway: Gateway;
  let model: ScriptedModel;
  let claw: OpenClaw;

  before(async () => {
    control = temp('corral-claw-control-');
    mkdirSync(join(control, 'policies'));
    writeFileSync(join(control, 'policies', 'run.cedar'), RULES);
    gateway = await Gateway.start({ stateDir: control, token, port: 0, approvalPollMs: 100 });
    gateway.identity.agents.create({ name: 'invoice-bot', process: 'invoice-intake', owner: 'finance@example.com', scopes: [] });
    model = await ScriptedModel.start([
      { tool: 'exec', arguments: { command: 'echo allowed-output-42', host: 'node' } },
      { tool: 'exec', arguments: { command: 'ls /root/.ssh', host: 'node' } },
      { tool: 'exec', arguments: { command: 'printf approved-output-7', host: 'node' } },
      // An allowed command chained to one Corral cannot read (upstream #128470; `~` is the shell's to
      // expand): the node refuses it, and the control plane's log holds the refusal all the same.
      { tool: 'exec', arguments: { command: 'echo ok && ls ~/.ssh', host: 'node' } },
      // Around the node, on OpenClaw's own host: OpenClaw itself refuses, exec is bound to the node.
      { tool: 'exec', arguments: { command: 'id', host: 'gateway' } },
      { say: 'All commands were handled.' },
    ]);
    claw = await startOpenClaw({
      stateDir: temp('corral-claw-state-'),
      installDir: OPENCLAW_CACHE,
      corralGatewayUrl: gateway.url,
      token,
      nodeName: 'corral-node',
      agentMap: { main: 'invoice-bot' },
      // OpenClaw reaches the loopback model through its container's egress proxy, under a name.
      modelBaseUrl: model.baseUrl.replace('127.0.0.1', MODEL_HOST),
      modelId: 'scripted',
      egressHosts: { [MODEL_HOST]: '127.0.0.1' },
      // A loaded machine (the whole suite in parallel) can take minutes to start OpenClaw.
      readyTimeoutMs: 300_000,
      pairOnControlPlane: async (deviceId, agents) => {
        const deadline = Date.now() + 10_000;
        while (!gateway.identity.nodes.find(deviceId) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        gateway.identity.nodes.pair(deviceId, 'test', { agents: gateway.identity.agents.idsOf(agents) });
      },
    });
  });

  after(async () => {
    await claw?.close();
    await model?.close();
    await gateway?.close().catch(() => {});
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('reports how long OpenClaw took to be ready, contained, and until the node served it', () => {
    assert.ok(claw.readyMs > 0 && claw.servingMs >= claw.readyMs, `${claw.readyMs} / ${claw.servingMs}`);
    process.stdout.write(`# OpenClaw contained: gateway ready in ${claw.readyMs} ms, Corral node serving it at ${claw.servingMs} ms\n`);
  });

  it('runs what Corral allows, refuses what it forbids, waits for an approval, and the audit log verifies', async () => {
    const home = openclawHome();
    dirs.push(home);
    let finished = false;
    const turn = openclaw(['agent', '--agent', 'main', '--message', 'Summarise the invoices.', '--json', '--timeout', '300'], { home, env: { OPENCLAW_GATEWAY_URL: claw.url, OPENCLAW_GATEWAY_TOKEN: claw.token }, timeoutMs: 300_000 }).finally(() => (finished = true));

    // The third command waits for a human: approve it from the command line, as an approver would.
    const deadline = Date.now() + 240_000;
    let pending = gateway.approvals.list({ status: 'pending' });
    while (pending.length === 0 && !finished && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      pending = gateway.approvals.list({ status: 'pending' });
    }
    assert.equal(pending.length, 1, `no approval was requested; the agent said:\n${(await Promise.race([turn, Promise.resolve(undefined)]))?.stdout.slice(-1500) ?? '(still running)'}\nOpenClaw log:\n${claw.log().slice(-3000)}`);
    assert.deepEqual(pending[0]!.action.commands, [['printf', 'approved-output-7']]);
    const approved = await corral(['approvals', 'approve', pending[0]!.id, '--by', 'alice'], { env: { CORRAL_STATE_DIR: control } });
    assert.equal(approved.code, 0, approved.stderr);

    const result = await turn;
    assert.equal(result.code, 0, `${result.stdout.slice(-2000)}\n${result.stderr.slice(-2000)}`);

    // What the agent's model saw come back from each exec call, in order.
    const [allowed, forbidden, waited, chained, around, ...rest] = model.toolResults();
    assert.equal(rest.length, 0);
    assert.match(chained!, /SYSTEM_RUN_DENIED|denied/i);
    assert.doesNotMatch(chained!, /^ok$/m, 'the allowed half did not run either');
    assert.match(around!, /exec host not allowed/);
    assert.match(allowed!, /allowed-output-42/);
    assert.match(forbidden!, /SYSTEM_RUN_DENIED|denied/i);
    assert.doesNotMatch(forbidden!, /No such file|cannot access/);
    assert.match(waited!, /approved-output-7/);
    assert.equal(model.remaining, 0, 'the agent went on to its final reply');

    // The control plane's record: who asked, what was decided, what ran.
    const events = await auditEvents(control);
    const decisions = events.filter((e) => e.action === 'node.invoke.decide').map((e) => ({ agent: e.actor?.id, effect: e.decision?.effect, by: e.decision?.policies, argv: e.details?.commands }));
    assert.deepEqual(decisions, [
      { agent: 'invoice-bot', effect: 'allow', by: ['bot-echoes'], argv: [['echo', 'allowed-output-42']] },
      { agent: 'invoice-bot', effect: 'deny', by: ['no-ssh'], argv: [['ls', '/root/.ssh']] },
      { agent: 'invoice-bot', effect: 'ask', by: ['bot-prints-with-approval'], argv: [['printf', 'approved-output-7']] },
      // Approved from the command line, another process: the run carries its own allow, naming the approval.
      { agent: 'invoice-bot', effect: 'allow', by: ['bot-prints-with-approval'], argv: [['printf', 'approved-output-7']] },
      // Opaque: recorded as the node was asked to run it, decided by no policy.
      { agent: 'invoice-bot', effect: 'deny', by: [], argv: [['/bin/sh', '-lc', 'echo ok && ls ~/.ssh']] },
    ]);
    const ran = events.filter((e) => e.action === 'node.invoke' && e.details?.via === 'another gateway');
    assert.equal(ran.length, 2, 'two commands ran; the forbidden one never did');
    assert.ok(ran.every((e) => e.outcome?.status === 'success'));
    assert.equal(ran[1]!.decision?.approval, pending[0]!.id, 'the approved run carries its approval');
    assert.ok(events.some((e) => e.action === 'approval.resolve' && e.actor?.id === 'alice'));

    const verified = await corral(['audit', 'verify'], { env: { CORRAL_STATE_DIR: control } });
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  });
});
