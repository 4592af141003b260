import { normalize, parseUnsignedDecimal } from './internal.js';
import { parseCount } from './count.js';
import {
  isItem,
  parseDictionary as parseSfDictionary,
  parseList as parseSfList,
  type BareItem,
  type Item,
  type List,
  type Member,
} from './structuredFields.js';

/**
 * One quota policy from a `RateLimit-Policy` field (draft-ietf-httpapi-ratelimit-headers).
 *
 * @example
 * ```ts
 * import type { IetfPolicy } from 'rx-ratelimit';
 *
 * // RateLimit-Policy: "default";q=100;w=10
 * const policy: IetfPolicy = { name: 'default', quota: 100, windowSeconds: 10 };
 * ```
 */
export interface IetfPolicy {
  /** Policy name: the item's sf-string or sf-token, or its list index (`"0"`, `"1"`…) in the draft-07 integer form. */
  readonly name: string;
  /** Quota units allowed per window (`q`, or `l` in draft-08); a non-negative integer. */
  readonly quota: number;
  /** Window length in seconds (`w`), when given and positive. */
  readonly windowSeconds?: number;
  /** What the quota counts (`qu`): `"requests"` (the default), `"content-bytes"`, `"concurrent-requests"`. */
  readonly quotaUnit?: string;
  /** Partition key (`pk`, an sf-binary), as standard base64 text. */
  readonly partitionKey?: string;
}

/**
 * The current state of one quota policy from a `RateLimit` field.
 *
 * @example
 * ```ts
 * import type { IetfLimit } from 'rx-ratelimit';
 *
 * // RateLimit: "default";r=50;t=30
 * const limit: IetfLimit = { name: 'default', remaining: 50, resetSeconds: 30 };
 * ```
 */
export interface IetfLimit {
  /** Name of the policy this applies to (`'default'` for the draft-07 dictionary form). */
  readonly name: string;
  /** Quota units left in the current window (`r`); a non-negative integer. */
  readonly remaining: number;
  /** Seconds until the window resets (`t`, delta-seconds), when given. */
  readonly resetSeconds?: number;
  /** Partition key (`pk`, an sf-binary), as standard base64 text. */
  readonly partitionKey?: string;
}

/**
 * The numbers carried by the pre-draft-08 fields: `RateLimit-Limit`/`-Remaining`/`-Reset`, or
 * the draft-07 `RateLimit: limit=…, remaining=…, reset=…` dictionary.
 *
 * @example
 * ```ts
 * import type { LegacyRateLimit } from 'rx-ratelimit';
 *
 * // RateLimit-Limit: 10, 10;w=1   RateLimit-Remaining: 1   RateLimit-Reset: 7
 * const state: LegacyRateLimit = { limit: 10, windowSeconds: 1, remaining: 1, resetSeconds: 7 };
 * ```
 */
export interface LegacyRateLimit {
  /** Requests allowed in the current window. */
  limit?: number;
  /** Window length in seconds, from a `w` parameter on the matching quota policy. */
  windowSeconds?: number;
  /** Requests left in the current window. */
  remaining?: number;
  /** Seconds until the window resets (delta-seconds). */
  resetSeconds?: number;
}

/**
 * An sf-string or sf-token as text: names are sf-strings in drafts 09+ and sf-tokens in drafts
 * 07/08, and both are just names to us (so is a `qu` written either way).
 */
function nameOf(bare: BareItem | undefined): string | undefined {
  if (typeof bare === 'string') return bare;
  if (typeof bare === 'object' && 'token' in bare) return bare.token;
  return undefined;
}

function nonNegativeInteger(bare: BareItem | undefined): number | undefined {
  return typeof bare === 'number' && Number.isInteger(bare) && bare >= 0 ? bare : undefined;
}

function nonNegativeNumber(bare: BareItem | undefined): number | undefined {
  return typeof bare === 'number' && Number.isFinite(bare) && bare >= 0 ? bare : undefined;
}

function positiveNumber(bare: BareItem | undefined): number | undefined {
  return typeof bare === 'number' && Number.isFinite(bare) && bare > 0 ? bare : undefined;
}

function base64Of(bare: BareItem | undefined): string | undefined {
  if (typeof bare === 'object' && 'bytes' in bare) return btoa(bare.bytes);
  // Not what the draft says, but a server writing pk="abc" clearly means that text as the key.
  return typeof bare === 'string' ? bare : undefined;
}

function policyFrom(member: Member, index: number): IetfPolicy | undefined {
  if (!isItem(member)) return undefined;
  const [bare, params] = member;
  let name: string | undefined;
  let quota: number | undefined;
  if (typeof bare === 'number') {
    // Draft-07 form `100;w=60`: the item is the quota itself and there is no name, so the list
    // position stands in for one (stable as long as the server keeps its order).
    quota = nonNegativeInteger(bare);
    name = String(index);
  } else {
    name = nameOf(bare);
    // `l` was the quota parameter's name in draft-08; `q` wins when both are present.
    quota = nonNegativeInteger(params.get('q') ?? params.get('l'));
  }
  if (name === undefined || quota === undefined) return undefined;
  const windowSeconds = positiveNumber(params.get('w'));
  const quotaUnit = nameOf(params.get('qu'));
  const partitionKey = base64Of(params.get('pk'));
  return {
    name,
    quota,
    ...(windowSeconds !== undefined && { windowSeconds }),
    ...(quotaUnit !== undefined && { quotaUnit }),
    ...(partitionKey !== undefined && { partitionKey }),
  };
}

/**
 * Parses a `RateLimit-Policy` field (draft-ietf-httpapi-ratelimit-headers-07 … -11).
 *
 * The field is a Structured Fields List; each member is one quota policy:
 * - drafts 09+: `"default";q=100;w=10` (name as sf-string),
 * - drafts 07/08: `default;q=100;w=60` or `default;l=100;w=60` (name as sf-token, `l` = quota),
 * - draft-07 integer form: `100;w=60` — the quota is the item itself; having no name, the policy
 *   is named after its index in the list (`"0"`, `"1"`…).
 *
 * Parameters: `q` (quota, required, non-negative integer), `w` (window seconds, ignored unless
 * positive), `qu` (quota unit, e.g. `"requests"`, `"content-bytes"`, `"concurrent-requests"`),
 * `pk` (partition key, sf-binary → base64 text). Unknown parameters are ignored.
 *
 * Invalid members (no quota, inner lists, booleans…) are skipped. Returns `undefined` when the
 * value is not a valid Structured Field List or no member is a valid policy. Never throws.
 *
 * @param value the header value, as read (duplicate fields joined with `", "` are fine).
 *
 * @example
 * ```ts
 * import { parseRateLimitPolicy } from 'rx-ratelimit';
 *
 * parseRateLimitPolicy('"burst";q=100;w=60,"daily";q=1000;w=86400');
 * // [{ name: 'burst', quota: 100, windowSeconds: 60 },
 * //  { name: 'daily', quota: 1000, windowSeconds: 86400 }]
 * ```
 */
export function parseRateLimitPolicy(value: string | null | undefined): IetfPolicy[] | undefined {
  const text = normalize(value);
  if (text === undefined) return undefined;
  const list = parseSfList(text);
  if (list === undefined) return undefined;
  const policies: IetfPolicy[] = [];
  list.forEach((member, index) => {
    const policy = policyFrom(member, index);
    if (policy !== undefined) policies.push(policy);
  });
  return policies.length > 0 ? policies : undefined;
}

function limitFrom(member: Member): IetfLimit | undefined {
  if (!isItem(member)) return undefined;
  const [bare, params] = member;
  const name = nameOf(bare);
  const remaining = remainingOf(params.get('r'));
  if (name === undefined || remaining === undefined) return undefined;
  const resetSeconds = nonNegativeNumber(params.get('t'));
  const partitionKey = base64Of(params.get('pk'));
  return {
    name,
    remaining,
    ...(resetSeconds !== undefined && { resetSeconds }),
    ...(partitionKey !== undefined && { partitionKey }),
  };
}

/** Like {@link parseCount}: a negative remaining (overshoot) is read as 0, not rejected. */
function remainingOf(bare: BareItem | undefined): number | undefined {
  if (typeof bare !== 'number' || !Number.isInteger(bare)) return undefined;
  return Math.max(0, bare);
}

/**
 * Parses the draft-07 dictionary form of the `RateLimit` field:
 * `RateLimit: limit=100, remaining=50, reset=5`.
 *
 * Members: `limit` (non-negative integer), `remaining` (integer; negative read as 0), `reset`
 * (delta-seconds ≥ 0). A `w` parameter on `limit` (`limit=100;w=60`) becomes `windowSeconds`.
 * Unknown members are ignored. Returns `undefined` when the value is not a Structured Fields
 * Dictionary or none of the three members is usable. Never throws.
 *
 * @param value the header value, as read.
 *
 * @example
 * ```ts
 * import { parseRateLimitDictionary } from 'rx-ratelimit';
 *
 * parseRateLimitDictionary('limit=100, remaining=50, reset=5');
 * // { limit: 100, remaining: 50, resetSeconds: 5 }
 * ```
 */
export function parseRateLimitDictionary(value: string | null | undefined): LegacyRateLimit | undefined {
  const text = normalize(value);
  if (text === undefined) return undefined;
  const dict = parseSfDictionary(text);
  if (dict === undefined) return undefined;
  const itemOf = (key: string): Item | undefined => {
    const member = dict.get(key);
    return member !== undefined && isItem(member) ? member : undefined;
  };
  const limitItem = itemOf('limit');
  const limit = nonNegativeInteger(limitItem?.[0]);
  const windowSeconds = limit === undefined ? undefined : positiveNumber(limitItem?.[1].get('w'));
  const remaining = remainingOf(itemOf('remaining')?.[0]);
  const resetSeconds = nonNegativeNumber(itemOf('reset')?.[0]);
  if (limit === undefined && remaining === undefined && resetSeconds === undefined) {
    return undefined;
  }
  return compact({ limit, windowSeconds, remaining, resetSeconds });
}

/**
 * Parses the `RateLimit` field (draft-ietf-httpapi-ratelimit-headers).
 *
 * Two shapes are understood, tried in this order:
 * - drafts 08+: a Structured Fields List, one member per policy:
 *   `"default";r=50;t=30` (or the token form `default;r=50;t=30`). Parameters: `r` (remaining,
 *   required integer; negative read as 0), `t` (reset, delta-seconds ≥ 0), `pk` (partition key,
 *   sf-binary → base64 text). Invalid members are skipped.
 * - draft-07: the dictionary `limit=100, remaining=50, reset=5`, returned as one limit named
 *   `'default'` (it needs `remaining`; use {@link parseRateLimitDictionary} to also get `limit`).
 *
 * Returns `undefined` when neither shape yields a limit. Never throws.
 *
 * @param value the header value, as read (duplicate fields joined with `", "` are fine).
 *
 * @example
 * ```ts
 * import { parseRateLimit } from 'rx-ratelimit';
 *
 * parseRateLimit('"default";r=50;t=30');            // [{ name: 'default', remaining: 50, resetSeconds: 30 }]
 * parseRateLimit('limit=100, remaining=50, reset=5'); // [{ name: 'default', remaining: 50, resetSeconds: 5 }]
 * ```
 */
export function parseRateLimit(value: string | null | undefined): IetfLimit[] | undefined {
  const text = normalize(value);
  if (text === undefined) return undefined;

  const list = parseSfList(text);
  if (list !== undefined) {
    const limits: IetfLimit[] = [];
    for (const member of list) {
      const limit = limitFrom(member);
      if (limit !== undefined) limits.push(limit);
    }
    if (limits.length > 0) return limits;
  }

  const dict = parseRateLimitDictionary(text);
  if (dict?.remaining === undefined) return undefined;
  return [
    {
      name: 'default',
      remaining: dict.remaining,
      ...(dict.resetSeconds !== undefined && { resetSeconds: dict.resetSeconds }),
    },
  ];
}

function compact(fields: {
  limit: number | undefined;
  windowSeconds: number | undefined;
  remaining: number | undefined;
  resetSeconds: number | undefined;
}): LegacyRateLimit {
  const out: LegacyRateLimit = {};
  if (fields.limit !== undefined) out.limit = fields.limit;
  if (fields.windowSeconds !== undefined) out.windowSeconds = fields.windowSeconds;
  if (fields.remaining !== undefined) out.remaining = fields.remaining;
  if (fields.resetSeconds !== undefined) out.resetSeconds = fields.resetSeconds;
  return out;
}

/**
 * The `w` of the quota policy describing the current limit. In `10, 10;w=1, 50;w=60` the first
 * member is the expiring limit and the others are policies; the one with the same quota is the
 * one in force. A `w` on the first member itself (`100;w=60`) also counts.
 */
function windowForLimit(list: List, limit: number): number | undefined {
  for (const member of list) {
    if (!isItem(member) || member[0] !== limit) continue;
    const w = positiveNumber(member[1].get('w'));
    if (w !== undefined) return w;
  }
  return undefined;
}

function parseLegacyLimit(text: string): { limit?: number; windowSeconds?: number } | undefined {
  const list = parseSfList(text);
  const first = list?.[0];
  if (list !== undefined && first !== undefined && isItem(first)) {
    const limit = nonNegativeInteger(first[0]);
    if (limit !== undefined) {
      const windowSeconds = windowForLimit(list, limit);
      return windowSeconds === undefined ? { limit } : { limit, windowSeconds };
    }
  }
  // Not Structured Fields (e.g. "100.0" or " -1"): fall back to the lenient count reading.
  const limit = parseCount(text);
  return limit === undefined ? undefined : { limit };
}

/**
 * Parses the three fields of drafts 00–06 of the IETF rate-limit headers:
 * `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`.
 *
 * Behaviour notes:
 * - `limit`: `10`, or with quota policies `10, 10;w=1, 50;w=60` → `limit` 10 and the `w` of the
 *   policy with the same quota as `windowSeconds` (1 here). Without a matching `w`,
 *   `windowSeconds` is omitted.
 * - `remaining`: a count as read by {@link parseCount} (negative → 0).
 * - `reset`: delta-seconds, a non-negative number (fractions allowed) → `resetSeconds`.
 * - Each field that is missing or does not parse is left out; the result is `undefined` when
 *   none of the three parses. Never throws.
 *
 * @param fields the raw values of the three headers (any may be missing).
 *
 * @example
 * ```ts
 * import { parseLegacyRateLimit } from 'rx-ratelimit';
 *
 * parseLegacyRateLimit({ limit: '100, 100;w=60', remaining: '50', reset: '50' });
 * // { limit: 100, windowSeconds: 60, remaining: 50, resetSeconds: 50 }
 * ```
 */
export function parseLegacyRateLimit(fields: {
  limit?: string | null | undefined;
  remaining?: string | null | undefined;
  reset?: string | null | undefined;
}): LegacyRateLimit | undefined {
  if (typeof fields !== 'object' || fields === null) return undefined;
  const limitText = normalize(fields.limit);
  const limitPart = limitText === undefined ? undefined : parseLegacyLimit(limitText);
  const remaining = parseCount(fields.remaining);
  const resetText = normalize(fields.reset);
  const resetSeconds = resetText === undefined ? undefined : parseUnsignedDecimal(resetText);
  if (limitPart === undefined && remaining === undefined && resetSeconds === undefined) {
    return undefined;
  }
  return compact({
    limit: limitPart?.limit,
    windowSeconds: limitPart?.windowSeconds,
    remaining,
    resetSeconds,
  });
}
