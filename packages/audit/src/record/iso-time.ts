// An event's time as the record writes it: ISO 8601 UTC with milliseconds,
// the text Date.prototype.toISOString gives for the years 0000–9999,
// put together without it. toISOString formats through the C library's
// printf; every append stamps a time, and this costs less than half as much.
// Appends come many to a second: the text up to the second (and its date)
// is kept from the last call, so most calls join two strings. Put together
// from its fifteen parts each time, the text left some 440 bytes of
// intermediate strings per append for the garbage collector (of 2,600 bytes
// for checking an event in all).

/** 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z, ms since the epoch. */
export const FIRST_MS = -62_167_219_200_000;
export const LAST_MS = 253_402_300_799_999;

const DAY_MS = 86_400_000;
const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => (i < 10 ? `0${i}` : `${i}`));
/** `.sssZ`'s digits and Z for each millisecond. */
const MILLIS = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(3, '0')}Z`);

/** The last second put together (ms since the epoch, a whole second) and its text up to the `.`. */
let lastSecond = Number.NaN;
let lastSecondText = '';

/**
 * `YYYY-MM-DDTHH:mm:ss.sssZ` of `ms` (ms since the epoch, as Date.getTime()
 * gives it: an integer, or NaN), exactly as `new Date(ms).toISOString()`
 * writes it; undefined when `ms` is not an integer from FIRST_MS to LAST_MS
 * (toISOString writes other years as +010000-… or throws).
 */
export function isoTime(ms: number): string | undefined {
  if (!Number.isInteger(ms) || ms < FIRST_MS || ms > LAST_MS) return undefined;
  // The millisecond of the second, 0–999 before 1970 too (ms % 1000 is negative there).
  const milli = ms - Math.floor(ms / 1000) * 1000;
  const second = ms - milli;
  if (second !== lastSecond) {
    lastSecondText = secondText(second);
    lastSecond = second;
  }
  return lastSecondText + MILLIS[milli];
}

/** The last day put together (days since the epoch) and its text, `YYYY-MM-DDT`. */
let lastDay = Number.NaN;
let lastDayText = '';

/** `YYYY-MM-DDTHH:mm:ss.` of `second` (ms since the epoch, a whole second in range). */
function secondText(second: number): string {
  const days = Math.floor(second / DAY_MS);
  if (days !== lastDay) {
    lastDayText = dayText(days);
    lastDay = days;
  }
  let rest = (second - days * DAY_MS) / 1000;
  const s = rest % 60;
  rest = (rest - s) / 60;
  const minute = rest % 60;
  const hour = (rest - minute) / 60;
  const t = TWO_DIGITS;
  return `${lastDayText}${t[hour]}:${t[minute]}:${t[s]}.`;
}

/** `YYYY-MM-DDT` of a day count since the epoch. */
function dayText(days: number): string {
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
  const t = TWO_DIGITS;
  return `${t[Math.floor(year / 100)]}${t[year % 100]}-${t[month]}-${t[day]}T`;
}
