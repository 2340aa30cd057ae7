// The governed path end to end, on loopback: operator → gateway → policy →
// approval → node → contain → result, with the audit log.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openAuditReader, toAuditRecord } from '@corral/audit';
import { Runner, type ContainedProcess, type RunOptions, type SandboxPlan } from '@corral/contain';
import { Gateway, GatewayClient } from '@corral/gateway';
import { slowLogGateway } from '../../gateway/test/slow-log-gateway.ts';
import { NodeHost, RECEIPT_KEY_FILE } from '../src/index.ts';
import { startPaired } from '../test/paired-host.ts';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { until } from '../../../scripts/testing/until.ts';

const POLICY = `
@id("echo") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"echo");
@id("sh") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"sh");
@id("sleep") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"sleep");
@id("agent-echo") permit (principal == Agent::"builder", action == Action::"system.run", resource == Command::"echo");
@id("printf-asks") @approval("required") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"printf");
`;

const token = randomBytes(24).toString('base64url');

function gatewayState(): string {
  const state = tempDir('corral-gov-gw-');
  mkdirSync(join(state, 'policies'));
  writeFileSync(join(state, 'policies', 'run.cedar'), POLICY);
  return state;
}

/** A node host, paired with the gateway, connected. */
async function pairedHost(gw: Gateway, requests: string[] = []): Promise<NodeHost> {
  const host = new NodeHost({ gateway: gw.url, token, stateDir: tempDir('corral-gov-node-'), name: 'runner-1', maxBackoffMs: 200, onRequest: (r) => requests.push(r.command) });
  await startPaired(host, gw);
  return host;
}

function run(client: GatewayClient, nodeId: string, command: string[], timeoutMs = 10_000): Promise<{ payload: { exitCode: number; stdout: string; success: boolean; contained: { policyDigest: string } } }> {
  return client.request('node.invoke', { nodeId, command: 'system.run', params: { command }, timeoutMs, idempotencyKey: randomUUID() }, { timeoutMs: timeoutMs + 5_000 }) as never;
}

/** An operator with every scope, connected to `gw`. */
function adminOperator(gw: Gateway): Promise<GatewayClient> {
  return GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
}

/** The next approval request the gateway tells `operator` of. */
function nextApprovalRequest(operator: GatewayClient): Promise<{ id: string }> {
  return new Promise((resolve) => {
    const stop = operator.on('exec.approval.requested', (p) => {
      stop();
      resolve(p as { id: string });
    });
  });
}

const deniedWith = (code: string) => (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === code;

describe('a governed system.run', () => {
  let state: string;
  let gw: Gateway;
  let host: NodeHost;
  let operator: GatewayClient;
  const requests: string[] = [];
  before(async () => {
    state = gatewayState();
    gw = await Gateway.start({ stateDir: state, token, port: 0, approvalPollMs: 50 });
    host = await pairedHost(gw, requests);
    operator = await adminOperator(gw);
  });
  after(async () => {
    await operator.close();
    await host.close();
    await gw.close();
  });

  it('runs a command policy allows, contained, and returns its output', async () => {
    const result = await run(operator, host.device.deviceId, ['echo', 'hello']);
    assert.equal(result.payload.exitCode, 0);
    assert.equal(result.payload.stdout, 'hello\n');
    assert.match(result.payload.contained.policyDigest, /\S/);
  });

  it('denies a command policy does not allow, and the node never sees it', async () => {
    const before = requests.length;
    await assert.rejects(run(operator, host.device.deviceId, ['rm', '-rf', '/tmp']), deniedWith('SYSTEM_RUN_DENIED'));
    assert.equal(requests.length, before);
  });

  it('denies an allowed command piped into one policy does not allow (upstream #128470)', async () => {
    const before = requests.length;
    await assert.rejects(run(operator, host.device.deviceId, ['sh', '-c', 'echo hi | rm -rf /tmp']), deniedWith('SYSTEM_RUN_DENIED'));
    await assert.rejects(run(operator, host.device.deviceId, ['sh', '-c', 'echo $(rm -rf /tmp)']), deniedWith('SYSTEM_RUN_DENIED'));
    assert.equal(requests.length, before);
  });

  it('asks when policy says ask; runs once an approver allows it once, and asks again next time', async () => {
    const pending = run(operator, host.device.deviceId, ['printf', 'approved']);
    const requested = await nextApprovalRequest(operator);
    const listed = (await operator.request('exec.approval.list', {})) as { approvals: Array<{ id: string; request: { argv: string[] } }> };
    assert.deepEqual(listed.approvals.find((a) => a.id === requested.id)?.request.argv, ['printf', 'approved']);
    await operator.request('exec.approval.resolve', { id: requested.id, decision: 'allow-once', reviewer: { channel: 'corral', accountId: 'example.com', senderId: 'alice' } });
    assert.equal((await pending).payload.stdout, 'approved');
    await assert.rejects(run(operator, host.device.deviceId, ['printf', 'approved'], 300), deniedWith('APPROVAL_PENDING'));
  });

  it('never lets an approval for one command cover another', async () => {
    await assert.rejects(run(operator, host.device.deviceId, ['printf', 'one'], 200), deniedWith('APPROVAL_PENDING'));
    const [one] = gw.approvals.list({ status: 'pending' }).filter((a) => (a.action.argv as string[])[1] === 'one');
    await gw.invoker.resolveApprovalWhenFree(one!.id, 'allow-once', 'alice');
    // A different command gets its own request, not the approved one.
    await assert.rejects(run(operator, host.device.deviceId, ['printf', 'two'], 200), deniedWith('APPROVAL_PENDING'));
    assert.equal(gw.approvals.get(one!.id).status, 'allowed');
    assert.equal((await run(operator, host.device.deviceId, ['printf', 'one'])).payload.stdout, 'one');
  });

  it('denies when an approver denies', async () => {
    const pending = run(operator, host.device.deviceId, ['printf', 'no']);
    const requested = await nextApprovalRequest(operator);
    await operator.request('exec.approval.resolve', { id: requested.id, decision: 'deny', reviewer: { channel: 'corral', accountId: 'example.com', senderId: 'bob' } });
    await assert.rejects(pending, deniedWith('SYSTEM_RUN_DENIED'));
  });

  it('records allow-always as a grant: the same command then runs without asking', async () => {
    await assert.rejects(run(operator, host.device.deviceId, ['printf', 'always'], 200), deniedWith('APPROVAL_PENDING'));
    const [always] = gw.approvals.list({ status: 'pending' }).filter((a) => (a.action.argv as string[])[1] === 'always');
    await gw.invoker.resolveApprovalWhenFree(always!.id, 'allow-always', 'alice');
    assert.equal((await run(operator, host.device.deviceId, ['printf', 'always'])).payload.stdout, 'always');
    assert.equal((await run(operator, host.device.deviceId, ['printf', 'always'])).payload.stdout, 'always');
  });

  it('refuses a command the node did not declare, and system.execApprovals.* through raw node.invoke', async () => {
    await assert.rejects(operator.request('node.invoke', { nodeId: host.device.deviceId, command: 'camera.snap', idempotencyKey: randomUUID() }), (e: { wire?: { code: string } }) => e.wire?.code === 'INVALID_REQUEST');
    await assert.rejects(operator.request('node.invoke', { nodeId: host.device.deviceId, command: 'system.execApprovals.set', params: {}, idempotencyKey: randomUUID() }), (e: { wire?: { code: string } }) => e.wire?.code === 'INVALID_REQUEST');
  });

  it('answers system.which', async () => {
    const result = (await operator.request('node.invoke', { nodeId: host.device.deviceId, command: 'system.which', params: { bins: ['sh', 'no-such-program-here'] }, idempotencyKey: randomUUID() })) as { payload: { bins: Record<string, string> } };
    assert.deepEqual(Object.keys(result.payload.bins), ['sh']);
  });

  it('appends decisions, approvals and results to the audit log', async () => {
    const reader = await openAuditReader({ stateDir: state });
    try {
      const actions = new Set<string>();
      const receipts: Array<{ approvers: string[]; digest: string }> = [];
      const head = await reader.store.head();
      for await (const batch of reader.store.scan(0, head.size)) {
        for (const r of batch) {
          const event = toAuditRecord(r).event;
          actions.add(event.action);
          const receipt = event.details?.approvalReceipt as { approvers: string[]; digest: string } | undefined;
          if (event.action === 'node.invoke' && receipt) receipts.push(receipt);
        }
      }
      for (const action of ['node.invoke.decide', 'approval.request', 'approval.resolve', 'node.invoke']) assert.ok(actions.has(action), action);
      // Each run an approval allowed carries its receipt: who approved which exact action.
      assert.ok(receipts.length >= 2);
      assert.ok(receipts.some((r) => r.approvers.includes('alice') && /^[0-9a-f]{64}$/.test(r.digest)));
    } finally {
      await reader.close();
    }
  });
  it('lets an operator tighten the node policy remotely (exec.approvals.node.set with baseHash), never loosen it', async () => {
    const snapshot = (await operator.request('exec.approvals.node.get', { nodeId: host.device.deviceId })) as { hash: string; file: { defaults: { security: string } } };
    assert.equal(snapshot.file.defaults.security, 'full');
    const tighter = { version: 1, defaults: { security: 'allowlist', ask: 'off' }, agents: { '*': { allowlist: [{ pattern: 'echo' }] } } };
    const after = (await operator.request('exec.approvals.node.set', { nodeId: host.device.deviceId, file: tighter, baseHash: snapshot.hash })) as { hash: string };
    await assert.rejects(operator.request('exec.approvals.node.set', { nodeId: host.device.deviceId, file: tighter, baseHash: snapshot.hash }), (e: { wire?: { code: string } }) => e.wire?.code === 'INVALID_REQUEST');
    await assert.rejects(operator.request('exec.approvals.node.set', { nodeId: host.device.deviceId, file: { version: 1, defaults: { security: 'full' } }, baseHash: after.hash }), (e: { wire?: { code: string } }) => e.wire?.code === 'INVALID_REQUEST');
    // The gateway's policy allows sleep; the node's own policy now does not.
    await assert.rejects(run(operator, host.device.deviceId, ['sleep', '0']), (e: { wire?: { message?: string } }) => /SYSTEM_RUN_DENIED/.test(e.wire?.message ?? ''));
    assert.equal((await run(operator, host.device.deviceId, ['echo', 'still'])).payload.stdout, 'still\n');
  });
});

describe('a node whose own policy asks (ask=always)', () => {
  it('has a human asked for a command the gateway allowed outright (the stricter of the two policies applies), and runs it once approved; one the gateway asks for is asked once', async () => {
    const gw = await Gateway.start({ stateDir: gatewayState(), token, port: 0, approvalPollMs: 20 });
    const operator = await adminOperator(gw);
    const host = await pairedHost(gw);
    try {
      const { hash } = (await operator.request('exec.approvals.node.get', { nodeId: host.device.deviceId })) as { hash: string };
      const asking = { version: 1, defaults: { security: 'allowlist', ask: 'always' }, agents: { '*': { allowlist: [{ pattern: 'echo' }, { pattern: 'printf' }] } } };
      await operator.request('exec.approvals.node.set', { nodeId: host.device.deviceId, file: asking, baseHash: hash });
      // The gateway's policy allows echo outright; the node refuses it unapproved, and the gateway asks a human.
      await assert.rejects(run(operator, host.device.deviceId, ['echo', 'hi'], 300), deniedWith('APPROVAL_PENDING'));
      const [asked] = gw.approvals.list({ status: 'pending' }).filter((a) => a.action.nodeId === host.device.deviceId);
      assert.match(String(asked?.action.reason), /^the node asks a human: SYSTEM_RUN_DENIED: approval required/);
      await gw.invoker.resolveApprovalWhenFree(asked!.id, 'allow-always', 'alice');
      assert.equal((await run(operator, host.device.deviceId, ['echo', 'hi'])).payload.stdout, 'hi\n');
      assert.equal(gw.approvals.get(asked!.id).status, 'used');
      // Allowed always: the grant answers the node's ask for exactly this run from now on, unasked.
      assert.equal((await run(operator, host.device.deviceId, ['echo', 'hi'])).payload.stdout, 'hi\n');
      assert.equal(gw.approvals.list({ status: 'pending' }).length, 0);
      // The gateway's policy asks for printf: one approval, and the node runs it.
      await assert.rejects(run(operator, host.device.deviceId, ['printf', 'asked'], 100), deniedWith('APPROVAL_PENDING'));
      const [approval] = gw.approvals.list({ status: 'pending' }).filter((a) => a.action.nodeId === host.device.deviceId);
      await gw.invoker.resolveApprovalWhenFree(approval!.id, 'allow-once', 'alice');
      assert.equal((await run(operator, host.device.deviceId, ['printf', 'asked'])).payload.stdout, 'asked');
      assert.equal(gw.approvals.list().filter((a) => a.action.nodeId === host.device.deviceId).length, 2);
    } finally {
      await host.close();
      await operator.close();
      await gw.close();
    }
  });
});

describe('an agent through the gateway', () => {
  it('acts as the agent its token names; a forged token is refused; an operator cannot claim an agent; suspension stops it at once', async () => {
    const state = gatewayState();
    const gw = await Gateway.start({ stateDir: state, token, port: 0 });
    const host = await pairedHost(gw);
    const clients: GatewayClient[] = [];
    try {
      gw.identity.agents.create({ name: 'builder', process: 'ci', owner: 'owner@example.com', scopes: [] });
      const agentToken = (await gw.identity.issueToken('builder')).token;
      const agent = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.write'], agentToken });
      clients.push(agent);
      assert.equal((await run(agent, host.device.deviceId, ['echo', 'as builder'])).payload.stdout, 'as builder\n');
      // echo is allowed for the agent only: the same command as the operator is denied.
      const operator = await adminOperator(gw);
      clients.push(operator);
      await assert.rejects(
        operator.request('node.invoke', { nodeId: host.device.deviceId, command: 'system.run', params: { command: ['echo', 'x'], agentId: 'builder' }, idempotencyKey: randomUUID() }),
        deniedWith('SYSTEM_RUN_DENIED'),
      );
      // Nor through upstream's session key, from which the node takes the agent whose container it runs under.
      await assert.rejects(
        operator.request('node.invoke', { nodeId: host.device.deviceId, command: 'system.run', params: { command: ['echo', 'x'], sessionKey: 'agent:builder:main' }, idempotencyKey: randomUUID() }),
        deniedWith('SYSTEM_RUN_DENIED'),
      );
      gw.identity.agents.create({ name: 'other', process: 'ci', owner: 'owner@example.com', scopes: [] });
      await assert.rejects(
        agent.request('node.invoke', { nodeId: host.device.deviceId, command: 'system.run', params: { command: ['echo', 'x'], sessionKey: 'agent:other:main' }, idempotencyKey: randomUUID() }),
        deniedWith('SYSTEM_RUN_DENIED'),
      );
      const forged = `${agentToken.slice(0, -4)}AAAA`;
      await assert.rejects(GatewayClient.connect({ url: gw.url, token, role: 'operator', agentToken: forged }), (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'AUTH_UNAUTHORIZED');
      gw.identity.agents.suspend('builder');
      // Its token died with the suspension: the connection opened with it is refused and closed.
      await assert.rejects(run(agent, host.device.deviceId, ['echo', 'after suspension']), deniedWith('AUTH_UNAUTHORIZED'));
      assert.equal((await agent.closed).code, 1008);
    } finally {
      for (const client of clients) await client.close();
      await host.close();
      await gw.close();
    }
  });
});

describe('governed system.run faults', () => {
  it('tells the caller clearly when the node vanishes mid-command, and records the failure', async () => {
    const state = gatewayState();
    const gw = await Gateway.start({ stateDir: state, token, port: 0 });
    const requests: string[] = [];
    const host = await pairedHost(gw, requests);
    const operator = await adminOperator(gw);
    try {
      const outcome = assert.rejects(run(operator, host.device.deviceId, ['sleep', '5']), deniedWith('NODE_DISCONNECTED'));
      // Gone once it has the command, however long the way there took on a loaded host (a fixed wait closed it before, under load).
      await until('the node has the command', () => requests.includes('system.run'));
      await host.close();
      await outcome;
    } finally {
      await host.close();
      await operator.close();
      await gw.close();
    }
    const reader = await openAuditReader({ stateDir: state });
    const head = await reader.store.head();
    const failures: unknown[] = [];
    for await (const batch of reader.store.scan(0, head.size)) {
      for (const r of batch) {
        const event = toAuditRecord(r).event;
        if (event.action === 'node.invoke' && event.outcome?.status === 'failure') failures.push(event.outcome.detail);
      }
    }
    await reader.close();
    assert.deepEqual(failures, ['GATEWAY_CONNECTION_CLOSED']);
  });

  it('denies every governed command when no policy is loaded (control plane cannot decide)', async () => {
    const state = tempDir('corral-gov-gw-');
    const gw = await Gateway.start({ stateDir: state, token, port: 0 });
    const host = await pairedHost(gw);
    const operator = await adminOperator(gw);
    await assert.rejects(run(operator, host.device.deviceId, ['echo', 'hi']), deniedWith('SYSTEM_RUN_DENIED'));
    await operator.close();
    await host.close();
    await gw.close();
  });

  it('keeps a pending approval across a gateway restart; the retried command runs once it is approved', async () => {
    const state = gatewayState();
    let gw = await Gateway.start({ stateDir: state, token, port: 0 });
    const host = await pairedHost(gw);
    let operator = await adminOperator(gw);
    await assert.rejects(run(operator, host.device.deviceId, ['printf', 'restart'], 200), deniedWith('APPROVAL_PENDING'));
    await operator.close();
    const port = gw.server.port;
    await gw.close();

    gw = await Gateway.start({ stateDir: state, token, port });
    operator = await adminOperator(gw);
    const { approvals } = (await operator.request('exec.approval.list', {})) as { approvals: Array<{ id: string; request: { argv: string[] } }> };
    assert.equal(approvals.length, 1);
    await operator.request('exec.approval.resolve', { id: approvals[0]!.id, decision: 'allow-once', reviewer: { channel: 'corral', accountId: 'example.com', senderId: 'alice' } });
    const deadline = Date.now() + 5_000;
    while (!gw.inventory.list().some((n) => n.connected) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await run(operator, host.device.deviceId, ['printf', 'restart'])).payload.stdout, 'restart');
    await operator.close();
    await host.close();
    await gw.close();
  });
});

describe('approval receipts on the node', () => {
  it('pins the gateway receipt key on the first approved run, and refuses an approved run whose receipt does not verify under the pinned key', async () => {
    const state = gatewayState();
    const gw = await Gateway.start({ stateDir: state, token, port: 0, approvalPollMs: 20 });
    const operator = await adminOperator(gw);
    const approve = async (host: NodeHost, argv: string[]) => {
      await assert.rejects(run(operator, host.device.deviceId, argv, 100), deniedWith('APPROVAL_PENDING'));
      const [approval] = gw.approvals.list({ status: 'pending' }).filter((a) => a.action.nodeId === host.device.deviceId);
      await gw.invoker.resolveApprovalWhenFree(approval!.id, 'allow-once', 'alice');
      return run(operator, host.device.deviceId, argv);
    };
    const host = await pairedHost(gw);
    assert.equal((await approve(host, ['printf', 'pinned'])).payload.stdout, 'pinned');
    assert.match(readFileSync(join(dirname(host.policy.path), RECEIPT_KEY_FILE), 'utf8'), /BEGIN PUBLIC KEY/);
    await host.close();

    // A node that pinned another gateway's key runs nothing on this gateway's receipts.
    const requests: string[] = [];
    const other = await pairedHost(gw, requests);
    writeFileSync(join(dirname(other.policy.path), RECEIPT_KEY_FILE), generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString());
    await assert.rejects(approve(other, ['printf', 'forged']), (e: { wire?: { code?: string; message?: string } }) => e.wire?.code === 'SYSTEM_RUN_DENIED' && /approval receipt/.test(e.wire.message ?? ''));
    assert.deepEqual(requests.filter((r) => r === 'system.run').length, 1);
    await other.close();
    await operator.close();
    await gw.close();
  });
});

/** The real runner, noting when each command is handed to a sandbox, and when its caller let the sandbox be replaced. */
class ObservedRunner extends Runner {
  readonly spawned: number[] = [];
  readonly replaceable: number[] = [];
  override spawn(plan: SandboxPlan, argv: readonly string[], options?: RunOptions): ContainedProcess {
    this.spawned.push(performance.now());
    void Promise.resolve(options?.refillAfter).then(() => this.replaceable.push(performance.now()));
    return super.spawn(plan, argv, options);
  }
}

describe('a run held until its decision is durable', () => {
  async function heldHost(refuse: boolean) {
    const gw = await slowLogGateway(gatewayState(), token, { refuse });
    const runner = new ObservedRunner();
    const host = new NodeHost({ gateway: gw.server.url, token, stateDir: tempDir('corral-gov-node-'), maxBackoffMs: 200, runner });
    await startPaired(host, gw);
    await host.warmed();
    const close = async () => {
      await host.close();
      await runner.close();
      await gw.close();
    };
    return { gw, runner, host, close };
  }

  it('starts the command only once the gateway says its decision is durable, in the sandbox kept warm for the profile', async () => {
    const { gw, runner, host, close } = await heldHost(false);
    try {
      const result = (await run(gw.operator, host.device.deviceId, ['echo', 'held'])) as unknown as { payload: { stdout: string; contained: { warm: boolean } } };
      assert.equal(result.payload.stdout, 'held\n');
      assert.equal(result.payload.contained.warm, true);
      assert.equal(runner.spawned.length, 1);
      assert.ok(runner.spawned[0]! >= gw.durable[0]!, 'the command started before its decision was durable');
    } finally {
      await close();
    }
  });

  it('lets the warm sandbox the run took be replaced only once the gateway acknowledged the result, after recording it', async () => {
    const { gw, runner, host, close } = await heldHost(false);
    try {
      await run(gw.operator, host.device.deviceId, ['echo', 'replaced']);
      while (runner.replaceable.length === 0) await new Promise((r) => setTimeout(r, 5));
      assert.equal(gw.resultsDurable.length, 1);
      assert.ok(runner.replaceable[0]! >= gw.resultsDurable[0]!, 'the sandbox could be replaced before the result was recorded');
    } finally {
      await close();
    }
  });

  it('runs nothing when the gateway cannot make the decision durable', async () => {
    const { gw, runner, host, close } = await heldHost(true);
    try {
      await assert.rejects(run(gw.operator, host.device.deviceId, ['echo', 'never']), (e: { wire?: { code?: string } }) => e.wire?.code === 'UNAVAILABLE');
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(runner.spawned, []);
    } finally {
      await close();
    }
  });
});
