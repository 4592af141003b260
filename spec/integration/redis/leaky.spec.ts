/**
 * The Redis store does not hold a leaky (token) bucket: a limiter for such a provider with the
 * Redis store is refused when it is created, by a TypeError that names the combination, and no
 * session is opened. A real Redis (spec/helpers/redis.ts).
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import { createLimiter, defineProvider, providers } from '../../../lib/index.js';
import { redisStore } from '../../../lib/stores/redis/index.js';
import { REDIS } from '../../helpers/redis.js';

const client = new Redis({ ...REDIS, lazyConnect: true });
afterAll(() => client.disconnect());

describe('leaky buckets and the Redis store', () => {
  it('createLimiter refuses providers.shopify() with the Redis store, naming provider, bucket and store', async () => {
    const prefix = `leaky-${Date.now()}`;
    const store = redisStore({ client, secret: 'test-secret-for-leaky', prefix });
    const make = (api: 'rest' | 'graphql') =>
      createLimiter({ provider: providers.shopify({ api }), key: 'my-shop.myshopify.com', store });
    expect(() => make('rest')).toThrow(TypeError);
    expect(() => make('rest')).toThrow(
      'createLimiter: provider "shopify" uses a leaky (token) bucket ("rest"), which the redis store does not support; use the memory store (leave `store` out) for this provider',
    );
    expect(() => make('graphql')).toThrow(/"graphql"/);
    // Nothing was written: the limiter never opened a session.
    await client.connect().catch(() => undefined);
    expect(await client.keys(`${prefix}*`)).toEqual([]);
  });

  it('a provider that names a leaky bucket only for some requests fails those requests at once', () => {
    const store = redisStore({ client, secret: 'test-secret-for-leaky', prefix: `leaky-late-${Date.now()}` });
    const mixed = defineProvider({
      name: 'mixed',
      buckets: (r) =>
        r.url === '/leaky'
          ? [{ name: 'tokens', limit: 10, restorePerSecond: 1 }]
          : [{ name: 'w', limit: 10, windowMs: 1000 }],
      read: () => ({ outcome: 'ok', buckets: [] }),
    });
    const limiter = createLimiter({ provider: mixed, key: 'k', store });
    const handlers = { granted: () => undefined, rejected: () => undefined };
    expect(() => limiter.acquire({ url: '/leaky' }, handlers)).toThrow(/"tokens"/);
    void limiter.close();
  });
});
