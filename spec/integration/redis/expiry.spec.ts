/**
 * Every key the Redis store writes expires (`keyTtlMs` after its last write; an endless block
 * aside, kept until `unblock()`): a limiter nobody uses leaves nothing behind. Against the tests'
 * Redis (spec/helpers/redis.ts), own key prefix.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import { createLimiter, defineProvider, leakyBuckets, type Limiter, type Permit } from '../../../lib/index.js';
import { redisKeys, redisStore } from '../../../lib/stores/redis/index.js';
import { REDIS } from '../../helpers/redis.js';

const secret = 'rx-ratelimit-test-secret';
const prefix = `rxrl-expiry-${process.pid}-${Date.now()}:`;

const clients: Redis[] = [];
const limiters: Limiter[] = [];
afterAll(async () => {
  for (const l of limiters) await l.close();
  for (const c of clients) c.disconnect();
});

describe('redis store: keys expire', () => {
  it("a request let go after its leaky bucket's hash expired leaves no key that lives for good", async () => {
    const provider = defineProvider({
      name: 'leaky',
      buckets: [{ name: 'main', limit: 40, restorePerSecond: 2 }],
      bucketKinds: [leakyBuckets],
      read: () => ({ outcome: 'ok', buckets: [] }),
    });
    const client = new Redis({ port: REDIS.port, host: REDIS.host });
    client.on('error', () => undefined);
    clients.push(client);
    // Leases outlive the bucket's hash: a request may take longer than keyTtlMs.
    const store = redisStore({ client, secret, prefix, keyTtlMs: 1000, leaseMs: 10_000 });
    const l = createLimiter({ provider, key: 'slow-request', store });
    limiters.push(l);
    const permit = await new Promise<Permit>((resolve, reject) => {
      l.acquire({ method: 'GET', url: '/x' }, { granted: resolve, rejected: reject });
    });
    const k = redisKeys(prefix, 'leaky', 'slow-request', secret);
    // The request is still out when its bucket's hash expires (nothing wrote it since).
    const since = Date.now();
    while ((await client.exists(k.bucket('main'))) === 1) {
      if (Date.now() - since > 10_000) throw new Error('the bucket hash never expired');
      await new Promise((r) => setTimeout(r, 100));
    }
    permit.release();
    await new Promise((r) => setTimeout(r, 200));
    // Gone (-2), or with a TTL: never -1.
    const pttl = await client.pttl(k.bucket('main'));
    expect(pttl === -2 || pttl > 0).toBe(true);
  });
});
