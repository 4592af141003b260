import { normalize } from './internal.js';

/** A `used/limit` pair, as Shopify's `X-Shopify-Shop-Api-Call-Limit: 32/40` reports a bucket. */
export interface UsedLimit {
  /** Units in the bucket (spent and not yet leaked back). */
  readonly used: number;
  /** The bucket's capacity. */
  readonly limit: number;
}

/** Whole numbers of up to 15 digits, so that each is a safe integer; nothing else. */
const MEMBER = /^(\d{1,15}) *\/ *(\d{1,15})$/;

/**
 * Parses a `used/limit` header value such as Shopify's `X-Shopify-Shop-Api-Call-Limit: 32/40`
 * (32 units of a 40-unit bucket in use, so 8 available).
 *
 * Behaviour notes:
 * - Spaces around the slash and the value are ignored; both numbers are whole, up to 15 digits.
 * - A limit of 0 is refused (no bucket holds nothing); `used` above the limit is kept as told
 *   (the bucket is over-full: nothing is available).
 * - A duplicated header arrives joined as `"32/40, 35/40"`: the member with the least available
 *   (`limit - used`) wins, the conservative reading. If any member is not a pair the whole value
 *   is rejected.
 * - Garbage (`"32"`, `"32/40/2"`, `"-1/40"`, `"1.5/40"`, `"0x20/40"`, blank, > 1,000 characters)
 *   gives `undefined`. Linear in the input; never throws.
 *
 * @example
 * ```ts
 * import { parseUsedLimit } from 'rx-ratelimit';
 *
 * parseUsedLimit('32/40');        // { used: 32, limit: 40 }
 * parseUsedLimit('39/40, 40/40'); // { used: 40, limit: 40 }
 * parseUsedLimit('lots');         // undefined
 * ```
 */
export function parseUsedLimit(value: string | null | undefined): UsedLimit | undefined {
  const text = normalize(value);
  if (text === undefined) return undefined;
  let best: UsedLimit | undefined;
  for (const part of text.split(',')) {
    const match = MEMBER.exec(part.trim());
    if (!match) return undefined;
    const used = Number(match[1]);
    const limit = Number(match[2]);
    if (!(limit > 0)) return undefined;
    if (best === undefined || limit - used < best.limit - best.used) best = { used, limit };
  }
  return best;
}
