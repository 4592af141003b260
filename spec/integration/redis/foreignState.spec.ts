/**
 * State in Redis that no limiter wrote: a field or key set by hand, by another version of the
 * store, or damaged. The scripts read it back on every call, and a limiter must neither stop
 * for good (a wait of years, a lease that never lapses), nor ask Redis again and again in a
 * tight loop while its requests wait (a NaN or infinite time, a pause past 2^63 ms), nor send
 * past the limit (a count below 0), nor take Redis as away for as long as the key lives (a key of
 * another type, a damaged log entry, which failed every script touching them). Against the
 * tests' Redis (spec/helpers/redis.ts), own key prefix; the state is written before the limiter
 * asks, as an operator or an older deployment would have left it.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import {
  createLimiter,
  defineProvider,
  leakyBuckets,
  providers,
  responseLike,
  rollingWindows,
  type Limiter,
  type LimiterEvent,
  type Permit,
  type Provider,
} from '../../../lib/index.js';
import { redisKeys, redisStore } from '../../../lib/stores/redis/index.js';
import { REDIS } from '../../helpers/redis.js';
import { until } from './fork.js';

const secret = 'rx-ratelimit-test-secret';
const prefix = `rxrl-foreign-${process.pid}-${Date.now()}:`;
const YEAR = 365 * 86_400_000;

const clients: Redis[] = [];
const limiters: Limiter[] = [];
const client = () => {
  const c = new Redis({ port: REDIS.port, host: REDIS.host });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
};
afterAll(async () => {
  for (const l of limiters) await l.close();
  for (const c of clients) c.disconnect();
});

/** The server's figure for `main`: `x-remaining` left of 10, the window ending in 8 s. */
const figures = (res: { header(name: string): string | undefined }) => {
  const left = res.header('x-remaining');
  return left === undefined ? [] : [{ name: 'main', limit: 10, remaining: Number(left), reset: { inMs: 8000 } }];
};
const fixed = defineProvider({
  name: 'fixed',
  buckets: [{ name: 'main', limit: 10, windowMs: 10_000 }],
  read: (res) => ({ outcome: 'ok', buckets: figures(res) }),
});
const rolling = defineProvider({
  name: 'rolling',
  buckets: [{ name: 'main', limit: 10, windowMs: 10_000, rolling: true }],
  bucketKinds: [rollingWindows],
  read: () => ({ outcome: 'ok', buckets: [] }),
});
const leaky = defineProvider({
  name: 'leaky',
  buckets: [{ name: 'main', limit: 40, restorePerSecond: 2 }],
  bucketKinds: [leakyBuckets],
  read: () => ({ outcome: 'ok', buckets: [] }),
});
// generic(): X-RateLimit-* and Retry-After, as a server sends them.
const kinds = { fixed, rolling, leaky, generic: providers.generic() } as const;

type Keys = ReturnType<typeof redisKeys>;
/** Writes the foreign state; `now` is Redis's clock (ms). */
type Write = (c: Redis, k: Keys, now: number) => Promise<unknown>;

/** A bucket as a limiter leaves it after its first answer, then `fields` over it. */
const bucket =
  (kind: keyof typeof kinds, fields: (now: number) => Record<string, string>): Write =>
  async (c, k, now) => {
    const base: Record<string, string> =
      kind === 'leaky'
        ? { lim: '40', rem: '20', obs: '1', rps: '2', lvl: '20', lva: String(now) }
        : { lim: '10', rem: '5', win: '10000', obs: '1', kind: 's' };
    await c.hset(k.bucket('main'), { ...base, at: String(now), ...fields(now) });
    await c.pexpire(k.bucket('main'), 60_000);
  };

let n = 0;

/**
 * A limiter of `kind` over a credential whose keys hold what `write` left, with its own client
 * (as another process), counting its ACQUIRE calls and store events.
 */
async function over(kind: keyof typeof kinds, write: Write, maxWaitMs = 2000, key = `foreign-${++n}`) {
  const provider: Provider = kinds[kind];
  const c = client();
  const k = redisKeys(prefix, provider.name, key, secret);
  const [seconds, micros] = await c.time();
  await write(c, k, Number(seconds) * 1000 + Math.floor(Number(micros) / 1000));
  const store = redisStore({ client: c, secret, prefix, timeoutMs: 1000, retryMs: 200, keyTtlMs: 60_000 });
  const limiter = createLimiter({ provider, key, store, maxWaitMs });
  limiters.push(limiter);
  let calls = 0;
  const script = c as unknown as { rxrlAcquire: (...args: unknown[]) => Promise<unknown> };
  const acquire = script.rxrlAcquire;
  script.rxrlAcquire = (...args) => {
    calls++;
    return acquire.apply(c, args);
  };
  const events: LimiterEvent[] = [];
  limiter.events$.subscribe((e) => events.push(e));
  const ask = () =>
    new Promise<Permit | Error>((resolve) => {
      limiter.acquire({ method: 'GET', url: '/x' }, { granted: resolve, rejected: resolve });
    });
  return { key, limiter, c, k, ask, calls: () => calls, events, unavailable: () => events.filter(isUnavailable) };
}

const isUnavailable = (e: LimiterEvent) => e.type === 'store-unavailable';
const outcome = (p: Permit | Error) => (p instanceof Error ? p.name : 'granted');

describe('redis store: state no limiter wrote', () => {
  // Each of these made every process's requests wait until they failed with
  // QuotaExhaustedError (at once with a resumeAt a day away, or at maxWaitMs), again at every
  // call, while each call renewed the keys' TTL: the credential stopped for good.
  it.each<[string, keyof typeof kinds, Write]>([
    ['a spent window whose reset reads NaN', 'fixed', bucket('fixed', () => ({ rem: '0', rst: 'nan' }))],
    ['a spent window whose reset reads inf', 'fixed', bucket('fixed', () => ({ rem: '0', rst: 'inf' }))],
    [
      'a spent window whose reset is 100 years away',
      'fixed',
      bucket('fixed', (now) => ({ rem: '0', rst: String(now + 100 * YEAR) })),
    ],
    [
      'a negative limit, at the refill of a window over',
      'fixed',
      bucket('fixed', (now) => ({ lim: '-5', rem: '0', rst: String(now - 1000) })),
    ],
    [
      'units in flight with no request out, at the refill of a window over',
      'fixed',
      bucket('fixed', (now) => ({ rem: '0', rst: String(now - 1000), xu: '1000000000' })),
    ],
    [
      'a lease that never lapses, on a bucket no answer has reached yet',
      'fixed',
      (c, k) => c.zadd(k.inflight('main'), '+inf', 'no-process:1:1'),
    ],
    ['a pause until 1e300 ms', 'fixed', (c, k) => c.hset(k.pause, 'until', '1e300', 'reason', 'retry-after')],
    ['a pause until inf', 'fixed', (c, k) => c.hset(k.pause, 'until', 'inf', 'reason', 'retry-after')],
    [
      'a sliding window held for 100 years',
      'rolling',
      bucket('rolling', (now) => ({ hold: String(now + 100 * YEAR) })),
    ],
    [
      'a sliding window whose log holds 10 calls ending in 100 years',
      'rolling',
      async (c, k, now) => {
        await bucket('rolling', () => ({}))(c, k, now);
        await c.rpush(k.log('main'), ...Array.from({ length: 10 }, () => String(now + 100 * YEAR)));
      },
    ],
    ['a sliding window with a negative limit', 'rolling', bucket('rolling', () => ({ lim: '-3' }))],
    ['a leaky bucket whose level reads -1e300', 'leaky', bucket('leaky', () => ({ lvl: '-1e300' }))],
    ['a leaky bucket held until inf', 'leaky', bucket('leaky', () => ({ hold: 'inf' }))],
    ['a leaky bucket whose capacity reads NaN', 'leaky', bucket('leaky', () => ({ lim: 'nan' }))],
  ])('%s: a request is admitted, asking Redis a few times', async (_, kind, write) => {
    const l = await over(kind, write);
    const got = await l.ask();
    expect(outcome(got)).toBe('granted');
    // Not a call per event-loop turn while it waits (thousands a second did).
    expect(l.calls()).toBeLessThanOrEqual(5);
    if (!(got instanceof Error)) got.release();
  });

  it('a damaged entry inside a sliding log, while the window is spent: the request waits, without asking Redis again and again', async () => {
    const l = await over(
      'rolling',
      async (c, k, now) => {
        await bucket('rolling', () => ({ rem: '0', win: '60000' }))(c, k, now);
        // Ten calls ended, the second damaged, and one of another process in flight: the request
        // waits for the second to leave the window, which read as 1970.
        await c.rpush(k.log('main'), String(now - 1000), 'damaged', ...Array(8).fill(String(now - 500)));
        await c.pexpire(k.log('main'), 60_000);
        await c.zadd(k.inflight('main'), String(now + 60_000), 'other:1:1');
        await c.pexpire(k.inflight('main'), 60_000);
      },
      1500,
    );
    await l.ask();
    // At most a look every 250 ms while it waits on an answer (1.5 s), not a call per turn of
    // the event loop (6,000 in 3 s did).
    expect(l.calls()).toBeLessThanOrEqual(12);
    expect(l.unavailable()).toEqual([]);
  });

  // Each of these failed every script that touched it: every process took Redis as away
  // (store-unavailable) for as long as the key lived, and sent on its local share alone (a
  // process that had never reached Redis, one request in all).
  it.each<[string, keyof typeof kinds, Write]>([
    ["a bucket's hash that is a string", 'fixed', (c, k) => c.set(k.bucket('main'), 'x', 'PX', 60_000)],
    ['a pause hash that is a string', 'fixed', (c, k) => c.set(k.pause, 'x', 'PX', 60_000)],
    ['an in-flight set that is a string', 'fixed', (c, k) => c.set(k.inflight('main'), 'x', 'PX', 60_000)],
    ['a peers set that is a list', 'fixed', (c, k) => c.rpush(k.peers, 'x')],
    ["a sliding window's log that is a string", 'rolling', (c, k) => c.set(k.log('main'), 'x', 'PX', 60_000)],
    [
      "a damaged entry in a sliding window's log",
      'rolling',
      async (c, k, now) => {
        await bucket('rolling', () => ({}))(c, k, now);
        await c.rpush(k.log('main'), 'damaged');
      },
    ],
    [
      "a damaged record of the calls another client's figure took as gone",
      'rolling',
      bucket('rolling', (now) => ({ oth: '2', othu: String(now + 5000), othg: 'damaged' })),
    ],
    ['a sliding window 1e300 ms long', 'rolling', bucket('rolling', () => ({ win: '1e300' }))],
  ])('%s: requests go on through Redis', async (_, kind, write) => {
    const l = await over(kind, write, 5000);
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const got = await l.ask();
      outcomes.push(outcome(got));
      if (!(got instanceof Error)) got.release();
    }
    expect(outcomes).toEqual(['granted', 'granted', 'granted', 'granted']);
    expect(l.unavailable()).toEqual([]);
    // And the next one is decided by Redis: its bucket hash is written.
    expect(await l.c.type(l.k.bucket('main'))).toBe('hash');
  });

  // Each of these was room that is not there: every request queued went at once, twice the limit.
  it.each<[string, keyof typeof kinds, Write]>([
    ['units in flight below 0 (a sliding window)', 'rolling', bucket('rolling', () => ({ xu: '-1000' }))],
    [
      "another client's spend below 0 (a sliding window)",
      'rolling',
      bucket('rolling', () => ({ oth: '-1000', othu: '-1' })),
    ],
  ])('%s: no more than the limit is admitted', async (_, kind, write) => {
    const l = await over(kind, write, 60_000);
    const granted: Permit[] = [];
    for (let i = 0; i < 20; i++) void l.ask().then((p) => p instanceof Error || granted.push(p));
    await until(() => granted.length >= 10, 5000);
    // Each grant is a Redis round trip: what would come with the ten has come by now.
    await new Promise((r) => setTimeout(r, 300));
    expect(granted.length).toBe(10);
  });

  it('a pause until 1e300 ms in Redis: limiter.pause() on one process still holds the others', async () => {
    const garbage: Write = (c, k) => c.hset(k.pause, 'until', '1e300', 'reason', 'retry-after');
    const a = await over('generic', garbage, 10_000);
    // The same credential through its own client: another process.
    const b = await over('generic', async () => undefined, 10_000, a.key);
    // Before either asks Redis anything (a 429's pause is written the same way).
    a.limiter.pause(3000);
    const paused = Date.now();
    // Written to Redis in place of the garbage.
    await until(async () => /^\d+$/.test((await a.c.hget(a.k.pause, 'until')) ?? ''), 5000);
    const next = await b.ask();
    expect(next instanceof Error ? next.name : 'granted').toBe('granted');
    // Not before the 3 s (late is fine, early would send into a server that asked for quiet).
    expect(Date.now() - paused).toBeGreaterThanOrEqual(2500);
    if (!(next instanceof Error)) next.release();
  });

  it('a pause until 1e300 ms in Redis: unblock() is written, Redis not taken as away', async () => {
    const l = await over('fixed', (c, k) => c.hset(k.pause, 'until', '1e300', 'reason', 'retry-after'));
    l.limiter.unblock();
    await new Promise((r) => setTimeout(r, 300));
    expect(l.unavailable()).toEqual([]);
  });

  it('calls ended without a figure, counted below 0 (a fixed window): an answer lets no more than the limit go', async () => {
    const l = await over('fixed', async () => undefined, 60_000);
    const first = await l.ask();
    if (first instanceof Error) throw first;
    first.observe(responseLike(200, { 'x-remaining': '9' }));
    first.release();
    await until(async () => (await l.c.hget(l.k.bucket('main'), 'rem')) === '9', 5000);
    // Counted below 0, and never cleared (as if ended after every call to come).
    await l.c.hset(l.k.bucket('main'), 'eu', '-1000', 'euu', '1000000');
    const granted: Permit[] = [];
    for (let i = 0; i < 20; i++) void l.ask().then((p) => p instanceof Error || granted.push(p));
    // The 9 left go; the first of them answered, 8 left (the other 8 still out): none more.
    await until(() => granted.length >= 9, 5000);
    granted[0]?.observe(responseLike(200, { 'x-remaining': '8' }));
    // Each grant is a Redis round trip: what the answer would let go has gone by now.
    await new Promise((r) => setTimeout(r, 500));
    expect(granted.length).toBe(9);
  });
});
