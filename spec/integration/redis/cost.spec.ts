/**
 * Request cost with the Redis store, against real Redis: the admission script takes `cost`
 * units of every bucket at once for every process of the credential, in-flight units come back
 * with their leases, and the local share while Redis is away counts units too.
 */
import { describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import {
  createLimiter,
  defineProvider,
  isCostExceedsLimitError,
  responseLike,
  type Limiter,
  type Permit,
  type RateLimitError,
  type RequestInfo,
} from '../../../lib/index.js';
import { redisKeys, redisStore } from '../../../lib/stores/redis/index.js';
import { freePort, REDIS, closedAfterEach } from '../../helpers/redis.js';
import { tempRedis, until } from './fork.js';

const secret = 'rx-ratelimit-test-secret';
const { clients, limiters, tickets } = closedAfterEach();

const client = (port = REDIS.port, offline = true) => {
  const c = offline
    ? new Redis({ port, host: REDIS.host })
    : new Redis({
        port,
        host: '127.0.0.1',
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        retryStrategy: () => 50,
      });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
};

/** Ten units a minute and a thousand an hour; responses tell nothing (the hints rule). */
const provider = defineProvider({
  name: 'cost-redis',
  buckets: [
    { name: 'minute', limit: 10, windowMs: 60_000 },
    { name: 'hour', limit: 1000, windowMs: 3_600_000 },
  ],
  read: () => ({ outcome: 'ok', buckets: [] }),
});

function limiterOn(prefix: string, c: Redis = client(), extra: { timeoutMs?: number; retryMs?: number } = {}) {
  const limiter = createLimiter({
    provider,
    key: 'cost-token',
    coldStartConcurrency: 100,
    store: redisStore({ client: c, secret, prefix, leaseMs: 60_000, ...extra }),
  });
  limiters.push(limiter);
  return limiter;
}

function asker(limiter: Limiter) {
  const granted: Permit[] = [];
  const rejected: RateLimitError[] = [];
  const ask = (info: RequestInfo) =>
    tickets.push(limiter.acquire(info, { granted: (p) => granted.push(p), rejected: (e) => rejected.push(e) }));
  return { granted, rejected, ask };
}

/** The bucket's hash and its in-flight units (one per lease, plus what costly ones hold beyond it). */
async function bucketState(prefix: string, name: string) {
  const keys = redisKeys(prefix, 'cost-redis', 'cost-token', secret);
  const r = client();
  const hash = await r.hgetall(keys.bucket(name));
  const leases = await r.zcard(keys.inflight(name));
  const costFields = Object.keys(hash).filter((k) => k.startsWith('c:')).length;
  return { rem: hash['rem'], leases, units: leases + Number(hash['xu'] || 0), costFields };
}

const settle = () => new Promise((r) => setTimeout(r, 300));

describe('redis store: request cost', () => {
  it('two processes asking cost-3 requests of a 10-unit bucket: three go between them, 9 units in flight', async () => {
    const prefix = `rxrl-cost-${process.pid}-${Date.now()}:`;
    const a = asker(limiterOn(prefix));
    const b = asker(limiterOn(prefix));
    for (let i = 0; i < 4; i++) {
      a.ask({ url: `/a${i}`, cost: { minute: 3 } });
      b.ask({ url: `/b${i}`, cost: { minute: 3 } });
    }
    await until(() => a.granted.length + b.granted.length >= 3);
    await settle();
    expect(a.granted.length + b.granted.length).toBe(3);
    expect(a.rejected).toEqual([]);
    expect(b.rejected).toEqual([]);
    expect(await bucketState(prefix, 'minute')).toMatchObject({ rem: '1', leases: 3, units: 9, costFields: 3 });
    // The other bucket was taken one unit per request.
    expect(await bucketState(prefix, 'hour')).toMatchObject({ rem: '997', leases: 3, units: 3, costFields: 0 });
  });

  it('a release gives back every unit of a costly lease, and leaves no cost behind in the hash', async () => {
    const prefix = `rxrl-cost-${process.pid}-${Date.now()}:`;
    const a = asker(limiterOn(prefix));
    a.ask({ url: '/x', cost: 4 });
    a.ask({ url: '/y', cost: 4 });
    await until(() => a.granted.length >= 2);
    expect((await bucketState(prefix, 'minute')).units).toBe(8);
    // One ends with its response read, the other without one.
    a.granted[0]?.observe(responseLike(200, {}));
    a.granted[0]?.release();
    a.granted[1]?.release();
    await until(() => false, 300).catch(() => undefined);
    expect(await bucketState(prefix, 'minute')).toMatchObject({ leases: 0, units: 0, costFields: 0 });
  });

  it('a cost reconciled by the caller reaches Redis with the answer: the window gets the difference back', async () => {
    const prefix = `rxrl-cost-${process.pid}-${Date.now()}:`;
    const a = asker(limiterOn(prefix));
    const b = asker(limiterOn(prefix));
    a.ask({ url: '/x', cost: 4 });
    a.ask({ url: '/y', cost: 4 });
    await until(() => a.granted.length >= 2);
    expect(await bucketState(prefix, 'minute')).toMatchObject({ rem: '2', units: 8 });
    // Estimated at 4, it really cost 1: 3 units come back for every process.
    a.granted[0]?.reconcile(1);
    a.granted[0]?.observe(responseLike(200, {}));
    a.granted[0]?.release();
    await settle();
    expect(await bucketState(prefix, 'minute')).toMatchObject({ rem: '5', units: 4, costFields: 1 });
    // So another process's cost-4 request fits now (it would have waited for the window).
    b.ask({ url: '/z', cost: 4 });
    await until(() => b.granted.length >= 1);
    expect(await bucketState(prefix, 'minute')).toMatchObject({ rem: '1', units: 8 });
  });

  it('a cost above the limit fails at once once the limit is known, on any process', async () => {
    const prefix = `rxrl-cost-${process.pid}-${Date.now()}:`;
    const a = asker(limiterOn(prefix));
    a.ask({ url: '/warm' });
    await until(() => a.granted.length >= 1);
    a.ask({ url: '/big', cost: { minute: 11 } });
    expect(a.rejected.map((e) => isCostExceedsLimitError(e) && [e.bucket, e.cost, e.limit])).toEqual([
      ['minute', 11, 10],
    ]);
  });

  it('while Redis is away, a process spends its share in units: never more than the share by cost', async () => {
    const port = await freePort();
    const redis = tempRedis(port);
    await redis.start();
    const onTemp = client(port, false);
    const prefix = `rxrl-cost-out-${process.pid}-${Date.now()}:`;
    const limiter = limiterOn(prefix, onTemp, { timeoutMs: 100, retryMs: 50 });
    const events: string[] = [];
    limiter.events$.subscribe((e) => {
      if (e.type === 'store-unavailable' || e.type === 'store-recovered') events.push(e.type);
    });
    const a = asker(limiter);
    try {
      await until(() => onTemp.status === 'ready');
      await redis.stop();
      // Never heard from Redis: one unit per window, like a cold start. A request of 3 does not
      // go on that share (it waits for Redis); one of 1 does.
      a.ask({ url: '/cheap' });
      await until(() => events.includes('store-unavailable'));
      await until(() => a.granted.length >= 1);
      a.ask({ url: '/costly', cost: 3 });
      await settle();
      expect(a.granted.map((p) => p.request.path)).toEqual(['/cheap']);
      expect(limiter.snapshot.queued).toBe(1);
    } finally {
      await redis.stop();
    }
  });
});
