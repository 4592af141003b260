import type { MonoTypeOperatorFunction } from 'rxjs';
import type { Limiter } from '../core/limiter.js';
import { isRetrySafe, type RequestInfo } from '../core/request.js';
import { PacedRequest } from './pacedRequest.js';
import { GUARD, NOTE, RETRY, SHARE } from './pacedSubscription.js';
import type { RateLimitConfig } from './config.js';
import { checkOperator, checkReserve, extractorOf, maxRetriesOf, retryNonIdempotentOf } from './policies.js';

export type { RateLimitConfig } from './config.js';

/** The default settings, one object for every call (each request keeps a reference to it). */
const DEFAULTS: RateLimitConfig = Object.freeze({});

/**
 * The three operators in the right order: `dailyQuotaGuard` checks the long budget before
 * anything is queued, `retryOn429` resubscribes through `throttleByHeaders`, so every retry
 * waits for the limiter like a new request.
 *
 * For GET and HEAD with a `url` and `headers`, it also spends less of the quota: an identical
 * request already in flight on the limiter is shared instead of sent again (unless the limiter has
 * `dedupe: false` or the request `shareKey: false`; an answer that sets a cookie, a session the
 * server gave one request, goes to one of them only and the others are sent on their own), and
 * with the limiter's `cache` option a fresh 2xx response is served from memory (unless it says
 * `Cache-Control: no-store`, `no-cache` or `private`, sets a cookie, or says `Vary: *`). Identical
 * means same method, URL and headers, all of them: requests sent as different users, or asking for
 * another language or format, are never shared. Give the headers the request is sent with
 * (`headers`); without them (or a `shareKey`) nothing is shared, since `rateLimit` cannot tell who
 * the request is sent as. It sees only `info`, never the request: an option that changes what comes
 * back without being a header (`ajax`'s `responseType` or `withCredentials`, `fromFetch`'s
 * `credentials` or `selector`) must be told too, as a made-up header in `headers` (they are only
 * compared, never sent) or in the `shareKey`, else requests that differ in it share one answer.
 * A request joins one in flight only when it would end the same way: the same retry settings,
 * reserve, priority, `cost` and `extractResponse` (the same function: one made anew for each
 * call joins nothing).
 * Each subscriber gets its own copy, and the cache keeps one of its own: a
 * fetch `Response` is cloned; an axios, Angular, ajax or `ResponseLike` response is copied with
 * its body (JSON-like data, bytes, dates), so what one caller does to its response reaches no
 * other. A body of anything else (class instances a transform made) is not cached, and in flight
 * is shared as it is.
 *
 * ```ts
 * import { map } from 'rxjs';
 * import { ajax } from 'rxjs/ajax';
 * import { createLimiter, providers, rateLimit } from 'rx-ratelimit';
 *
 * const token = process.env['API_TOKEN'] ?? '';
 * const limiter = createLimiter({ provider: providers.generic(), key: token });
 * const headers = { Authorization: `Bearer ${token}` };
 * // ajax() emits the whole AjaxResponse: the limiter reads every response's headers
 * // (ajax.getJSON would hand it the body only, and pace by nothing).
 * const deal$ = ajax<{ id: number; title: string }>({ url: 'https://api.example.com/v1/deals/1', headers }).pipe(
 *   rateLimit(limiter, { method: 'GET', url: '/v1/deals/1', headers }),
 *   map((res) => res.response),
 * );
 * ```
 */
export function rateLimit<T>(
  limiter: Limiter,
  info: RequestInfo = {},
  config: RateLimitConfig = DEFAULTS,
): MonoTypeOperatorFunction<T> {
  // What the three operators check when they are made (same order, same TypeErrors).
  checkOperator('rateLimit', info, config);
  const maxRetries = maxRetriesOf(config);
  checkReserve(config, 'rateLimit');
  // The share key is made once per call of `rateLimit` (a hash of the URL and headers).
  const key = limiter.sharing.keyOf(info);
  const retries = isRetrySafe(info, retryNonIdempotentOf(config)) ? RETRY : NOTE;
  const mode = GUARD | retries | (key !== undefined ? SHARE : 0);
  const joinKey =
    key !== undefined && limiter.sharing.dedupe
      ? joinKeyOf(limiter, key, info, config, retries, maxRetries)
      : undefined;
  // One Observable, whose subscriber runs guard, retry and throttle (pacedRequest.ts).
  return (source) => new PacedRequest(limiter, info, config, source, mode, key, joinKey);
}

/**
 * The key under which a request joins an identical one in flight: its share key and everything
 * else that decides what its subscriber gets or how it ends, since a joiner gets the answer the
 * first one ends with. The same retries (a GET that may not be retried got the 429 a plain GET
 * was to retry past) and retried statuses, the same quota reserve and priority, the same cost
 * (a cheap GET must not fail with a costly one's `CostExceedsLimitError` or
 * `QuotaExhaustedError`), and the same extractor, by identity: what it finds in the answer
 * decides whether it is retried, a block, or the answer.
 */
function joinKeyOf(
  limiter: Limiter,
  key: string,
  info: RequestInfo,
  config: RateLimitConfig,
  retries: number,
  maxRetries: number,
): string {
  const statuses = config.statuses === undefined ? [429] : [...config.statuses].sort((a, b) => a - b);
  return JSON.stringify([
    key,
    retries,
    maxRetries,
    statuses,
    // As text: JSON reads `Infinity` and `-Infinity` (a `reservePriority`) both as null.
    String(config.reserve ?? 0),
    String(config.reservePriority ?? 1),
    String(info.priority ?? 0),
    costPart(info.cost),
    info.costKey === undefined ? null : valuePart(info.costKey),
    limiter.sharing.idOf(extractorOf(limiter, config)),
  ]);
}

/**
 * A request's own `cost` as it goes in a join key, bucket names sorted. A value that is no cost
 * (it fails the request when it is queued) is read by its type only: it must not make the key
 * throw, and such requests fail alike.
 */
function costPart(cost: unknown): unknown {
  if (cost === undefined) return null;
  if (typeof cost !== 'object' || cost === null || Array.isArray(cost)) return valuePart(cost);
  try {
    const costs = cost as Readonly<Record<string, unknown>>;
    return Object.keys(costs)
      .sort()
      .map((name) => [name, valuePart(costs[name])]);
  } catch {
    // A getter that throws: so does the request, when it is queued.
    return '?';
  }
}

/** A number or string as text (`NaN` too, which JSON writes as null), anything else by its type. */
function valuePart(value: unknown): string {
  return typeof value === 'number' ? String(value) : typeof value === 'string' ? `"${value}"` : `?${typeof value}`;
}
