// Named governed commands: a node command whose Cedar action is its own name
// (payment.create) is decided with its params as the Cedar context, asks with
// the quorum the policies name (examples/invoice-intake/cedar), and reaches
// the node only then; a command no rule governs is denied; the read-only set
// passes.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Gateway, GatewayClient } from '../src/index.ts';
import { auditEvents } from '../../../scripts/testing/audit-events.ts';
import { pairedNodePeer, type NodePeer } from './node-peer.ts';

const EXAMPLE = new URL('../../../examples/invoice-intake/cedar/', import.meta.url).pathname;
const token = randomBytes(24).toString('base64url');
const refusedWith = (code: string) => (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === code;
const invalidParams = (e: { wire?: { code?: string } }) => e.wire?.code === 'INVALID_REQUEST';

describe('a named governed command (payment.create)', () => {
  let state: string;
  let gw: Gateway;
  let node: NodePeer;
  let bot: GatewayClient;
  let operator: GatewayClient;
  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'corral-named-'));
    mkdirSync(join(state, 'policies'));
    for (const f of readdirSync(EXAMPLE)) if (f.endsWith('.cedar') || f === 'entities.json') copyFileSync(join(EXAMPLE, f), join(state, 'policies', f));
    gw = await Gateway.start({ stateDir: state, token, port: 0, approvalPollMs: 20 });
    node = await pairedNodePeer(gw.url, token, gw.identity, ['payment.create', 'system.which', 'device.wipe']);
    gw.identity.agents.create({ name: 'invoice-bot', process: 'invoice-intake', owner: 'alice@example.com', scopes: [] });
    bot = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.write'], agentToken: (await gw.identity.issueToken('invoice-bot')).token });
    operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
  });
  after(async () => {
    await bot.close();
    await operator.close();
    await node.close();
    await gw.close();
    rmSync(state, { recursive: true, force: true });
  });

  const pay = (client: GatewayClient, params: unknown, timeoutMs = 10_000) => client.request('node.invoke', { nodeId: node.device.deviceId, command: 'payment.create', params, timeoutMs, idempotencyKey: randomUUID() }, { timeoutMs: timeoutMs + 5_000 }) as Promise<{ payload: unknown }>;
  const payments = () => node.received.filter((r) => r.command === 'payment.create');

  it('creates a payment of 250.00, which the policy allows without asking; the node gets exactly the checked params', async () => {
    const before = payments().length;
    const result = await pay(bot, { amount: 25_000, currency: 'EUR', payee: 'ACME GmbH' });
    assert.deepEqual(result.payload, { ran: 'payment.create' });
    assert.equal(payments().length, before + 1);
    assert.deepEqual(payments().at(-1)!.params, { amount: 25_000, currency: 'EUR', payee: 'ACME GmbH' });
  });

  it('holds a payment of 4,200.00 for one approver, and reaches the node only once approved', async () => {
    const before = payments().length;
    await assert.rejects(pay(bot, { amount: 420_000, currency: 'EUR', payee: 'ACME GmbH' }, 200), refusedWith('APPROVAL_PENDING'));
    assert.equal(payments().length, before);
    const [approval] = gw.approvals.list({ status: 'pending' });
    assert.equal(approval!.quorum, 1);
    assert.deepEqual(approval!.action.params, { amount: 420_000, currency: 'EUR', payee: 'ACME GmbH' });
    await gw.invoker.resolveApprovalWhenFree(approval!.id, 'allow-once', 'alice');
    await pay(bot, { amount: 420_000, currency: 'EUR', payee: 'ACME GmbH' });
    assert.equal(payments().length, before + 1);
  });

  it('needs two distinct approvers for 25,000.00: one approval (or the same approver twice) does not release it', async () => {
    const before = payments().length;
    const params = { amount: 2_500_000, currency: 'EUR', payee: 'Big Supplier AG' };
    await assert.rejects(pay(bot, params, 200), refusedWith('APPROVAL_PENDING'));
    const [approval] = gw.approvals.list({ status: 'pending' });
    assert.equal(approval!.quorum, 2);
    await gw.invoker.resolveApprovalWhenFree(approval!.id, 'allow-once', 'alice');
    await gw.invoker.resolveApprovalWhenFree(approval!.id, 'allow-once', 'alice');
    await assert.rejects(pay(bot, params, 200), refusedWith('APPROVAL_PENDING'));
    assert.equal(payments().length, before);
    await gw.invoker.resolveApprovalWhenFree(approval!.id, 'allow-once', 'bob');
    await pay(bot, params);
    assert.equal(payments().length, before + 1);
  });

  it('never lets an approved payment cover another amount or payee', async () => {
    const params = { amount: 500_000, currency: 'EUR', payee: 'ACME GmbH' };
    await assert.rejects(pay(bot, params, 200), refusedWith('APPROVAL_PENDING'));
    const [approval] = gw.approvals.list({ status: 'pending' });
    await gw.invoker.resolveApprovalWhenFree(approval!.id, 'allow-once', 'alice');
    const before = payments().length;
    await assert.rejects(pay(bot, { ...params, amount: 900_000 }, 200), refusedWith('APPROVAL_PENDING'));
    await assert.rejects(pay(bot, { ...params, payee: 'Mallory Ltd' }, 200), refusedWith('APPROVAL_PENDING'));
    assert.equal(payments().length, before);
    assert.equal(gw.approvals.get(approval!.id).status, 'allowed');
    for (const other of gw.approvals.list({ status: 'pending' })) await gw.invoker.resolveApprovalWhenFree(other.id, 'deny', 'alice');
  });

  it('denies a payment by a principal no policy permits (an operator), and the node never sees it', async () => {
    const before = payments().length;
    await assert.rejects(pay(operator, { amount: 100, currency: 'EUR', payee: 'ACME GmbH' }), refusedWith('COMMAND_DENIED'));
    assert.equal(payments().length, before);
  });

  it('refuses params that do not fit before any decision: a fractional amount, an unknown field, a missing payee, an approval state, a payee or reference holding a lone surrogate (regression for the last: "internal error")', async () => {
    const before = payments().length;
    for (const params of [
      { amount: 12.5, currency: 'EUR', payee: 'ACME GmbH' },
      { amount: 100, currency: 'EUR', payee: 'ACME \ud800' },
      { amount: 100, currency: 'EUR', payee: 'ACME GmbH', reference: '\udfff' },
      { amount: 100, currency: 'EUR', payee: 'ACME GmbH', approval: { state: 'approved', approvers: 2 } },
      { amount: 100, currency: 'EUR' },
      { amount: '100', currency: 'EUR', payee: 'ACME GmbH' },
      { amount: 100, currency: 'euro', payee: 'ACME GmbH' },
      null,
      [1, 2],
    ]) {
      await assert.rejects(pay(bot, params), invalidParams, JSON.stringify(params));
    }
    assert.equal(payments().length, before);
  });

  it('denies a command no rule governs, although the node declared it, and records the refusal', async () => {
    const before = node.received.length;
    await assert.rejects(operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'device.wipe', params: {}, idempotencyKey: randomUUID() }), refusedWith('COMMAND_DENIED'));
    await assert.rejects(bot.request('node.invoke', { nodeId: node.device.deviceId, command: 'device.wipe', params: {}, idempotencyKey: randomUUID() }), refusedWith('COMMAND_DENIED'));
    assert.equal(node.received.length, before);
    const refusals = (await auditEvents(state)).filter((e) => e.action === 'node.invoke.decide' && e.resource.id === 'device.wipe');
    assert.equal(refusals.length, 2);
    assert.ok(refusals.every((e) => e.decision?.effect === 'deny'));
  });

  it('forwards a read-only command (system.which) without a policy decision', async () => {
    const result = (await operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.which', params: { bins: ['sh'] }, idempotencyKey: randomUUID() })) as { payload: unknown };
    assert.deepEqual(result.payload, { ran: 'system.which' });
  });
});
