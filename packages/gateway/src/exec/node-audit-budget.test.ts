import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuditEventInput } from '@corral/audit';
import { DROPPED_ACTION, NODE_AUDIT_LIMITS, NodeAuditBudget, type NodeAuditLimits } from './node-audit-budget.ts';

function budget(limits: NodeAuditLimits = { perSecond: 1, burst: 3, summaryAfterMs: 20, runs: { perSecond: 1, burst: 3 } }): { budget: NodeAuditBudget; events: AuditEventInput[]; advance: (ms: number) => void } {
  let now = 1_000;
  const events: AuditEventInput[] = [];
  return { budget: new NodeAuditBudget(async (e) => void events.push(e), limits, () => now), events, advance: (ms) => void (now += ms) };
}

describe('NodeAuditBudget', () => {
  it('admits a burst, then drops, and refills over time', () => {
    const { budget: b, advance } = budget();
    assert.deepEqual([1, 2, 3, 4].map(() => b.admit('n1', 'node.report.refused')), [true, true, true, false]);
    advance(1_000);
    assert.deepEqual([b.admit('n1', 'node.report.refused'), b.admit('n1', 'node.report.refused')], [true, false]);
  });

  it('keeps one budget a node: a flooding node leaves another its own', () => {
    const { budget: b } = budget();
    for (let i = 0; i < 10; i++) b.admit('flood', 'node.report.refused');
    assert.equal(b.admit('quiet', 'node.report.refused'), true);
  });

  it('writes one summary record of the drops, by action, after summaryAfterMs, however many were dropped', async () => {
    const { budget: b, events } = budget();
    for (let i = 0; i < 3; i++) {
      b.admit('n1', 'node.report.refused');
      b.admit('n1', 'corral.run.authorize');
    }
    for (let i = 0; i < 1_000; i++) b.admit('n1', i % 2 ? 'node.report.refused' : 'corral.run.authorize');
    assert.equal(events.length, 0);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(events.length, 1);
    assert.deepEqual([events[0]!.action, events[0]!.node, events[0]!.outcome], [DROPPED_ACTION, 'n1', { status: 'failure', detail: 'rate-limited' }]);
    assert.deepEqual([(events[0]!.details as { dropped: number }).dropped, (events[0]!.details as { byAction: unknown }).byAction], [1_000, { 'corral.run.authorize': 500, 'node.report.refused': 500 }]);
    await b.flush('n1');
    assert.equal(events.length, 1, 'nothing more to summarize');
  });

  it('writes nothing when nothing was dropped', async () => {
    const { budget: b, events } = budget();
    b.admit('n1', 'node.report.refused');
    await b.flushAll();
    assert.equal(events.length, 0);
  });
});

describe('when a node authorizes the runs of a busy upstream gateway', () => {
  it('authorizes 150 runs a second for ten minutes under the default limits (regression: past 20 a second sustained the node was told to retry)', () => {
    let now = 0;
    const b = new NodeAuditBudget(async () => undefined, NODE_AUDIT_LIMITS, () => now);
    let refused = 0;
    for (let second = 0; second < 600; second++, now += 1_000) for (let i = 0; i < 150; i++) if (!b.admit('n1', 'corral.run.authorize')) refused += 1;
    assert.equal(refused, 0);
  });

  it('still refuses a node asking for runs faster than its run budget refills, and counts them in its summary', async () => {
    const { budget: b, events } = budget({ perSecond: 1, burst: 3, summaryAfterMs: 20, runs: { perSecond: 1, burst: 4 } });
    assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => b.admit('n1', 'corral.run.authorize')), [true, true, true, true, false, false]);
    await b.flush('n1');
    assert.deepEqual((events[0]!.details as { byAction: unknown }).byAction, { 'corral.run.authorize': 2 });
  });

  it("keeps its runs authorized while it floods refused reports, and records its stop reports while its runs use up their budget (regression: one budget, either starved the other)", () => {
    const { budget: b } = budget({ perSecond: 1, burst: 3, summaryAfterMs: 20, runs: { perSecond: 1, burst: 4 } });
    for (let i = 0; i < 100; i++) b.admit('n1', 'node.report.refused');
    assert.equal(b.admit('n1', 'corral.run.authorize'), true);
    const other = budget({ perSecond: 1, burst: 3, summaryAfterMs: 20, runs: { perSecond: 1, burst: 4 } }).budget;
    for (let i = 0; i < 100; i++) other.admit('n1', 'corral.run.authorize');
    assert.equal(other.admit('n1', 'agent.containers.stop'), true);
  });
});
