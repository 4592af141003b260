/**
 * Parsers for rate-limit related HTTP header values. Each is pure, never throws, and returns
 * `undefined` for anything it cannot read with confidence.
 */
export { parseHttpDate } from './httpDate.js';
export { parseTimestamp } from './timestamp.js';
export { parseReset } from './reset.js';
export type { ResetUnit, ResetValue } from './reset.js';
export { parsePeriod } from './period.js';
export { parseRetryAfter, parseXRateLimitRetryAfter } from './retryAfter.js';
export type { RetryAfter } from './retryAfter.js';
export { parseCacheStatusHit } from './cacheStatus.js';
export { parseCount } from './count.js';
export { parseUsedLimit } from './usedLimit.js';
export type { UsedLimit } from './usedLimit.js';
export { parseLegacyRateLimit, parseRateLimit, parseRateLimitDictionary, parseRateLimitPolicy } from './ietf.js';
export type { IetfLimit, IetfPolicy, LegacyRateLimit } from './ietf.js';
