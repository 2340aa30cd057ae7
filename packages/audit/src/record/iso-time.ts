// An event's time as the record writes it: ISO 8601 UTC with milliseconds,
// the text Date.prototype.toISOString gives for the years 0000–9999,
// put together without it. toISOString formats through the C library's
// printf; every append stamps a time, and this costs less than half as much.

/** 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z, ms since the epoch. */
export const FIRST_MS = -62_167_219_200_000;
export const LAST_MS = 253_402_300_799_999;

const DAY_MS = 86_400_000;
const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => (i < 10 ? `0${i}` : `${i}`));

/**
 * `YYYY-MM-DDTHH:mm:ss.sssZ` of `ms` (ms since the epoch, as Date.getTime()
 * gives it: an integer, or NaN), exactly as `new Date(ms).toISOString()`
 * writes it; undefined when `ms` is not an integer from FIRST_MS to LAST_MS
 * (toISOString writes other years as +010000-… or throws).
 */
export function isoTime(ms: number): string | undefined {
  if (!Number.isInteger(ms) || ms < FIRST_MS || ms > LAST_MS) return undefined;
  const days = Math.floor(ms / DAY_MS);
  let rest = ms - days * DAY_MS;
  // The proleptic Gregorian date of a day count (H. Hinnant, "chrono-Compatible
  // Low-Level Date Algorithms", civil_from_days): 400-year eras from 0000-03-01.
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const m5 = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * m5 + 2) / 5) + 1;
  const month = m5 < 10 ? m5 + 3 : m5 - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const milli = rest % 1000;
  rest = (rest - milli) / 1000;
  const second = rest % 60;
  rest = (rest - second) / 60;
  const minute = rest % 60;
  const hour = (rest - minute) / 60;
  const t = TWO_DIGITS;
  return `${t[Math.floor(year / 100)]}${t[year % 100]}-${t[month]}-${t[day]}T${t[hour]}:${t[minute]}:${t[second]}.${t[Math.floor(milli / 10)]}${milli % 10}Z`;
}
