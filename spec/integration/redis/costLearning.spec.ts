/**
 * Costs learnt from the drop in `remaining` with the Redis store, against real Redis: two
 * limiters on one credential stand for two processes. The store sees every process's admissions
 * and requests in flight, so it attributes a drop to one request only when nothing of any
 * process was in flight at its send or admitted before its answer; then the process that sent
 * it learns the cost, and its later requests of that route take it.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import {
  createLimiter,
  providers,
  responseLike,
  type Limiter,
  type Permit,
  type RequestInfo,
  type Ticket,
} from '../../../lib/index.js';
import { redisStore } from '../../../lib/stores/redis/index.js';
import { REDIS } from '../../helpers/redis.js';
import { until } from './fork.js';

const secret = 'rx-ratelimit-test-secret';
const LIMIT = 20;
let clients: Redis[] = [];
let limiters: Limiter[] = [];
let tickets: Ticket[] = [];

afterEach(async () => {
  for (const t of tickets) t.cancel();
  for (const l of limiters) await l.close();
  for (const c of clients) c.disconnect();
  tickets = [];
  limiters = [];
  clients = [];
});

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
    // 7 left. Learnt at 8, no search would go; not learnt, each takes 1 and three go.
    for (const k of [3, 4, 5]) a.ask({ method: 'GET', url: `/search/${k}` });
    await until(() => a.granted.length >= 5);
    expect(a.granted).toHaveLength(5);
  });
});
