/**
 * `rx-ratelimit/redis`: a store that keeps a limiter's buckets in Redis, so that any number of
 * processes using one credential admit requests against one budget.
 *
 * ```ts
 * import { Redis } from 'ioredis';
 * import { createLimiter, providers } from 'rx-ratelimit';
 * import { redisStore } from 'rx-ratelimit/redis';
 *
 * const token = process.env['API_TOKEN'] ?? '';
 * const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
 * const store = redisStore({ client: redis, secret: process.env.RATE_LIMIT_SECRET! });
 * const limiter = createLimiter({ provider: providers.procore(), key: token, store });
 * ```
 *
 * What is atomic: admission across all of a request's buckets (one Lua script), the merge of
 * each response's figures, pauses. Time is Redis `TIME`. See docs/distributed.md.
 *
 * @packageDocumentation
 */

import { parseOptions } from '../../core/options.js';
import { sharedAdmission } from '../../core/sharedAdmission.js';
import type { LimiterStore } from '../../core/store.js';
import { defineScripts, SharedSubscriber } from './connection.js';
import { redisKeys } from './keys.js';
import { schema, type RedisStoreOptions } from './options.js';
import { RedisSession } from './session.js';

export { redisKeys } from './keys.js';
export type { RedisStoreOptions } from './options.js';

/**
 * A store that keeps every bucket of a limiter in Redis, shared by all processes that use the
 * same provider and key. Pass it to `createLimiter({ store })`. If Redis is down or slow, the
 * limiter reports `store-unavailable`, spends at most its last known share of the budget
 * locally, and goes back to shared state when Redis answers (`store-recovered`).
 *
 * ```ts
 * import { Redis } from 'ioredis';
 * import { createLimiter, providers } from 'rx-ratelimit';
 * import { redisStore } from 'rx-ratelimit/redis';
 *
 * const store = redisStore({ client: new Redis(), secret: process.env.RATE_LIMIT_SECRET!, prefix: 'myapp:rl:' });
 * const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: 'api-token', store });
 * ```
 */
export function redisStore(options: RedisStoreOptions): LimiterStore {
  const { secret, ...opts } = parseOptions('redisStore', schema, options);
  defineScripts(opts.client);
  // One subscriber connection for every limiter of the store (a pool of thousands of tenants
  // included), opened with the first and closed with the last.
  const subscriber = opts.subscribe ? new SharedSubscriber(opts.client) : undefined;
  return {
    kind: 'redis',
    // Leaky (token) buckets too (Shopify): the scripts hold them as LeakyBucket does in memory.
    leaky: true,
    admission: sharedAdmission(),
    open: (ctx) => new RedisSession(opts, ctx, redisKeys(opts.prefix, ctx.provider, ctx.key, secret), subscriber),
  };
}

export {
  deferJobWhenLimited,
  deferWhenLimited,
  type Delayable,
  type DeferOptions,
  type RateLimitable,
} from './deferral.js';
