// `corral.run.refused` from a hostile node: what it may have recorded as its
// own refusal, and what it may not make the control plane write.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { AuditEventInput } from '@corral/audit';
import type { NodeAuditLimits } from './node-audit-budget.ts';
import { auditEvents } from '../../../../scripts/testing/audit-events.ts';
import { pairedNodePeer } from '../../test/node-peer.ts';
import { governedGateway, invokerGateway, type GovernedGateway } from '../../test/governed-gateway.ts';
import { policyStateDirs } from '../../test/policy-state.ts';
import { MAX_REFUSED_ARGV, MAX_REFUSED_REASON, MAX_REFUSED_WORD, MAX_UPSTREAM_AGENT, NODE_REFUSE_ACTION } from './node-refusal.ts';

const token = randomBytes(24).toString('base64url');
const stateDir = policyStateDirs('node-refusal', '@id("echo") permit (principal, action == Action::"system.run", resource == Command::"echo");\n');
const invalid = (e: { wire?: { code?: string } }) => e.wire?.code === 'INVALID_REQUEST';
const refusal = { command: ['rm', '-rf', '/srv'], cwd: '/srv', envKeys: ['LANG'], agentId: 'invoice-bot', code: 'NODE_RUN_DENIED', rule: 'allowlist-miss', reason: "rm is not on the node's allowlist" };

describe('corral.run.refused', () => {
  let t: GovernedGateway;
  before(async () => {
    t = await governedGateway({ state: stateDir() });
    t.gw.identity.agents.create({ name: 'invoice-bot', process: 'invoices', owner: 'owner@example.com', scopes: [] });
    t.gw.identity.nodes.setAgents(t.node.device.deviceId, t.gw.identity.agents.idsOf(['invoice-bot']));
  });
  after(() => t.close());
  const refusals = async () => (await auditEvents(t.state)).filter((e) => e.action === NODE_REFUSE_ACTION);

  it("records a paired node's refusal as the agent's denied run, decided by the node, on that node", async () => {
    await t.node.client.request('corral.run.refused', refusal);
    const [record] = (await refusals()).filter((e) => e.resource.id === 'rm');
    assert.deepEqual(record?.actor, { kind: 'agent', id: 'invoice-bot' });
    assert.equal(record.node, t.node.device.deviceId);
    assert.deepEqual(record.decision, { effect: 'deny', reason: refusal.reason });
    assert.deepEqual(record.details, { by: 'node', code: 'NODE_RUN_DENIED', rule: 'allowlist-miss', command: 'system.run', argv: refusal.command, cwd: '/srv', envKeys: ['LANG'] });
  });

  it("records a refusal for the node's own failure (NODE_INTERNAL: its policy file cannot be read), with the node's reason and no local policy rule (regression: refused as INVALID_REQUEST, and no log held it)", async () => {
    const failed = { command: ['df', '-h'], cwd: null, envKeys: [], agentId: 'invoice-bot', code: 'NODE_INTERNAL', reason: "the node's local policy cannot be read" };
    await t.node.client.request('corral.run.refused', failed);
    const [record] = (await refusals()).filter((e) => e.resource.id === 'df');
    assert.deepEqual(record?.decision, { effect: 'deny', reason: failed.reason });
    assert.deepEqual(record.details, { by: 'node', code: 'NODE_INTERNAL', command: 'system.run', argv: failed.command, cwd: null, envKeys: [] });
  });

  it('keeps control characters of the argv and reason as data, and never takes the action, node or actor from the params', async () => {
    const hostile = { ...refusal, command: ['tput\u001b]0;owned\u0007', 'a\nb'], reason: 'line one\n\u001b[2Jfake record', action: 'approval.resolve', node: 'another-node', actor: { kind: 'human', id: 'alice' }, details: { by: 'gateway' } };
    await t.node.client.request('corral.run.refused', hostile);
    const [record] = (await refusals()).filter((e) => e.resource.id === hostile.command[0]);
    assert.ok(record);
    assert.deepEqual(record.details?.argv, hostile.command);
    assert.equal(record.decision?.reason, hostile.reason);
    assert.deepEqual([record.action, record.node, record.actor.kind, record.details?.by], [NODE_REFUSE_ACTION, t.node.device.deviceId, 'agent', 'node']);
  });

  it('names an agent the control plane does not know as the node\'s claim, the node the actor', async () => {
    await t.node.client.request('corral.run.refused', { ...refusal, command: ['ghost-run'], agentId: 'ghost' });
    const [record] = (await refusals()).filter((e) => e.resource.id === 'ghost-run');
    assert.deepEqual(record?.actor, { kind: 'node', id: t.node.device.deviceId });
    assert.deepEqual([record.details?.agent, record.details?.agentKnown], ['ghost', false]);
  });

  it('names an agent this node may not ask for (`corral nodes agents`) as the node\'s claim, the node the actor (regression: recorded as that agent\'s)', async () => {
    t.gw.identity.agents.create({ name: 'payroll-bot', process: 'payroll', owner: 'owner@example.com', scopes: [] });
    await t.node.client.request('corral.run.refused', { ...refusal, command: ['payroll-run'], agentId: 'payroll-bot' });
    const [record] = (await refusals()).filter((e) => e.resource.id === 'payroll-run');
    assert.deepEqual(record?.actor, { kind: 'node', id: t.node.device.deviceId });
    assert.deepEqual([record.details?.agent, record.details?.agentGranted, record.details?.agentKnown], ['payroll-bot', false, undefined]);
  });

  it('records a refusal for an agent of the node\'s gateway its map does not name as the node\'s, that name beside it, whatever Corral agent shares it', async () => {
    await t.node.client.request('corral.run.refused', { ...refusal, command: ['unmapped-run'], agentId: undefined, upstreamAgent: 'invoice-bot' });
    const [record] = (await refusals()).filter((e) => e.resource.id === 'unmapped-run');
    assert.deepEqual(record?.actor, { kind: 'node', id: t.node.device.deviceId });
    assert.deepEqual([record.details?.upstreamAgent, record.details?.agent], ['invoice-bot', undefined]);
  });

  it('refuses, and records nothing of, an oversized or malformed refusal', async () => {
    const before = (await refusals()).length;
    const bad: Array<[string, Record<string, unknown>]> = [
      ['too many words', { ...refusal, command: Array.from({ length: MAX_REFUSED_ARGV + 1 }, () => 'x') }],
      ['a word too long', { ...refusal, command: ['rm', 'x'.repeat(MAX_REFUSED_WORD + 1)] }],
      ['too many bytes', { ...refusal, command: Array.from({ length: MAX_REFUSED_ARGV }, () => '\u0001'.repeat(MAX_REFUSED_WORD)) }],
      ['a reason too long', { ...refusal, reason: 'r'.repeat(MAX_REFUSED_REASON + 1) }],
      ['no argv', { ...refusal, command: [] }],
      ['no program', { ...refusal, command: [''] }],
      ['a word not a string', { ...refusal, command: ['rm', 7] }],
      ['a code of its own', { ...refusal, code: 'GATEWAY_APPROVED' }],
      ['a rule of its own', { ...refusal, rule: 'allowed' }],
      ['a local policy rule for the node\'s own failure', { ...refusal, code: 'NODE_INTERNAL' }],
      ['an env value', { ...refusal, envKeys: ['LANG=C'] }],
      ['an agent name not Corral\'s', { ...refusal, agentId: 'Invoice Bot' }],
      ['a Corral agent and an upstream one', { ...refusal, upstreamAgent: 'main' }],
      ['an upstream agent name too long', { ...refusal, agentId: undefined, upstreamAgent: 'm'.repeat(MAX_UPSTREAM_AGENT + 1) }],
      ['an empty upstream agent name', { ...refusal, agentId: undefined, upstreamAgent: '' }],
      ['no reason', { ...refusal, reason: '' }],
      ['a lone surrogate in a word', { ...refusal, command: ['rm', 'a\ud800'] }],
      ['a lone surrogate in the cwd', { ...refusal, cwd: '/srv/\udc00' }],
      ['a lone surrogate in the reason', { ...refusal, reason: 'cut \ud83d' }],
      ['not an object', [] as unknown as Record<string, unknown>],
    ];
    for (const [what, params] of bad) await assert.rejects(t.node.client.request('corral.run.refused', params), invalid, what);
    assert.equal((await refusals()).length, before);
  });

  it('refuses it from an operator connection (node role only)', async () => {
    await assert.rejects(t.operator.request('corral.run.refused', refusal), (e: { wire?: { code?: string } }) => e.wire?.code === 'FORBIDDEN');
  });

  it("draws on the node's audit budget: past it, refused as RATE_LIMITED and counted, not recorded", async () => {
    const small = await budgetedGateway(stateDir(), { perSecond: 0.001, burst: 2, summaryAfterMs: 60_000 });
    const flooding = await pairedNodePeer(small.server.url, token, small.identity, ['system.run']);
    try {
      for (let i = 0; i < 2; i++) await flooding.client.request('corral.run.refused', { ...refusal, agentId: undefined });
      await assert.rejects(flooding.client.request('corral.run.refused', { ...refusal, agentId: undefined }), (e: { wire?: { retryable?: boolean; details?: { code?: string } } }) => e.wire?.retryable === true && e.wire.details?.code === 'RATE_LIMITED');
      assert.equal(small.events.filter((e) => e.action === NODE_REFUSE_ACTION).length, 2);
      await small.invoker.nodeAudit.flush(flooding.device.deviceId);
      const [summary] = small.events.filter((e) => e.action === 'node.audit.dropped');
      assert.deepEqual(summary?.details?.byAction, { 'corral.run.refused': 1 });
    } finally {
      await flooding.close();
      await small.close();
    }
  });
});

/** A gateway whose nodes' audit budget is `limits`, its records kept in `events`. */
async function budgetedGateway(state: string, limits: NodeAuditLimits) {
  const events: AuditEventInput[] = [];
  const gateway = await invokerGateway({ state, token, audit: async (event) => void events.push(event), invoker: { nodeAuditLimits: limits } });
  return { ...gateway, events };
}
