// Interop with the real upstream: a Corral node under OpenClaw's own gateway
// (npm openclaw@2026.9.6), paired and driven with OpenClaw's operator CLI.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Gateway, GatewayClient } from '@corral/gateway';
import { ensureOpenclaw, openclaw, openclawHome, startOpenclaw } from '../../gateway/test/openclaw.ts';
import { auditEvents } from '../../../scripts/testing/audit-events.ts';
import { LOCAL_POLICY_FILE, NodeHost, RECEIPT_KEY_FILE, loadOrCreateDevice } from './index.ts';
import { freePort } from '../../../scripts/testing/free-port.ts';

const unavailable = ensureOpenclaw();
const token = randomBytes(24).toString('base64url');

describe('a Corral node under the upstream OpenClaw gateway', { skip: unavailable, timeout: 900_000 }, () => {
  const dirs: string[] = [];
  let port: number;
  let gateway: ReturnType<typeof startOpenclaw>;
  let host: NodeHost;
  let corralGateway: Gateway;
  let state: string;
  let controlState: string;
  const requests: string[] = [];
  const cli = (args: string[]) => {
    const home = openclawHome();
    dirs.push(home);
    return openclaw([...args, '--url', `ws://127.0.0.1:${port}`, '--token', token], { home });
  };

  before(async () => {
    port = await freePort();
    const home = openclawHome();
    dirs.push(home);
    gateway = startOpenclaw(['gateway', 'run', '--allow-unconfigured', '--bind', 'loopback', '--port', String(port), '--auth', 'token', '--token', token], { home });
    await gateway.waitFor(/\[gateway\]\S* \S*ready/, 90_000);
    state = mkdtempSync(join(tmpdir(), 'corral-node-up-'));
    dirs.push(state);
    // The node's own policy: only echo and sh may run, whatever the gateway says.
    writeFileSync(join(state, LOCAL_POLICY_FILE), JSON.stringify({ version: 1, defaults: { security: 'allowlist', ask: 'off' }, agents: { '*': { allowlist: [{ pattern: 'echo' }, { pattern: 'printf' }] } } }));
    // The Corral control plane this node asks before it runs anything the upstream gateway sends.
    controlState = mkdtempSync(join(tmpdir(), 'corral-control-'));
    dirs.push(controlState);
    mkdirSync(join(controlState, 'policies'));
    const deviceId = loadOrCreateDevice(state).deviceId;
    writeFileSync(
      join(controlState, 'policies', 'run.cedar'),
      `@id("printf") permit (principal == Node::"${deviceId}", action == Action::"system.run", resource == Command::"printf");\n` +
        `@id("printf-approved-asks") @approval("required") permit (principal == Node::"${deviceId}", action == Action::"system.run", resource == Command::"printf") when { context has argv && context.argv.contains("approved") };\n`,
    );
    corralGateway = await Gateway.start({ stateDir: controlState, token, port: 0, approvalPollMs: 20 });
    const announced = new Promise<void>((resolve) => corralGateway.server.onPairingRequest(() => resolve()));
    host = new NodeHost({ gateway: `ws://127.0.0.1:${port}`, token, stateDir: state, name: 'corral-node', maxBackoffMs: 1_000, controlPlane: { url: corralGateway.url, token, agents: { main: 'invoice-bot' } }, onRequest: (r) => requests.push(r.command) });
    await host.start();
    await announced;
    corralGateway.identity.nodes.pair(deviceId, 'test');
  });
  after(async () => {
    await host?.close();
    await gateway?.stop();
    await corralGateway?.close().catch(() => {});
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('connects with its device proof and is paired with openclaw nodes approve', async () => {
    const pending = await cli(['nodes', 'pending', '--json']);
    assert.equal(pending.code, 0, pending.stderr);
    const entry = (JSON.parse(pending.stdout) as Array<{ requestId: string; nodeId: string; commands: string[] }>).find((p) => p.nodeId === host.device.deviceId);
    assert.ok(entry, pending.stdout);
    assert.ok(entry.commands.includes('system.run'));
    const approved = await cli(['nodes', 'approve', entry.requestId]);
    assert.equal(approved.code, 0, approved.stderr);
  });

  it('answers system.which through openclaw nodes invoke', async () => {
    let result = await cli(['nodes', 'invoke', '--node', 'corral-node', '--command', 'system.which', '--params', '{"bins":["sh"]}']);
    // The node reconnects once its command surface is approved; give it that moment.
    if (result.code !== 0 && /pairing changed|not connected/.test(result.stdout + result.stderr)) result = await cli(['nodes', 'invoke', '--node', 'corral-node', '--command', 'system.which', '--params', '{"bins":["sh"]}']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /"sh":\s*"\/[^"]*\/sh"/);
  });

  it("runs what the control plane asked about once a Corral approver allows it, only on the control plane's receipt verified under the key the node pinned; the report's record keeps the receipt", async () => {
    const operator = await GatewayClient.connect({ url: `ws://127.0.0.1:${port}`, token, role: 'operator', scopes: ['operator.admin'], client: { id: 'cli', mode: 'cli' } });
    const invoke = (text: string) => operator.request('node.invoke', { nodeId: host.device.deviceId, command: 'system.run', params: { command: ['printf', text, 'approved'] }, idempotencyKey: randomUUID() }, { timeoutMs: 30_000 }) as Promise<{ payload?: { stdout?: string }; payloadJSON?: string }>;
    const approveNext = async (): Promise<string> => {
      for (let i = 0; i < 500; i++) {
        const [pending] = corralGateway.approvals.list({ status: 'pending' });
        if (pending) return (await corralGateway.invoker.resolveApprovalWhenFree(pending.id, 'allow-once', 'alice')).id;
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.fail('no approval was asked for');
    };
    const keyFile = join(state, RECEIPT_KEY_FILE);
    try {
      const ran = invoke('%s');
      const approvalId = await approveNext();
      const answer = await ran;
      assert.equal((answer.payload ?? JSON.parse(answer.payloadJSON ?? '{}')).stdout, 'approved');
      assert.match(readFileSync(keyFile, 'utf8'), /BEGIN PUBLIC KEY/, 'the control plane receipt key is pinned on first use');
      const reported = (await auditEvents(controlState)).filter((e) => e.action === 'node.invoke' && e.details?.via === 'another gateway' && e.decision?.approval === approvalId);
      assert.equal(reported.length, 1);
      const receipt = reported[0]!.details!.approvalReceipt as { approvalId: string; approvers: string[]; signature: string; nodeId: string };
      assert.deepEqual([receipt.approvalId, receipt.approvers, receipt.nodeId], [approvalId, ['alice'], host.device.deviceId]);
      assert.match(receipt.signature, /^[A-Za-z0-9_-]{86}$/);

      // Pinned to another key, the node refuses the control plane's receipt and runs nothing.
      const pinned = readFileSync(keyFile, 'utf8');
      writeFileSync(keyFile, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString());
      try {
        const refused = assert.rejects(invoke('%s again'), (e: { wire?: { message?: string } }) => /SYSTEM_RUN_DENIED: the approval receipt is not taken \(GATEWAY_RECEIPT_INVALID\)/.test(e.wire?.message ?? ''));
        const second = await approveNext();
        await refused;
        const after = (await auditEvents(controlState)).filter((e) => e.action === 'node.invoke' && e.decision?.approval === second);
        // The node ran nothing, and says why: the run is recorded as failed with the node's code and reason.
        assert.deepEqual(after.map((e) => [e.outcome?.status, e.outcome?.detail]), [['failure', 'NODE_RUN_DENIED: the approval receipt is not taken (GATEWAY_RECEIPT_INVALID)']], 'the refused receipt is reported as a run that did not run');
      } finally {
        writeFileSync(keyFile, pinned);
      }
    } finally {
      await operator.close();
    }
  });

  it('serves system.run from the upstream gateway only when its local policy and the Corral control plane both allow it, contained; control plane unreachable means deny', async () => {
    const operator = await GatewayClient.connect({ url: `ws://127.0.0.1:${port}`, token, role: 'operator', scopes: ['operator.admin'], client: { id: 'cli', mode: 'cli' } });
    try {
      const ran = (await operator.request('node.invoke', { nodeId: host.device.deviceId, command: 'system.run', params: { command: ['printf', 'contained'] }, idempotencyKey: randomUUID() }, { timeoutMs: 30_000 })) as { payload?: { stdout?: string; contained?: unknown }; payloadJSON?: string };
      const payload = ran.payload ?? JSON.parse(ran.payloadJSON ?? '{}');
      assert.equal(payload.stdout, 'contained');
      assert.ok(payload.contained, 'ran through the sandbox');
      const before = requests.length;
      await assert.rejects(operator.request('node.invoke', { nodeId: host.device.deviceId, command: 'system.run', params: { command: ['id'] }, idempotencyKey: randomUUID() }, { timeoutMs: 30_000 }), (e: { wire?: { message?: string } }) => /SYSTEM_RUN_DENIED/.test(e.wire?.message ?? ''));
      assert.ok(requests.length > before, 'the node saw the request and refused it itself');
      // Allowed by the node's own policy, but not by the Corral control plane's.
      await assert.rejects(operator.request('node.invoke', { nodeId: host.device.deviceId, command: 'system.run', params: { command: ['echo', 'ungoverned'] }, idempotencyKey: randomUUID() }, { timeoutMs: 30_000 }), (e: { wire?: { message?: string } }) => /SYSTEM_RUN_DENIED: control plane/.test(e.wire?.message ?? ''));
      // An upstream agent the node's map does not name runs nothing, whatever the rules say.
      await assert.rejects(operator.request('node.invoke', { nodeId: host.device.deviceId, command: 'system.run', params: { command: ['printf', 'contained'], agentId: 'stranger', sessionKey: 'agent:stranger:main' }, idempotencyKey: randomUUID() }, { timeoutMs: 30_000 }), (e: { wire?: { message?: string } }) => /SYSTEM_RUN_DENIED: upstream agent stranger is not mapped/.test(e.wire?.message ?? ''));
      // The control plane unreachable: nothing runs.
      await corralGateway.close();
      await assert.rejects(operator.request('node.invoke', { nodeId: host.device.deviceId, command: 'system.run', params: { command: ['printf', 'contained'] }, idempotencyKey: randomUUID() }, { timeoutMs: 30_000 }), (e: { wire?: { message?: string } }) => /SYSTEM_RUN_DENIED: control plane unreachable/.test(e.wire?.message ?? ''));
    } finally {
      await operator.close();
    }
  });
  it("never sees a caller's own claim that a human approved a run: upstream refuses approved/approvalDecision not backed by its own approval record, so the node's ask is not skipped", async () => {
    const policyFile = join(state, LOCAL_POLICY_FILE);
    const saved = readFileSync(policyFile, 'utf8');
    writeFileSync(policyFile, JSON.stringify({ version: 1, defaults: { security: 'allowlist', ask: 'always' }, agents: { '*': { allowlist: [{ pattern: 'printf' }] } } }));
    const operator = await GatewayClient.connect({ url: `ws://127.0.0.1:${port}`, token, role: 'operator', scopes: ['operator.admin'], client: { id: 'cli', mode: 'cli' } });
    try {
      const before = requests.length;
      for (const claim of [{ approved: true }, { approvalDecision: 'allow-once' }, { approved: true, approvalDecision: 'allow-always', runId: randomUUID() }]) {
        await assert.rejects(
          operator.request('node.invoke', { nodeId: host.device.deviceId, command: 'system.run', params: { command: ['printf', 'claimed'], ...claim }, idempotencyKey: randomUUID() }, { timeoutMs: 30_000 }),
          (e: { wire?: { message?: string } }) => /approval|runId/i.test(e.wire?.message ?? ''),
          JSON.stringify(claim),
        );
      }
      assert.equal(requests.length, before, 'the claim reached the node');
    } finally {
      writeFileSync(policyFile, saved);
      await operator.close();
    }
  });

  it("maps upstream's openclaw approvals get|set --node onto its local policy: tightened with the current hash, never loosened", async () => {
    const got = await cli(['approvals', 'get', '--node', 'corral-node', '--json']);
    assert.equal(got.code, 0, got.stdout + got.stderr);
    assert.match(got.stdout, /"security":\s*"allowlist"/);
    const files = mkdtempSync(join(tmpdir(), 'corral-node-approvals-'));
    dirs.push(files);
    const tighter = join(files, 'tighter.json');
    const looser = join(files, 'looser.json');
    writeFileSync(tighter, JSON.stringify({ version: 1, defaults: { security: 'deny', ask: 'always' } }));
    writeFileSync(looser, JSON.stringify({ version: 1, defaults: { security: 'full', ask: 'off' } }));
    const refused = await cli(['approvals', 'set', '--node', 'corral-node', '--file', looser]);
    assert.notEqual(refused.code, 0, 'a remote change may not loosen the node policy');
    assert.equal(host.policy.current.defaults.security, 'allowlist');
    // Upstream's schema takes any string as security or ask; one named like an object property passed as stricter and meant full.
    const disguised = join(files, 'disguised.json');
    writeFileSync(disguised, JSON.stringify({ version: 1, defaults: { security: 'constructor', ask: 'valueOf' } }));
    const odd = await cli(['approvals', 'set', '--node', 'corral-node', '--file', disguised]);
    assert.notEqual(odd.code, 0, odd.stdout + odd.stderr);
    assert.equal(host.policy.current.defaults.security, 'allowlist');
    const set = await cli(['approvals', 'set', '--node', 'corral-node', '--file', tighter]);
    assert.equal(set.code, 0, set.stdout + set.stderr);
    assert.deepEqual(host.policy.current.defaults, { security: 'deny', ask: 'always' });
  });
});
