/** The settings of the operators, in one file that every operator may import (types only). */
import type { ResponseExtractor } from '../core/response.js';

/** Settings of {@link throttleByHeaders}. */
export interface ThrottleByHeadersConfig {
  /** Finds the response in what the request emits or throws. @default the limiter's */
  readonly extractResponse?: ResponseExtractor;
}

/** Settings of {@link retryOn429}. */
export interface RetryOn429Config {
  /** Retries after the first attempt; past them the request fails with `RetryLimitError`. @default 5 */
  readonly maxRetries?: number;
  /**
   * Retry POST and PATCH too, even without an idempotency key. Only if the API does not apply a
   * request it answered with 429 (most do not, but not all say so). @default false
   */
  readonly retryNonIdempotent?: boolean;
  /**
   * Statuses to retry, whatever the provider reads. An answer the provider reads as a rate limit
   * (GitHub's rate-limit 403, Shopify's `THROTTLED` 200) is retried too. @default [429]
   */
  readonly statuses?: readonly number[];
  /** Finds the response in what the request emits or throws. @default the limiter's */
  readonly extractResponse?: ResponseExtractor;
}

/** Settings of {@link dailyQuotaGuard}. */
export interface DailyQuotaGuardConfig {
  /**
   * Units of each quota bucket kept back for requests whose priority is at least
   * `reservePriority`: ordinary requests fail once only the reserve is left. @default 0
   */
  readonly reserve?: number;
  /** Priority at or above which a request may use the reserve. @default 1 */
  readonly reservePriority?: number;
}

/**
 * Settings of {@link rateLimit}: those of the three operators it composes (`extractResponse`,
 * which two of them share, is declared once, by {@link RetryOn429Config}).
 */
export type RateLimitConfig = Omit<ThrottleByHeadersConfig, 'extractResponse'> &
  RetryOn429Config &
  DailyQuotaGuardConfig;
