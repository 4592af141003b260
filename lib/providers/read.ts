import { servedFromCache } from '../headers/cacheStatus.js';
import { parseCount } from '../headers/count.js';
import {
  parseLegacyRateLimit,
  parseRateLimit,
  parseRateLimitDictionary,
  parseRateLimitPolicy,
} from '../headers/ietf.js';
import { parsePeriod } from '../headers/period.js';
import { parseReset, type ResetUnit } from '../headers/reset.js';
import { parseRetryAfter, parseXRateLimitRetryAfter } from '../headers/retryAfter.js';
import type { ResponseLike } from '../core/response.js';
import type { BucketReading, ResponseReading } from './types.js';

/** Header names of one limit/remaining/reset triple. */
export interface CounterHeaders {
  readonly limit?: string;
  readonly remaining?: string;
  readonly reset?: string;
  /** A header whose value is the window as a period (`"1m"`, `"20 seconds"`). */
  readonly period?: string;
}

/**
 * Reads one bucket from a limit/remaining/reset header triple (any may be absent). Returns
 * `undefined` when the response carries none of them. Building block for `defineProvider`.
 *
 * ```ts
 * import { readCounters, type ResponseLike } from 'rx-ratelimit';
 * declare const res: ResponseLike;
 * const reading = readCounters(res, 'default', { limit: 'x-ratelimit-limit', remaining: 'x-ratelimit-remaining', reset: 'x-ratelimit-reset' }, 'unix-seconds');
 * ```
 */
export function readCounters(
  res: ResponseLike,
  name: string,
  headers: CounterHeaders,
  resetUnit: ResetUnit = 'auto',
): BucketReading | undefined {
  const limit = headers.limit ? parseCount(res.header(headers.limit)) : undefined;
  const remaining = headers.remaining ? parseCount(res.header(headers.remaining)) : undefined;
  const reset = headers.reset ? parseReset(res.header(headers.reset), resetUnit) : undefined;
  const windowMs = headers.period ? parsePeriod(res.header(headers.period)) : undefined;
  if (limit === undefined && remaining === undefined && reset === undefined && windowMs === undefined) return undefined;
  return compact({ name, limit, remaining, reset, windowMs });
}

/**
 * Was this response served from a cache rather than by the origin just now? An `Age` header
 * above 0 says a cache held it that long (RFC 9111 §5.1), and a `Cache-Status` whose cache says
 * `hit` (RFC 9211 §2.1) that a cache answered from its store: its rate-limit figures describe
 * the budget as it was then, and no request of ours reached the server. A `304 Not Modified` is
 * the origin's own answer to a revalidation, so it is not "from a cache" here unless one of
 * these says so.
 *
 * ```ts
 * import { isServedFromCache, responseLike } from 'rx-ratelimit';
 * isServedFromCache(responseLike(200, { Age: '42' })); // true
 * isServedFromCache(responseLike(200, { 'Cache-Status': 'ExampleCDN; hit' })); // true
 * ```
 */
export function isServedFromCache(res: ResponseLike): boolean {
  return servedFromCache(res);
}

/**
 * Reads the IETF fields: `RateLimit` with `RateLimit-Policy` (draft 8 and later: one bucket per
 * policy, named after it), the draft-7 `RateLimit: limit=…, remaining=…, reset=…` dictionary, or
 * the older `RateLimit-Limit/-Remaining/-Reset` trio (one bucket named `fallback`). Nothing from
 * a response served from a cache ({@link isServedFromCache}): the draft's caching section says
 * the fields of a stored response are not about the current window.
 */
export function readIetf(res: ResponseLike, fallback = 'default'): BucketReading[] {
  if (isServedFromCache(res)) return [];
  const current = parseRateLimit(res.header('ratelimit'));
  const policies = parseRateLimitPolicy(res.header('ratelimit-policy')) ?? [];
  // The draft-7 dictionary carries its own limit (and window), which the list form does not.
  const dictionary = current?.length === 1 ? parseRateLimitDictionary(res.header('ratelimit')) : undefined;
  if (current) {
    return current.map((l) => {
      const policy =
        policies.find((p) => p.name === l.name) ??
        (current.length === 1 && policies.length === 1 ? policies[0] : undefined);
      const name = policyBucket(l.name, fallback);
      return compact({
        name,
        limit: policy?.quota ?? dictionary?.limit,
        remaining: l.remaining,
        reset: inMsOf(l.resetSeconds),
        windowMs:
          policy?.windowSeconds !== undefined
            ? msOf(policy.windowSeconds)
            : dictionary?.windowSeconds !== undefined
              ? msOf(dictionary.windowSeconds)
              : undefined,
      });
    });
  }
  const legacy = parseLegacyRateLimit({
    limit: res.header('ratelimit-limit'),
    remaining: res.header('ratelimit-remaining'),
    reset: res.header('ratelimit-reset'),
  });
  if (legacy) {
    return [
      compact({
        name: fallback,
        limit: legacy.limit,
        remaining: legacy.remaining,
        reset: inMsOf(legacy.resetSeconds),
        windowMs: msOf(legacy.windowSeconds),
      }),
    ];
  }
  return [];
}

/** @internal An IETF policy named `default` (or `0`, draft 7's unnamed one) fills the profile's bucket `fallback`. */
export function policyBucket(name: string, fallback: string): string {
  return name === 'default' || name === '0' ? fallback : name;
}

/**
 * Seconds as whole ms; `undefined` past `Number.MAX_SAFE_INTEGER` ms, as `parseReset` and
 * `parseRetryAfter` do (a reset 285,000 years away is junk, not a wait).
 */
function msOf(seconds: number | undefined): number | undefined {
  const ms = seconds === undefined ? undefined : Math.round(seconds * 1000);
  return ms !== undefined && ms <= Number.MAX_SAFE_INTEGER ? ms : undefined;
}

function inMsOf(seconds: number | undefined): { inMs: number } | undefined {
  const ms = msOf(seconds);
  return ms === undefined ? undefined : { inMs: ms };
}

/**
 * `Retry-After` as a reading's retry fields, else `X-RateLimit-Retry-After` (delay-seconds or a
 * Unix time, see `parseXRateLimitRetryAfter`); empty when neither is there or readable.
 */
export function readRetryAfter(res: ResponseLike): Pick<ResponseReading, 'retryAfter' | 'retrySource'> {
  const retryAfter =
    parseRetryAfter(res.header('retry-after')) ?? parseXRateLimitRetryAfter(res.header('x-ratelimit-retry-after'));
  return retryAfter ? { retryAfter, retrySource: 'retry-after' } : {};
}

/** Drops `undefined` fields (exactOptionalPropertyTypes) from a reading. */
export function compact<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as { [K in keyof T]: Exclude<T[K], undefined> };
}
