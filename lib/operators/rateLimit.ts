import type { MonoTypeOperatorFunction } from 'rxjs';
import type { Limiter } from '../core/limiter.js';
import type { RequestInfo } from '../core/request.js';
import { dailyQuotaGuard, type DailyQuotaGuardConfig } from './dailyQuotaGuard.js';
import { retryOn429, type RetryOn429Config } from './retryOn429.js';
import { throttleByHeaders, type ThrottleByHeadersConfig } from './throttleByHeaders.js';

/** Settings of {@link rateLimit}: those of the three operators it composes. */
export type RateLimitConfig = ThrottleByHeadersConfig & RetryOn429Config & DailyQuotaGuardConfig;

/**
 * The three operators in the right order: `dailyQuotaGuard` checks the long budget before
 * anything is queued, `retryOn429` resubscribes through `throttleByHeaders`, so every retry
 * waits for the limiter like a new request.
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
  config: RateLimitConfig = {},
): MonoTypeOperatorFunction<T> {
  const throttle = throttleByHeaders<T>(limiter, info, config);
  const retry = retryOn429<T>(limiter, info, config);
  const guard = dailyQuotaGuard<T>(limiter, info, config);
  return (source) => guard(retry(throttle(source)));
}
