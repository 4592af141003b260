import { defer, throwError, type MonoTypeOperatorFunction } from 'rxjs';
import type { Limiter } from '../core/limiter.js';
import type { RequestInfo } from '../core/request.js';
import type { DailyQuotaGuardConfig } from './config.js';
import { checkOperator, checkReserve, reserveFor } from './policies.js';

export type { DailyQuotaGuardConfig } from './config.js';

/**
 * Fails a request at once with `QuotaExhaustedError` (carrying the bucket and `resumeAt`) when
 * it counts against a long budget that is spent, such as Pipedrive's daily POST/PUT budget,
 * instead of queueing it until tomorrow. Nothing is sent past the budget.
 *
 * ```ts
 * import { createLimiter, dailyQuotaGuard, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.generic(), key: 'my-token' });
 * // post$.pipe(dailyQuotaGuard(limiter, { method: 'POST' }, { reserve: 100 }))
 * ```
 */
export function dailyQuotaGuard<T>(
  limiter: Limiter,
  info: RequestInfo = {},
  config: DailyQuotaGuardConfig = {},
): MonoTypeOperatorFunction<T> {
  checkOperator('dailyQuotaGuard', info, config);
  checkReserve(config);
  const keep = reserveFor(info, config);
  return (source) =>
    defer(() => {
      const error = limiter.checkQuota(info, keep);
      return error ? throwError(() => error) : source;
    });
}
