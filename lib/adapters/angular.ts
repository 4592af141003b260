/**
 * `rx-ratelimit/angular`: limiters through Angular's DI (`provideRateLimiting`), a functional
 * `HttpInterceptorFn` that paces `HttpClient` calls through them and feeds every response's
 * rate-limit headers back, the server render's readings carried to the browser, a ticking
 * status signal (`limiterStatus`) and a status component (`RateLimitStatus`).
 *
 * ```ts
 * import { provideHttpClient, withInterceptors } from '@angular/common/http';
 * import { createLimiter, providers } from 'rx-ratelimit';
 * import { provideRateLimiting, rateLimitingInterceptor } from 'rx-ratelimit/angular';
 *
 * export const appProviders = [
 *   provideRateLimiting({
 *     limiters: {
 *       'api.pipedrive.com': () => createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: 'user-42' }),
 *     },
 *   }),
 *   provideHttpClient(withInterceptors([rateLimitingInterceptor()])),
 * ];
 * ```
 *
 * Only this module (and the files it re-exports) imports Angular (`@angular/common/http`,
 * `@angular/core`), optional peer dependencies.
 *
 * @packageDocumentation
 */

export {
  RATE_LIMIT_COST,
  RATE_LIMIT_PRIORITY,
  RATE_LIMIT_RETRY,
  RATE_LIMIT_SHARE_KEY,
  RATE_LIMIT_SKIP,
} from './angularContext.js';
export type { CorsBlockedReport, MissingHeadersReport } from './angularDiagnostics.js';
export { rateLimitInterceptor, type LimiterSelector, type RateLimitInterceptorOptions } from './angularInterceptor.js';
export { extractAngularResponse } from './angularResponse.js';
export type { RecordedResponse } from './angularTransfer.js';
/** @internal */
export { buildInterceptor } from './angularInterceptor.js';
/** @internal */
export { recordedResponses, replayResponses } from './angularTransfer.js';
export {
  injectLimiter,
  injectLimiterPool,
  provideRateLimiting,
  RATE_LIMITER_POOLS,
  RATE_LIMITERS,
  rateLimitingInterceptor,
  type BoundLimiterPool,
  type LimiterFactory,
  type LimiterPoolBinding,
  type RateLimitingOptions,
} from './angularDi.js';
export {
  limiterPoolStatus,
  limiterStatus,
  poolStatusAt,
  RateLimitStatus,
  statusAt,
  type BucketStatus,
  type LimiterPoolStatus,
  type LimiterPoolStatusOptions,
  type LimiterStatus,
  type LimiterStatusOptions,
} from './angularStatus.js';
