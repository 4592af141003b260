/**
 * A limiter pool on the Redis store, against a real Redis: every limiter of a store shares one
 * subscriber connection (the server's client count stays constant however many tenants), the
 * connection closes with the last limiter, a paused limiter is kept until its pause is over, and
 * a spent bucket comes back from Redis to the tenant's next limiter.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import {
  createLimiter,
  createLimiterPool,
  defineProvider,
  responseLike,
  type Limiter,
  type Permit,
} from '../../../lib/index.js';
import { redisStore } from '../../../lib/stores/redis/index.js';
import { REDIS } from '../../helpers/redis.js';
import { until } from './fork.js';

const secret = 'rx-ratelimit-test-secret';
const prefix = `rxrl-pool-${process.pid}-${Date.now()}:`;

const clients: Redis[] = [];
/** A client whose connections (duplicates included) carry `name` in `CLIENT LIST`. */
const client = (name: string) => {
  const c = new Redis({ port: REDIS.port, host: REDIS.host, connectionName: name });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
};
afterAll(() => {
  for (const c of clients) c.disconnect();
});

const fixed = (limit: number) =>
  defineProvider({
    name: 'fixed',
    buckets: [{ name: 'main', limit, windowMs: 10_000 }],
    read(res) {
      const remaining = res.header('x-ratelimit-remaining');
      const reset = res.header('x-ratelimit-reset');
      return {
        outcome: res.status === 429 ? 'limited' : res.status === 403 ? 'blocked' : 'ok',
        buckets:
          remaining === undefined
            ? []
            : [{ name: 'main', limit, remaining: Number(remaining), reset: { inMs: Number(reset ?? 10) * 1000 } }],
      };
    },
  });

const acquire = (l: Limiter) =>
  new Promise<Permit>((resolve, reject) =>
    l.acquire({ method: 'GET', url: '/x' }, { granted: resolve, rejected: reject }),
  );

/** Connections in Redis named `name`. */
async function connections(admin: Redis, name: string): Promise<number> {
  const list = (await admin.call('CLIENT', 'LIST')) as string;
  return list.split('\n').filter((line) => line.includes(` name=${name} `)).length;
}

/** Channels the connections named `name` are subscribed to (`sub=` in `CLIENT LIST`). */
async function subscriptions(admin: Redis, name: string): Promise<number> {
  const list = (await admin.call('CLIENT', 'LIST')) as string;
  return list
    .split('\n')
    .filter((line) => line.includes(` name=${name} `))
    .reduce((sum, line) => sum + Number(/ sub=(\d+)/.exec(line)?.[1] ?? 0), 0);
}

/**
 * Waits (at most `timeoutMs`) for `check` to hold: the subscriber connects, names itself,
 * subscribes and closes on its own time, later on a busy machine. The checks after it judge.
 */
const eventually = (check: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> =>
  until(check, timeoutMs).catch(() => undefined);

describe('the Redis store serves many limiters over one subscriber connection', () => {
  it.each([20, 1000])('%i limiters on one store: the client count stays constant', async (n) => {
    const name = `rxrl-pool-conn-${n}-${process.pid}`;
    const admin = client(`rxrl-pool-admin-${process.pid}`);
    const c = client(name);
    await c.ping();
    const store = redisStore({ client: c, secret, prefix });
    const limiters: Limiter[] = [];
    limiters.push(createLimiter({ provider: fixed(10), key: `tenant-0-${n}`, store }));
    // The client and the store's one subscriber, once it has subscribed to the first channel.
    await eventually(async () => (await subscriptions(admin, name)) === 1);
    expect(await connections(admin, name)).toBe(2);
    for (let i = 1; i < n; i++) limiters.push(createLimiter({ provider: fixed(10), key: `tenant-${i}-${n}`, store }));
    // Counted once every limiter's channel is subscribed: a connection per limiter would have
    // subscribed by then too, and shows here.
    await eventually(async () => (await subscriptions(admin, name)) === n);
    expect(await subscriptions(admin, name)).toBe(n);
    expect(await connections(admin, name)).toBe(2);
    // Each limiter still hears its own channel: a block met by another process reaches it at once.
    const other = createLimiter({
      provider: fixed(10),
      key: `tenant-${n - 1}-${n}`,
      store: redisStore({ client: client(`${name}-other`), secret, prefix }),
    });
    const target = limiters[n - 1] as Limiter;
    const neighbour = limiters[n - 2] as Limiter;
    expect(target.isBlocked).toBe(false);
    const p = await acquire(other);
    p.observe(responseLike(403, {}));
    p.release();
    // The notice comes over pub/sub, later on a busy machine; once the target has it, a notice
    // heard on the wrong channel would have blocked the neighbour too.
    await eventually(() => target.isBlocked);
    expect(target.isBlocked).toBe(true);
    expect(neighbour.isBlocked).toBe(false);
    other.unblock();
    await other.close();
    // Closing every limiter closes the shared connection: nothing left to hold a process open.
    await Promise.all(limiters.map((l) => l.close()));
    await eventually(async () => (await connections(admin, name)) <= 1);
    expect(await connections(admin, name)).toBe(1);
  });

  it('a pool of 200 tenants on one store opens one subscriber, and closing the pool closes it', async () => {
    const name = `rxrl-pool-size-${process.pid}`;
    const admin = client(`rxrl-pool-admin2-${process.pid}`);
    const c = client(name);
    const pool = createLimiterPool({ provider: fixed(10), store: redisStore({ client: c, secret, prefix }) });
    for (let i = 0; i < 200; i++) {
      const p = await acquire(pool.get(`pool-tenant-${i}`));
      p.observe(responseLike(200, { 'x-ratelimit-remaining': '9' }));
      p.release();
    }
    expect(pool.size).toBe(200);
    // Counted once the 200 channels are subscribed (a connection per tenant would show by then).
    await eventually(async () => (await subscriptions(admin, name)) === 200);
    expect(await subscriptions(admin, name)).toBe(200);
    expect(await connections(admin, name)).toBe(2);
    await pool.close();
    await eventually(async () => (await connections(admin, name)) <= 1);
    expect(await connections(admin, name)).toBe(1);
  });
});

describe('state that outlives an eviction comes back from Redis', () => {
  it('a paused limiter stays in the pool until its pause ends: the tenant is granted only after it', async () => {
    const pool = createLimiterPool({
      provider: fixed(10),
      store: redisStore({ client: client(`rxrl-pool-evict-${process.pid}`), secret, prefix }),
      idleMs: 100,
    });
    const first = pool.get('evicted-tenant');
    let completed = false;
    first.state$.subscribe({ complete: () => (completed = true) });
    first.pause(3_000);
    const pausedAt = Date.now();
    // Idle for 100 ms, swept many times over: kept while its pause is in force, with a shared
    // store too (Redis may lose the pause: a restart, an eviction; this limiter writes it back).
    await new Promise((r) => setTimeout(r, 800));
    expect(pool.has('evicted-tenant')).toBe(true);
    expect(completed).toBe(false);
    // Evicted once the pause is over (on the pool's sweep, later on a busy machine).
    await eventually(() => !pool.has('evicted-tenant'), 8_000);
    expect(Date.now() - pausedAt).toBeGreaterThanOrEqual(2_950);
    expect(completed).toBe(true);
    const next = pool.get('evicted-tenant');
    expect(next).not.toBe(first);
    (await acquire(next)).release();
    await pool.close();
  });

  it('a bucket spent in Redis holds the next limiter of that tenant until its reset', async () => {
    const pool = createLimiterPool({
      provider: fixed(10),
      store: redisStore({ client: client(`rxrl-pool-spent-${process.pid}`), secret, prefix }),
      idleMs: 100,
    });
    const p = await acquire(pool.get('spent-tenant'));
    p.observe(responseLike(200, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '2' }));
    p.release();
    const spentAt = Date.now();
    await eventually(() => !pool.has('spent-tenant'), 1_500);
    expect(pool.has('spent-tenant')).toBe(false);
    const again = await acquire(pool.get('spent-tenant'));
    expect(Date.now() - spentAt).toBeGreaterThanOrEqual(1_900);
    again.release();
    await pool.close();
  });
});
