import { defer, finalize, map, of, share, tap, type MonoTypeOperatorFunction, type Observable } from 'rxjs';
import type { Limiter } from '../core/limiter.js';
import { shareKeyOf, type RequestInfo } from '../core/request.js';
import { copyOf } from '../core/sharing.js';
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
  config: RateLimitConfig = {},
): MonoTypeOperatorFunction<T> {
  const throttle = throttleByHeaders<T>(limiter, info, config);
  const retry = retryOn429<T>(limiter, info, config);
  const guard = dailyQuotaGuard<T>(limiter, info, config);
  const key = shareKeyOf(info);
  const sharing = limiter.sharing;
  if (key === undefined || (!sharing.dedupe && !sharing.caching)) return (source) => guard(retry(throttle(source)));
  const extract = config.extractResponse ?? limiter.extractResponse;

  return (source) =>
    defer(() => {
      const hit = sharing.cached(key, limiter.now());
      if (hit) {
        limiter.noteSaved(info, 'cache');
        return of(copyOf(hit.value as T));
      }
      const pending = sharing.dedupe ? (sharing.pending(key) as Observable<T> | undefined) : undefined;
      if (pending) {
        limiter.noteSaved(info, 'in-flight');
        return pending.pipe(map(copyOf));
      }
      const request$: Observable<T> = guard(retry(throttle(source))).pipe(
        tap((value) => {
          const status = extract(value)?.status;
          if (sharing.caching && status !== undefined && status >= 200 && status < 300)
            sharing.store(key, copyOf(value), limiter.now());
        }),
        finalize(() => sharing.untrack(key, request$)),
        share(),
      );
      if (sharing.dedupe) sharing.track(key, request$);
      return request$.pipe(map(copyOf));
    });
}
