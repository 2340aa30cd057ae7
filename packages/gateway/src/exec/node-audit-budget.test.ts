import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuditEventInput } from '@corral/audit';
import { DROPPED_ACTION, NodeAuditBudget } from './node-audit-budget.ts';

function budget(limits = { perSecond: 1, burst: 3, summaryAfterMs: 20 }): { budget: NodeAuditBudget; events: AuditEventInput[]; advance: (ms: number) => void } {
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
    for (let i = 0; i < 3; i++) b.admit('n1', 'node.report.refused');
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
