// The one reading of --since/--until and the explorer's since/until.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseTimeBound } from './time-bound.ts';

describe('parseTimeBound', () => {
  it('reads back every instant written as ISO 8601 UTC with milliseconds, as either bound', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('0000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }), (d) => {
        assert.equal(parseTimeBound(d.toISOString(), 'since'), d.getTime());
        assert.equal(parseTimeBound(d.toISOString(), 'until'), d.getTime());
      }),
    );
  });

  it('takes a date alone as the whole day: since its first millisecond, until its last', () => {
    assert.equal(parseTimeBound('2026-01-31', 'since'), Date.parse('2026-01-31T00:00:00.000Z'));
    assert.equal(parseTimeBound('2026-01-31', 'until'), Date.parse('2026-01-31T23:59:59.999Z'));
  });

  it('applies an offset, and refuses what Date.parse would bend (a bare year, 2026-02-30, 24:00, no zone)', () => {
    assert.equal(parseTimeBound('2026-01-01T01:00:03+01:00', 'since'), Date.parse('2026-01-01T00:00:03Z'));
    for (const bad of ['12', '1', '2026-02-30', '2026-01-01T24:00:00Z', '2026-01-01T00:00:03', '2026-01-01T00:60Z', '']) assert.ok(Number.isNaN(parseTimeBound(bad, 'since')), bad);
  });

  it('takes a leap second (23:59:60 UTC, as RFC 3339 writes it) as the instant midnight follows, which is all a record time can hold of it; 60 at any other minute is refused', () => {
    for (const end of ['since', 'until'] as const) {
      assert.equal(parseTimeBound('2016-12-31T23:59:60Z', end), Date.parse('2017-01-01T00:00:00Z'), end);
      assert.equal(parseTimeBound('2016-12-31T23:59:60.5Z', end), Date.parse('2017-01-01T00:00:00Z'), end);
      assert.equal(parseTimeBound('2017-01-01T00:59:60+01:00', end), Date.parse('2017-01-01T00:00:00Z'), end);
    }
    for (const bad of ['2016-12-31T23:58:60Z', '2016-12-31T12:59:60Z', '2017-01-01T00:59:60Z', '2016-12-31T23:59:61Z']) assert.ok(Number.isNaN(parseTimeBound(bad, 'since')), bad);
  });
});
