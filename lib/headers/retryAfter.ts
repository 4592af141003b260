import { normalize, parseUnsignedDecimal, positiveZero } from './internal.js';
import { latestOfList } from './httpDate.js';
import { parseReset } from './reset.js';
import { parseTimestamp } from './timestamp.js';

/**
 * A parsed `Retry-After` value.
 *
 * - `{ delayMs }` — wait this many milliseconds (≥ 0) from when the response was produced.
 * - `{ at }` — retry at this absolute epoch millisecond, **on the server's clock**. Compare it
 *   with the response's `Date` header rather than the local clock if the two may be skewed.
 *
 * @example
 * ```ts
 * import { parseRetryAfter, type RetryAfter } from 'rx-ratelimit';
 *
 * const retry: RetryAfter | undefined = parseRetryAfter('19');
 * const waitMs = retry === undefined ? 0 : 'delayMs' in retry ? retry.delayMs : retry.at - Date.now();
 * ```
 */
export type RetryAfter = { readonly delayMs: number } | { readonly at: number };

/**
 * Parses a `Retry-After` header (RFC 9110 §10.2.3).
 *
 * Behaviour notes:
 * - delay-seconds → `{ delayMs }`: `"19"` → `{ delayMs: 19000 }`, `"0"` → `{ delayMs: 0 }`.
 *   RFC 9110 allows only a non-negative integer; a decimal such as `"1.5"` is accepted leniently
 *   (→ 1500, rounded to whole ms). A sign, exponent or trailing junk gives `undefined`, so
 *   negative delays never come out.
 * - HTTP-date (all three RFC 9110 forms) → `{ at }`. Leniently, the ISO 8601 / RFC 3339 forms
 *   accepted by {@link parseTimestamp} are taken as dates too.
 * - A header sent more than once, joined by commas (`"3, 3"`, as fetch joins it) → the member
 *   that ends latest; `undefined` if any member is not a value.
 * - A delay above `Number.MAX_SAFE_INTEGER` ms, blank, or garbage → `undefined`. Never throws.
 *
 * @param value the header value, as read (may be `null`/`undefined`).
 * @param now reference clock for RFC 850 two-digit years only; defaults to `Date.now()`.
 *
 * @example
 * ```ts
 * import { parseRetryAfter } from 'rx-ratelimit';
 *
 * parseRetryAfter('19');                            // { delayMs: 19000 }  (Planning Center)
 * parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT'); // { at: 1445412480000 }
 * parseRetryAfter('-1');                            // undefined
 * ```
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): RetryAfter | undefined {
  const text = normalize(value);
  if (text === undefined) return undefined;
  return (
    oneRetryAfter(text, now) ??
    latestOfList(
      text,
      (member) => oneRetryAfter(member, now),
      (r) => ('at' in r ? r.at : now + r.delayMs),
    )
  );
}

/** One `Retry-After` value (no list). */
function oneRetryAfter(text: string, now: number): RetryAfter | undefined {
  const seconds = parseUnsignedDecimal(text);
  if (seconds !== undefined) {
    const delayMs = Math.round(seconds * 1000);
    return delayMs > Number.MAX_SAFE_INTEGER ? undefined : { delayMs: positiveZero(delayMs) };
  }

  const at = parseTimestamp(text, now);
  return at === undefined ? undefined : { at };
}

/**
 * Parses an `X-RateLimit-Retry-After` header, the non-standard twin of `Retry-After` that some
 * frameworks send (Symfony's RateLimiter writes a Unix time in seconds). Read by size, as
 * {@link parseReset} does with `'auto'`: a number of 1e12 or more is Unix milliseconds, of 1e9
 * or more Unix seconds, anything smaller delay-seconds; a date string is a date. Garbage, blank,
 * negative or a time at or before 1970 gives `undefined`. Never throws.
 *
 * @example
 * ```ts
 * import { parseXRateLimitRetryAfter } from 'rx-ratelimit';
 *
 * parseXRateLimitRetryAfter('30');         // { delayMs: 30000 }
 * parseXRateLimitRetryAfter('1760000000'); // { at: 1760000000000 }  (Symfony: a Unix time)
 * ```
 */
export function parseXRateLimitRetryAfter(value: string | null | undefined): RetryAfter | undefined {
  const reset = parseReset(value, 'auto');
  if (reset === undefined) return undefined;
  return 'at' in reset ? { at: reset.at } : { delayMs: reset.inMs };
}
