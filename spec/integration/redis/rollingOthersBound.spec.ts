/**
 * A rolling window another client spends too, shared through the Redis store (the tests' Redis,
 * its own key prefix), in real time. The server tells when the oldest call it counts leaves the
 * window, not when the others do: they leave between then and a window after the answer. That
 * latest time bounds a wait; it is not a known wait, so it must not fail a request before its
 * deadline (as in memory: spec/core/rollingBucket.othersBound.spec.ts).
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { defer, firstValueFrom, map, timer } from 'rxjs';

import {
  createLimiter,
  defineProvider,
  rateLimit,
  rollingWindows,
  type Limiter,
  type ResponseLike,
} from '../../../lib/index.js';
import { redisStore } from '../../../lib/stores/redis/index.js';
import { REDIS } from '../../helpers/redis.js';

const clients: Redis[] = [];
const limiters: Limiter[] = [];
afterAll(async () => {
  for (const l of limiters) await l.close();
  for (const c of clients) c.disconnect();
});

const prefix = `rxrl-others-bound-${process.pid}-${Date.now()}:`;
const LIMIT = 6;
const WINDOW_MS = 6_000;
/** The other client's calls leave the window this far apart, the first one this long after ours begin. */
const STEP_MS = 1_000;

/** One rolling bucket; the answer tells the limit, what is left and when the oldest call leaves (epoch ms). */
const provider = defineProvider({
  name: 'rolling-shared',
  bucketKinds: [rollingWindows],
  buckets: [{ name: 'w', limit: LIMIT, windowMs: WINDOW_MS, rolling: true }],
  read: (res: ResponseLike) => {
    const limit = Number(res.header('x-limit'));
    const remaining = Number(res.header('x-remaining'));
    const reset = Number(res.header('x-reset'));
    return {
      outcome: res.status === 429 ? 'limited' : 'ok',
      buckets: [{ name: 'w', limit, remaining, ...(reset > 0 ? { reset: { at: reset } } : {}) }],
    };
  },
});

/** A server counting a sliding log of calls, ours and the other client's. */
function server(others: number[]) {
  const log = [...others];
  const statuses: number[] = [];
  const answer = () => {
    const now = Date.now();
    while (log.length > 0 && (log[0] ?? 0) <= now - WINDOW_MS) log.shift();
    const ok = log.length < LIMIT;
    if (ok) log.push(now);
    statuses.push(ok ? 200 : 429);
    const headers: Record<string, string> = {
      'x-limit': String(LIMIT),
      'x-remaining': String(LIMIT - log.length),
      'x-reset': String((log[0] ?? now) + WINDOW_MS),
    };
    return { status: ok ? 200 : 429, headers, body: '' };
  };
  const send = () => defer(() => timer(10).pipe(map(answer)));
  return { send, statuses };
}

describe('redis store: a rolling window another client spends too', () => {
  it('requests behind the one the told reset lets go wait for the next resets within maxWaitMs: all served, none failed early, no 429', async () => {
    const start = Date.now();
    // 5 calls of another client, leaving the window 1 s, 2 s, … 5 s after ours begin: 1 slot is free.
    const others = Array.from({ length: 5 }, (_, i) => start - WINDOW_MS + (i + 1) * STEP_MS);
    const api = server(others);
    const client = new Redis({ port: REDIS.port, host: REDIS.host });
    client.on('error', () => undefined);
    clients.push(client);
    const limiter = createLimiter({
      provider,
      key: 'tenant-with-another-client',
      // The last of ours goes when the third of theirs leaves (3 s): 1.5 s to spare, where the
      // latest the rest may leave (6 s and more after the answer that read them) is past it.
      maxWaitMs: 4_500,
      store: redisStore({ client, secret: 'rx-ratelimit-test-secret', prefix, timeoutMs: 1_000, retryMs: 200 }),
    });
    limiters.push(limiter);
    const outcomes = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        firstValueFrom(
          api.send().pipe(rateLimit(limiter, { method: 'GET', url: `/items/${i}` }, { maxRetries: 0 })),
        ).then(
          (r) => String(r.status),
          (e: Error) => e.name,
        ),
      ),
    );
    expect(outcomes).toEqual(['200', '200', '200', '200']);
    expect(api.statuses.filter((s) => s === 429)).toEqual([]);
  }, 20_000);
});
