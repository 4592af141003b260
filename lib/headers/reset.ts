import { MAX_DATE_MS, normalize, parseSignedDecimal, positiveZero } from './internal.js';
import { latestOfList } from './httpDate.js';
import { parseTimestamp } from './timestamp.js';

/**
 * How a rate-limit reset header encodes its value.
 *
 * - `'unix-seconds'` — absolute Unix time in seconds (Procore `X-Rate-Limit-Reset: 1466182244`,
 *   Fieldwire `ratelimit-reset`).
 * - `'unix-ms'` — absolute Unix time in milliseconds.
 * - `'seconds-left'` — seconds until the window resets (Pipedrive `x-ratelimit-reset: 2`,
 *   IETF `RateLimit-Reset`).
 * - `'ms-left'` — milliseconds until the window resets.
 * - `'timestamp'` — an absolute date-time string (TEOS ISO 8601 `X-Rate-Limit-Reset`).
 * - `'auto'` — guess from the value; see {@link parseReset}.
 *
 * @example
 * ```ts
 * import type { ResetUnit } from 'rx-ratelimit';
 *
 * const procoreReset: ResetUnit = 'unix-seconds';
 * ```
 */
export type ResetUnit = 'unix-seconds' | 'unix-ms' | 'seconds-left' | 'ms-left' | 'timestamp' | 'auto';

/**
 * When a rate-limit window resets.
 *
 * - `{ at }` — absolute epoch milliseconds **on the server's clock**. Compare it with the
 *   response's `Date` header rather than the local clock if the two may be skewed.
 * - `{ inMs }` — a relative duration in milliseconds (always ≥ 0), counted from when the response
 *   was produced.
 *
 * @example
 * ```ts
 * import { parseReset, type ResetValue } from 'rx-ratelimit';
 *
 * const reset: ResetValue | undefined = parseReset('2', 'seconds-left');
 * const waitMs = reset === undefined ? 0 : 'inMs' in reset ? reset.inMs : reset.at - Date.now();
 * ```
 */
export type ResetValue = { readonly at: number } | { readonly inMs: number };

// Magnitude thresholds for 'auto'. 1e9 seconds and 1e12 milliseconds are both September 2001, so
// no reset time sent today is below them; and no window lasts 31+ years, so a "seconds left"
// value never reaches 1e9.
const UNIX_MS_THRESHOLD = 1e12;
const UNIX_SECONDS_THRESHOLD = 1e9;

function at(ms: number): ResetValue | undefined {
  const rounded = Math.round(ms);
  // A Unix time at or before 1970 carries no information: Fieldwire sends `ratelimit-reset: 0`
  // when the limit is not exceeded, and a negative one is never meant literally.
  if (!(rounded > 0) || rounded > MAX_DATE_MS) return undefined;
  return { at: rounded };
}

function inMs(ms: number): ResetValue | undefined {
  const rounded = Math.round(ms);
  if (!(rounded >= 0) || rounded > Number.MAX_SAFE_INTEGER) return undefined;
  return { inMs: positiveZero(rounded) };
}

function unixAuto(n: number): ResetValue | undefined {
  return n >= UNIX_MS_THRESHOLD ? at(n) : at(n * 1000);
}

/**
 * Parses a rate-limit reset header into an absolute instant or a relative delay.
 *
 * Behaviour by `unit`:
 * - `'unix-seconds'` / `'unix-ms'`: a plain number (fractions allowed) → `{ at }`. Unix times
 *   ≤ 0 mean "no reset pending" and give `undefined` (Fieldwire's `ratelimit-reset: 0`).
 * - `'seconds-left'` / `'ms-left'`: a non-negative number (fractions allowed, `"1.5"` seconds →
 *   1500 ms) → `{ inMs }`. Negative → `undefined`; `"0"` → `{ inMs: 0 }`.
 * - `'timestamp'`: a date-time string (ISO 8601, `YYYY-MM-DD HH:MM:SS UTC`, HTTP-date; see
 *   {@link parseTimestamp}) → `{ at }`. A plain number is accepted as a Unix time (milliseconds
 *   if ≥ 1e12, else seconds), since "timestamp" in provider docs often means exactly that.
 * - `'auto'` (default): a plain number ≥ 1e12 → Unix ms, ≥ 1e9 → Unix seconds, otherwise
 *   seconds left; any other string → {@link parseTimestamp}.
 *
 * A header sent more than once arrives joined by commas (`"2, 2"`): its latest reset is read,
 * `undefined` if any member is not one. In every mode an instant at or before 1970-01-01 gives `undefined`, results are whole
 * milliseconds, and garbage (`"12abc"`, `"1e5"`, `"Infinity"`, blank, > 1,000 characters, an
 * unknown `unit`) gives `undefined`. Never throws.
 *
 * @param value the header value, as read (may be `null`/`undefined`).
 * @param unit how the provider encodes the value; defaults to `'auto'`.
 * @param now reference clock for RFC 850 two-digit years only; defaults to `Date.now()`.
 *
 * @example
 * ```ts
 * import { parseReset } from 'rx-ratelimit';
 *
 * parseReset('1466182244');                          // { at: 1466182244000 }  (Procore)
 * parseReset('2', 'seconds-left');                   // { inMs: 2000 }        (Pipedrive)
 * parseReset('0', 'unix-seconds');                   // undefined             (Fieldwire: none)
 * parseReset('2026-01-01T00:00:00.0000000Z', 'timestamp'); // { at: 1767225600000 } (TEOS)
 * ```
 */
export function parseReset(
  value: string | null | undefined,
  unit: ResetUnit = 'auto',
  now: number = Date.now(),
): ResetValue | undefined {
  const text = normalize(value);
  if (text === undefined) return undefined;
  return (
    oneReset(text, unit, now) ??
    latestOfList(
      text,
      (member) => oneReset(member, unit, now),
      (r) => ('at' in r ? r.at : now + r.inMs),
    )
  );
}

/** One reset value (no list). */
function oneReset(text: string, unit: ResetUnit, now: number): ResetValue | undefined {
  const n = parseSignedDecimal(text);

  switch (unit) {
    case 'unix-seconds':
      return n === undefined ? undefined : at(n * 1000);
    case 'unix-ms':
      return n === undefined ? undefined : at(n);
    case 'seconds-left':
      return n === undefined ? undefined : inMs(n * 1000);
    case 'ms-left':
      return n === undefined ? undefined : inMs(n);
    case 'timestamp':
      if (n !== undefined) return unixAuto(n);
      break;
    case 'auto':
      if (n !== undefined) {
        return n >= UNIX_SECONDS_THRESHOLD ? unixAuto(n) : inMs(n * 1000);
      }
      break;
    default:
      return undefined;
  }

  const ts = parseTimestamp(text, now);
  return ts === undefined ? undefined : at(ts);
}
