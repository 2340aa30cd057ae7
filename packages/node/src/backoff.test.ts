// The wait before a node reconnects: random below a doubling ceiling, never under the first wait.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FIRST_BACKOFF_MS, jitteredWait, nextCeiling } from './backoff.ts';

describe('the wait before a reconnect', () => {
  it('stays between the first wait and its ceiling, whatever the random source draws', () => {
    for (let i = 0; i < 1_000; i++) {
      const wait = jitteredWait(30_000, FIRST_BACKOFF_MS, Math.random);
      assert.ok(wait >= FIRST_BACKOFF_MS && wait <= 30_000, String(wait));
    }
    assert.equal(jitteredWait(1_000, 250, () => 0), 250);
    assert.equal(jitteredWait(1_000, 250, () => 1), 1_000);
    // A source that misbehaves is held to the bounds, never a wait of 0 or of NaN ms.
    assert.equal(jitteredWait(1_000, 250, () => -3), 250);
    assert.equal(jitteredWait(1_000, 250, () => 7), 1_000);
    assert.equal(jitteredWait(1_000, 250, () => Number.NaN), 250);
  });

  it('is the floor itself while the ceiling is (the first wait, or a most below 250 ms)', () => {
    assert.equal(jitteredWait(250, 250, Math.random), 250);
    assert.equal(jitteredWait(50, 50, Math.random), 50);
  });

  it('has a ceiling that doubles up to the most and stays there', () => {
    const ceilings = [FIRST_BACKOFF_MS];
    while (ceilings.length < 10) ceilings.push(nextCeiling(ceilings.at(-1)!, 30_000));
    assert.deepEqual(ceilings, [250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
  });
});
