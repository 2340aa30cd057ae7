// Reading one record line of an export: anything but the canonical bytes the
// log wrote is refused with AUDIT_RECORD_MALFORMED, never normalised into them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AuditError } from '../errors.ts';
import { GENESIS_PREV, parseRecord, recordBytes } from './envelope.ts';

const line = (event: string, seq: number | string = 0) => `{"event":${event},"prev":"${GENESIS_PREV}","seq":${seq},"v":1}`;

describe('parseRecord', () => {
  it('reads a canonical record: numbers as ECMAScript writes them (1e+21, 5e-324), members in UTF-16 code unit order (U+1F600 before U+E000)', () => {
    const text = line('{"a":1e+21,"b":5e-324,"c":0,"d":"\\u001f😀","\ud83d\ude00":1,"\ue000":2}');
    const r = parseRecord(text);
    assert.equal(recordBytes(r.seq, r.prev, r.body), text);
  });
  it('reads a record at the largest safe seq', () => assert.equal(parseRecord(line('{}', 2 ** 53 - 1)).seq, 2 ** 53 - 1));

  describe('when the line is not the canonical bytes of the record', () => {
    const d = 200_000;
    for (const [name, text] of [
      ['a number RFC 8785 writes otherwise (1E21)', line('{"a":1E21}')],
      ['a number RFC 8785 writes otherwise (1e21)', line('{"a":1e21}')],
      ['negative zero (-0)', line('{"a":-0}')],
      ['a number RFC 8785 writes otherwise (4.50)', line('{"a":4.50}')],
      ['a number that is not a double (1e400)', line('{"a":1e400}')],
      ['an escape RFC 8785 does not use (\\u0041)', line('{"a":"\\u0041"}')],
      ['an escaped solidus (\\/)', line('{"a":"\\/"}')],
      ['a lone surrogate in a string', line('{"a":"\\ud800"}')],
      ['a lone surrogate in a member name', line('{"\\udc00":1}')],
      ['members out of UTF-16 code unit order (U+E000 before U+1F600)', line('{"\ue000":1,"\ud83d\ude00":2}')],
      ['a repeated member', line('{"a":1,"a":1}')],
      ['a repeated envelope member', `{"event":{},"event":{},"prev":"${GENESIS_PREV}","seq":0,"v":1}`],
      ['whitespace', line('{"a": 1}')],
      ['a seq of 2^53', line('{}', 2 ** 53)],
      ['a seq of 1e3', line('{}', '1e3')],
      ['a negative seq', line('{}', -1)],
      ['a fractional seq', line('{}', 0.5)],
      ['an event nested 200,000 arrays deep', line(`{"a":${'['.repeat(d)}${']'.repeat(d)}}`)],
      ['an event nested 200,000 objects deep', line(`${'{"a":'.repeat(d)}1${'}'.repeat(d)}`)],
      ['an unterminated event nested 200,000 deep', line(`{"a":${'['.repeat(d)}`)],
      ['a version String() cannot print, {"toString":1} (regression: a TypeError)', `{"event":{},"prev":"${GENESIS_PREV}","seq":0,"v":{"toString":1}}`],
    ] as const) {
      it(`refuses ${name} with AUDIT_RECORD_MALFORMED`, () => {
        assert.throws(() => parseRecord(text), (e) => e instanceof AuditError && e.code === 'AUDIT_RECORD_MALFORMED');
      });
    }
    it('refuses any JSON in any envelope member, objects whose toString is no function included, with AUDIT_RECORD_MALFORMED (property)', () => {
      const hostile = fc.oneof(fc.jsonValue(), fc.record({ toString: fc.jsonValue() }), fc.record({ toString: fc.jsonValue(), valueOf: fc.jsonValue() }));
      fc.assert(
        fc.property(fc.constantFrom('event', 'prev', 'seq', 'v'), hostile, (member, value) => {
          const record: Record<string, unknown> = { event: {}, prev: GENESIS_PREV, seq: 0, v: 1, [member]: value };
          const text = JSON.stringify(record);
          fc.pre(text !== line('{}'));
          try {
            parseRecord(text);
          } catch (e) {
            assert.ok(e instanceof AuditError && e.code === 'AUDIT_RECORD_MALFORMED', String(e));
          }
        }),
        { numRuns: 300 },
      );
    });
  });
});
