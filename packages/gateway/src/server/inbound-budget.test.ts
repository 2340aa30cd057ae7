import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { badInboundLimits, FRAME_COST_BYTES, FrameScanner, INBOUND_LIMITS, InboundMeter, type InboundLimits } from './inbound-budget.ts';

/** A meter on a clock the test moves. */
function meter(limits: InboundLimits = { maxPayload: 100_000, bytesPerSecond: 10_000, burstBytes: 200_000, framesPerSecond: 1e6, burstFrames: 1e6, maxHeldOffMs: 30_000 }): { meter: InboundMeter; advance: (ms: number) => void } {
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
    const { meter: m } = meter({ maxPayload: 100_000, bytesPerSecond: 1e9, burstBytes: 1e9, framesPerSecond: 1e6, burstFrames: 1e6, maxHeldOffMs: 30_000 });
    let refusal;
    for (let i = 0; i < 20 && refusal === undefined; i++) refusal = m.arrived(16_384);
    assert.equal(refusal, 'frame-too-large');
  });

  it('never refuses the largest frame that fits, sent whole', () => {
    const { meter: m } = meter({ maxPayload: 100_000, bytesPerSecond: 1, burstBytes: 100_014, framesPerSecond: 1e6, burstFrames: 1e6, maxHeldOffMs: 30_000 });
    for (let sent = 0; sent < 100_014; sent += 16_384) assert.equal(m.arrived(Math.min(16_384, 100_014 - sent)), undefined);
  });

  it('when a stream of frames outruns the refill, holds the peer off until its budget is back to zero, and no longer once refilled (regression: a bursty node was cut off)', () => {
    const { meter: m, advance } = meter();
    let frames = 0;
    for (; frames < 100 && m.holdMs === 0; frames++) {
      m.delivered(50_000 - 8);
      assert.equal(m.arrived(50_000), undefined);
      advance(100);
    }
    assert.ok(frames > 4 && frames < 10, `held off at frame ${frames}`);
    // 50,000 bytes a read at 10,000 a second: at most 5 s to be back to zero.
    assert.ok(m.holdMs > 0 && m.holdMs <= 5_000, `held off ${m.holdMs} ms`);
    advance(60_000);
    m.delivered(50_000 - 8);
    assert.equal(m.arrived(50_000), undefined);
    assert.equal(m.holdMs, 0);
  });

  describe('when a peer goes on sending past its budget', () => {
    it('refuses it as held-off-too-long once it would be held off for longer than maxHeldOffMs in a row, reading at the refill rate', () => {
      const { meter: m, advance } = meter({ maxPayload: 100_000, bytesPerSecond: 10_000, burstBytes: 100_000, framesPerSecond: 1e6, burstFrames: 1e6, maxHeldOffMs: 10_000 });
      let refusal;
      let waited = 0;
      for (let reads = 0; reads < 1_000 && refusal === undefined; reads++) {
        m.delivered(10_000 - 8);
        refusal = m.arrived(10_000);
        if (refusal !== undefined) break;
        waited += m.holdMs;
        advance(m.holdMs);
      }
      assert.equal(refusal, 'held-off-too-long');
      assert.ok(waited >= 9_000 && waited <= 10_000, `refused after ${waited} ms held off`);
    });

    it('starts counting again after a read within its budget: a peer that bursts now and then is never refused', () => {
      const { meter: m, advance } = meter({ maxPayload: 100_000, bytesPerSecond: 10_000, burstBytes: 100_000, framesPerSecond: 1e6, burstFrames: 1e6, maxHeldOffMs: 10_000 });
      for (let burst = 0; burst < 10; burst++) {
        for (let reads = 0; reads < 15; reads++) {
          m.delivered(10_000 - 8);
          assert.equal(m.arrived(10_000), undefined);
          advance(m.holdMs);
        }
        advance(20_000);
      }
    });

    it('tells whether it was held off since a given time (its pong may wait behind its frames)', () => {
      const { meter: m, advance } = meter({ maxPayload: 100_000, bytesPerSecond: 10_000, burstBytes: 100_000, framesPerSecond: 1e6, burstFrames: 1e6, maxHeldOffMs: 10_000 });
      assert.equal(m.heldOffSince(0), false);
      m.delivered(100_000 - 8);
      m.arrived(100_000);
      m.delivered(10_000 - 8);
      m.arrived(10_000);
      assert.ok(m.holdMs > 0);
      assert.equal(m.heldOffSince(0), true);
      advance(5_000);
      assert.equal(m.heldOffSince(1), false);
    });
  });

  describe('when a peer sends many small frames', () => {
    it(`counts each frame as at least ${FRAME_COST_BYTES} bytes of its budget: a read of 1,000 requests of 50 bytes holds it off as 1,000 frames of that size would (regression: 50-byte requests fit a node's 4 MiB/s at 80,000 a second, and took the whole event loop)`, () => {
      const { meter: m } = meter({ maxPayload: 100_000, bytesPerSecond: 100_000, burstBytes: 200_000, framesPerSecond: 1e6, burstFrames: 1e6, maxHeldOffMs: 30_000 });
      for (let i = 0; i < 1_000; i++) m.delivered(50 - 6);
      assert.equal(m.arrived(50_000), undefined);
      assert.equal(m.holdMs, Math.ceil(((1_000 * FRAME_COST_BYTES - 200_000) * 1000) / 100_000));
    });

    it('counts a frame of FRAME_COST_BYTES or more as its own size, no more', () => {
      const { meter: m } = meter({ maxPayload: 100_000, bytesPerSecond: 100_000, burstBytes: 200_000, framesPerSecond: 1e6, burstFrames: 1e6, maxHeldOffMs: 30_000 });
      for (let i = 0; i < 100; i++) m.delivered(FRAME_COST_BYTES - 6);
      assert.equal(m.arrived(100 * FRAME_COST_BYTES), undefined);
      assert.equal(m.holdMs, 0);
    });

    it('counts pings and pongs too, which are frames (of no payload at least 6 bytes each)', () => {
      const { meter: m } = meter({ maxPayload: 100_000, bytesPerSecond: 100_000, burstBytes: 200_000, framesPerSecond: 1e6, burstFrames: 1e6, maxHeldOffMs: 30_000 });
      for (let i = 0; i < 10_000; i++) m.delivered(0);
      assert.equal(m.arrived(60_000), 'held-off-too-long');
    });
  });

  describe('when a peer sends more frames at once than its frame budget holds, though their bytes fit', () => {
    const limits = { maxPayload: 100_000, bytesPerSecond: 1e9, burstBytes: 1e9, framesPerSecond: 1_000, burstFrames: 100, maxHeldOffMs: 30_000 };

    it('holds it off until its frame budget is back to zero (regression: a node\'s 32 MiB held 32,768 small frames, all handled at once)', () => {
      const { meter: m } = meter(limits);
      for (let i = 0; i < 600; i++) m.delivered(44);
      assert.equal(m.arrived(600 * 50), undefined);
      // 500 frames past a budget refilled at 1,000 a second.
      assert.equal(m.holdMs, 500);
    });

    it('lets the frames of its budget through at once, and as many again once it has refilled', () => {
      const { meter: m, advance } = meter(limits);
      for (let i = 0; i < 100; i++) m.delivered(44);
      assert.equal(m.arrived(100 * 50), undefined);
      assert.equal(m.holdMs, 0);
      advance(100);
      for (let i = 0; i < 100; i++) m.delivered(44);
      assert.equal(m.arrived(100 * 50), undefined);
      assert.equal(m.holdMs, 0);
    });

    it('refuses it as held-off-too-long once it goes on past its frame budget for longer than maxHeldOffMs in a row', () => {
      const { meter: m, advance } = meter({ ...limits, maxHeldOffMs: 2_000 });
      let refusal;
      for (let reads = 0; reads < 100 && refusal === undefined; reads++) {
        for (let i = 0; i < 1_000; i++) m.delivered(0);
        refusal = m.arrived(6_000);
        advance(m.holdMs);
      }
      assert.equal(refusal, 'held-off-too-long');
    });

    it('counts pings and pongs as frames too', () => {
      const { meter: m } = meter(limits);
      for (let i = 0; i < 200; i++) m.delivered(0);
      assert.equal(m.arrived(200 * 6), undefined);
      assert.equal(m.holdMs, 100);
    });
  });

  it("counts a message's continuation frames (FrameScanner) against its frame budget: ws delivers the message alone", () => {
    const { meter: m } = meter({ maxPayload: 100_000, bytesPerSecond: 1e9, burstBytes: 1e9, framesPerSecond: 1_000, burstFrames: 100, maxHeldOffMs: 30_000 });
    m.continued(599);
    m.delivered(600);
    assert.equal(m.arrived(600 * 7), undefined);
    assert.equal(m.holdMs, 500);
  });

  it('starts a full budget under new limits (a connection once authenticated)', () => {
    const { meter: m } = meter({ maxPayload: 10, bytesPerSecond: 1, burstBytes: 10, framesPerSecond: 1e6, burstFrames: 1e6, maxHeldOffMs: 1_000 });
    assert.equal(m.arrived(100), 'held-off-too-long');
    m.delivered(94);
    m.limit(INBOUND_LIMITS.node);
    m.delivered(994);
    assert.equal(m.arrived(1_000), undefined);
  });
});

describe('badInboundLimits', () => {
  it('names a burst smaller than the largest frame, and a limit that is not a positive integer', () => {
    assert.equal(badInboundLimits({ maxPayload: 10, bytesPerSecond: 1, burstBytes: 9, framesPerSecond: 1e6, burstFrames: 1e6, maxHeldOffMs: 1 }), 'burstBytes');
    assert.equal(badInboundLimits({ maxPayload: 0, bytesPerSecond: 1, burstBytes: 9, framesPerSecond: 1e6, burstFrames: 1e6, maxHeldOffMs: 1 }), 'maxPayload');
    assert.equal(badInboundLimits({ maxPayload: 1, bytesPerSecond: 1.5, burstBytes: 9, framesPerSecond: 1e6, burstFrames: 1e6, maxHeldOffMs: 1 }), 'bytesPerSecond');
    assert.equal(badInboundLimits({ maxPayload: 1, bytesPerSecond: 1, burstBytes: 9, framesPerSecond: 1e6, burstFrames: 1e6, maxHeldOffMs: 0 }), 'maxHeldOffMs');
    assert.equal(badInboundLimits({ maxPayload: 1, bytesPerSecond: 1, burstBytes: 9, framesPerSecond: 0, burstFrames: 1, maxHeldOffMs: 1 }), 'framesPerSecond');
    assert.equal(badInboundLimits({ maxPayload: 1, bytesPerSecond: 1, burstBytes: 9, framesPerSecond: 1, burstFrames: 0.5, maxHeldOffMs: 1 }), 'burstFrames');
    for (const limits of Object.values(INBOUND_LIMITS)) assert.equal(badInboundLimits(limits), undefined);
  });
});

/** A client frame (RFC 6455 §5.2), masked with a zero key. */
function frame(opcode: number, payload: number, fin = true): Buffer {
  const length = payload < 126 ? [0x80 | payload] : payload < 65_536 ? [0x80 | 126, payload >> 8, payload & 0xff] : [0x80 | 127, 0, 0, 0, 0, (payload >>> 24) & 0xff, (payload >> 16) & 0xff, (payload >> 8) & 0xff, payload & 0xff];
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, ...length, 0, 0, 0, 0]), Buffer.alloc(payload, 0x78)]);
}

describe('FrameScanner', () => {
  it('counts none in frames sent whole: text, ping, pong, close', () => {
    const scanner = new FrameScanner();
    assert.equal(scanner.continuations(Buffer.concat([frame(0x1, 10), frame(0x9, 0), frame(0xa, 4), frame(0x1, 200), frame(0x8, 2)])), 0);
  });

  it('counts the continuation frames of a fragmented message, its first frame not among them', () => {
    const scanner = new FrameScanner();
    const parts = [frame(0x1, 3, false), ...Array.from({ length: 10 }, () => frame(0x0, 1, false)), frame(0x0, 1)];
    assert.equal(scanner.continuations(Buffer.concat(parts)), 11);
  });

  it('follows frames split across reads at any byte, a header too, with 7-, 16- and 64-bit lengths', () => {
    const stream = Buffer.concat([frame(0x1, 300, false), frame(0x0, 70_000, false), frame(0x9, 5), frame(0x0, 20), frame(0x1, 1, false), frame(0x0, 0)]);
    for (const size of [1, 2, 3, 7, 13, 1_000, 65_536]) {
      const scanner = new FrameScanner();
      let count = 0;
      for (let at = 0; at < stream.length; at += size) count += scanner.continuations(stream.subarray(at, at + size));
      assert.equal(count, 3, `in reads of ${size} bytes`);
    }
  });
});
