import { normalize, parseSignedDecimal } from './internal.js';

function parseMember(text: string): number | undefined {
  const n = parseSignedDecimal(text.trim());
  if (n === undefined) return undefined;
  // Servers do send `-1` remaining after overshooting; for pacing that is simply "none left".
  if (n <= 0) return 0;
  // Also catches digit strings so long that Number() overflowed to Infinity.
  if (n > Number.MAX_SAFE_INTEGER) return Number.MAX_SAFE_INTEGER;
  return Math.floor(n);
}

/**
 * Parses a request-count header (limit, remaining, or used count) into a non-negative integer.
 *
 * For headers such as `X-Rate-Limit-Limit: 3600`, `x-ratelimit-remaining: 39`,
 * `X-PCO-API-Request-Rate-Count: 118`, `ratelimit-remaining-minute`, `x-daily-requests-left`.
 *
 * Behaviour notes (lenient, because a count is only ever used to slow down):
 * - Surrounding whitespace is ignored; a fraction is floored (`"9.7"` → 9).
 * - Negative values become 0 (some servers send `-1` remaining).
 * - Values above `Number.MAX_SAFE_INTEGER` are clamped to it.
 * - A duplicated header arrives joined as `"10, 10"` or `"100, 50"`: the result is the smallest
 *   member, the conservative reading. If any member is not a number the whole value is rejected.
 * - Garbage (`"12abc"`, `"1e5"`, `"0x10"`, blank, > 1,000 characters) gives `undefined`.
 *   Never throws.
 *
 * @param value the header value, as read (may be `null`/`undefined`).
 * @returns an integer in `0..Number.MAX_SAFE_INTEGER`, or `undefined`.
 *
 * @example
 * ```ts
 * import { parseCount } from 'rx-ratelimit';
 *
 * parseCount('3599');     // 3599  (Procore X-Rate-Limit-Remaining)
 * parseCount('-1');       // 0
 * parseCount('100, 50');  // 50
 * parseCount('lots');     // undefined
 * ```
 */
export function parseCount(value: string | null | undefined): number | undefined {
  const text = normalize(value);
  if (text === undefined) return undefined;
  let min: number | undefined;
  for (const part of text.split(',')) {
    const n = parseMember(part);
    if (n === undefined) return undefined;
    min = min === undefined ? n : Math.min(min, n);
  }
  return min;
}
