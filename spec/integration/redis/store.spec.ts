/**
 * The Redis store against a real Redis (spec/helpers/redis.ts) (no mocks): key layout, atomic
 * admission across limiters, the merge of responses, shared pauses, and what happens when
 * Redis does not answer. Each limiter here has its own ioredis client, as separate processes
 * would.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { defer, firstValueFrom, of } from 'rxjs';

import {
  createLimiter,
  defineProvider,
  rollingWindows,
  memoryStore,
  providers,
  rateLimit,
  responseLike,
  type Limiter,
  type LimiterEvent,
  type Permit,
  type RequestInfo,
  type Ticket,
} from '../../../lib/index.js';
import { redisKeys, redisStore } from '../../../lib/stores/redis/index.js';
import { REDIS } from '../../helpers/redis.js';
import { until } from './fork.js';

/** The store's secret: names the keys, the same for every limiter (and process) of a test. */
const secret = 'rx-ratelimit-test-secret';

const clients: Redis[] = [];
const limiters: Limiter[] = [];
const tickets: Ticket[] = [];
const client = (port = REDIS.port, extra: object = {}) => {
  const c = new Redis({ port, host: '127.0.0.1', ...extra });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
};
afterAll(async () => {
  for (const t of tickets) t.cancel();
  for (const l of limiters) await l.close();
  for (const c of clients) c.disconnect();
});

const prefix = `rxrl-store-${process.pid}-${Date.now()}:`;

/**
 * The stores' `timeoutMs`. A Redis call slower than it sends the limiter local until Redis is
 * back: not what these tests are about (the one about Redis away uses a dead port, which fails
 * at once). A busy machine holds a call past 300 ms; a 500 ms Redis stall lost a merge here.
 */
const timeoutMs = 5_000;

/** A provider with one bucket of `limit` per `windowMs`, read from X-RateLimit-* (reset in seconds left). */
const fixed = (limit: number, windowMs = 10_000) =>
  defineProvider({
    name: 'fixed',
    buckets: [{ name: 'main', limit, windowMs }],
    read(res) {
      const remaining = res.header('x-ratelimit-remaining');
      const reset = res.header('x-ratelimit-reset');
      const buckets =
        remaining === undefined
          ? []
          : [
              {
                name: 'main',
                limit,
                remaining: Number(remaining),
                ...(reset === undefined ? {} : { reset: { inMs: Number(reset) * 1000 } }),
              },
            ];
      return { outcome: res.status === 429 ? 'limited' : 'ok', buckets };
    },
  });

function limiter(key: string, limit: number, extra: object = {}, c: Redis = client()): Limiter {
  const l = createLimiter({
    provider: fixed(limit),
    key,
    store: redisStore({ client: c, secret, prefix, timeoutMs, retryMs: 200, keyTtlMs: 60_000 }),
    ...extra,
  });
  limiters.push(l);
  return l;
}

/**
 * Lets grants that would come with the ones awaited arrive: a count is checked exactly only after
 * it, so a limiter that grants too many still fails.
 */
const settle = (ms = 200) => new Promise((r) => setTimeout(r, ms));

/** Acquires a permit; resolves with it and when it came. */
function acquire(l: Limiter, info: RequestInfo = { method: 'GET', url: '/x' }): Promise<Permit> {
  return new Promise((resolve, reject) => {
    tickets.push(l.acquire(info, { granted: resolve, rejected: reject }));
  });
}

const ok = (remaining: number, resetS: number) =>
  responseLike(200, { 'x-ratelimit-remaining': String(remaining), 'x-ratelimit-reset': String(resetS) });

describe('redis store', () => {
  it('derives key names from a hash of the credential, in one hash slot, and lets them expire', async () => {
    const key = 'secret-token-123';
    const l = limiter(key, 5);
    const p = await acquire(l);
    p.observe(ok(4, 10));
    p.release();
    await new Promise((r) => setTimeout(r, 50));
    const c = client();
    const keys = await c.keys(`${prefix}*`);
    const k = redisKeys(prefix, 'fixed', key, secret);
    expect(keys).toContain(k.bucket('main'));
    for (const name of keys) {
      expect(name).not.toContain(key);
      expect(name.startsWith(`${prefix}{`)).toBe(true);
    }
    expect(k.hash).toMatch(/^[0-9a-f]{16}$/);
    expect(await c.pttl(k.bucket('main'))).toBeGreaterThan(0);
    expect(await c.hget(k.bucket('main'), 'rem')).toBe('4');
    // Redis Cluster puts keys with the same {hash tag} on the same slot.
    const slots = new Set(await Promise.all(keys.map((name) => c.call('CLUSTER', 'KEYSLOT', name).catch(() => 0))));
    expect(slots.size).toBeLessThanOrEqual(1);
  });

  it('admits atomically across limiters: two "processes" racing for 10 units get 10 in all', async () => {
    const key = 'race-token';
    const a = limiter(key, 10);
    const b = limiter(key, 10);
    // One response ends the cold start (the hint says 10; the server says 9 left after it).
    const probe = await acquire(a);
    probe.observe(ok(9, 30));
    probe.release();
    const granted: Permit[] = [];
    const pending = [a, b, a, b, a, b, a, b, a, b, a, b, a, b, a, b].map((l) =>
      acquire(l).then((p) => granted.push(p)),
    );
    // Each grant is a Redis round trip or two, later on a busy machine: wait for the nine, then
    // check that no more came (the rest wait for the window, 30 s away).
    await until(() => granted.length >= 9, 5000);
    await settle();
    expect(granted).toHaveLength(9);
    expect(a.snapshot.buckets[0]?.remaining ?? 0).toBeGreaterThanOrEqual(0);
    void pending;
  });

  it('merges responses: the server figure lowers what is left; a stale response does not raise it', async () => {
    const key = 'merge-token';
    const a = limiter(key, 100);
    const b = limiter(key, 100);
    const k = redisKeys(prefix, 'fixed', key, secret);
    const p1 = await acquire(a);
    p1.observe(ok(50, 20)); // another client of the token spent 49
    p1.release();
    await new Promise((r) => setTimeout(r, 50));
    expect(await client().hget(k.bucket('main'), 'rem')).toBe('50');
    const p2 = await acquire(b);
    const p3 = await acquire(a);
    p3.observe(ok(30, 20)); // newer: 30 left
    p2.observe(ok(49, 20)); // stale: answered later, counted earlier
    p2.release();
    p3.release();
    await new Promise((r) => setTimeout(r, 50));
    expect(Number(await client().hget(k.bucket('main'), 'rem'))).toBeLessThanOrEqual(30);
  });

  it('a first answer read after its window ended still teaches the limit (no unbounded burst)', async () => {
    const l = createLimiter({
      provider: providers.generic({ resetUnit: 'unix-seconds' }),
      key: 'late-probe-token',
      store: redisStore({ client: client(), secret, prefix, timeoutMs, retryMs: 200, keyTtlMs: 60_000 }),
    });
    limiters.push(l);
    const probe = await acquire(l);
    // The window ended while the answer was on its way back: its reset, in whole seconds, is
    // past when the answer is read, not before the request was sent (that would be no window's).
    probe.observe(
      responseLike(200, {
        'x-ratelimit-limit': '5',
        'x-ratelimit-remaining': '4',
        'x-ratelimit-reset': String(Math.floor(Date.now() / 1000)),
      }),
    );
    probe.release();
    const granted: Permit[] = [];
    for (let i = 0; i < 10; i++) void acquire(l).then((p) => granted.push(p));
    // The limit is 5 and nothing from the current window has confirmed it: one request goes.
    // Waited for rather than timed (each grant is a Redis round trip), then checked exactly.
    await until(() => granted.length >= 1, 5000);
    await settle();
    expect(granted).toHaveLength(1);
    expect(l.snapshot.buckets[0]?.limit).toBe(5);
  });

  it('at the queue cap a request is refused at once and spends nothing in Redis', async () => {
    const key = 'cap-token';
    const l = limiter(key, 10, { maxQueue: 0 });
    const outcomes = await Promise.all(
      [1, 2, 3].map(() =>
        acquire(l).then(
          () => 'granted',
          (e: Error) => e.name,
        ),
      ),
    );
    expect(outcomes).toEqual(['QueueFullError', 'QueueFullError', 'QueueFullError']);
    await new Promise((r) => setTimeout(r, 50));
    const k = redisKeys(prefix, 'fixed', key, secret);
    expect(await client().hget(k.bucket('main'), 'adm')).toBeNull();
  });

  it('a pause after a 429 in one process holds every process', async () => {
    const key = 'pause-token';
    const a = limiter(key, 100);
    const b = limiter(key, 100);
    const warm = await acquire(b);
    warm.observe(ok(99, 60));
    warm.release();
    const p = await acquire(a);
    p.observe(responseLike(429, {}));
    p.release();
    const pausedUntil = a.snapshot.pausedUntil ?? 0;
    expect(pausedUntil).toBeGreaterThan(Date.now() + 400); // a backoff of 0.5 to 1 s
    await new Promise((r) => setTimeout(r, 30));
    await acquire(b);
    expect(Date.now()).toBeGreaterThanOrEqual(pausedUntil - 5);
    expect(b.snapshot.totals.sent).toBe(2);
  });

  it('requests waiting on an empty bucket do not hold up requests on other buckets', async () => {
    const provider = defineProvider({
      name: 'endpoints',
      buckets: (info) => [{ name: info.url === '/a' ? 'a' : 'b', limit: 5, windowMs: 60_000 }],
      read(res) {
        const name = res.header('x-bucket') ?? 'b';
        return {
          outcome: 'ok',
          buckets: [
            { name, limit: 5, remaining: Number(res.header('x-ratelimit-remaining')), reset: { inMs: 30_000 } },
          ],
        };
      },
    });
    const l = createLimiter({
      provider,
      key: 'endpoints-token',
      store: redisStore({ client: client(), secret, prefix, timeoutMs, keyTtlMs: 60_000 }),
    });
    limiters.push(l);
    const first = await acquire(l, { url: '/a' });
    first.observe(responseLike(200, { 'x-bucket': 'a', 'x-ratelimit-remaining': '0' }));
    first.release();
    let aGranted = false;
    void acquire(l, { url: '/a' }).then(() => (aGranted = true));
    const started = Date.now();
    await acquire(l, { url: '/b' });
    // Held behind /a, /b would wait for bucket a's reset, 30 s away. Two Redis round trips
    // normally; the bound only leaves room for a stalled machine.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(aGranted).toBe(false);
    expect(l.snapshot.queued).toBe(1);
  });

  it('smooth pacing is shared: two processes together keep the even spacing', async () => {
    const provider = defineProvider({
      name: 'smooth',
      buckets: [{ name: 'main', limit: 10, windowMs: 2000, pacing: 'smooth' }],
      read: (res) => ({
        outcome: 'ok',
        buckets: [
          { name: 'main', limit: 10, remaining: Number(res.header('x-ratelimit-remaining')), reset: { inMs: 2000 } },
        ],
      }),
    });
    const make = () => {
      const l = createLimiter({
        provider,
        key: 'smooth-token',
        store: redisStore({ client: client(), secret, prefix, timeoutMs, keyTtlMs: 60_000 }),
      });
      limiters.push(l);
      return l;
    };
    const a = make();
    const b = make();
    const before = Date.now();
    const probe = await acquire(a);
    probe.observe(responseLike(200, { 'x-ratelimit-remaining': '9' }));
    probe.release();
    const times = await Promise.all([a, b, a, b, a, b].map((l) => acquire(l).then(() => Date.now())));
    times.sort((x, y) => x - y);
    // Even spacing: 2000 ms / 10, or slower to make what is left last until the reset, so the
    // k-th grant after the probe comes no sooner than k × 200 ms after it (180: 10 % for the
    // store's clock). Measured against the start, not between neighbours: a grant seen late by
    // a descheduled process shortens the next gap as seen here (once 110 ms under load) though
    // the limiter spaced them evenly; a lateness never makes a grant look early, so this bound
    // holds on any machine. Two processes pacing apart would grant in pairs and fail it.
    for (const [k, t] of times.entries()) expect(t - before).toBeGreaterThanOrEqual((k + 1) * 180);
  });

  it('Redis not answering: a clear event, then only a conservative local share', async () => {
    // Nothing listens on this port; the offline queue is off so calls fail at once.
    const dead = client(6399, {
      enableOfflineQueue: false,
      lazyConnect: true,
      retryStrategy: () => null,
      connectTimeout: 200,
    });
    const l = limiter('down-token', 10, {}, dead);
    const events: LimiterEvent[] = [];
    l.events$.subscribe((e) => events.push(e));
    const granted: Permit[] = [];
    for (let i = 0; i < 5; i++) void acquire(l).then((p) => granted.push(p));
    await new Promise((r) => setTimeout(r, 300));
    expect(events.find((e) => e.type === 'store-unavailable')).toMatchObject({ store: 'redis' });
    // Nothing was ever learned from Redis: one request at a time, as on a cold start.
    expect(granted.length).toBe(1);
  });

  it('an answer read long after its request was sent stays in the window that counted it', async () => {
    const session = redisStore({ client: client(), secret, prefix, subscribe: false }).open({
      key: 'late-answer-token',
      provider: 'fixed',
      emit: () => undefined,
    });
    if (!session) throw new Error('no session');
    const spec = { name: 'main', limit: 20, windowMs: 2000, quota: false, pacing: 'burst' } as const;
    const options = { coldStartConcurrency: 1, resetGuardMs: 50 };
    const reading = (remaining: number, index: number) => ({
      name: 'main',
      limit: 20,
      remaining,
      resetInMs: 2000, // Pipedrive's "2 seconds left", whenever it is read
      windowMs: undefined,
      index,
    });
    const first = await session.acquire([spec], 1, options);
    session.observe(first.leases[0], [reading(19, 0)], [spec]);
    const [late, ...rest] = (await session.acquire([spec], 19, options)).leases;
    for (const lease of rest) session.release(lease, [spec]);
    // A busy process reads an answer of this window 1.2 s after sending its request: its
    // "2 seconds left" would end the window 1.2 s after the server does.
    await new Promise((r) => setTimeout(r, 1200));
    session.observe(late, [reading(0, 1)], [spec]);
    const after = await session.acquire([spec], 1, options);
    expect(after.leases).toHaveLength(0);
    expect(after.waitMs).toBeLessThan(1000);
    await session.close();
  });

  it('answers that free nothing wake no other process; one that frees budget does', async () => {
    const c = client();
    const session = redisStore({ client: c, secret, prefix, subscribe: false }).open({
      key: 'quiet-token',
      provider: 'fixed',
      emit: () => undefined,
    });
    if (!session) throw new Error('no session');
    const listener = client();
    const notices: string[] = [];
    listener.on('message', (_channel: string, message: string) => notices.push(message));
    await listener.subscribe(redisKeys(prefix, 'fixed', 'quiet-token', secret).channel);
    const spec = { name: 'main', limit: 10, windowMs: 60_000, quota: false, pacing: 'burst' } as const;
    const options = { coldStartConcurrency: 1, resetGuardMs: 50 };
    const reading = (remaining: number, index: number) => ({
      name: 'main',
      limit: 10,
      remaining,
      resetInMs: 30_000,
      windowMs: undefined,
      index,
    });
    const first = await session.acquire([spec], 1, options);
    session.observe(first.leases[0], [reading(9, 0)], [spec]); // the cold start is over: a notice
    const leases = (await session.acquire([spec], 9, options)).leases;
    // Each answer tells what the store already counted: nothing frees up.
    for (const [k, lease] of leases.slice(0, 4).entries()) session.observe(lease, [reading(8 - k, k + 1)], [spec]);
    await c.ping();
    await listener.ping();
    expect(notices).toEqual(['observe']);
    // The server starts a new window: budget is back, and the others are told.
    const fifth = leases[4];
    session.observe(fifth, [{ ...reading(9, 5), resetInMs: 60_000 }], [spec]);
    await c.ping();
    await listener.ping();
    expect(notices).toEqual(['observe', 'observe']);
    await session.close();
  });

  it('refuses a prefix with a brace: it would make a Cluster hash tag of its own', () => {
    const c = new Redis({ port: REDIS.port, host: REDIS.host, lazyConnect: true });
    try {
      for (const prefix of ['app{tenants}:', 'app{}:', 'x}'])
        expect(() => redisStore({ client: c, secret: 'rx-ratelimit-test-secret', prefix })).toThrow(
          /option `prefix` must be .* without `\{` or `\}`/,
        );
      expect(() => redisStore({ client: c, secret: 'rx-ratelimit-test-secret', prefix: 'app:tenants:' })).not.toThrow();
    } finally {
      c.disconnect();
    }
  });

  it('the memory store stays the default and behaves as before', () => {
    const l = createLimiter({ provider: providers.generic(), key: 'k', store: memoryStore() });
    expect(l.snapshot.queued).toBe(0);
    expect(() => createLimiter({ provider: providers.generic(), key: 'k', store: {} as never })).toThrow(
      /option `store`/,
    );
  });
});

/** A provider with one sliding window of `limit` per `windowMs`, read from nothing (hints rule). */
const sliding = (limit: number, windowMs: number) =>
  defineProvider({
    name: 'sliding',
    buckets: [{ name: 'rolling', limit, windowMs, rolling: true }],
    bucketKinds: [rollingWindows],
    read: (res) => ({ outcome: res.status === 429 ? 'limited' : 'ok', buckets: [] }),
  });

describe('redis store: rolling (sliding-window) buckets', () => {
  it('two "processes" share one sliding window: never more than the limit in any window, the next goes when the oldest call ages out', async () => {
    const key = 'sliding-token';
    const make = () => {
      const l = createLimiter({
        provider: sliding(5, 1500),
        key,
        store: redisStore({ client: client(), secret, prefix, timeoutMs, retryMs: 200, keyTtlMs: 60_000 }),
      });
      limiters.push(l);
      return l;
    };
    const a = make();
    const b = make();
    const sent: number[] = [];
    const take = (l: Limiter) =>
      acquire(l).then((p) => {
        sent.push(Date.now());
        p.observe(responseLike(200, {}));
        p.release();
      });
    // The first call ends the cold start; then eight more race for the four left.
    const start = Date.now();
    await take(a);
    const asked = Date.now();
    const pending = [a, b, a, b, a, b, a, b].map(take);
    // The four left go at once (a Redis round trip or two each, later on a busy machine), and
    // no more: the next waits for the first call to age out, 1.5 s after it went.
    await until(() => sent.length >= 5, 5000);
    await settle();
    expect(sent.filter((t) => t < start + 1500 - 5)).toHaveLength(5);
    await Promise.all(pending);
    expect(sent).toHaveLength(9);
    // Sliding: any 1.5 s holds at most 5 of them. The sixth waits for the first call, the later
    // ones for calls asked at `asked`. Measured from the asks, which no grant precedes: a grant
    // read late by a stalled process would shorten the gap to the next one as seen here, yet
    // never makes a grant look early. (5 ms: a little slack for the clocks of two hosts.)
    expect(sent[5]).toBeGreaterThanOrEqual(start + 1500 - 5);
    for (const t of sent.slice(6)) expect(t).toBeGreaterThanOrEqual(asked + 1500 - 5);
    const k = redisKeys(prefix, 'sliding', key, secret);
    const c = client();
    // The log is named by the keyed hash, never the credential, and expires.
    expect(await c.llen(k.log('rolling'))).toBeLessThanOrEqual(5);
    expect(await c.pttl(k.log('rolling'))).toBeGreaterThan(0);
    expect(k.log('rolling')).not.toContain(key);
  }, 15_000);

  it('TEOS works with the Redis store: a call goes, its rolling minute and day are counted in Redis', async () => {
    const l = createLimiter({
      provider: providers.teos(),
      key: 'teos-token',
      store: redisStore({ client: client(), secret, prefix, timeoutMs }),
    });
    limiters.push(l);
    let sent = 0;
    const request$ = defer(() => {
      sent++;
      return of(responseLike(200, {}));
    });
    await firstValueFrom(request$.pipe(rateLimit(l, { method: 'GET', url: '/api/v1/items' })));
    expect(sent).toBe(1);
    const k = redisKeys(prefix, 'teos', 'teos-token', secret);
    const c = client();
    expect(await c.llen(k.log('minute'))).toBe(1);
    expect(await c.llen(k.log('day'))).toBe(1);
    expect(await c.hget(k.bucket('day'), 'rem')).toBe('9999');
  });
});
