/**
 * Costs learnt from the drop in `remaining` with the Redis store, against real Redis: two
 * limiters on one credential stand for two processes. The store sees every process's admissions
 * and requests in flight, so it attributes a drop to one request only when nothing of any
 * process was in flight at its send or admitted before its answer; then the process that sent
 * it learns the cost, and its later requests of that route take it.
 */
import { describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import {
  createLimiter,
  defineProvider,
  learnCosts,
  providers,
  responseLike,
  type Permit,
  type RequestInfo,
} from '../../../lib/index.js';
import { redisStore } from '../../../lib/stores/redis/index.js';
import { REDIS, closedAfterEach } from '../../helpers/redis.js';
import { freePort } from '../../helpers/ports.js';
import { tempRedis, until } from './fork.js';

const secret = 'rx-ratelimit-test-secret';
const LIMIT = 20;
const { clients, limiters, tickets } = closedAfterEach();

/** One process: its own Redis client and limiter on the shared prefix. */
function processOn(prefix: string) {
  const client = new Redis({ port: REDIS.port, host: REDIS.host });
  client.on('error', () => undefined);
  clients.push(client);
  const limiter = createLimiter({
    provider: providers.generic({ limit: LIMIT, windowMs: 60_000, learnCost: true }),
    key: 'learning-token',
    store: redisStore({ client, secret, prefix, leaseMs: 60_000 }),
  });
  limiters.push(limiter);
  const granted: Permit[] = [];
  const ask = (info: RequestInfo) =>
    tickets.push(limiter.acquire(info, { granted: (p) => granted.push(p), rejected: () => undefined }));
  // The merge of the last answer is done (its reply, and the costs in it, are in): Redis answers
  // one client's calls in order. And a while for the store's notices.
  const merged = async () => {
    await client.ping();
    await new Promise((r) => setTimeout(r, 300));
  };
  return { granted, ask, merged };
}

/**
 * The API: one window of `LIMIT` units (ending a minute from now) that charges `/search` 5 and
 * `/other` 3, and tells only what is left.
 */
function api() {
  let used = 0;
  const reset = String(Math.ceil(Date.now() / 1000) + 60);
  return {
    arrive(url: string) {
      used += url.startsWith('/search') ? 5 : 3;
    },
    answer: () =>
      responseLike(200, {
        date: new Date().toUTCString(),
        'x-ratelimit-limit': String(LIMIT),
        'x-ratelimit-remaining': String(Math.max(0, LIMIT - used)),
        'x-ratelimit-reset': reset,
      }),
  };
}

/** Answers `permit` (its request reached the server earlier) and gives it back. */
function answer(permit: Permit | undefined, server: ReturnType<typeof api>): void {
  permit?.observe(server.answer());
  permit?.release();
}

describe('redis store: costs learnt from the drop in remaining', () => {
  it('a drop with nothing of any process beside it is learnt: the route then takes its cost', async () => {
    const prefix = `rxrl-learn-${process.pid}-${Date.now()}:`;
    const server = api();
    const a = processOn(prefix);
    // The first answer is where drops count from; the second request's drop (5) is its cost.
    for (const k of [1, 2]) {
      a.ask({ method: 'GET', url: `/search/${k}` });
      await until(() => a.granted.length === k);
      server.arrive('/search');
      answer(a.granted[k - 1], server);
      await a.merged();
    }
    // 10 units left: at 5 a search, two searches go, not three.
    for (const k of [3, 4, 5]) a.ask({ method: 'GET', url: `/search/${k}` });
    await until(() => a.granted.length >= 4);
    await a.merged();
    expect(a.granted).toHaveLength(4);
  });

  it("another process's request admitted before the answer: the drop is not attributed", async () => {
    const prefix = `rxrl-learn-${process.pid}-${Date.now()}:`;
    const server = api();
    const a = processOn(prefix);
    const b = processOn(prefix);
    a.ask({ method: 'GET', url: '/search/1' });
    await until(() => a.granted.length === 1);
    server.arrive('/search');
    answer(a.granted[0], server);
    await a.merged();
    // A's search and B's request both reach the server before A's answer: the drop (8) is
    // theirs together, which A cannot tell from its own view.
    a.ask({ method: 'GET', url: '/search/2' });
    await until(() => a.granted.length === 2);
    b.ask({ method: 'GET', url: '/other/1' });
    await until(() => b.granted.length === 1);
    server.arrive('/search');
    server.arrive('/other');
    answer(a.granted[1], server);
    answer(b.granted[0], server);
    await a.merged();
    await b.merged();
    // 7 left. Learnt at 8, no search would go; not learnt, a search still goes alone, at 1.
    for (const k of [3, 4, 5]) a.ask({ method: 'GET', url: `/search/${k}` });
    await until(() => a.granted.length >= 3);
    await a.merged();
    expect(a.granted).toHaveLength(3);
    a.granted[2]?.release();
  });

  it('a cost the request names for one bucket is not learnt there: only the buckets it learns on learn', async () => {
    const prefix = `rxrl-learn-${process.pid}-${Date.now()}:`;
    // Two windows of 20. The search names its cost of `b` (1); its cost of `a` is learnt. The
    // server charges a search 5 of `a` and 8 of `b`: `b`'s drop is not the request's cost there.
    const reset = { inMs: 60_000 };
    const used = { a: 0, b: 0 };
    const provider = defineProvider({
      name: 'two-windows',
      buckets: [
        { name: 'a', limit: LIMIT, windowMs: 60_000 },
        { name: 'b', limit: LIMIT, windowMs: 60_000 },
      ],
      read: () => ({
        outcome: 'ok',
        buckets: [
          { name: 'a', limit: LIMIT, remaining: LIMIT - used.a, reset },
          { name: 'b', limit: LIMIT, remaining: LIMIT - used.b, reset },
        ],
      }),
      learnCost: learnCosts(),
    });
    const client = new Redis({ port: REDIS.port, host: REDIS.host });
    client.on('error', () => undefined);
    clients.push(client);
    const limiter = createLimiter({
      provider,
      key: 'two-windows-token',
      store: redisStore({ client, secret, prefix, leaseMs: 60_000 }),
    });
    limiters.push(limiter);
    const granted: Permit[] = [];
    const ask = (info: RequestInfo) =>
      tickets.push(limiter.acquire(info, { granted: (p) => granted.push(p), rejected: () => undefined }));
    for (const k of [1, 2]) {
      ask({ method: 'GET', url: `/search/${k}`, cost: { b: 1 } });
      await until(() => granted.length === k);
      used.a += 5;
      used.b += 8;
      granted[k - 1]?.observe(responseLike(200, {}));
      granted[k - 1]?.release();
      await client.ping();
      await new Promise((r) => setTimeout(r, 300));
    }
    // 10 left of `a`, 4 of `b`. A request of a route not learnt yet takes, of each bucket, the
    // dearest cost learnt there: 5 of `a`, and of `b`, where nothing was learnt, 1. Had `b`
    // learnt the search's drop (8), it would wait for the window's end, a minute away.
    ask({ method: 'GET', url: '/other/1' });
    await until(() => granted.length === 3);
    expect(granted).toHaveLength(3);
  });

  it('the first request of a route not learnt yet goes alone, and its drop teaches the rest', async () => {
    const prefix = `rxrl-learn-${process.pid}-${Date.now()}:`;
    const server = api();
    const a = processOn(prefix);
    // The window's figures first (a route of its own, learnt alone in turn).
    a.ask({ method: 'GET', url: '/other/1' });
    await until(() => a.granted.length === 1);
    server.arrive('/other');
    answer(a.granted[0], server);
    await a.merged();
    // 17 left. Three searches asked at once: one goes, the others wait for its answer.
    for (const k of [1, 2, 3]) a.ask({ method: 'GET', url: `/search/${k}` });
    await until(() => a.granted.length === 2);
    await a.merged();
    expect(a.granted).toHaveLength(2);
    server.arrive('/search');
    answer(a.granted[1], server);
    // 12 left, a search learnt at 5: both others go now.
    await until(() => a.granted.length === 4);
    await a.merged();
    expect(a.granted).toHaveLength(4);
    for (const p of a.granted.slice(2)) p.release();
  });
});

describe('cost learning while Redis stalls', () => {
  it('a request of the route being learnt goes on the local share instead of waiting out the stall', async () => {
    const server = tempRedis(await freePort(), ['--enable-debug-command', 'local']);
    await server.start();
    const client = new Redis({ port: server.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    const staller = new Redis({ port: server.port, host: '127.0.0.1' });
    staller.on('error', () => undefined);
    clients.push(client, staller);
    const limiter = createLimiter({
      provider: providers.generic({ limit: 20, windowMs: 1000, learnCost: true }),
      key: 'learning-while-stalled',
      maxWaitMs: 4000,
      store: redisStore({ client, secret, prefix: 'rxrl-learn-stall:', timeoutMs: 300, retryMs: 200 }),
    });
    limiters.push(limiter);
    const ask = () =>
      new Promise<Permit | Error>((resolve) =>
        tickets.push(limiter.acquire({ method: 'GET', url: '/search' }, { granted: resolve, rejected: resolve })),
      );
    try {
      const first = await ask();
      if (first instanceof Error) throw first;
      // Redis stalls (a real one: DEBUG SLEEP) just as the first answer of the route is merged.
      const stalled = staller.call('DEBUG', 'SLEEP', '5').catch(() => undefined);
      await new Promise((r) => setTimeout(r, 50));
      first.observe(responseLike(200, { 'x-ratelimit-remaining': '15', 'x-ratelimit-reset': '1' }));
      first.release();
      const second = await ask();
      expect(second).not.toBeInstanceOf(Error);
      if (!(second instanceof Error)) second.release();
      await stalled;
    } finally {
      await limiter.close();
      await server.stop();
    }
  });
});
