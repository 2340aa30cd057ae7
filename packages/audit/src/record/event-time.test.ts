import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { sampleEvent } from '../../test/fixtures.ts';
import { checkedEvent } from './event.ts';
import { bodyHasTime, eventTimeMs } from './event-time.ts';
import { FIRST_MS, LAST_MS } from './iso-time.ts';

/** The naive reference: parse the body, read its time as the OCSF export filters by it. */
const reference = (body: string, timeMs: number) => Date.parse((JSON.parse(body) as { time: string }).time) === timeMs;

const T1 = '2026-01-01T00:00:01.000Z';
const T2 = '2026-01-01T00:00:02.000Z';
const TRACE = '0af7651916cd43dd8448eb211c80319c';

describe('bodyHasTime', () => {
  describe('for a record as append() writes it', () => {
    for (const [name, trace] of [['without a trace id (time is the last member)', undefined], ['with a trace id (time is the last member but one)', TRACE]] as const) {
      it(`${name}: true for its event time, false 1 ms either side and at 0`, () => {
        const input = { ...sampleEvent(9) };
        if (trace) input.trace = trace;
        else delete input.trace;
        const { body, timeMs } = checkedEvent(input);
        assert.equal(bodyHasTime(body, timeMs), true);
        for (const other of [timeMs - 1, timeMs + 1, 0]) assert.equal(bodyHasTime(body, other), false, String(other));
      });
    }
    it('agrees with parsing the body, for any event time from 0000 to 9999, with or without a trace id, and details that hold times of their own (property)', () => {
      const details = fc.dictionary(fc.constantFrom('time', 'trace', 'x', 'zz'), fc.oneof(fc.string(), fc.constant(T2), fc.constant(`,"time":"${T2}"}`)));
      fc.assert(
        fc.property(fc.integer({ min: FIRST_MS, max: LAST_MS }), fc.boolean(), details, fc.integer({ min: -2, max: 2 }), (ms, traced, d, shift) => {
          const input = { ...sampleEvent(0), time: new Date(ms), details: d };
          if (!traced) delete input.trace;
          const { body, timeMs } = checkedEvent(input);
          const index = timeMs + shift;
          assert.equal(bodyHasTime(body, index), reference(body, index));
          assert.equal(bodyHasTime(body, index), shift === 0);
        }),
        { numRuns: 5_000 },
      );
    });
  });

  describe('for any time text of the record format, real instant or not', () => {
    it('agrees with Date.parse: days a month does not have, hour 24, minute or second 60, leap days, the years 0000 and 9999 (property)', () => {
      const two = (n: number) => String(n).padStart(2, '0');
      const text = fc
        .tuple(fc.oneof(fc.integer({ min: 0, max: 9999 }), fc.constantFrom(0, 1600, 1900, 2000, 2024, 2026, 2100, 9999)), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 24 }), fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 999 }))
        .map(([y, mo, d, h, mi, s, ms]) => `${String(y).padStart(4, '0')}-${two(mo)}-${two(d)}T${two(h)}:${two(mi)}:${two(s)}.${String(ms).padStart(3, '0')}Z`);
      fc.assert(
        fc.property(text, fc.boolean(), fc.integer({ min: -1, max: 1 }), (t, traced, shift) => {
          const body = `{"action":"a","time":"${t}"${traced ? `,"trace":"${TRACE}"` : ''}}`;
          const parsed = Date.parse(t);
          const index = Number.isNaN(parsed) ? Date.UTC(2026, 0, 1) : parsed + shift;
          assert.equal(bodyHasTime(body, index), parsed === index, t);
        }),
        { numRuns: 20_000 },
      );
    });
    it('reads a time holding a character that is not a digit by parsing the body', () => {
      for (const t of ['2026-01-01T00:00:0a.000Z', '2026-01-01T00:00:00.00/Z', '2026-01-01 00:00:00.000Z', '+02026-01-01T00:00:00Z']) {
        const body = `{"action":"a","time":"${t}"}`;
        assert.equal(bodyHasTime(body, Date.UTC(2026, 0, 1)), Date.parse(t) === Date.UTC(2026, 0, 1), t);
      }
    });
  });

  describe('for a body append() never writes (read by parsing it)', () => {
    it('reads the time of a body whose time is not its last member', () => {
      const body = `{"time":"${T1}","zz":1}`;
      assert.equal(bodyHasTime(body, Date.parse(T1)), true);
      assert.equal(bodyHasTime(body, Date.parse(T2)), false);
    });
    it('is not fooled by a string whose text ends as a time and trace id would, escaped: the real time is the top-level one', () => {
      const body = `{"action":"a","time":"${T1}","x":",\\"time\\":\\"${T2}\\",\\"trace\\":\\"${TRACE}"}`;
      assert.equal(JSON.parse(body).time, T1);
      assert.equal(bodyHasTime(body, Date.parse(T2)), false);
      assert.equal(bodyHasTime(body, Date.parse(T1)), true);
    });
    it('is not fooled by a last member of 32 characters holding a quote, escaped, after a string that ends as a time would', () => {
      const body = `{"action":"a","time":"${T1}","x":"a,\\"time\\":\\"${T2}\\",\\"trace\\":\\"${'0'.repeat(32)}"}`;
      assert.equal(JSON.parse(body).time, T1);
      assert.equal(bodyHasTime(body, Date.parse(T2)), false);
      assert.equal(bodyHasTime(body, Date.parse(T1)), true);
    });
    it('reads a trace id that is not 32 lowercase hex by parsing the body, or in place when it holds no quote', () => {
      for (const trace of ['Z'.repeat(32), `${'a'.repeat(30)}\\\\`]) {
        const body = `{"action":"a","time":"${T1}","trace":"${trace}"}`;
        assert.equal(JSON.parse(body).time, T1);
        assert.equal(bodyHasTime(body, Date.parse(T1)), true);
        assert.equal(bodyHasTime(body, Date.parse(T2)), false);
      }
    });
    for (const [name, body] of [
      ['not JSON', `{"action":"a","time":"${T1}"`],
      ['JSON but no object', `["${T1}"]`],
      ['an object without a time', '{"action":"a"}'],
      ['a time that is no text', '{"time":0}'],
    ] as const) {
      it(`holds no time when it is ${name}: no index matches it, and nothing is thrown`, () => {
        assert.ok(Number.isNaN(eventTimeMs(body)));
        assert.equal(bodyHasTime(body, Date.parse(T1)), false);
        assert.equal(bodyHasTime(body, 0), false);
      });
    }
    it('matches no index outside the years 0000–9999, nor one that is not an integer', () => {
      const { body } = checkedEvent(sampleEvent(0));
      for (const ms of [FIRST_MS - 1, LAST_MS + 1, Number.NaN, 0.5]) assert.equal(bodyHasTime(body, ms), false, String(ms));
    });
  });
});
