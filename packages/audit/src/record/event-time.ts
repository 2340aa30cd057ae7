// The event time a stored record's body holds, compared with the time a store
// keeps beside it (its `time_ms` column, which reads by time select records
// by: `corral audit export --since/--until`, the console's audit explorer).
// Verification compares the two for every record, so the comparison reads
// the time where a canonical body (RFC 8785, members sorted) puts it, last
// or before `trace`, digit by digit, without parsing the body or writing the
// index as text (isoTime, for a record of a new second, cost 500 ns, a third
// of hashing the record); a body that does not end so is parsed.

/** `,"time":"`: the member before it (action, actor, …) ends with the comma. */
const TIME_KEY = ',"time":"';
/** Between the time and the trace id of an event that has one. */
const TRACE_KEY = '","trace":"';
/** `YYYY-MM-DDTHH:mm:ss.sssZ` */
const TIME_LENGTH = 24;
/** A W3C trace id: 32 lowercase hex (append() checks it). */
const TRACE_LENGTH = 32;

const QUOTE = 0x22;
const CLOSE = 0x7d;

/**
 * Where the time text starts in `body` when the body ends the way a canonical
 * event does — `,"time":"T"}` or `,"time":"T","trace":"X"}` with T of 24
 * characters and X of 32 holding no quote — else -1. Then T, once isoMsAt()
 * finds it holds only digits and separators, is the value of the last
 * top-level `time` member: the comma before its key and the quote and brace
 * after its value leave no way for these characters to lie inside a string.
 */
function timeOffset(body: string): number {
  const end = body.length - 2;
  if (body.charCodeAt(end + 1) !== CLOSE || body.charCodeAt(end) !== QUOTE) return -1;
  const last = end - TIME_LENGTH;
  if (body.startsWith(TIME_KEY, last - TIME_KEY.length)) return last;
  const trace = end - TRACE_LENGTH;
  const beforeTrace = trace - TRACE_KEY.length - TIME_LENGTH;
  if (!body.startsWith(TRACE_KEY, trace - TRACE_KEY.length) || !body.startsWith(TIME_KEY, beforeTrace - TIME_KEY.length)) return -1;
  // No quote inside the trace id: the one after it closes the string the one before it opens.
  return body.indexOf('"', trace) === end ? beforeTrace : -1;
}

/** Days in each month of a common year. */
const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The last date read (YYYYMMDD as a number) and its days since the epoch: records come many to a day. */
let lastDate = -1;
let lastDays = 0;

/**
 * Days since the epoch of a proleptic Gregorian date (H. Hinnant,
 * "chrono-Compatible Low-Level Date Algorithms", days_from_civil: 400-year
 * eras from 0000-03-01, as iso-time.ts counts them back), or NaN for a day
 * the month does not have.
 */
function daysOf(year: number, month: number, day: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (month < 1 || month > 12 || day < 1 || day > (MONTH_DAYS[month - 1] as number) + (month === 2 && leap ? 1 : 0)) return Number.NaN;
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/**
 * Ms since the epoch of the 24 characters of `s` at `at` when they are
 * `YYYY-MM-DDTHH:mm:ss.sssZ` naming a real instant (what Date.parse gives
 * for them), else NaN: a day the month does not have, hour 24 or second 60
 * are left to Date.parse (eventTimeMs). Integers only on the way (a digit
 * checked as an unsigned difference from '0'): this runs for every record
 * verified.
 */
function isoMsAt(s: string, at: number): number {
  if (s.charCodeAt(at + 4) !== 0x2d || s.charCodeAt(at + 7) !== 0x2d || s.charCodeAt(at + 10) !== 0x54 || s.charCodeAt(at + 13) !== 0x3a) return Number.NaN;
  if (s.charCodeAt(at + 16) !== 0x3a || s.charCodeAt(at + 19) !== 0x2e || s.charCodeAt(at + 23) !== 0x5a) return Number.NaN;
  const y0 = s.charCodeAt(at) - 0x30;
  const y1 = s.charCodeAt(at + 1) - 0x30;
  const y2 = s.charCodeAt(at + 2) - 0x30;
  const y3 = s.charCodeAt(at + 3) - 0x30;
  const mo0 = s.charCodeAt(at + 5) - 0x30;
  const mo1 = s.charCodeAt(at + 6) - 0x30;
  const d0 = s.charCodeAt(at + 8) - 0x30;
  const d1 = s.charCodeAt(at + 9) - 0x30;
  const h0 = s.charCodeAt(at + 11) - 0x30;
  const h1 = s.charCodeAt(at + 12) - 0x30;
  const mi0 = s.charCodeAt(at + 14) - 0x30;
  const mi1 = s.charCodeAt(at + 15) - 0x30;
  const s0 = s.charCodeAt(at + 17) - 0x30;
  const s1 = s.charCodeAt(at + 18) - 0x30;
  const ms0 = s.charCodeAt(at + 20) - 0x30;
  const ms1 = s.charCodeAt(at + 21) - 0x30;
  const ms2 = s.charCodeAt(at + 22) - 0x30;
  // A character below '0' makes its difference negative, which >>> 0 turns into a large number.
  if ((y0 >>> 0) > 9 || (y1 >>> 0) > 9 || (y2 >>> 0) > 9 || (y3 >>> 0) > 9 || (mo0 >>> 0) > 9 || (mo1 >>> 0) > 9 || (d0 >>> 0) > 9 || (d1 >>> 0) > 9) return Number.NaN;
  if ((h0 >>> 0) > 9 || (h1 >>> 0) > 9 || (mi0 >>> 0) > 9 || (mi1 >>> 0) > 9 || (s0 >>> 0) > 9 || (s1 >>> 0) > 9 || (ms0 >>> 0) > 9 || (ms1 >>> 0) > 9 || (ms2 >>> 0) > 9) return Number.NaN;
  const hour = h0 * 10 + h1;
  const minute = mi0 * 10 + mi1;
  const second = s0 * 10 + s1;
  if (hour > 23 || minute > 59 || second > 59) return Number.NaN;
  const date = (y0 * 1000 + y1 * 100 + y2 * 10 + y3) * 10_000 + (mo0 * 10 + mo1) * 100 + d0 * 10 + d1;
  if (date !== lastDate) {
    const days = daysOf(Math.floor(date / 10_000), Math.floor(date / 100) % 100, date % 100);
    if (Number.isNaN(days)) return Number.NaN;
    lastDate = date;
    lastDays = days;
  }
  return lastDays * 86_400_000 + ((hour * 60 + minute) * 60 + second) * 1000 + ms0 * 100 + ms1 * 10 + ms2;
}

/**
 * The event time `body` holds (its top-level `time` member, read by
 * Date.parse as the OCSF export filters by it), in ms since the epoch; NaN
 * when the body is not JSON or has no such member of text.
 */
export function eventTimeMs(body: string): number {
  let event: unknown;
  try {
    event = JSON.parse(body);
  } catch {
    return Number.NaN;
  }
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return Number.NaN;
  const time = (event as { time?: unknown }).time;
  return typeof time === 'string' ? Date.parse(time) : Number.NaN;
}

/**
 * True when `timeMs` (ms since the epoch, as a store keeps it beside the
 * record) is the instant of the event time in `body`. The common case, a
 * canonical body, is read in place; anything else, and a time that differs,
 * parses the body (eventTimeMs).
 */
export function bodyHasTime(body: string, timeMs: number): boolean {
  const at = timeOffset(body);
  if (at >= 0 && isoMsAt(body, at) === timeMs) return true;
  return eventTimeMs(body) === timeMs;
}
