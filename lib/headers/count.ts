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
 * - A comma with no space beside it may be a thousands separator (`"3,600"`) or a join by a
 *   client or proxy that leaves the space out (`"50,100"`). The two readings are 1000 times
 *   apart, and the wrong one paces by a figure 1000 times off: too slow to be of use, or fast
 *   enough to be refused. So a value of that shape (1 to 3 digits, then groups of exactly 3) is
 *   read only where one reading is plain: the same group repeated (`"100,100"`) is one value
 *   joined twice, and a group starting with `0` (`"10,000"`) is not a count sent on its own, so
 *   a thousands separator. Any other (`"3,600"`, `"50,100"`) gives `undefined`, as garbage
 *   does: the limiter goes on from the documented figure and its own count. Bare commas in any
 *   other value (`"3600,3600"`, `"10,5"`) join values.
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
 * parseCount('10,000');   // 10000
 * parseCount('3,600');    // undefined (3600, or 3 and 600 joined?)
 * parseCount('lots');     // undefined
 * ```
 */
export function parseCount(value: string | null | undefined): number | undefined {
  const text = normalize(value);
  if (text === undefined) return undefined;
  let min: number | undefined;
  // A comma with a space beside it separates values (fetch, Node and `responseLike` join a
  // repeated header with ", "); what lies between may still hold bare commas.
  for (const piece of text.split(SPACED_COMMA)) {
    const members = membersOf(piece);
    if (members === undefined) return undefined;
    for (const member of members) {
      const n = parseMember(member);
      if (n === undefined) return undefined;
      min = min === undefined ? n : Math.min(min, n);
    }
  }
  return min;
}

/** A comma with whitespace before or after it. */
const SPACED_COMMA = /\s+,\s*|,\s+/;
/** Digits grouped by thousands separators: `3,600`, `1,000,000`, `12,345.5` (never led by a 0). */
const THOUSANDS = /^[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$/;

/**
 * The members of a piece with no whitespace around its commas: each value of a list joined with
 * bare commas, or one number written with thousands separators, or `undefined` when it may be
 * either (see {@link parseCount}).
 */
function membersOf(piece: string): readonly string[] | undefined {
  const groups = piece.split(',');
  if (!THOUSANDS.test(piece)) return groups;
  if (groups.every((g) => g === groups[0])) return groups;
  if (groups.slice(1).some((g) => g.startsWith('0'))) return [groups.join('')];
  return undefined;
}
