import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalize } from '@corral/audit';
import { cut, wellFormed } from './well-formed.ts';

// Strings of any UTF-16 code units, lone surrogates included, as a JSON frame may carry them.
const anyText = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 12 });
const anyJson = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, anyText, fc.integer(), fc.boolean(), fc.constant(null), fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(anyText, tie('value'), { maxKeys: 4 })),
})).value;

/**
 * `value` as JSON with every lone surrogate and U+FFFD masked, and member
 * names' numbering for repeats taken off, so a value and its well-formed copy
 * compare equal when nothing else changed and no member was lost.
 */
function masked(value: unknown): string {
  const text = JSON.stringify(value, (_key, item: unknown) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return item;
    return Object.entries(item).map(([key, member]) => [key.toWellFormed().replace(/ \(\d+\)$/, ''), member]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  });
  return text.replace(/\\ud[89a-f][0-9a-f]{2}|\ufffd/g, '?');
}

describe('wellFormed', () => {
  it('makes any value text the audit log takes, changing only lone surrogates (property)', () => {
    fc.assert(
      fc.property(anyJson, (value) => {
        const made = wellFormed(value);
        assert.doesNotThrow(() => canonicalize(made as never));
        assert.equal(masked(made), masked(value));
      }),
      { numRuns: 2_000 },
    );
  });

  it('numbers a member name that would repeat another once made well-formed, losing no member', () => {
    const value = JSON.parse('{"\\ud800": 1, "\\ufffd": 2, "\\ud801": 3, "\\ufffd (2)": 4, "\\udc00": [5]}') as Record<string, unknown>;
    assert.deepEqual(Object.entries(wellFormed(value)), [['\ufffd (3)', 1], ['\ufffd', 2], ['\ufffd (4)', 3], ['\ufffd (2)', 4], ['\ufffd (5)', [5]]]);
  });

  it('returns a value holding no lone surrogate as it is, not a copy', () => {
    const event = { actor: { kind: 'agent', id: 'bot' }, details: { argv: ['echo', '😀'] } };
    assert.equal(wellFormed(event), event);
  });

  it('keeps a member named __proto__ a member', () => {
    const value = JSON.parse('{"__proto__": "\\ud800"}') as Record<string, unknown>;
    assert.deepEqual(Object.entries(wellFormed(value)), [['__proto__', '\ufffd']]);
  });
});

describe('cut', () => {
  it('never ends inside a surrogate pair, and keeps as much as fits (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('x', '😀', 'é'), maxLength: 40 }), fc.nat({ max: 60 }), (text, max) => {
        const kept = cut(text, max);
        assert.ok(kept.isWellFormed() && text.startsWith(kept) && kept.length <= Math.max(max, 0));
        assert.ok(kept.length >= Math.min(text.length, max) - 1);
      }),
    );
  });
});
