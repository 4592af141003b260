/**
 * A limiter on the Redis store after `close()`, against the tests' Redis (spec/helpers/redis.ts;
 * own key prefix): it takes no more requests. What was queued at close and what is asked for
 * afterwards fails at once with LimiterClosedError, without a store call, and nothing hangs
 * once the client is disconnected (the shutdown docs/distributed.md shows). What was sent
 * before ends as it would have, its answer still merged into Redis. A limiter a pool evicted
 * (not closed by the user) keeps answering, as a request retrying through it needs. Outcomes
 * are asserted, never timing margins: a wait below is only long enough for the old behaviour
 * to show (a grant, or no end at all).
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import {
  createLimiterPool,
  createLimiter,
  defineProvider,
  isRateLimitError,
  responseLike,
  type Limiter,
  type LimiterOptions,
  type LimiterPool,
  type Permit,
  type RateLimitError,
} from '../../../lib/index.js';
import { redisKeys, redisStore } from '../../../lib/stores/redis/index.js';
import { closedAfterEach, REDIS } from '../../helpers/redis.js';
import { until } from './fork.js';

const secret = 'rx-ratelimit-test-secret';
const prefix = `rxrl-closed-${process.pid}-${Date.now()}:`;
const { clients, limiters, tickets } = closedAfterEach();
/** Pools, closed after each test. */
const pools: LimiterPool[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) await p.close();
});

const client = () => {
  const c = new Redis({ port: REDIS.port, host: REDIS.host });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
};

/** One bucket of 5 per 10 s, read from X-RateLimit-Remaining and -Reset (seconds left). */
const fixed = defineProvider({
  name: 'fixed',
  buckets: [{ name: 'main', limit: 5, windowMs: 10_000 }],
  read(res) {
    const remaining = res.header('x-ratelimit-remaining');
    const reset = res.header('x-ratelimit-reset');
    return {
      outcome: res.status === 429 ? 'limited' : 'ok',
      buckets:
        remaining === undefined
          ? []
          : [{ name: 'main', limit: 5, remaining: Number(remaining), reset: { inMs: Number(reset ?? 10) * 1000 } }],
    };
  },
});

// A Redis call slower than `timeoutMs` sends the limiter local: a merge it was for never reaches
// Redis, and close() stops waiting for it. Not what this spec is about; a busy machine holds a
// call past 300 ms (a 500 ms Redis stall failed the merge and in-flight-call tests).
const store = (c: Redis) => redisStore({ client: c, secret, prefix, timeoutMs: 5_000, retryMs: 200, keyTtlMs: 60_000 });

let keys = 0;
function limiter(extra: Partial<LimiterOptions> = {}, c: Redis = client()): { l: Limiter; key: string } {
  const key = `closed-${++keys}`;
  const l = createLimiter({ provider: fixed, key, maxWaitMs: Infinity, store: store(c), ...extra });
  limiters.push(l);
  return { l, key };
}

/** How a request ended: its permit, or its error; `undefined` while it waits. */
interface Outcome {
  permit?: Permit;
  error?: RateLimitError;
}

function ask(l: Limiter): Outcome {
  const out: Outcome = {};
  tickets.push(
    l.acquire({ method: 'GET', url: '/x' }, { granted: (p) => (out.permit = p), rejected: (e) => (out.error = e) }),
  );
  return out;
}

const ended = (o: Outcome) => o.permit !== undefined || o.error !== undefined;

/** `granted`, the error's name, or `waiting`. */
const how = (o: Outcome) => (o.permit ? 'granted' : (o.error?.name ?? 'waiting'));

/** Waits for `o` to end, or `ms` (then it is still waiting: the test's expectations say so). */
const settled = (o: Outcome, ms = 1500) => until(() => ended(o), ms).catch(() => undefined);

const answer = (p: Permit | undefined, remaining: number, resetS = 10) => {
  p?.observe(responseLike(200, { 'x-ratelimit-remaining': String(remaining), 'x-ratelimit-reset': String(resetS) }));
  p?.release();
};

/** A LimiterClosedError: typed, naming the provider and the label, never the key. */
function expectClosed(o: Outcome, key: string): void {
  expect(how(o)).toBe('LimiterClosedError');
  expect(isRateLimitError(o.error)).toBe(true);
  expect(o.error?.provider).toBe('fixed');
  expect(o.error?.message).toMatch(/closed/);
  expect(o.error?.message).not.toContain(key);
  expect(JSON.stringify(o.error)).not.toContain(key);
}

describe('redis store: a closed limiter takes no more requests', () => {
  it('a request asked after close() fails with LimiterClosedError, and Redis is not asked', async () => {
    const { l, key } = limiter();
    const first = ask(l);
    await until(() => ended(first));
    answer(first.permit, 3);
    const bucket = redisKeys(prefix, 'fixed', key, secret).bucket('main');
    await until(async () => (await client().hget(bucket, 'rem')) === '3');
    const admitted = await client().hget(bucket, 'adm');
    await l.close();
    const after = ask(l);
    await settled(after);
    // Before: granted through Redis, with no change notices any more.
    expectClosed(after, key);
    expect(await client().hget(bucket, 'adm')).toBe(admitted);
  });

  it('a request queued at close() ends with LimiterClosedError, not with a grant once the window resets', async () => {
    const { l, key } = limiter();
    const first = ask(l);
    await until(() => ended(first));
    answer(first.permit, 0, 1);
    const queued = ask(l);
    await settled(queued, 200);
    expect(how(queued)).toBe('waiting');
    await l.close();
    await settled(queued);
    // Before: granted after the reset, a second later, by a limiter closed meanwhile.
    expectClosed(queued, key);
  });

  it('after close() and the client disconnected, a request ends at once instead of hanging', async () => {
    const c = client();
    const { l, key } = limiter({}, c);
    const first = ask(l);
    await until(() => ended(first));
    answer(first.permit, 4);
    await l.close();
    c.disconnect();
    const after = ask(l);
    await settled(after);
    // Before: still waiting (maxWaitMs Infinity), each try failing on the closed connection.
    expectClosed(after, key);
  });

  it('a request sent before close() ends as it would have: its answer is merged into Redis, its lease ended', async () => {
    const { l, key } = limiter();
    const first = ask(l);
    await until(() => ended(first));
    await l.close();
    answer(first.permit, 2);
    const k = redisKeys(prefix, 'fixed', key, secret);
    await until(async () => (await client().hget(k.bucket('main'), 'rem')) === '2');
    expect(await client().zcard(k.inflight('main'))).toBe(0);
  });

  it('a store call in flight at close(): the request it was for fails, and its grant is given back before close() resolves', async () => {
    const c = client();
    const { l, key } = limiter({}, c);
    const pending = ask(l);
    // Admission through Redis is asynchronous: the ACQUIRE for it is in flight now.
    expect(how(pending)).toBe('waiting');
    await l.close();
    expectClosed(pending, key);
    // Asked on the limiter's own connection, so after every command it sent before close()
    // resolved: the lease the ACQUIRE took is ended by then, and the client may go (the
    // documented shutdown). Before: granted, and sent, by a closed limiter.
    const k = redisKeys(prefix, 'fixed', key, secret);
    expect(await c.zcard(k.inflight('main'))).toBe(0);
  });

  it('pool.close(): a limiter taken from the pool before takes no more requests', async () => {
    const pool = createLimiterPool({ provider: fixed, store: store(client()), maxWaitMs: Infinity });
    pools.push(pool);
    const key = `closed-pool-${++keys}`;
    const l = pool.get(key);
    const first = ask(l);
    await until(() => ended(first));
    answer(first.permit, 4);
    await pool.close();
    const after = ask(l);
    await settled(after);
    expectClosed(after, key);
    expect(() => pool.get(key)).toThrow(TypeError);
  });

  it('a limiter the pool evicted while idle still answers (a request retrying through it goes on)', async () => {
    const pool = createLimiterPool({ provider: fixed, store: store(client()), idleMs: 100, maxWaitMs: Infinity });
    pools.push(pool);
    const key = `evicted-${++keys}`;
    const l = pool.get(key);
    // No longer the pool's once evicted: closed after the test with the others.
    limiters.push(l);
    const first = ask(l);
    await until(() => ended(first));
    answer(first.permit, 4);
    await until(() => !pool.has(key));
    const retry = ask(l);
    await settled(retry, 5000);
    expect(how(retry)).toBe('granted');
    answer(retry.permit, 3);
  });
});
