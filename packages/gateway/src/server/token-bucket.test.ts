// The budget both the inbound byte meter and the per-node audit budget spend.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenBucket } from './token-bucket.ts';

describe('a token bucket', () => {
  it('starts full, refills at its rate up to its burst, and never above', () => {
    let now = 0;
    const bucket = new TokenBucket(10, 5, () => now);
    for (let i = 0; i < 5; i++) assert.equal(bucket.take(), true);
    assert.equal(bucket.take(), false, 'empty after its burst');
    now += 100; // 10 a second: one back
    assert.equal(bucket.take(), true);
    assert.equal(bucket.take(), false);
    now += 60_000;
    assert.equal(bucket.spend(0), 5, 'a long pause fills it to its burst, no further');
  });

  it('lets spend() go below zero, and the debt is paid back before anything is taken', () => {
    let now = 0;
    const bucket = new TokenBucket(1000, 100, () => now);
    assert.equal(bucket.spend(150), -50);
    now += 50;
    assert.equal(bucket.take(), false, 'the debt is paid back first');
    now += 1;
    assert.equal(bucket.take(), true);
  });

  it('refills nothing when the clock steps back, and takes new limits full', () => {
    let now = 1_000;
    const bucket = new TokenBucket(1000, 2, () => now);
    bucket.spend(2);
    now = 0;
    assert.equal(bucket.take(), false);
    bucket.reset(1, 7);
    assert.equal(bucket.spend(0), 7);
  });
});
