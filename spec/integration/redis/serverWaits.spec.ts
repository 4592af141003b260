/**
 * Server-dictated waits with the Redis store, against the tests' Redis (spec/helpers/redis.ts; own
 * key prefix): what a 429 or a reset writes to Redis is capped, `resume()` and `pause(0)` clear
 * it for every process, a past Retry-After date writes nothing, an endless block lasts in Redis
 * as long as in memory, and huge figures reach Lua as plain digits. Each limiter has its own
 * ioredis client, as separate processes would.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import {
  createLimiter,
  defineProvider,
  providers,
  responseLike,
  type Limiter,
  type LimiterOptions,
  type Permit,
  type RequestInfo,
  type Ticket,
} from '../../../lib/index.js';
import { redisKeys, redisStore } from '../../../lib/stores/redis/index.js';
import { REDIS } from '../../helpers/redis.js';

const secret = 'rx-ratelimit-test-secret';

const clients: Redis[] = [];
const limiters: Limiter[] = [];
const tickets: Ticket[] = [];
const client = () => {
  const c = new Redis({ port: REDIS.port, host: REDIS.host });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
};
afterAll(async () => {
  for (const t of tickets) t.cancel();
  for (const l of limiters) await l.close();
  for (const c of clients) c.disconnect();
});

const prefix = `rxrl-waits-${process.pid}-${Date.now()}:`;
const DAY = 86_400_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function limiter(key: string, extra: Partial<LimiterOptions> = {}, keyTtlMs = 60_000): Limiter {
  const l = createLimiter({
    provider: providers.generic(),
    key,
    maxWaitMs: Infinity,
    // A Redis call slower than `timeoutMs` sends the limiter local, and what it merges stays out
    // of Redis: not what this spec is about. A 500 ms Redis stall lost a day-long reset this way.
    store: redisStore({ client: client(), secret, prefix, timeoutMs: 5_000, retryMs: 200, keyTtlMs }),
    ...extra,
  });
  limiters.push(l);
  return l;
}

function acquire(l: Limiter, info: RequestInfo = { method: 'GET', url: '/x' }): Promise<Permit> {
  return new Promise((resolve, reject) => {
    tickets.push(l.acquire(info, { granted: resolve, rejected: reject }));
  });
}

/** Sends one request through `l` that is answered with `status` and `headers`. */
async function send(l: Limiter, status: number, headers: Record<string, string>): Promise<void> {
  const p = await acquire(l);
  p.observe(responseLike(status, headers));
  p.release();
}

const ok = { 'x-ratelimit-limit': '100', 'x-ratelimit-remaining': '90', 'x-ratelimit-reset': '60' };

describe('redis store: server-dictated waits', () => {
  it('Retry-After: 999999999 writes no 31-year pause to Redis: the pause key lives a backoff plus keyTtlMs', async () => {
    const key = 'huge-retry-after';
    const a = limiter(key);
    await send(a, 200, ok);
    await send(a, 429, { 'retry-after': '999999999' });
    await sleep(100);
    const k = redisKeys(prefix, 'generic', key, secret);
    const pttl = await client().pttl(k.pause);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(60_000 + 1000);
    expect(a.snapshot.pausedUntil ?? 0).toBeLessThan(Date.now() + 1100);
  });

  it('resume() on one process clears the pause and the remembered resets in Redis; another process sends at once', async () => {
    const key = 'resume-everywhere';
    const a = limiter(key);
    const b = limiter(key);
    // Empty for 20 hours (within the cap) and a 429 asking for 2 hours: both obeyed.
    await send(a, 200, ok);
    await send(a, 429, {
      'x-ratelimit-limit': '100',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': String(20 * 3600),
      'retry-after': String(2 * 3600),
    });
    await sleep(100);
    let granted = false;
    const waiting = acquire(b).then((p) => {
      granted = true;
      return p;
    });
    await sleep(300);
    expect(granted).toBe(false);
    const k = redisKeys(prefix, 'generic', key, secret);
    expect(await client().hget(k.pause, 'until')).not.toBeNull();
    const resumedAt = Date.now();
    a.resume();
    const p = await waiting;
    // The other process hears it (pub/sub) and its queued request goes, probing the bucket.
    expect(Date.now() - resumedAt).toBeLessThan(2000);
    p.observe(responseLike(200, ok));
    p.release();
    await sleep(100);
    expect(await client().hget(k.pause, 'until')).toBeNull();
    expect(
      Number(await client().hget(k.bucket('default'), 'rst')) - Number(await client().hget(k.bucket('default'), 'at')),
    ).toBeLessThanOrEqual(61_000);
    expect(b.snapshot.pausedUntil).toBeNull();
  });

  it('pause(0) on one process ends a pause on every process', async () => {
    const key = 'pause-zero-everywhere';
    const a = limiter(key);
    const b = limiter(key);
    await send(a, 200, ok);
    a.pause(3_600_000);
    await sleep(100);
    let granted = false;
    void acquire(b).then((p) => {
      granted = true;
      p.release();
    });
    await sleep(300);
    expect(granted).toBe(false);
    a.pause(0);
    const started = Date.now();
    while (!granted && Date.now() - started < 3000) await sleep(20);
    expect(granted).toBe(true);
    expect(b.snapshot.pausedUntil).toBeNull();
  });

  it('a process whose maxServerWaitMs is shorter than a pause the others obey keeps it, never lifts it', async () => {
    const key = 'shorter-cap';
    const a = limiter(key);
    const b = limiter(key, { maxServerWaitMs: 1000 });
    await send(a, 200, ok);
    await send(a, 429, { 'retry-after': '4' });
    const answered = Date.now();
    // b obeys it a second at a time (its cap), asking the store again after each.
    const gotB = acquire(b).then((p) => (p.release(), Date.now() - answered));
    await sleep(1500);
    const k = redisKeys(prefix, 'generic', key, secret);
    expect(await client().hget(k.pause, 'until')).not.toBeNull();
    // Neither process sends before the server's 4 s are over (what is late is fine, not early).
    const gotA = acquire(a).then((p) => (p.release(), Date.now() - answered));
    expect(await gotB).toBeGreaterThanOrEqual(3500);
    expect(await gotA).toBeGreaterThanOrEqual(3500);
  });

  it('a 31-year pause already in Redis (written by an earlier version) is lifted, not obeyed', async () => {
    const key = 'inherited-pause';
    const k = redisKeys(prefix, 'generic', key, secret);
    const c = client();
    const [seconds] = await c.time();
    await c.hset(k.pause, 'until', String(Number(seconds) * 1000 + 999_999_999_000), 'reason', 'retry-after');
    await c.pexpire(k.pause, 60_000);
    const a = limiter(key);
    const started = Date.now();
    const p = await acquire(a);
    p.release();
    expect(Date.now() - started).toBeLessThan(2000);
    await sleep(100);
    expect(await c.hget(k.pause, 'until')).toBeNull();
  });

  it('a Retry-After date in the past writes no pause (never a pause hash without a TTL)', async () => {
    const key = 'past-retry-after';
    const a = limiter(key);
    await send(a, 200, ok);
    await send(a, 429, { 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' });
    await sleep(100);
    const k = redisKeys(prefix, 'generic', key, secret);
    const pttl = await client().pttl(k.pause);
    // Gone (-2), or with a TTL: the backoff that replaced the past date; never -1 (no TTL).
    expect(pttl === -2 || pttl > 0).toBe(true);
  });

  it('an endless block (blockCooldownMs: Infinity) outlives keyTtlMs in Redis, as in memory, until unblock()', async () => {
    const key = 'endless-block';
    const opts = { provider: providers.pipedrive({ plan: 'essential' }), blockCooldownMs: Infinity };
    const a = limiter(key, opts, 1000);
    await send(a, 403, { 'content-type': 'text/html' });
    expect(a.isBlocked).toBe(true);
    await sleep(1500); // past keyTtlMs
    // A process started now (a restart) adopts the block instead of sending.
    const later = limiter(key, opts, 1000);
    await expect(acquire(later)).rejects.toMatchObject({ name: 'BlockedError' });
    later.unblock();
    await sleep(100);
    const k = redisKeys(prefix, 'pipedrive', key, secret);
    const pttl = await client().pttl(k.pause);
    expect(pttl === -2 || pttl > 0).toBe(true);
  });

  it('huge figures from a server reach Lua clamped, stored as plain digits (no 1e+20)', async () => {
    const provider = defineProvider({
      name: 'huge',
      buckets: [{ name: 'main', windowMs: 60_000 }],
      read: () => ({ outcome: 'ok', buckets: [{ name: 'main', limit: 1e20, remaining: 123456789012345680 }] }),
    });
    const key = 'huge-figures';
    const a = limiter(key, { provider });
    await send(a, 200, {});
    await sleep(100);
    const k = redisKeys(prefix, 'huge', key, secret);
    const [lim, rem] = await client().hmget(k.bucket('main'), 'lim', 'rem');
    expect(lim).toMatch(/^\d+$/);
    expect(rem).toMatch(/^\d+$/);
    expect(Number(lim)).toBe(1e12);
  });

  it('a day-long reset is still obeyed through Redis (the default cap is 26 h)', async () => {
    const key = 'daily-reset';
    const a = limiter(key);
    await send(a, 200, {
      'x-ratelimit-limit': '100',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': String(86_000),
    });
    await sleep(100);
    const k = redisKeys(prefix, 'generic', key, secret);
    const [rst, at] = await client().hmget(k.bucket('default'), 'rst', 'at');
    expect(Number(rst) - Number(at)).toBeGreaterThan(DAY - 1_000_000);
  });
});
