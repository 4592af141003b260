import type { MonoTypeOperatorFunction } from 'rxjs';
import type { Limiter } from '../core/limiter.js';
import { isRetrySafe, shareKeyOf, type RequestInfo } from '../core/request.js';
import { GUARD, Limited, NOTE, RETRY, SHARE } from './attempt.js';
import type { DailyQuotaGuardConfig } from './dailyQuotaGuard.js';
import { checkReserve, maxRetriesOf } from './decide.js';
import type { RetryOn429Config } from './retryOn429.js';
import type { ThrottleByHeadersConfig } from './throttleByHeaders.js';

/** Settings of {@link rateLimit}: those of the three operators it composes. */
export type RateLimitConfig = ThrottleByHeadersConfig & RetryOn429Config & DailyQuotaGuardConfig;

/** The default settings, one object for every call (each request keeps a reference to it). */
const DEFAULTS: RateLimitConfig = Object.freeze({});

/**
 * The three operators in the right order: `dailyQuotaGuard` checks the long budget before
 * anything is queued, `retryOn429` resubscribes through `throttleByHeaders`, so every retry
 * waits for the limiter like a new request.
 *
 * For GET and HEAD with a `url`, it also spends less of the quota: an identical request
 * already in flight on the limiter is shared instead of sent again (unless the limiter has
 * `dedupe: false` or the request `shareKey: false`), and with the limiter's `cache` option a
 * fresh 2xx response is served from memory. Each subscriber gets its own copy (a fetch
 * `Response` is cloned; other values are shared as they are).
 *
 * ```ts
 * import { createLimiter, providers, rateLimit } from 'rx-ratelimit';
 * import { ajax } from 'rxjs/ajax';
 *
 * const limiter = createLimiter({ provider: providers.generic(), key: 'my-token' });
 * const deal$ = ajax.getJSON('https://api.example.com/v1/deals/1').pipe(rateLimit(limiter, { method: 'GET', url: '/v1/deals/1' }));
 * ```
 */
export function rateLimit<T>(
  limiter: Limiter,
  info: RequestInfo = {},
  config: RateLimitConfig = DEFAULTS,
): MonoTypeOperatorFunction<T> {
  // What the three operators check when they are made (same order, same TypeErrors).
  maxRetriesOf(config);
  checkReserve(config);
  const sharing = limiter.sharing;
  const mode =
    GUARD |
    (isRetrySafe(info, config.retryNonIdempotent) ? RETRY : NOTE) |
    (shareKeyOf(info) !== undefined && (sharing.dedupe || sharing.caching) ? SHARE : 0);
  // One Observable, whose subscriber runs guard, retry and throttle (attempt.ts).
  return (source) => new Limited(limiter, info, config, source, mode);
}
