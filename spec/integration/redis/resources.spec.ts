/**
 * generic({ resourceHeader }) with the Redis store, over real sockets against the GitHub
 * simulator: the lane of requests whose resource is not known yet, and one bucket per resource,
 * held in Redis. Outcomes only (no 429, nothing lost), no timing margins.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import { createLimiter, providers, type Permit } from '../../../lib/index.js';
import { rateLimitedFetch } from '../../../lib/adapters/fetch.js';
import { redisStore } from '../../../lib/stores/redis/index.js';
import { startSimulator } from '../../../lib/testing/index.js';
import { REDIS } from '../../helpers/redis.js';

const redis = new Redis({ port: REDIS.port, host: '127.0.0.1' });
redis.on('error', () => undefined);
afterAll(() => redis.disconnect());

describe('generic({ resourceHeader }) with the Redis store', () => {
  it('paces search and core as separate buckets, with no 429 and nothing lost', async () => {
    // A minute lasts 1 s: search has 5 a minute, so 12 searches take two more windows.
    const sim = await startSimulator({ timeScale: 60, github: { search: 5, limitedStatus: 429 } });
    const limiter = createLimiter({
      provider: providers.generic({ name: 'github', resourceHeader: 'x-ratelimit-resource' }),
      key: 'gh-redis-token',
      store: redisStore({ client: redis, secret: 'rx-ratelimit-test-secret', prefix: `rxrl-res-${process.pid}:` }),
    });
    const apiFetch = rateLimitedFetch(limiter);
    const headers = { Authorization: 'Bearer gh-redis-token' };
    try {
      const paths = Array.from({ length: 42 }, (_, i) =>
        i % 3 === 0 && i < 36 ? `/search/issues?q=${i}` : `/repos/o/r/issues/${i}`,
      );
      const statuses = await Promise.all(
        paths.map(async (path) => {
          const res = await apiFetch(`${sim.urlFor('github')}${path}`, { headers });
          await res.arrayBuffer();
          return res.status;
        }),
      );
      expect(statuses.filter((s) => s === 200)).toHaveLength(42);
      expect(sim.engine.statsFor('github', 'Bearer gh-redis-token')).toMatchObject({ ok: 42, limited: 0 });
      const names = limiter.snapshot.buckets.map((b) => b.name).sort();
      expect(names).toEqual(expect.arrayContaining(['core', 'search']));
    } finally {
      await limiter.close();
      await sim.close();
    }
  }, 30_000);
});

describe('a bucket per endpoint with the Redis store', () => {
  it('keeps the last figures of a bounded number of them for an outage, however many paths are sent', async () => {
    const prefix = `rxrl-known-${process.pid}:`;
    const limiter = createLimiter({
      provider: providers.atlassian(),
      key: 'atlassian-many-paths',
      store: redisStore({ client: redis, secret: 'rx-ratelimit-test-secret', prefix }),
    });
    try {
      for (let i = 0; i < 300; i++) {
        const permit = await new Promise<Permit>((granted, rejected) =>
          limiter.acquire(
            { method: 'GET', url: `https://x.atlassian.net/rest/api/3/project/P${i}x/roles` },
            {
              granted,
              rejected,
            },
          ),
        );
        permit.release();
      }
      // Each path a bucket of its own (its burst), each read from Redis once.
      const session = (limiter as unknown as { engine: { admission: { session: { known: Map<string, unknown> } } } })
        .engine.admission.session;
      expect(session.known.size).toBeGreaterThan(100);
      expect(session.known.size).toBeLessThanOrEqual(256);
    } finally {
      await limiter.close();
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
    }
  });
});
