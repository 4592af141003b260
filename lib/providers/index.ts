import { generic, ietf } from './generic.js';

/**
 * Ready-made provider profiles. Pick one per limiter:
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.ietf(), key: 'my-token' });
 * ```
 */
export const providers = { generic, ietf } as const;

export { defineProvider, type ProviderDefinition } from './define.js';
export type { GenericProviderOptions } from './generic.js';
export { readCounters, readIetf, readRetryAfter, type CounterHeaders } from './read.js';
export type { BucketReading, BucketSpec, Provider, ResponseReading, RetrySource } from './types.js';
