// What live activity keeps on the page while its stream runs. Runs the
// console's own module under Node.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ActivityEvent } from '../ui/api/types.ts';
import { addLive, MAX_SHOWN, type Shown } from '../ui/pages/activity/shown.ts';

function event(seq: number): ActivityEvent {
  return { seq, time: '2026-11-26T10:00:00Z', actor: { kind: 'agent', id: 'a' }, action: 'node.invoke', resource: { kind: 'command', id: 'echo' }, effect: 'allow', policies: [], approval: null, node: null, outcome: null, summary: '' };
}

/** Events `from` down to `from - count + 1`, newest first. */
function newestFirst(from: number, count: number): ActivityEvent[] {
  return Array.from({ length: count }, (_, i) => event(from - i));
}

describe('live activity', () => {
  it('puts a streamed event first and shows a sequence number once, however often it comes', () => {
    let shown: Shown = { events: newestFirst(10, 3), nextBefore: 8 };
    shown = addLive(shown, event(11));
    shown = addLive(shown, event(11));
    assert.deepEqual(shown.events.map((e) => e.seq), [11, 10, 9, 8]);
    assert.equal(shown.nextBefore, 8);
  });

  describe('when the stream runs on past what the page keeps (regression: a page left open grew without end, each event slower than the last)', () => {
    it(`keeps ${MAX_SHOWN} events, pushing out the oldest, and Older goes on from the oldest kept`, () => {
      let shown: Shown = { events: newestFirst(MAX_SHOWN, MAX_SHOWN), nextBefore: null };
      for (let seq = MAX_SHOWN + 1; seq <= MAX_SHOWN + 50; seq++) shown = addLive(shown, event(seq));
      assert.equal(shown.events.length, MAX_SHOWN);
      assert.equal(shown.events[0]?.seq, MAX_SHOWN + 50);
      assert.equal(shown.nextBefore, 51);
      assert.equal(shown.events.at(-1)?.seq, 51);
    });

    it('keeps the older pages the person asked for, as many as they were', () => {
      const count = MAX_SHOWN + 300;
      let shown: Shown = { events: newestFirst(count, count), nextBefore: null };
      shown = addLive(shown, event(count + 1));
      assert.equal(shown.events.length, count);
      assert.equal(shown.nextBefore, 2);
    });
  });
});
