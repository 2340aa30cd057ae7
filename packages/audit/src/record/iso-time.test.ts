import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FIRST_MS, LAST_MS, isoTime } from './iso-time.ts';

describe('isoTime', () => {
  it('writes what Date.prototype.toISOString writes, for any instant from 0000 to 9999 (property)', () => {
    fc.assert(fc.property(fc.integer({ min: FIRST_MS, max: LAST_MS }), (ms) => assert.equal(isoTime(ms), new Date(ms).toISOString())), { numRuns: 20_000 });
  });
  it('writes what toISOString writes around the epoch, leap days and century years (property)', () => {
    const near = (at: number) => fc.integer({ min: at - 3 * 86_400_000, max: at + 3 * 86_400_000 });
    const points = [0, Date.UTC(2000, 1, 29), Date.UTC(1900, 1, 28), Date.UTC(2100, 1, 28), Date.UTC(2024, 1, 29), Date.UTC(1600, 1, 29), FIRST_MS + 4 * 86_400_000, LAST_MS - 4 * 86_400_000];
    fc.assert(fc.property(fc.oneof(...points.map(near)), (ms) => assert.equal(isoTime(ms), new Date(ms).toISOString())), { numRuns: 5_000 });
  });
  it('writes what toISOString writes for instants asked for one after another, in the same second or day, across their ends, and back (property)', () => {
    // What the last call put together is kept for the next: each must still get its own instant's text.
    const steps = fc.array(fc.oneof(fc.integer({ min: -1_500, max: 1_500 }), fc.integer({ min: -2 * 86_400_000, max: 2 * 86_400_000 }), fc.constantFrom(0, 1, -1)), { minLength: 1, maxLength: 40 });
    const start = fc.oneof(fc.integer({ min: FIRST_MS, max: LAST_MS - 100 * 86_400_000 }), fc.constantFrom(-1, 0, Date.UTC(2000, 1, 29) - 1, Date.UTC(2026, 11, 31, 23, 59, 59, 999)));
    fc.assert(
      fc.property(start, steps, (first, moves) => {
        let ms = first;
        for (const move of moves) {
          ms = Math.min(LAST_MS, Math.max(FIRST_MS, ms + move));
          assert.equal(isoTime(ms), new Date(ms).toISOString());
        }
      }),
      { numRuns: 3_000 },
    );
  });
  it('writes the first and last instants of the years 0000–9999', () => {
    assert.equal(isoTime(FIRST_MS), '0000-01-01T00:00:00.000Z');
    assert.equal(isoTime(LAST_MS), '9999-12-31T23:59:59.999Z');
    assert.equal(isoTime(-1), '1969-12-31T23:59:59.999Z');
  });
  describe('when the instant has no such text', () => {
    for (const [name, ms] of [
      ['NaN (an invalid Date)', Number.NaN],
      ['one ms before the year 0000', FIRST_MS - 1],
      ['the year 10000 (toISOString writes +010000-…)', LAST_MS + 1],
      ['a fraction of a millisecond', 1.5],
      ['Infinity', Number.POSITIVE_INFINITY],
    ] as [string, number][]) {
      it(`gives undefined for ${name}`, () => assert.equal(isoTime(ms), undefined));
    }
  });
});
