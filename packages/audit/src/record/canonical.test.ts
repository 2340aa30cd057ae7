import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalize } from './canonical.ts';

const fromBits = (hex: string) => Buffer.from(hex, 'hex').readDoubleBE(0);

describe('canonicalize (RFC 8785)', () => {
  it('serialises the RFC 8785 section 3.2.2 example byte for byte', () => {
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
    );
    assert.equal(canonicalize(input), '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}');
  });

  it('sorts members by UTF-16 code units (RFC 8785 section 3.2.3 example)', () => {
    const input = { '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '1': 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' };
    // (Object.keys would list "1" first whatever the text says, so read the text.)
    const keys = [...canonicalize(input).matchAll(/"((?:[^"\\]|\\.)*)":/g)].map((m) => JSON.parse(`"${m[1]}"`) as string);
    assert.deepEqual(keys, ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']);
  });

  describe('numbers, as in RFC 8785 appendix B', () => {
    const table: [string, string][] = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'],
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2'],
    ];
    for (const [bits, text] of table) it(`writes 0x${bits} as ${text}`, () => assert.equal(canonicalize(fromBits(bits)), text));
  });

  it('keeps a member named __proto__ (regression: a sorted copy dropped it)', () => {
    assert.equal(canonicalize(JSON.parse('{"b":1,"__proto__":{"x":2}}')), '{"__proto__":{"x":2},"b":1}');
  });

  describe('when the value is not I-JSON', () => {
    for (const [name, value] of [
      ['NaN', Number.NaN],
      ['Infinity', Number.POSITIVE_INFINITY],
      ['a lone surrogate', 'a\ud800b'],
      ['a lone surrogate in a member name', { '\udc00': 1 }],
      ['undefined member', { a: undefined }],
      ['a bigint', 1n],
      ['a Date', new Date(0)],
      ['a function', () => 1],
      ['a Map', new Map()],
    ] as [string, unknown][]) {
      it(`refuses ${name} with AUDIT_NOT_CANONICALIZABLE`, () => assert.throws(() => canonicalize(value), { code: 'AUDIT_NOT_CANONICALIZABLE' }));
    }
    it('refuses a cycle instead of recursing forever', () => {
      const a: Record<string, unknown> = {};
      a.self = a;
      assert.throws(() => canonicalize(a), { code: 'AUDIT_NOT_CANONICALIZABLE' });
    });
  });

  describe('against a naive reference (member by member, sorted by code units, strings and numbers by JSON.stringify)', () => {
    const naive = (v: unknown): string => {
      if (Array.isArray(v)) return `[${v.map(naive).join(',')}]`;
      if (v !== null && typeof v === 'object') {
        const keys = Object.keys(v).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        return `{${keys.map((k) => `${JSON.stringify(k)}:${naive((v as Record<string, unknown>)[k])}`).join(',')}}`;
      }
      return JSON.stringify(v);
    };
    // Names an ECMAScript engine lists first (array indices), near-indices, and any text.
    const name = fc.oneof(fc.string(), fc.constantFrom('0', '1', '9', '10', '01', '-1', '1.5', '4294967294', '4294967295', 'a', 'b', '__proto__', '\u20ac', '\ud83d\ude00'));
    const { tree } = fc.letrec((t) => ({
      tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, t('leaf'), fc.array(t('tree'), { maxLength: 4 }), fc.dictionary(name, t('tree'), { maxKeys: 6 })),
      leaf: fc.oneof(fc.constant(null), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary-ascii' })),
    }));
    it('writes the same bytes for any JSON value (property)', () => {
      fc.assert(fc.property(tree, (v) => assert.equal(canonicalize(v), naive(v))), { numRuns: 3_000 });
    });
  });

  describe('properties', () => {
    const json = fc.jsonValue({ noUnicodeString: false }).filter((v) => !Object.is(v, -0));
    it('round-trips: parsing the output gives the input back', () => {
      fc.assert(fc.property(json, (v) => assert.deepEqual(JSON.parse(canonicalize(v)), JSON.parse(JSON.stringify(v)))));
    });
    it('is idempotent: canonical text re-canonicalises to itself', () => {
      fc.assert(fc.property(json, (v) => {
        const c = canonicalize(v);
        assert.equal(canonicalize(JSON.parse(c)), c);
      }));
    });
    it('does not depend on member insertion order', () => {
      fc.assert(
        fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (obj) => {
          const reversed = Object.fromEntries(Object.entries(obj).reverse());
          assert.equal(canonicalize(reversed), canonicalize(obj));
        }),
      );
    });
    it('has no insignificant whitespace', () => {
      fc.assert(fc.property(fc.dictionary(fc.constantFrom('a', 'b', 'c'), fc.integer()), (obj) => assert.doesNotMatch(canonicalize(obj), /\s/)));
    });
  });
});
