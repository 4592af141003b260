export {
  createLimiter,
  Limiter,
  type AcquireHandlers,
  type Permit,
  type RetryContext,
  type Ticket,
} from './core/limiter.js';
export type { LimiterOptions } from './core/options.js';
export { createLimiterPool, LimiterPool } from './core/pool.js';
export type { LimiterPoolOptions } from './core/poolOptions.js';
export { DuplicateLimiterError, isDuplicateLimiterError, shareLimiter, type SharedLimiter } from './core/registry.js';
export {
  memoryStore,
  type LimiterStore,
  type StoreAcquireOptions,
  type StoreBlock,
  type StoreBucketSpec,
  type StoreBucketState,
  type StoreContext,
  type StoreEvent,
  type StoreGrant,
  type StoreReading,
  type StoreAdmission,
  type StoreSession,
} from './core/store.js';
export { sharedAdmission } from './core/sharedAdmission.js';
export type { RequestHeaders, RequestInfo } from './core/request.js';
export { MAX_COST } from './core/request.js';
export {
  extractResponse,
  responseLike,
  type HeaderSource,
  type ResponseExtractor,
  type ResponseLike,
} from './core/response.js';
export type { CacheOptions } from './core/sharing.js';
export type {
  BucketSnapshot,
  BucketSource,
  LimiterPoolSnapshot,
  LimiterSnapshot,
  LimiterTotals,
} from './core/state.js';
export {
  describeEvent,
  logEvents,
  type EventLogger,
  type LimiterEvent,
  type LimiterEventBase,
  type LimiterEventType,
  type LogEventsConfig,
  type RequestSummary,
} from './core/events.js';
export {
  BlockedError,
  CostExceedsLimitError,
  LimiterClosedError,
  LimiterPoolFullError,
  QueueFullError,
  QuotaExhaustedError,
  RateLimitError,
  RetryLimitError,
  isBlockedError,
  isCostExceedsLimitError,
  isLimiterClosedError,
  isLimiterPoolFullError,
  isQueueFullError,
  isQuotaExhaustedError,
  isRateLimitError,
  isRetryLimitError,
  rawCauseOf,
  type CauseSummary,
  type ErrorContext,
} from './core/errors.js';
export { throttleByHeaders, type ThrottleByHeadersConfig } from './operators/throttleByHeaders.js';
export { retryOn429, type RetryOn429Config } from './operators/retryOn429.js';
export { dailyQuotaGuard, type DailyQuotaGuardConfig } from './operators/dailyQuotaGuard.js';
export { rateLimit, type RateLimitConfig } from './operators/rateLimit.js';
export * from './providers/index.js';
export * from './headers/index.js';
