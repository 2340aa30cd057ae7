import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { badInboundLimits, INBOUND_LIMITS, InboundMeter } from './inbound-budget.ts';

/** A meter on a clock the test moves. */
function meter(limits = { maxPayload: 100_000, bytesPerSecond: 10_000, burstBytes: 200_000 }): { meter: InboundMeter; advance: (ms: number) => void } {
  let now = 0;
  return { meter: new InboundMeter(limits, () => now), advance: (ms) => void (now += ms) };
}

describe('InboundMeter', () => {
  it('lets frames through that fit the budget, each read delivered as a frame', () => {
    const { meter: m } = meter();
    for (let i = 0; i < 10; i++) {
      m.delivered(10_000 - 8);
      assert.equal(m.arrived(10_000), undefined);
    }
  });

  it('refuses a frame still arriving past maxPayload (and a read of slack), before it is delivered', () => {
    const { meter: m } = meter({ maxPayload: 100_000, bytesPerSecond: 1e9, burstBytes: 1e9 });
    let refusal;
    for (let i = 0; i < 20 && refusal === undefined; i++) refusal = m.arrived(16_384);
    assert.equal(refusal, 'frame-too-large');
  });

  it('never refuses the largest frame that fits, sent whole', () => {
    const { meter: m } = meter({ maxPayload: 100_000, bytesPerSecond: 1, burstBytes: 100_014 });
    for (let sent = 0; sent < 100_014; sent += 16_384) assert.equal(m.arrived(Math.min(16_384, 100_014 - sent)), undefined);
  });

  it('when a stream of frames outruns the refill, refuses it as budget-exhausted, and lets it through again once refilled', () => {
    const { meter: m, advance } = meter();
    let refusal;
    let frames = 0;
    for (; frames < 100 && refusal === undefined; frames++) {
      m.delivered(50_000 - 8);
      refusal = m.arrived(50_000);
      advance(100);
    }
    assert.equal(refusal, 'budget-exhausted');
    assert.ok(frames > 4 && frames < 10, `refused at frame ${frames}`);
    advance(60_000);
    m.delivered(50_000 - 8);
    assert.equal(m.arrived(50_000), undefined);
  });

  it('starts a full budget under new limits (a connection once authenticated)', () => {
    const { meter: m } = meter({ maxPayload: 10, bytesPerSecond: 1, burstBytes: 10 });
    assert.equal(m.arrived(100), 'budget-exhausted');
    m.delivered(94);
    m.limit(INBOUND_LIMITS.node);
    m.delivered(994);
    assert.equal(m.arrived(1_000), undefined);
  });
});

describe('badInboundLimits', () => {
  it('names a burst smaller than the largest frame, and a limit that is not a positive integer', () => {
    assert.equal(badInboundLimits({ maxPayload: 10, bytesPerSecond: 1, burstBytes: 9 }), 'burstBytes');
    assert.equal(badInboundLimits({ maxPayload: 0, bytesPerSecond: 1, burstBytes: 9 }), 'maxPayload');
    assert.equal(badInboundLimits({ maxPayload: 1, bytesPerSecond: 1.5, burstBytes: 9 }), 'bytesPerSecond');
    for (const limits of Object.values(INBOUND_LIMITS)) assert.equal(badInboundLimits(limits), undefined);
  });
});
