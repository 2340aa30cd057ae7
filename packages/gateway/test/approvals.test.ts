// Approvals over the protocol: the approver is an authenticated party (never
// an agent, never an anonymous token holder), every run an approval allowed
// carries a receipt signed with the gateway's key, and allow-always becomes
// a Cedar grant in the policy directory that permits exactly one action.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createDeviceIdentity } from '@corral/identity';
import { GatewayClient, grantFile, RECEIPT_CLOCK_SKEW_MS, RECEIPT_VALIDITY_MS, verifyCommandReceipt, verifyReceipt, type ApprovalReceipt } from '../src/index.ts';
import { auditEvents } from '../../../scripts/testing/audit-events.ts';
import { governedGateway, refusedWith, type GovernedGateway } from './governed-gateway.ts';

const POLICY = `
@id("printf-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"printf");
@id("echo") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"echo");
`;
const reviewer = (senderId: string) => ({ channel: 'corral', accountId: 'example.com', senderId });

describe('approvals over the protocol', () => {
  let t: GovernedGateway;
  before(async () => {
    t = await governedGateway({ policy: POLICY, gateway: { approvalPollMs: 20 } });
  });
  after(() => t.close());

  /** Asks for `argv` (briefly) and returns the pending approval it created. */
  async function pending(argv: string[]): Promise<string> {
    await assert.rejects(t.run(argv, 100), refusedWith('APPROVAL_PENDING'));
    const approval = t.pendingFor(argv);
    assert.ok(approval, 'an approval request');
    return approval.id;
  }

  describe('who resolves', () => {
    it('refuses a token-only operator that names nobody, and records the reviewer it names', async () => {
      const id = await pending(['printf', 'who']);
      await assert.rejects(t.operator.request('exec.approval.resolve', { id, decision: 'allow-once' }), (e: { wire?: { code?: string } }) => e.wire?.code === 'INVALID_REQUEST');
      assert.equal(t.gw.approvals.get(id).status, 'pending');
      await t.operator.request('exec.approval.resolve', { id, decision: 'allow-once', reviewer: reviewer('alice') });
      assert.deepEqual(t.gw.approvals.get(id).approvers, ['token:alice'], 'named under the shared token: one approver toward a quorum');
    });

    it('takes the verified device as the approver of a device-signed operator, whatever reviewer it claims', async () => {
      const id = await pending(['printf', 'device']);
      const device = createDeviceIdentity();
      const signed = await GatewayClient.connect({ url: t.gw.url, token: t.token, role: 'operator', scopes: ['operator.approvals'], device });
      try {
        await signed.request('exec.approval.resolve', { id, decision: 'deny', reviewer: reviewer('somebody-else') });
      } finally {
        await signed.close();
      }
      assert.deepEqual(t.gw.approvals.get(id).approvers, [`token:device:${device.deviceId}`], 'a device any token holder can make is no identity of its own');
    });

    it('never lets an agent resolve an approval, not even its own request (FORBIDDEN)', async () => {
      t.gw.identity.agents.create({ name: 'self-approver', process: 'ci', owner: 'owner@example.com', scopes: [] });
      const agent = await GatewayClient.connect({ url: t.gw.url, token: t.token, role: 'operator', scopes: ['operator.approvals', 'operator.write'], agentToken: (await t.gw.identity.issueToken('self-approver')).token });
      try {
        await assert.rejects(agent.request('node.invoke', { nodeId: t.node.device.deviceId, command: 'system.run', params: { command: ['printf', 'mine'] }, timeoutMs: 100, idempotencyKey: randomUUID() }), refusedWith('APPROVAL_PENDING'));
        const id = t.gw.approvals.list({ status: 'pending' }).find((a) => a.action.principal === 'Agent::self-approver')!.id;
        await assert.rejects(agent.request('exec.approval.resolve', { id, decision: 'allow-once', reviewer: reviewer('alice') }), (e: { wire?: { code?: string } }) => e.wire?.code === 'FORBIDDEN');
        assert.equal(t.gw.approvals.get(id).status, 'pending');
      } finally {
        await agent.close();
      }
    });
  });

  describe('the kill switch', () => {
    it('denies a waiting command whose approval came (from another process) just before its agent was suspended, and names the policies that asked', async () => {
      t.gw.identity.agents.create({ name: 'late-suspend', process: 'ci', owner: 'owner@example.com', scopes: [] });
      const agent = await GatewayClient.connect({ url: t.gw.url, token: t.token, role: 'operator', scopes: ['operator.write'], agentToken: (await t.gw.identity.issueToken('late-suspend')).token });
      try {
        const before = t.node.received.length;
        const waiting = agent.request('node.invoke', { nodeId: t.node.device.deviceId, command: 'system.run', params: { command: ['printf', 'late'] }, timeoutMs: 10_000, idempotencyKey: randomUUID() }, { timeoutMs: 15_000 });
        let approval = t.gw.approvals.list({ status: 'pending' }).find((a) => a.action.principal === 'Agent::late-suspend');
        for (let i = 0; !approval && i < 200; i++) {
          await new Promise((r) => setTimeout(r, 10));
          approval = t.gw.approvals.list({ status: 'pending' }).find((a) => a.action.principal === 'Agent::late-suspend');
        }
        assert.ok(approval, 'an approval request');
        assert.deepEqual(approval.action.policies, ['printf-asks']);
        // As the CLI does: straight to the store, so the waiter learns of it only when it next looks.
        t.gw.approvals.resolve(approval.id, 'allow-once', 'alice');
        t.gw.identity.agents.suspend('late-suspend');
        await assert.rejects(waiting, refusedWith('SYSTEM_RUN_DENIED'));
        assert.equal(t.node.received.length, before, 'nothing reached the node');
      } finally {
        await agent.close();
      }
    });
  });

  describe('receipts', () => {
    let receipt: ApprovalReceipt;
    let digest: string;
    let invokeId: string;
    let key: { keyId: string; publicKey: string };
    before(async () => {
      const id = await pending(['printf', 'receipt']);
      digest = t.gw.approvals.get(id).digest;
      await t.gw.invoker.resolveApprovalWhenFree(id, 'allow-once', 'alice');
      await t.run(['printf', 'receipt']);
      receipt = t.node.received.at(-1)!.params.approvalReceipt as ApprovalReceipt;
      invokeId = t.node.received.at(-1)!.id;
      key = (await t.node.client.request('corral.receipt.key', {})) as { keyId: string; publicKey: string };
    });

    it('sends the node a receipt that verifies under the key the node can pin, for exactly this action and this request, for a minute', () => {
      const checked = verifyReceipt(receipt, key.publicKey, { digest, nodeId: t.node.device.deviceId, runId: invokeId });
      assert.equal(checked.approvalId, receipt.approvalId);
      assert.deepEqual(checked.approvers, ['alice']);
      assert.equal(checked.decision, 'allow-once');
      assert.equal(checked.keyId, key.keyId);
      assert.deepEqual([checked.v, checked.runId, checked.expiresAtMs - checked.issuedAtMs], [2, invokeId, RECEIPT_VALIDITY_MS]);
    });

    it('lets the node check the receipt against exactly the command it was sent, and refuse it for any other', () => {
      const sent = t.node.received.at(-1)!;
      assert.equal(verifyCommandReceipt(receipt, key.publicKey, { nodeId: t.node.device.deviceId, command: sent.command, params: sent.params, runId: sent.id }).approvalId, receipt.approvalId);
      for (const params of [{ ...sent.params, command: ['printf', 'other'] }, { ...sent.params, command: ['sh', '-c', 'printf receipt; rm -rf /'] }, { ...sent.params, env: { X: '1' } }, { ...sent.params, cwd: '/etc' }] as Array<Record<string, unknown>>) {
        assert.throws(() => verifyCommandReceipt(receipt, key.publicKey, { nodeId: t.node.device.deviceId, command: 'system.run', params, runId: sent.id }), { code: 'GATEWAY_APPROVAL_MISMATCH' }, JSON.stringify(params));
      }
    });

    it('refuses a receipt whose approvers, decision, digest, run or times were changed (GATEWAY_RECEIPT_INVALID)', () => {
      const forgeries = [
        { ...receipt, approvers: ['mallory'] },
        { ...receipt, decision: 'allow-always' },
        { ...receipt, digest: 'a'.repeat(64) },
        { ...receipt, signature: 'A'.repeat(86) },
        { ...receipt, quorum: 2 },
        { ...receipt, runId: randomUUID() },
        { ...receipt, expiresAtMs: receipt.expiresAtMs - 1 },
        { ...receipt, issuedAtMs: receipt.issuedAtMs + 1 },
        null,
        'receipt',
      ];
      for (const forged of forgeries) {
        const f = forged as { digest?: string; runId?: string } | null;
        assert.throws(() => verifyReceipt(forged, key.publicKey, { digest: f?.digest ?? digest, nodeId: t.node.device.deviceId, runId: f?.runId ?? invokeId }), { code: 'GATEWAY_RECEIPT_INVALID' }, JSON.stringify(forged));
      }
    });

    it('refuses a genuine receipt for another action, another node or another run (GATEWAY_APPROVAL_MISMATCH)', () => {
      assert.throws(() => verifyReceipt(receipt, key.publicKey, { digest: 'b'.repeat(64), nodeId: t.node.device.deviceId, runId: invokeId }), { code: 'GATEWAY_APPROVAL_MISMATCH' });
      assert.throws(() => verifyReceipt(receipt, key.publicKey, { digest, nodeId: 'c'.repeat(64), runId: invokeId }), { code: 'GATEWAY_APPROVAL_MISMATCH' });
      assert.throws(() => verifyReceipt(receipt, key.publicKey, { digest, nodeId: t.node.device.deviceId, runId: randomUUID() }), { code: 'GATEWAY_APPROVAL_MISMATCH' });
    });

    it('refuses a genuine receipt once its minute and the clock skew have passed, or before it was issued, less the skew (GATEWAY_APPROVAL_EXPIRED)', () => {
      const expected = { digest, nodeId: t.node.device.deviceId, runId: invokeId };
      assert.equal(verifyReceipt(receipt, key.publicKey, expected, receipt.expiresAtMs + RECEIPT_CLOCK_SKEW_MS).approvalId, receipt.approvalId);
      assert.equal(verifyReceipt(receipt, key.publicKey, expected, receipt.issuedAtMs - RECEIPT_CLOCK_SKEW_MS).approvalId, receipt.approvalId);
      assert.throws(() => verifyReceipt(receipt, key.publicKey, expected, receipt.expiresAtMs + RECEIPT_CLOCK_SKEW_MS + 1), { code: 'GATEWAY_APPROVAL_EXPIRED' });
      assert.throws(() => verifyReceipt(receipt, key.publicKey, expected, receipt.issuedAtMs + 30 * 24 * 3600_000), { code: 'GATEWAY_APPROVAL_EXPIRED' }, 'a copy from the audit log, a month on');
      assert.throws(() => verifyReceipt(receipt, key.publicKey, expected, receipt.issuedAtMs - RECEIPT_CLOCK_SKEW_MS - 1), { code: 'GATEWAY_APPROVAL_EXPIRED' });
    });

    it('keeps the signed receipt in the audit record of the run', async () => {
      const records = (await auditEvents(t.state)).filter((e) => e.action === 'node.invoke' && (e.details?.approvalReceipt as { approvalId?: string } | undefined)?.approvalId === receipt.approvalId);
      assert.equal(records.length, 1);
      assert.equal((records[0]!.details!.approvalReceipt as { signature: string }).signature, receipt.signature);
    });
  });

  describe('what operators are shown of an approval', () => {
    it('names the environment of the run, never its values, in exec.approval.requested, exec.approval.get and exec.approval.list, as the HTTP API and the audit log do (regression: a token the agent passed in env went to every operator, and on to chat approvals)', async () => {
      const requested: Array<{ id: string; request: Record<string, unknown> }> = [];
      const off = t.operator.on('exec.approval.requested', (payload) => requested.push(payload as (typeof requested)[number]));
      try {
        const asking = t.operator.request('node.invoke', { nodeId: t.node.device.deviceId, command: 'system.run', params: { command: ['printf', 'with a token'], env: { PAYMENT_TOKEN: 'secret-value' } }, timeoutMs: 100, idempotencyKey: randomUUID() }, { timeoutMs: 5_000 });
        await assert.rejects(asking, refusedWith('APPROVAL_PENDING'));
      } finally {
        off();
      }
      const event = requested.find((r) => JSON.stringify(r.request.argv) === JSON.stringify(['printf', 'with a token']));
      assert.ok(event, 'an exec.approval.requested event');
      const got = (await t.operator.request('exec.approval.get', { id: event.id })) as { request: Record<string, unknown> };
      const listed = ((await t.operator.request('exec.approval.list', {})) as { approvals: Array<{ id: string; request: Record<string, unknown> }> }).approvals.find((a) => a.id === event.id);
      for (const [where, request] of [['requested', event.request], ['get', got.request], ['list', listed?.request]] as const) {
        assert.deepEqual(request?.env, ['PAYMENT_TOKEN'], where);
        assert.doesNotMatch(JSON.stringify(request), /secret-value/, where);
      }
    });
  });

  describe('what the node is told about approvals', () => {
    it('never passes on an approval decision or receipt the caller put in the params: only the gateway says a human approved (regression: approvalDecision reached the node, which let it skip its own ask)', async () => {
      const id = await pending(['printf', 'genuine']);
      await t.gw.invoker.resolveApprovalWhenFree(id, 'allow-once', 'alice');
      await t.run(['printf', 'genuine']);
      const genuine = t.node.received.at(-1)!.params.approvalReceipt;
      await t.operator.request('node.invoke', { nodeId: t.node.device.deviceId, command: 'system.run', params: { command: ['echo', 'unasked'], approvalDecision: 'allow-always', approvalReceipt: genuine, approved: true }, timeoutMs: 5_000, idempotencyKey: randomUUID() }, { timeoutMs: 10_000 });
      const sent = t.node.received.at(-1)!.params;
      assert.deepEqual(sent.command, ['echo', 'unasked']);
      assert.deepEqual([sent.approvalDecision, sent.approvalReceipt, sent.approved], [undefined, undefined, false]);
    });
  });

  describe('allow-always', () => {
    let id: string;
    before(async () => {
      id = await pending(['printf', 'always']);
      await t.gw.invoker.resolveApprovalWhenFree(id, 'allow-always', 'alice');
      await t.run(['printf', 'always']);
    });

    it('writes a Cedar grant named after the approval into the policy directory, permitting exactly that digest', () => {
      const file = join(t.policies, grantFile(id));
      assert.ok(existsSync(file));
      const text = readFileSync(file, 'utf8');
      assert.match(text, new RegExp(`@id\\("approval-${id}"\\)`));
      assert.match(text, new RegExp(`context\\.digest == "${t.gw.approvals.get(id).digest}"`));
    });

    it('then runs the same action without asking, live (no restart), and says which grant allowed it', async () => {
      const before = t.gw.approvals.list({ status: 'pending' }).length;
      await t.run(['printf', 'always'], 2_000);
      assert.equal(t.gw.approvals.list({ status: 'pending' }).length, before);
      const decided = (await auditEvents(t.state)).filter((e) => e.action === 'node.invoke.decide').at(-1)!;
      assert.deepEqual(decided.decision?.policies, [`approval-${id}`]);
    });

    it('never covers another command, or the same one with another chained to it', async () => {
      await assert.rejects(t.run(['printf', 'always', 'more'], 100), refusedWith('APPROVAL_PENDING'));
      await assert.rejects(t.run(['sh', '-c', 'printf always; rm -rf /'], 100), refusedWith('SYSTEM_RUN_DENIED'));
    });

    it('is withdrawn by removing the grant: the action asks again', async () => {
      assert.deepEqual(await t.operator.request('exec.approval.grants.revoke', { grantId: `approval-${id}` }), { outcome: 'revoked' });
      assert.deepEqual(await t.operator.request('exec.approval.grants.revoke', { grantId: `approval-${id}` }), { outcome: 'not-found' });
      assert.equal(existsSync(join(t.policies, grantFile(id))), false);
      await assert.rejects(t.run(['printf', 'always'], 100), refusedWith('APPROVAL_PENDING'));
    });

    it('stays withdrawn when it is withdrawn before the run it was approved for (regression: that run made the grant again)', async () => {
      const early = await pending(['printf', 'withdrawn-early']);
      await t.gw.invoker.resolveApprovalWhenFree(early, 'allow-always', 'alice');
      const file = join(t.policies, grantFile(early));
      for (let i = 0; i < 200 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(await t.operator.request('exec.approval.grants.revoke', { grantId: `approval-${early}` }), { outcome: 'revoked' });
      await t.run(['printf', 'withdrawn-early']);
      assert.equal(existsSync(file), false);
      await assert.rejects(t.run(['printf', 'withdrawn-early'], 100), refusedWith('APPROVAL_PENDING'));
      // Not made again is no failure to record: the log shows the grant made, then withdrawn.
      const grants = (await auditEvents(t.state)).filter((e) => e.action === 'policy.grant' && e.resource.id === `approval-${early}`);
      assert.deepEqual(grants.map((e) => e.outcome?.status), ['success']);
    });
  });
});

describe('a Corral node serving another gateway, whose own policy asks a human (corral.run.authorize with askHuman)', () => {
  let t: GovernedGateway;
  before(async () => {
    t = await governedGateway({ policy: 'permit (principal, action == Action::"system.run", resource == Command::"echo");\n', gateway: { approvalPollMs: 20 } });
  });
  after(() => t.close());

  const authorize = (argv: string[], extra: Record<string, unknown> = {}) =>
    t.node.client.request('corral.run.authorize', { command: 'system.run', params: { command: argv }, timeoutMs: 10_000, ...extra }, { timeoutMs: 15_000 }) as Promise<{ decision: string; approvalId?: string; approvalReceipt?: ApprovalReceipt }>;

  it('makes what Corral allows outright an ask, answered with the approval and its receipt once a human allows it', async () => {
    assert.deepEqual(Object.keys(await authorize(['echo', 'plain'])).filter((k) => k.startsWith('approval')), [], 'allowed outright when the node does not ask');
    const why = 'approval required: the node asks for every command (ask=always) and no human approved this run';
    await assert.rejects(authorize(['echo', 'asked'], { askHuman: why, timeoutMs: 100 }), refusedWith('APPROVAL_PENDING'));
    const [approval] = t.gw.approvals.list({ status: 'pending' });
    assert.equal(approval?.action.reason, `the node asks a human: ${why}`);
    await t.gw.invoker.resolveApprovalWhenFree(approval!.id, 'allow-once', 'alice');
    const answer = await authorize(['echo', 'asked'], { askHuman: why });
    assert.deepEqual([answer.decision, answer.approvalId, answer.approvalReceipt?.approvalId], ['allow', approval!.id, approval!.id]);
  });

  it('never makes a command Corral denies anything but denied, and asks nobody for it', async () => {
    const before = t.gw.approvals.list().length;
    await assert.rejects(authorize(['rm', '-rf', '/'], { askHuman: 'approval required' }), refusedWith('SYSTEM_RUN_DENIED'));
    assert.equal(t.gw.approvals.list().length, before);
  });
});
