import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import axios from 'axios';
import { defer, firstValueFrom } from 'rxjs';
import { createLimiter, providers, rateLimit, type Limiter } from '../../lib/index.js';
import { attachRateLimiter } from '../../lib/adapters/axios.js';
import { rateLimitedFetch } from '../../lib/adapters/fetch.js';
import { startSimulator, type Simulator } from '../../lib/testing/index.js';

/**
 * GitHub answers its rate limits with 403 (`x-ratelimit-remaining: 0`, or `retry-after` and
 * "secondary rate limit"), and a permission error with 403 too. Every way in sends a request
 * safe to repeat again after a rate-limit 403, as after a 429, and hands a permission 403 back
 * at once. The GitHub simulator over loopback.
 */
type Get = (path: string, init?: { method?: string; headers?: Record<string, string> }) => Promise<number>;

/** The server's budget is per token; a limiter's state is per its `key`. */
const auth = (token: string) => ({ authorization: `token ${token}` });

const WAYS: { name: string; make: (limiter: Limiter, base: string, token: string) => Get }[] = [
  {
    name: 'rateLimitedFetch',
    make: (limiter, base, token) => {
      const limited = rateLimitedFetch(limiter);
      return async (path, init = {}) =>
        (await limited(`${base}${path}`, { ...init, headers: { ...init.headers, ...auth(token) } })).status;
    },
  },
  {
    name: 'axios attachRateLimiter',
    make: (limiter, base, token) => {
      const api = axios.create({ baseURL: base, validateStatus: () => true });
      attachRateLimiter(api, limiter);
      return async (path, init = {}) =>
        (await api.request({ url: path, method: init.method ?? 'GET', headers: { ...init.headers, ...auth(token) } }))
          .status;
    },
  },
  {
    name: 'rateLimit operator over fetch',
    make:
      (limiter, base, token) =>
      async (path, init = {}) => {
        const method = init.method ?? 'GET';
        const headers = { ...init.headers, ...auth(token) };
        const key = init.headers?.['idempotency-key'];
        const res = await firstValueFrom(
          defer(() => fetch(`${base}${path}`, { method, headers })).pipe(
            // The operator sees no request: the key is told in its info.
            rateLimit(limiter, { method, url: path, headers, ...(key ? { idempotencyKey: key } : {}) }),
          ),
        );
        return res.status;
      },
  },
];

describe.each(WAYS)('a GitHub rate-limit 403 is sent again: $name', ({ make }) => {
  let sim: Simulator;
  beforeAll(async () => {
    // An hour lasts 2 s. Content creation runs its own simulator below.
    sim = await startSimulator({ timeScale: 1800, latencyMs: 2, github: { core: 3 } });
  });
  afterAll(async () => {
    await sim.close();
  });

  it('GETs past a primary limit another process spent: each is answered 200 after the reset', async () => {
    // Two processes on one token, not sharing a store: the other spends what this one counted on.
    const token = `primary-${Math.random()}`;
    const mine = createLimiter({ provider: providers.github(), key: `${token}:this-process` });
    const other = createLimiter({ provider: providers.github(), key: `${token}:other-process` });
    const get = make(mine, sim.urlFor('github'), token);
    expect(await get('/repos/o/r/issues/0')).toBe(200);
    expect(await make(other, sim.urlFor('github'), token)('/repos/o/r/issues/0')).toBe(200);
    expect(mine.snapshot.buckets.find((b) => b.name === 'core')).toMatchObject({ remaining: 2 });
    const statuses = await Promise.all(Array.from({ length: 3 }, (_, i) => get(`/repos/o/r/issues/${i + 1}`)));
    expect(statuses).toEqual([200, 200, 200]);
    const counts = Object.values(sim.stats().github).find((c) => c.ok === 5);
    // The server's 403s reached no caller; none was sent while the limiter was paused.
    expect(counts).toMatchObject({ ok: 5, sentWhileLimited: 0 });
    expect(counts?.limited).toBeGreaterThanOrEqual(1);
  });

  it('a permission 403 comes back at once, sent once, and pauses nothing', async () => {
    const token = `forbidden-${Math.random()}`;
    const limiter = createLimiter({ provider: providers.github(), key: token });
    const get = make(limiter, sim.urlFor('github'), token);
    expect(await get('/forbidden/hooks')).toBe(403);
    expect(limiter.snapshot.pausedUntil ?? 0).toBeLessThanOrEqual(Date.now());
    const counts = Object.values(sim.stats().github).find((c) => c.total === 1);
    expect(counts).toMatchObject({ limited: 0 });
  });

  it('a write with an idempotency key past the secondary limit is sent again after retry-after', async () => {
    const own = await startSimulator({ timeScale: 60, latencyMs: 2, github: { contentPerMinute: 2 } });
    try {
      // The profile leaves the content-creation limit out, so only the 403 tells of it.
      const token = `writer-${Math.random()}`;
      const limiter = createLimiter({ provider: providers.github({ contentCreation: false }), key: token });
      const post = make(limiter, own.urlFor('github'), token);
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        statuses.push(
          await post('/repos/o/r/issues', {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': `create-${i}` },
          }),
        );
      }
      expect(statuses.every((s) => s === 200 || s === 201)).toBe(true);
      expect(Object.values(own.stats().github)).toEqual([expect.objectContaining({ limited: 1, sentWhileLimited: 0 })]);
    } finally {
      await own.close();
    }
  });
});
