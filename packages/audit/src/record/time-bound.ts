// The time bounds a reader selects records by (`corral audit export
// --since/--until`, the console's audit explorer), read one strict way so the
// CLI and the console select the same records: Date.parse alone takes `12`
// for the year 2001 and rolls 2026-02-30 over into March.

/** ISO 8601: a calendar date, or a date and time with seconds optional, fractions of a second optional, and `Z` or an offset required. */
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-](\d{2}):(\d{2})))?$/;

/** What a time bound must look like, for the error that names it. */
export const TIME_BOUND_FORMAT = 'a date (YYYY-MM-DD) or an ISO 8601 time with Z or an offset (2026-01-31T09:30:00Z)';

/**
 * The instant (ms since the epoch) `text` names as the `since` or `until`
 * bound, or NaN when it is not a date or time whose every field is in range
 * (no 2026-02-30, no 24:00; a second of 60 only as a leap second, at
 * 23:59:60 UTC). A date alone is the whole day (UTC): from its
 * first millisecond as `since`, through its last as `until`, so the same
 * date as both selects that day.
 */
export function parseTimeBound(text: string, end: 'since' | 'until'): number {
  const m = ISO_TIME.exec(text);
  if (!m) return Number.NaN;
  const [year, month, day, hour = 0, minute = 0, second = 0] = m.slice(1, 7).map((f) => (f === undefined ? undefined : Number(f))) as number[];
  const ms = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3));
  const offsetHours = m[9] === undefined ? 0 : Number(m[9]);
  const offsetMinutes = m[10] === undefined ? 0 : Number(m[10]);
  if (hour! > 23 || minute! > 59 || second! > 60 || offsetHours > 23 || offsetMinutes > 59) return Number.NaN;
  const date = new Date(Date.UTC(year!, month! - 1, day!));
  date.setUTCFullYear(year!); // Date.UTC reads years 0–99 as 1900–1999
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month! - 1 || date.getUTCDate() !== day) return Number.NaN;
  if (m[4] === undefined && end === 'until') return date.getTime() + 86_400_000 - 1;
  const sign = m[8]?.startsWith('-') ? -1 : 1;
  const at = (s: number, fraction: number) => date.getTime() + ((hour! * 60 + minute!) * 60 + s) * 1000 + fraction - sign * (offsetHours * 60 + offsetMinutes) * 60_000;
  if (second !== 60) return at(second!, ms);
  // A leap second (RFC 3339 writes it 23:59:60 UTC): record times count no
  // leap seconds, so all of it is the instant midnight follows.
  const before = at(59, 0);
  return new Date(before).toISOString().endsWith('T23:59:59.000Z') ? before + 1000 : Number.NaN;
}
