import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { sampleEvent } from '../../test/fixtures.ts';
import { canonicalize, type JsonValue } from './canonical.ts';
import { GENESIS_PREV, parseRecord, recordBytes } from './envelope.ts';
import { canonicalEvent, checkedEvent, digestOf, normalizeEvent, type AuditEventInput } from './event.ts';

describe('normalizeEvent', () => {
  it('keeps every part of a full event and writes time as ISO 8601 UTC', () => {
    const e = normalizeEvent(sampleEvent(3));
    assert.equal(e.time, '2026-11-25T12:00:03.000Z');
    assert.equal(e.actor.onBehalfOf?.id, 'alice@example.com');
    assert.equal(e.decision?.effect, 'allow');
  });
  it('snapshots the input: later changes to it do not reach the record', () => {
    const input = sampleEvent(1);
    const e = normalizeEvent(input);
    input.actor.id = 'mallory';
    assert.equal(e.actor.id, 'agent:invoice-intake');
  });
  it('stamps the current time when none is given', () => {
    const { time, ...rest } = sampleEvent(0);
    assert.equal(normalizeEvent(rest, () => new Date('2026-01-02T03:04:05.006Z')).time, '2026-01-02T03:04:05.006Z');
  });
  describe('when the event is invalid', () => {
    const cases: [string, (e: AuditEventInput) => void, string][] = [
      ['an unknown actor kind', (e) => ((e.actor as { kind: string }).kind = 'robot'), 'actor.kind'],
      ['an empty actor id', (e) => (e.actor.id = ''), 'actor.id'],
      ['an action that is not a dotted verb', (e) => (e.action = 'Run It'), 'action'],
      ['a digest that is not sha256:<hex>', (e) => (e.context = { inputs: { policy: 'md5:abc' } }), 'context.inputs.policy'],
      ['an unknown effect', (e) => (e.decision = { effect: 'maybe' as 'allow' }), 'decision.effect'],
      ['a trace id that is not 32 hex', (e) => (e.trace = 'xyz'), 'trace'],
      ['a time that is not ISO 8601', (e) => (e.time = 'yesterday'), 'time'],
      ['a day that does not exist (Date.parse rolls 2026-02-30 into March)', (e) => (e.time = '2026-02-30T00:00:00.000Z'), 'time'],
      ['a Date past the year 9999 (it prints as +010000-…)', (e) => (e.time = new Date(Date.UTC(10000, 0, 1))), 'time'],
      ['a non-integer exit code', (e) => (e.outcome = { status: 'failure', exitCode: 1.5 }), 'outcome.exitCode'],
    ];
    for (const [name, mutate, field] of cases) {
      it(`refuses ${name}, naming ${field}`, () => {
        const e = sampleEvent(0);
        mutate(e);
        assert.throws(() => normalizeEvent(e), (err: { code?: string; issues?: { field: string }[] }) => err.code === 'AUDIT_EVENT_INVALID' && !!err.issues?.some((i) => i.field === field));
      });
    }
    it('refuses details that are not JSON (a NaN) when canonicalising', () => {
      const e = normalizeEvent({ ...sampleEvent(0), details: { n: Number.NaN } });
      assert.throws(() => canonicalEvent(e), { code: 'AUDIT_EVENT_INVALID' });
    });
    it('refuses an event over 64 KiB', () => {
      const e = normalizeEvent({ ...sampleEvent(0), details: { blob: 'x'.repeat(70_000) } });
      assert.throws(() => canonicalEvent(e), { code: 'AUDIT_EVENT_INVALID' });
    });
  });
  describe('payload redaction', () => {
    it('replaces each redacted path by the digest of its value and lists it', () => {
      const e = normalizeEvent({ ...sampleEvent(0), context: { payload: { to: 'bob@example.com', body: { text: 'secret', n: 1 } }, redact: ['body.text', 'missing.path'] } });
      assert.deepEqual(e.context?.payload, { to: 'bob@example.com', body: { text: { redacted: digestOf(canonicalize('secret')) }, n: 1 } });
      assert.deepEqual(e.context?.redacted, ['body.text']);
      assert.doesNotMatch(canonicalEvent(e), /secret/);
    });
  });
});

describe('checkedEvent', () => {
  const digest = fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`);
  const names = fc.string({ minLength: 1 }).filter((k) => k !== '__proto__');
  it('writes the bytes canonicalize() writes, whatever the order of details, payload and digest names (property)', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ minLength: 1 }), fc.jsonValue()),
        fc.option(fc.jsonValue(), { nil: undefined }),
        fc.dictionary(names, digest),
        (details, payload, inputs) => {
          const input = { ...sampleEvent(1), details: details as { [key: string]: JsonValue }, context: { inputs, ...(payload === undefined ? {} : { payload: payload as JsonValue }) } };
          const { event, body } = checkedEvent(input);
          assert.equal(body, canonicalize(event));
        },
      ),
      { numRuns: 300 },
    );
  });
  it('orders digest names the RFC 8785 way, integer-like names included', () => {
    const d = digestOf('x');
    const { body } = checkedEvent({ ...sampleEvent(0), context: { inputs: { zeta: d, '10': d, alpha: d, '9': d } } });
    assert.match(body, new RegExp(`"inputs":\\{"10":"${d}","9":"${d}","alpha":"${d}","zeta":"${d}"\\}`));
  });
  it('gives the time in ms since the epoch, from a Date, from ISO text and from the clock', () => {
    assert.equal(checkedEvent(sampleEvent(5)).timeMs, Date.UTC(2026, 10, 25, 12, 0, 5));
    assert.equal(checkedEvent({ ...sampleEvent(0), time: '0000-01-01T00:00:00.000Z' }).timeMs, -62_167_219_200_000);
    const { time, ...rest } = sampleEvent(0);
    assert.equal(checkedEvent(rest, () => new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6))).timeMs, Date.UTC(2026, 0, 2, 3, 4, 5, 6));
  });
  it('writes the time of a Date as toISOString writes it, and takes ISO text that names a real instant (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 }), (ms) => {
        const iso = new Date(ms).toISOString();
        const fromDate = checkedEvent({ ...sampleEvent(0), time: new Date(ms) });
        const fromText = checkedEvent({ ...sampleEvent(0), time: iso });
        assert.equal(fromDate.event.time, iso);
        assert.equal(fromDate.timeMs, ms);
        assert.equal(fromText.body, fromDate.body);
        assert.equal(fromText.timeMs, ms);
      }),
      { numRuns: 2_000 },
    );
  });
  it('takes ISO text exactly when it prints back from the instant it names (property)', () => {
    const d = (n: number) => fc.integer({ min: 0, max: 10 ** n - 1 }).map((v) => String(v).padStart(n, '0'));
    const text = fc.tuple(d(4), d(2), d(2), d(2), d(2), d(2), d(3)).map(([y, mo, da, h, mi, s, ms]) => `${y}-${mo}-${da}T${h}:${mi}:${s}.${ms}Z`);
    fc.assert(
      fc.property(text, (t) => {
        const real = !Number.isNaN(new Date(t).getTime()) && new Date(t).toISOString() === t;
        if (real) assert.equal(checkedEvent({ ...sampleEvent(0), time: t }).event.time, t);
        else assert.throws(() => checkedEvent({ ...sampleEvent(0), time: t }), { code: 'AUDIT_EVENT_INVALID' });
      }),
      { numRuns: 3_000 },
    );
  });
  it('refuses details that are not JSON (a NaN) with AUDIT_EVENT_INVALID', () => {
    assert.throws(() => checkedEvent({ ...sampleEvent(0), details: { n: Number.NaN } }), { code: 'AUDIT_EVENT_INVALID' });
  });
  it('refuses an event over 64 KiB with AUDIT_EVENT_INVALID, counting UTF-8 bytes', () => {
    assert.throws(() => checkedEvent({ ...sampleEvent(0), details: { blob: '€'.repeat(22_000) } }), { code: 'AUDIT_EVENT_INVALID' });
    assert.doesNotThrow(() => checkedEvent({ ...sampleEvent(0), details: { blob: 'x'.repeat(60_000) } }));
  });
});

describe('the record envelope', () => {
  it('is the canonical JSON of {event, prev, seq, v}', () => {
    const body = canonicalEvent(normalizeEvent(sampleEvent(2)));
    const bytes = recordBytes(2, GENESIS_PREV, body);
    assert.equal(bytes, canonicalize({ v: 1, seq: 2, prev: GENESIS_PREV, event: JSON.parse(body) }));
    assert.equal(parseRecord(bytes).seq, 2);
  });
  it('round-trips any valid event (property)', () => {
    fc.assert(
      fc.property(fc.nat(10_000), fc.dictionary(fc.string({ minLength: 1 }), fc.jsonValue()), (seq, details) => {
        const body = canonicalEvent(normalizeEvent({ ...sampleEvent(seq), details: details as { [key: string]: JsonValue } }));
        const parsed = parseRecord(recordBytes(seq, GENESIS_PREV, body));
        assert.equal(parsed.body, body);
        assert.equal(parsed.seq, seq);
      }),
      { numRuns: 200 },
    );
  });
  describe('when a record is malformed', () => {
    const good = recordBytes(0, GENESIS_PREV, canonicalEvent(normalizeEvent(sampleEvent(0))));
    for (const [name, text] of [
      ['not JSON', good.slice(0, -1)],
      ['not canonical (extra space)', good.replace('"seq":0', '"seq": 0')],
      ['an unknown version', good.replace('"v":1', '"v":2')],
      ['a negative seq', good.replace('"seq":0', '"seq":-1')],
      ['a short prev hash', good.replace(`"prev":"${GENESIS_PREV}"`, '"prev":"00"')],
      ['an extra member', good.replace('"v":1}', '"v":1,"x":1}')],
      ['a JSON array', '[1,2]'],
    ] as [string, string][]) {
      it(`refuses ${name} with AUDIT_RECORD_MALFORMED`, () => assert.throws(() => parseRecord(text), { code: 'AUDIT_RECORD_MALFORMED' }));
    }
  });
});
