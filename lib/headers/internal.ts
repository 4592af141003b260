/**
 * Helpers shared by the header parsers. Not part of the public API (not re-exported from
 * `index.ts`), so names and signatures here may change freely.
 *
 * @internal
 */

/**
 * Longest header value the parsers look at. Real rate-limit values are a few dozen characters;
 * anything longer is junk or hostile, and refusing it bounds the regex and number work.
 */
export const MAX_HEADER_LENGTH = 1000;

/** Largest epoch value a JavaScript `Date` can hold (±100,000,000 days, ECMA-262 §21.4.1.1). */
export const MAX_DATE_MS = 8.64e15;

const MS_PER_DAY = 86_400_000;

/**
 * Returns the trimmed value, or `undefined` when it is not a string, is longer than
 * {@link MAX_HEADER_LENGTH}, or is blank.
 */
export function normalize(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > MAX_HEADER_LENGTH) return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

const UNSIGNED_DECIMAL = /^\d+(?:\.\d+)?$/;
const SIGNED_DECIMAL = /^[+-]?\d+(?:\.\d+)?$/;

/**
 * Parses a plain decimal number (`12`, `1.5`), rejecting exponents, hex, `Infinity` and partial
 * numbers, all of which `Number()`/`parseFloat()` would accept or half-accept.
 */
export function parseUnsignedDecimal(text: string): number | undefined {
  if (!UNSIGNED_DECIMAL.test(text)) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** Like {@link parseUnsignedDecimal} but also accepts a leading `+` or `-`. */
export function parseSignedDecimal(text: string): number | undefined {
  if (!SIGNED_DECIMAL.test(text)) return undefined;
  const n = Number(text);
  // Overflowing digit strings ("9" × 400) become ±Infinity; callers clamp or reject them.
  return Number.isNaN(n) ? undefined : n;
}

/** Turns `-0` into `0` so that results compare equal with `Object.is` (and Jest's `toEqual`). */
export function positiveZero(n: number): number {
  return n === 0 ? 0 : n;
}

/** Months of the Gregorian calendar, lower-case three-letter abbreviations (HTTP-date spelling). */
export const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] as const;

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * Epoch milliseconds of a UTC calendar date-time, or `undefined` when any field is out of range
 * (Feb 30, hour 24, minute 60…). `Date.UTC` alone silently rolls such values over into the next
 * unit, which would turn a malformed header into a plausible-looking but wrong instant.
 *
 * A leap second (`:60`) is accepted and clamped to `:59`, because `Date` has no leap seconds.
 *
 * @param month 1–12
 */
export function utcMs(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  ms = 0,
): number | undefined {
  if (year < 0 || year > 9999 || month < 1 || month > 12) return undefined;
  if (day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 60 || ms > 999) return undefined;
  const s = Math.min(second, 59);
  // Date.UTC maps years 0–99 onto 1900–1999; shifting by one 400-year Gregorian cycle (always
  // exactly 146,097 days) and back keeps the year literal.
  const t =
    year < 100
      ? Date.UTC(year + 400, month - 1, day, hour, minute, s, ms) - 146_097 * MS_PER_DAY
      : Date.UTC(year, month - 1, day, hour, minute, s, ms);
  return Number.isFinite(t) ? t : undefined;
}
