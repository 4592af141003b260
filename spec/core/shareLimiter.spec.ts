import { afterAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { memoryStore, providers, shareLimiter } from '../../lib/index.js';
import { redisStore } from '../../lib/stores/redis/index.js';
import { REDIS } from '../helpers/redis.js';

const pipedrive = () => providers.pipedrive({ plan: 'advanced' });
const client = new Redis(REDIS);
afterAll(() => client.disconnect());

const prefix = (name: string) => `share-${process.pid}-${Date.now()}-${name}:`;
const store = (name: string) => redisStore({ client, secret: 'rx-ratelimit-test-secret', prefix: prefix(name) });

describe('shareLimiter: one limiter per provider, key and store in a process', () => {
  it('two pools of one provider and key with different Redis stores get limiters of their own', async () => {
    const a = shareLimiter({ provider: pipedrive(), key: 'token-stores', store: store('a') }, 'pool A');
    const b = shareLimiter({ provider: pipedrive(), key: 'token-stores', store: store('b') }, 'pool B');
    try {
      expect(b.limiter).not.toBe(a.limiter);
    } finally {
      await Promise.all([a.release(), b.release()]);
    }
  });

  it('two registrations with the same store object share one limiter, released by the last', async () => {
    const shared = store('same');
    const a = shareLimiter({ provider: pipedrive(), key: 'token-same-store', store: shared }, 'module A');
    const b = shareLimiter({ provider: pipedrive(), key: 'token-same-store', store: shared }, 'module B');
    expect(b.limiter).toBe(a.limiter);
    await a.release();
    await b.release();
    const c = shareLimiter({ provider: pipedrive(), key: 'token-same-store', store: shared }, 'module C');
    expect(c.limiter).not.toBe(a.limiter);
    await c.release();
  });

  it("a provider's own maxConcurrent is the option left out: spelled out, the same limiter; lifted, another", async () => {
    const a = shareLimiter({ provider: providers.github(), key: 'token-concurrency' }, 'module A');
    const b = shareLimiter({ provider: providers.github(), key: 'token-concurrency', maxConcurrent: 100 }, 'module B');
    expect(b.limiter).toBe(a.limiter);
    expect(() =>
      shareLimiter({ provider: providers.github(), key: 'token-concurrency', maxConcurrent: Infinity }, 'module C'),
    ).toThrow(/maxConcurrent/);
    await Promise.all([a.release(), b.release()]);
  });

  it('no store and memoryStore() are the same place: one limiter', async () => {
    const a = shareLimiter({ provider: pipedrive(), key: 'token-memory' }, 'module A');
    const b = shareLimiter({ provider: pipedrive(), key: 'token-memory', store: memoryStore() }, 'module B');
    expect(b.limiter).toBe(a.limiter);
    await Promise.all([a.release(), b.release()]);
  });
});
