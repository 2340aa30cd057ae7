// The record: an event wrapped with its position and its predecessor's hash.
// Its bytes are the RFC 8785 canonical JSON of
//   { "event": <event>, "prev": "<hex>", "seq": <n>, "v": 1 }
// which, members being sorted, is the concatenation built below.
import { AuditError, shownValue } from '../errors.ts';
import { canonicalize } from './canonical.ts';
import { RECORD_VERSION, type AuditEvent } from './event.ts';

/** The predecessor hash of the first record (seq 0): 32 zero bytes. */
export const GENESIS_PREV = '0'.repeat(64);

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * The record's canonical bytes (as a string; hash its UTF-8) from its parts.
 * `body` must be the canonical JSON of the event: the result is then the
 * canonical JSON of the whole envelope.
 */
export function recordBytes(seq: number, prev: string, body: string): string {
  return `{"event":${body},"prev":"${prev}","seq":${seq},"v":${RECORD_VERSION}}`;
}

/** A record read back: its parts and its canonical event body. */
export interface ParsedRecord {
  seq: number;
  prev: string;
  event: AuditEvent;
  /** Canonical JSON of `event`. */
  body: string;
}

/**
 * Reads one record from its canonical JSON text (an export line, a stored row).
 * Guards: valid JSON; exactly the members event, prev, seq, v; v is 1; seq a
 * non-negative safe integer; prev 64 lowercase hex; event an object; and the
 * text is canonical (re-serialising gives the same bytes).
 *
 * @throws AuditError AUDIT_RECORD_MALFORMED naming the broken rule.
 */
export function parseRecord(text: string): ParsedRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new AuditError('AUDIT_RECORD_MALFORMED', 'record is not valid JSON', { cause: error });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw malformed('record is not a JSON object');
  const r = raw as Record<string, unknown>;
  const keys = Object.keys(r).sort().join(',');
  if (keys !== 'event,prev,seq,v') throw malformed(`record has members [${keys}], expected [event,prev,seq,v]`);
  if (r.v !== RECORD_VERSION) throw malformed(`record version ${shownValue(r.v)} is not supported (expected ${RECORD_VERSION})`);
  if (typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq) || r.seq < 0) throw malformed('record seq is not a non-negative integer');
  if (typeof r.prev !== 'string' || !HEX64.test(r.prev)) throw malformed('record prev is not 64 lowercase hex');
  if (typeof r.event !== 'object' || r.event === null || Array.isArray(r.event)) throw malformed('record event is not an object');
  let body: string;
  try {
    body = canonicalize(r.event);
  } catch (error) {
    throw new AuditError('AUDIT_RECORD_MALFORMED', 'record event is not canonicalisable', { cause: error });
  }
  if (recordBytes(r.seq, r.prev, body) !== text) throw malformed('record is not in canonical form (RFC 8785)');
  return { seq: r.seq, prev: r.prev, event: r.event as AuditEvent, body };
}

function malformed(message: string): AuditError {
  return new AuditError('AUDIT_RECORD_MALFORMED', message);
}
