// The frames between a log's appender (the process that commits for the
// others) and the processes that hand it their appends (append-share.ts):
// [u32 length of what follows][u8 type][payload], lengths big-endian. A
// request's bodies travel as their UTF-8 bytes after a small binary header,
// not as JSON strings, so neither side escapes or parses them: at 100,000
// appends a second that is most of the appender's time.
import { AuditError, type AuditErrorCode } from '../errors.ts';
import { MAX_TRANSACTION, type AppendRequest, type AppendResult, type Seal } from './batch.ts';

export const FRAME = { hello: 1, welcome: 2, request: 3, replies: 4, closing: 5, bye: 6 } as const;
export type FrameType = (typeof FRAME)[keyof typeof FRAME];

/** Largest frame either side sends; a request that would be larger is committed by its own process. */
export const MAX_FRAME = 64 * 1024 * 1024;

/** A request's answer: its result, or the coded error the appender met. */
export type Answer = { result: AppendResult } | { error: { code: AuditErrorCode; message: string } };

/** An answer as it travels back, with the id its request was sent under. */
export type ShareReply = Answer & { id: number };

const SEALS: readonly Seal[] = ['due', 'timer', 'now'];

/** A frame of `type` holding `payload`. */
export function frame(type: FrameType, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32BE(payload.length + 1, 0);
  head.writeUInt8(type, 4);
  return Buffer.concat([head, payload]);
}

/** A JSON frame (hello, welcome, replies). */
export function jsonFrame(type: FrameType, value: unknown): Buffer {
  return frame(type, Buffer.from(JSON.stringify(value)));
}

/** The request frame for `request`, or null when it or its answer could pass MAX_FRAME (more than MAX_TRANSACTION records). */
export function requestFrame(id: number, request: AppendRequest): Buffer | null {
  const { bodies, timesMs } = request;
  const n = bodies.length;
  // Its answer carries a hash per record: past one transaction's worth, that could pass MAX_FRAME however small the records.
  if (n > MAX_TRANSACTION) return null;
  const headBytes = 4 + 1 + 4 + 1 + 4 + n * 12;
  let size = headBytes;
  const lengths = new Array<number>(n);
  for (let i = 0; i < n; i++) size += lengths[i] = Buffer.byteLength(bodies[i]!);
  if (size > MAX_FRAME) return null;
  const out = Buffer.allocUnsafe(size);
  let at = out.writeUInt32BE(size - 4, 0);
  at = out.writeUInt8(FRAME.request, at);
  at = out.writeUInt32BE(id, at);
  at = out.writeUInt8(SEALS.indexOf(request.seal), at);
  at = out.writeUInt32BE(n, at);
  for (let i = 0; i < n; i++) at = out.writeDoubleBE(timesMs[i]!, at);
  for (let i = 0; i < n; i++) at = out.writeUInt32BE(lengths[i]!, at);
  for (let i = 0; i < n; i++) at += out.write(bodies[i]!, at, 'utf8');
  return out;
}

/**
 * The id and request a request frame's payload holds.
 * @throws AuditError AUDIT_STORE_UNAVAILABLE when it is not one (a record's time not a whole number of ms included).
 */
export function readRequest(payload: Buffer): { id: number; request: AppendRequest } {
  const bad = () => new AuditError('AUDIT_STORE_UNAVAILABLE', 'an append handed over by another process is malformed');
  if (payload.length < 9) throw bad();
  const id = payload.readUInt32BE(0);
  const seal = SEALS[payload.readUInt8(4)];
  const n = payload.readUInt32BE(5);
  if (!seal || 9 + n * 12 > payload.length) throw bad();
  const timesMs = new Array<number>(n);
  const bodies = new Array<string>(n);
  let at = 9;
  for (let i = 0; i < n; i++, at += 8) {
    // NaN would fail the transaction this request shares with other processes' (time_ms is NOT NULL).
    const time = payload.readDoubleBE(at);
    if (!Number.isSafeInteger(time)) throw bad();
    timesMs[i] = time;
  }
  let body = at + n * 4;
  for (let i = 0; i < n; i++, at += 4) {
    const end = body + payload.readUInt32BE(at);
    if (end > payload.length) throw bad();
    bodies[i] = payload.toString('utf8', body, end);
    body = end;
  }
  if (body !== payload.length) throw bad();
  return { id, request: { bodies, timesMs, seal } };
}

/** Splits a byte stream into frames as they complete. */
export class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;

  /**
   * Takes the next bytes; calls `onFrame` for each frame they complete.
   * @throws AuditError AUDIT_STORE_UNAVAILABLE for a frame longer than MAX_FRAME or empty.
   */
  push(chunk: Buffer, onFrame: (type: number, payload: Buffer) => void): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    while (this.#buffered >= 4) {
      if (this.#chunks[0]!.length < 4) this.#chunks = [Buffer.concat(this.#chunks, this.#buffered)];
      const length = this.#chunks[0]!.readUInt32BE(0);
      if (length < 1 || length > MAX_FRAME) throw new AuditError('AUDIT_STORE_UNAVAILABLE', `a frame of ${length} bytes from another appending process is out of bounds`);
      // Joined only once whole: a large frame arrives in many chunks.
      if (this.#buffered < 4 + length) return;
      let data = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#buffered);
      const type = data.readUInt8(4);
      const payload = data.subarray(5, 4 + length);
      data = data.subarray(4 + length);
      this.#chunks = data.length > 0 ? [data] : [];
      this.#buffered = data.length;
      onFrame(type, payload);
    }
  }
}
