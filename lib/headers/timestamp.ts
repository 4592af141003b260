import { parseHttpDate } from './httpDate.js';
import { normalize, utcMs } from './internal.js';

// Groups: year, month, day, hour, minute, second, fraction, zone, offset sign/hours/minutes.
// The time part is optional (a bare date means midnight UTC, as in ECMAScript), seconds are
// optional (ISO 8601 allows `hh:mm`), and the fraction may be of any length (.NET's round-trip
// "o" format writes seven digits).
const ISO_LIKE =
  /^(\d{4})-(\d{2})-(\d{2})(?:(?:t|\s+)(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(?:(z|utc|gmt)|([+-])(\d{2})(?::?(\d{2}))?)?$/i;

/** A nonzero digit past the millisecond. */
const SUB_MS = /[1-9]/;

function parseIsoLike(text: string): number | undefined {
  const match = ISO_LIKE.exec(text);
  if (!match) return undefined;
  const [
    ,
    year = '',
    month = '',
    day = '',
    hour = '0',
    minute = '0',
    second = '0',
    fraction = '',
    ,
    sign,
    offsetHours = '0',
    offsetMinutes = '0',
  ] = match;
  // A time to wait for (a reset, a Retry-After) is never read before the instant the server
  // wrote: sub-millisecond digits round up to the next millisecond (TEOS writes seven digits;
  // truncated, its reset read up to a millisecond early).
  const ms = Number(fraction.slice(0, 3).padEnd(3, '0'));
  const sub = fraction.length > 3 && SUB_MS.test(fraction.slice(3)) ? 1 : 0;
  const whole = utcMs(Number(year), Number(month), Number(day), Number(hour), Number(minute), Number(second), ms);
  if (whole === undefined) return undefined;
  const local = whole + sub;
  if (sign === undefined) return local;
  const oh = Number(offsetHours);
  const om = Number(offsetMinutes);
  if (oh > 23 || om > 59) return undefined;
  const offsetMs = (oh * 60 + om) * 60_000;
  // `local` is the wall-clock time at that offset; UTC is wall clock minus the offset.
  return sign === '-' ? local + offsetMs : local - offsetMs;
}

/**
 * Parses an absolute date-time string into epoch milliseconds.
 *
 * Understands:
 * - ISO 8601 / RFC 3339: `2026-01-01T00:00:00Z`, `2026-01-01T00:00:00.0000000Z` (fractions of
 *   any length; .NET "o" format), `2026-01-01T02:00:00+02:00`, `2026-01-01T05:30:00+0530`,
 *   lower-case `t`/`z`, `hh:mm` without seconds, and a bare date `2026-01-01`.
 * - Space-separated variants: `2026-01-01 00:00:00Z`, `2026-01-01 00:00:00 UTC`,
 *   `2026-01-01 00:00:00 GMT`, `2026-01-01 00:00:00 +02:00`.
 * - HTTP-dates in any of the three RFC 9110 forms (delegates to {@link parseHttpDate}).
 *
 * Behaviour notes:
 * - A date-time without a zone designator is taken as UTC, never as the local time zone.
 * - Years 0000–9999. Every field is range-checked (`2026-02-29` and `2026-02-30` give
 *   `undefined`, `2024-02-29` is fine); a leap second `:60` is clamped to `:59`. Sub-millisecond
 *   digits round up to the next millisecond: an instant to wait for is never read early.
 * - Plain numbers (Unix times) are *not* date-times here; use {@link parseReset} for those.
 * - Never throws; returns `undefined` for anything else.
 *
 * @param value the header value, as read (may be `null`/`undefined`).
 * @param now reference clock for RFC 850 two-digit years only; defaults to `Date.now()`.
 * @returns epoch milliseconds, or `undefined`.
 *
 * @example
 * ```ts
 * import { parseTimestamp } from 'rx-ratelimit';
 *
 * parseTimestamp('2026-01-01T00:00:00.0000000Z'); // 1767225600000
 * parseTimestamp('2026-01-01 00:00:00 UTC');      // 1767225600000
 * parseTimestamp('2026-01-01T02:00:00+02:00');    // 1767225600000
 * parseTimestamp('1466182244');                   // undefined (not a date-time)
 * ```
 */
export function parseTimestamp(value: string | null | undefined, now: number = Date.now()): number | undefined {
  const text = normalize(value);
  if (text === undefined) return undefined;
  return parseIsoLike(text) ?? parseHttpDate(text, now);
}
