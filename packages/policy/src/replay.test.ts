// Replay compares a candidate's answer with the recorded one as a whole: an
// ask that needs another number of distinct approvers is a change, as much
// as an allow or a deny would be.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DecisionPoint } from './decision-point.ts';
import { loadPolicies } from './load.ts';
import { replay, type RecordedDecision } from './replay.ts';

function asking(quorum: number): DecisionPoint {
  const point = new DecisionPoint();
  point.load(loadPolicies([{ file: 'candidate.cedar', text: `@id("pay-asks") @approval("required") @quorum("${quorum}") permit (principal, action == Action::"payment.create", resource);` }]));
  return point;
}

const asked = (quorum?: number): RecordedDecision => ({
  ref: 1,
  at: '2026-11-26T10:00:00.000Z',
  request: { principal: { type: 'Agent', id: 'invoice-bot' }, action: 'payment.create', resource: { type: 'Record', id: 'PAY-7' }, context: { amount: 100 } },
  decision: 'ask',
  ...(quorum !== undefined ? { quorum } : {}),
});

describe('replaying a recorded ask', () => {
  it('reports it changed exactly when the candidate asks another quorum than the one recorded, naming both (regression: two approvers lowered to one was no change)', () => {
    const points = new Map(Array.from({ length: 10 }, (_, i) => [i + 1, asking(i + 1)]));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 10 }), (recorded, candidate) => {
        const report = replay(points.get(candidate)!, [asked(recorded)]);
        if (recorded === candidate) return report.changed.length === 0 && report.unchanged === 1;
        const [change] = report.changed;
        return report.changed.length === 1 && change!.before === 'ask' && change!.beforeQuorum === recorded && change!.after.decision === 'ask' && change!.after.quorum === candidate;
      }),
    );
  });

  it('compares by decision alone when the record does not say its quorum (written before asks recorded it)', () => {
    assert.deepEqual(replay(asking(3), [asked()]).changed, []);
  });
});
