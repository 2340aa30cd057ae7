import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AuditError } from '../errors.ts';
import { FRAME, FrameReader, MAX_FRAME, readRequest, requestFrame } from './append-share-frames.ts';
import { MAX_TRANSACTION, type AppendRequest } from './batch.ts';

const request = fc.record({
  bodies: fc.array(fc.string({ unit: 'grapheme', maxLength: 300 }), { maxLength: 20 }),
  seal: fc.constantFrom<AppendRequest['seal']>('due', 'timer', 'now'),
});
const withTimes = (r: { bodies: string[]; seal: AppendRequest['seal'] }, times: number[]): AppendRequest => ({ ...r, timesMs: r.bodies.map((_, i) => times[i % times.length] ?? 0) });

/** The frames `bytes` holds, fed to a reader in the chunks `cuts` marks. */
function framesOf(bytes: Buffer, cuts: number[]): { type: number; payload: Buffer }[] {
  const reader = new FrameReader();
  const out: { type: number; payload: Buffer }[] = [];
  let at = 0;
  for (const cut of [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b).concat(bytes.length)) {
    reader.push(bytes.subarray(at, cut), (type, payload) => out.push({ type, payload: Buffer.from(payload) }));
    at = cut;
  }
  return out;
}

describe('the frames between appending processes', () => {
  it('carry any requests, split anywhere in transit, back as they were sent', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: 2 ** 32 - 1 }), request), { minLength: 1, maxLength: 5 }), fc.array(fc.maxSafeInteger(), { minLength: 1 }), fc.array(fc.nat()), (sent, times, cuts) => {
        const requests = sent.map(([id, r]) => ({ id, request: withTimes(r, times) }));
        const frames = framesOf(Buffer.concat(requests.map((r) => requestFrame(r.id, r.request) as Buffer)), cuts);
        assert.deepEqual(
          frames.map((f) => f.type),
          requests.map(() => FRAME.request),
        );
        assert.deepEqual(
          frames.map((f) => readRequest(f.payload)),
          requests,
        );
      }),
    );
  });

  it('refuse a request payload cut short or with bytes left over, as AUDIT_STORE_UNAVAILABLE', () => {
    fc.assert(
      fc.property(request, fc.nat(), fc.boolean(), (r, cut, longer) => {
        const payload = (requestFrame(7, withTimes(r, [1])) as Buffer).subarray(5);
        const bad = longer ? Buffer.concat([payload, Buffer.from([0])]) : payload.subarray(0, cut % payload.length);
        assert.throws(() => readRequest(bad), (e: unknown) => e instanceof AuditError && e.code === 'AUDIT_STORE_UNAVAILABLE');
      }),
    );
  });

  it('refuse a request whose record time is not a whole number of ms (NaN would fail the shared commit for every process in it), as AUDIT_STORE_UNAVAILABLE', () => {
    for (const time of [Number.NaN, Number.POSITIVE_INFINITY, 1.5, 2 ** 53]) {
      const payload = (requestFrame(7, { bodies: ['{}', '{}'], timesMs: [0, time], seal: 'due' }) as Buffer).subarray(5);
      assert.throws(() => readRequest(payload), (e: unknown) => e instanceof AuditError && e.code === 'AUDIT_STORE_UNAVAILABLE', String(time));
    }
  });

  it('refuse a frame announced longer than MAX_FRAME or empty before reading it', () => {
    for (const length of [0, MAX_FRAME + 1, 2 ** 32 - 1]) {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(length);
      assert.throws(
        () => new FrameReader().push(head, () => assert.fail('no frame')),
        (e: unknown) => e instanceof AuditError && e.code === 'AUDIT_STORE_UNAVAILABLE',
      );
    }
  });

  it('leave a request of more records than one transaction takes to its own process (no frame): its answer, a hash per record, could pass MAX_FRAME', () => {
    const bodies = Array.from({ length: MAX_TRANSACTION + 1 }, () => '{}');
    assert.equal(requestFrame(1, { bodies, timesMs: bodies.map(() => 0), seal: 'due' }), null);
    assert.notEqual(requestFrame(1, { bodies: bodies.slice(1), timesMs: bodies.slice(1).map(() => 0), seal: 'due' }), null);
  });

  it('leave a request larger than MAX_FRAME to its own process (no frame)', () => {
    const body = 'x'.repeat(64 * 1024);
    const bodies = Array.from({ length: Math.ceil(MAX_FRAME / body.length) }, () => body);
    assert.equal(requestFrame(1, { bodies, timesMs: bodies.map(() => 0), seal: 'due' }), null);
  });
});
