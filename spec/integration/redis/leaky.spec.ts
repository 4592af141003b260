/**
 * Leaky (token) buckets with the Redis store: limiters with their own Redis clients (as
 * processes would have) share one bucket of one Shopify credential; a cost told after the
 * answer gives units back to every process; a throttled answer holds the bucket for all; while
 * Redis is unreachable a process spends its share of the capacity and the rate, and what it
 * spent is taken off the shared bucket when Redis answers again. A real Redis
 * (spec/helpers/redis.ts), in real time, with generous margins.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import type { StoreAcquireOptions, StoreBucketSpec } from '../../../lib/core/store.js';
import {
  createLimiter,
  defineProvider,
  leakyBuckets,
  providers,
  responseLike,
  type Limiter,
  type Permit,
  type RequestInfo,
} from '../../../lib/index.js';
import { redisStore } from '../../../lib/stores/redis/index.js';
import { freePort, REDIS } from '../../helpers/redis.js';
import { tempRedis } from './fork.js';

const secret = 'test-secret-for-leaky';
const clients: Redis[] = [];
const limiters: Limiter[] = [];
afterAll(async () => {
  for (const l of limiters) await l.close();
  for (const c of clients) c.disconnect();
});

/** A client of its own, as a process has. */
function client(port = REDIS.port): Redis {
  const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0, retryStrategy: () => 50 });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

function limiterOn(
  prefix: string,
  provider = providers.shopify({ api: 'rest', hints: { rest: { limit: 4, restorePerSecond: 2 } } }),
) {
  const limiter = createLimiter({
    provider,
    key: 'my-shop.myshopify.com',
    store: redisStore({ client: client(), secret, prefix }),
    // Many at once before the first answer: this spec is about the bucket, not the cold start.
    coldStartConcurrency: 100,
  });
  limiters.push(limiter);
  return limiter;
}

/**
 * Acquires, recording when each request was granted (ms after `start`). `answered`: each is
 * answered at once, with nothing to read (until then it may not have reached the server).
 */
function asker(limiter: Limiter, start: number, answered = false) {
  const granted: Array<{ at: number; permit: Permit }> = [];
  const ask = (info: RequestInfo = { method: 'GET', url: '/admin/api/2024-10/products.json' }) =>
    limiter.acquire(info, {
      granted: (permit) => {
        granted.push({ at: Date.now() - start, permit });
        if (answered) permit.release();
      },
      rejected: (error) => {
        throw error;
      },
    });
  return { granted, ask };
}

const until = async (check: () => boolean, ms = 10_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('leaky buckets and the Redis store', () => {
  it('two limiters share one bucket: its capacity at once between them, then one request per unit restored', async () => {
    const prefix = `leaky-share-${process.pid}-${Date.now()}:`;
    const a = limiterOn(prefix);
    const b = limiterOn(prefix);
    const start = Date.now();
    const ra = asker(a, start, true);
    const rb = asker(b, start, true);
    for (let i = 0; i < 4; i++) {
      ra.ask();
      rb.ask();
    }
    // A bucket of 4 restoring 2 a second: 4 at once between the two, the other 4 about 500 ms
    // apart (the first a trip's restore later: a request sent from a full bucket loses it).
    await until(() => ra.granted.length + rb.granted.length === 8);
    const times = [...ra.granted, ...rb.granted].map((g) => g.at).sort((x, y) => x - y);
    // The capacity went at once, not paced at the restore rate (which would put the fourth
    // 1500 ms after the first). Counted from the first grant: the first call of a store (its
    // scripts, its connection) may take hundreds of ms on a busy machine, which says nothing of
    // the bucket; and the four may come back over two round trips, with a stall of the process
    // or of Redis (a few hundred ms) between them.
    const first = times[0] ?? 0;
    expect((times[3] ?? Infinity) - first).toBeLessThan(1000);
    // Then one per unit restored: the n-th past the capacity not before n × 500 ms after the
    // asks (to the ms). Counted from before the asks, which no grant can precede: a grant is seen
    // after it was given, so a busy event loop makes grants look later, never earlier. (Intervals
    // between grants, or times from the first grant, would not do: a grant seen late makes the
    // next look early.)
    for (let k = 4; k < 8; k++) expect(times[k]).toBeGreaterThanOrEqual((k - 3) * 500 - 1);
    // Both took part: the bucket is one, not one each.
    expect(ra.granted.length).toBeGreaterThan(0);
    expect(rb.granted.length).toBeGreaterThan(0);
    expect(times[7]).toBeLessThan(4000);
    for (const g of [...ra.granted, ...rb.granted]) g.permit.release();
  });

  it('requests of one process held up between admission and send from a full bucket: another process is not admitted on a restore the server never had', async () => {
    const prefix = `leaky-held-${process.pid}-${Date.now()}:`;
    const provider = providers.shopify({ api: 'rest', hints: { rest: { limit: 10, restorePerSecond: 10 } } });
    const a = limiterOn(prefix, provider);
    const b = limiterOn(prefix, provider);
    // A model of the server's bucket: 10 units, 10 a second, full until a request arrives.
    const server = { level: 10, at: Date.now(), refused: 0 };
    const arrive = (): void => {
      const now = Date.now();
      const level = Math.min(10, server.level + (now - server.at) / 100);
      server.at = now;
      if (level + 1e-9 >= 1) server.level = level - 1;
      else {
        server.level = level;
        server.refused++;
      }
    };
    const start = Date.now();
    const ra = asker(a, start);
    const rb = asker(b, start);
    // Five admitted at once from the full bucket; their process is busy for 700 ms before it
    // sends them (a stalled event loop): the server's bucket stays full, restoring nothing.
    for (let i = 0; i < 5; i++) ra.ask();
    await until(() => ra.granted.length === 5);
    await new Promise((r) => setTimeout(r, 500));
    // Meanwhile the other process asks for ten, and sends what it is given at once.
    for (let i = 0; i < 10; i++) rb.ask();
    // The five it is owed may come back over a few round trips (and a stalled process reads
    // them after its timers): waited for, however long they take. Then 300 ms more for any
    // beyond them (the bug gave 9 at once). None may come, however late the count: every unit
    // is spent or held by a request not yet answered, and none is answered before the count.
    await until(() => rb.granted.length >= 5).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    const first = rb.granted.length;
    for (let i = 0; i < first; i++) arrive();
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 5; i++) arrive();
    // The five held up took 5 of the 10 units when they arrived: the other process got the
    // other 5 at once, not 9 (of which 4 refused).
    expect({ refused: server.refused, first }).toEqual({ refused: 0, first: 5 });
    for (const g of ra.granted) g.permit.observe(responseLike(200, {}));
    for (const g of [...ra.granted, ...rb.granted]) g.permit.release();
    await until(() => rb.granted.length === 10);
    for (const g of rb.granted.slice(first)) g.permit.release();
  });

  it("GraphQL: a query's actual cost gives the rest of its estimate back to every process at once", async () => {
    const prefix = `leaky-reconcile-${process.pid}-${Date.now()}:`;
    // 100 points restoring 1 a second: 60 points would take a minute to come back.
    const provider = providers.shopify({
      api: 'graphql',
      queryCost: 50,
      hints: { graphql: { limit: 100, restorePerSecond: 1 } },
    });
    const a = limiterOn(prefix, provider);
    const b = limiterOn(prefix, provider);
    const start = Date.now();
    const ra = asker(a, start);
    const rb = asker(b, start);
    const graphql: RequestInfo = { method: 'POST', url: '/admin/api/2024-10/graphql.json' };
    ra.ask(graphql);
    ra.ask(graphql);
    await until(() => ra.granted.length === 2);
    rb.ask({ ...graphql, cost: 40 });
    await new Promise((r) => setTimeout(r, 300));
    expect(rb.granted).toHaveLength(0);
    // The first query really cost 10 of its 50: 40 come back, and b's query of 40 goes now, not
    // when 40 points have restored (40 s at 1 a second; never, while a's two are out). Counted
    // from the answer, with room for a busy machine's round trips and stalls.
    const body = { data: {}, extensions: { cost: { requestedQueryCost: 50, actualQueryCost: 10 } } };
    const answeredAt = Date.now() - start;
    ra.granted[0]?.permit.observe(responseLike(200, { 'content-type': 'application/json' }, body));
    await until(() => rb.granted.length === 1, 10_000);
    expect((rb.granted[0]?.at ?? Infinity) - answeredAt).toBeLessThan(5000);
    for (const g of [...ra.granted, ...rb.granted]) g.permit.release();
  });

  it('a restore rate that would take years to fill the bucket is not obeyed by any process', async () => {
    // Shopify GraphQL's throttleStatus with a junk restoreRate: taken by the store, every
    // process's requests were refused for 578 days, however often they asked.
    const prefix = `leaky-junk-rate-${process.pid}-${Date.now()}:`;
    const graphql = providers.shopify({ api: 'graphql' });
    const a = limiterOn(prefix, graphql);
    const b = limiterOn(prefix, graphql);
    const query = { method: 'POST', url: '/admin/api/2024-10/graphql.json' };
    const ra = asker(a, Date.now());
    ra.ask(query);
    await until(() => ra.granted.length === 1);
    ra.granted[0]?.permit.observe(
      responseLike(
        200,
        {},
        {
          data: {},
          extensions: {
            cost: {
              requestedQueryCost: 50,
              actualQueryCost: 50,
              throttleStatus: { maximumAvailable: 1000, currentlyAvailable: 0, restoreRate: 0.000001 },
            },
          },
        },
      ),
    );
    ra.granted[0]?.permit.release();
    // The other process is admitted once the rate it still knows (Shopify's 50 a second) gives a
    // query's units back, not in years; the wait a store can dictate is capped besides.
    const rb = asker(b, Date.now());
    rb.ask(query);
    await until(() => rb.granted.length === 1, 8000);
    rb.granted[0]?.permit.release();
  });

  it('a 429 that holds the bucket for one limiter holds it for the other', async () => {
    const prefix = `leaky-429-${process.pid}-${Date.now()}:`;
    const a = limiterOn(prefix);
    const b = limiterOn(prefix);
    const start = Date.now();
    const ra = asker(a, start);
    ra.ask();
    await until(() => ra.granted.length === 1);
    ra.granted[0]?.permit.observe(responseLike(429, { 'x-shopify-shop-api-call-limit': '4/4', 'retry-after': '1.5' }));
    ra.granted[0]?.permit.release();
    const asked = Date.now() - start;
    const rb = asker(b, start);
    rb.ask();
    await until(() => rb.granted.length === 1, 5000);
    // Held until the told wait (1.5 s after the answer), not sent at once from b's own view.
    expect((rb.granted[0]?.at ?? 0) - asked).toBeGreaterThanOrEqual(1200);
    rb.granted[0]?.permit.release();
  });

  it('a provider whose leaky bucket only some requests use: those requests are admitted through Redis too', async () => {
    const prefix = `leaky-late-${process.pid}-${Date.now()}:`;
    const mixed = defineProvider({
      name: 'mixed',
      buckets: (r) =>
        r.url === '/leaky'
          ? [{ name: 'tokens', limit: 10, restorePerSecond: 1 }]
          : [{ name: 'w', limit: 10, windowMs: 1000 }],
      bucketKinds: [leakyBuckets],
      read: () => ({ outcome: 'ok', buckets: [] }),
    });
    const limiter = limiterOn(prefix, mixed);
    const r = asker(limiter, Date.now());
    r.ask({ url: '/leaky' });
    r.ask({ url: '/other' });
    await until(() => r.granted.length === 2);
    expect(limiter.snapshot.buckets.find((b) => b.name === 'tokens')).toMatchObject({
      limit: 10,
      restorePerSecond: 1,
      remaining: 8,
    });
    for (const g of r.granted) g.permit.release();
  });

  it('Redis unreachable: a process spends its share of the capacity and rate, and Redis takes what it spent off when it answers again', async () => {
    const port = await freePort();
    const redis = tempRedis(port);
    await redis.start();
    const c = client(port);
    const spec: StoreBucketSpec = {
      name: 'rest',
      limit: 8,
      windowMs: undefined,
      quota: false,
      pacing: 'burst',
      restorePerSecond: 4,
    };
    const options: StoreAcquireOptions = { coldStartConcurrency: 100, resetGuardMs: 50 };
    const retryMs = 1500;
    // A call to Redis up gets its answer however busy the machine (this test is about the
    // share, not about timeouts); one to Redis down fails at the client's next attempt to
    // reconnect (tens of ms: no retries).
    const store = redisStore({
      client: c,
      secret,
      prefix: 'leaky-outage:',
      subscribe: false,
      timeoutMs: 2000,
      retryMs,
    });
    const session = store.open({ key: 'outage-shop', provider: 'shopify', emit: () => undefined });
    if (!session) throw new Error('no session');
    // The store keeps its times on performance.now(): each call below is timed on that clock from
    // just before it to just after, and the checks are of what the share gives anywhere in those
    // spans, so that they hold however late a stalled process or Redis runs them.
    const unitsIn = (ms: number) => Math.floor((4 * ms) / 1000 + 1e-9);
    try {
      const first = await session.acquire([spec], 2, options);
      expect(first.leases).toHaveLength(2);
      for (const lease of first.leases) session.release(lease, [spec]);
      await c.ping();
      await redis.stop();
      // Down: the share (8 / 1 process, 4 a second) starts empty (the others may have spent
      // what was there) and restores a unit every 250 ms, from when this call found Redis away.
      const t0 = performance.now();
      const down = await session.acquire([spec], 4, options);
      const t1 = performance.now();
      expect(down.leases).toHaveLength(0);
      expect(down.waitMs).toBeGreaterThan(150);
      expect(down.waitMs).toBeLessThanOrEqual(260);
      await new Promise((r) => setTimeout(r, 800));
      // The units restored since the share started: about 3 (800 ms at 4 a second), so 3
      // requests go, not 4 (nor 8, a share that started full). Exactly the whole units restored
      // between the start (within t0..t1) and this call (within t2..t3).
      const t2 = performance.now();
      const later = await session.acquire([spec], 8, options);
      const t3 = performance.now();
      const sent = later.leases.length;
      expect(sent).toBeGreaterThanOrEqual(Math.min(8, unitsIn(t2 - t1)));
      expect(sent).toBeLessThanOrEqual(Math.min(8, unitsIn(t3 - t0)));
      for (const lease of later.leases) session.release(lease, [spec]);
      // Redis back (empty: restarted without persistence). What the share spent and has not
      // restored yet is taken off the full bucket Redis starts with.
      await redis.start();
      // The client reconnects on its own schedule (later on a busy machine): the call below is
      // meant for Redis, not for the share.
      await until(() => c.status === 'ready');
      // Redis is tried again `retryMs` after it was last found away: by the call that started
      // the share, or by `later` if that came so late that it tried Redis again.
      const away = t3 - t0 < retryMs ? t1 : t3;
      await new Promise((r) => setTimeout(r, Math.max(0, away + retryMs + 100 - performance.now())));
      const t4 = performance.now();
      const back = await session.acquire([spec], 1, options);
      const t5 = performance.now();
      expect(back.leases).toHaveLength(1);
      expect(back.leases[0]).not.toMatch(/^local:/);
      const state = back.buckets[0];
      expect(state?.limit).toBe(8);
      // Full (8) less the debit, less the request just granted. The debit is the units the
      // share's sends still hold, `ms` after it started: what it would have spending nothing (4
      // a second from its start, up to 8) less what it has (the same less the units sent, up to
      // 8). That is the units sent, shrinking once the share nears full (2 s after its start):
      // it only shrinks with time, so the spans the calls were made in bound it. A take from a
      // nearly full bucket (on the share, or in Redis) may count a trip's restore (0.2 units) more.
      const debit = (ms: number) => Math.min(8, (4 * ms) / 1000) - Math.min(8, (4 * ms) / 1000 - sent);
      expect(state?.level).toBeLessThanOrEqual(8 - 1 - debit(t5 - t0) + 1e-6);
      expect(state?.level).toBeGreaterThanOrEqual(8 - 1 - debit(t4 - t1) - 0.4 - 1e-6);
    } finally {
      await session.close();
      await redis.stop();
    }
  }, 30_000);
});
