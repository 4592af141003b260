import { map, retry, throwError, timer, type MonoTypeOperatorFunction } from 'rxjs';
import type { Limiter } from '../core/limiter.js';
import { isRetrySafe, type RequestInfo } from '../core/request.js';
import type { RetryOn429Config } from './config.js';
import {
  RetryableAnswer,
  retryableResponse,
  checkOperator,
  maxRetriesOf,
  observeUnseen,
  retryNonIdempotentOf,
  retryDecision,
} from './policies.js';

export type { RetryOn429Config } from './config.js';

/**
 * On a 429, waits until the limiter may send again, then sends the request again: the time
 * comes from `Retry-After`, else the reset headers, else the body, else a capped backoff with
 * jitter. The 429 pauses every stream of the limiter, not only this one.
 *
 * A success whose body the provider reads as a rate limit counts as a 429: Shopify's GraphQL
 * answers a throttled query with a 200 and a `THROTTLED` error, and that request waits until
 * the cost it asked for has come back, then goes again.
 *
 * Only requests safe to repeat are retried: idempotent methods, a request with an
 * `idempotencyKey`, or `retryNonIdempotent: true`, or one the provider says the server refused
 * before acting on it (Shopify's `THROTTLED`: the query never ran), unless it says
 * `retry: false`. Others end with their 429 (or 200) as received. A wait longer than the limiter's `maxWaitMs` fails at once with `QuotaExhaustedError`;
 * more than `maxRetries` 429s in a row fail with `RetryLimitError` (`cause`: the last 429).
 *
 * ```ts
 * import { createLimiter, providers, retryOn429, throttleByHeaders } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.generic(), key: 'my-token' });
 * // request$.pipe(throttleByHeaders(limiter, info), retryOn429(limiter, info, { maxRetries: 3 }))
 * ```
 */
export function retryOn429<T>(
  limiter: Limiter,
  info: RequestInfo = {},
  config: RetryOn429Config = {},
): MonoTypeOperatorFunction<T> {
  checkOperator('retryOn429', info, config);
  const maxRetries = maxRetriesOf(config);
  const safe = isRetrySafe(info, retryNonIdempotentOf(config));
  return (source) =>
    source.pipe(
      map((value) => {
        const res = retryableResponse(limiter, info, config, value, safe);
        if (res) throw new RetryableAnswer(value, res);
        // A 429 not retried (a POST) still pauses the limiter, if throttleByHeaders did not read it.
        if (!safe) observeUnseen(limiter, info, config, value);
        return value;
      }),
      retry({
        delay: (error: unknown, attempts: number) => {
          const next = retryDecision(limiter, info, config, maxRetries, error, attempts, safe);
          return 'ms' in next ? timer(next.ms, limiter.scheduler) : throwError(() => next.fail);
        },
      }),
    );
}
