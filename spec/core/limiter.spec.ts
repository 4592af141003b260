import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, merge, Observable, Subscription, throwError } from 'rxjs';
import {
  createLimiter,
  isBlockedError,
  isQueueFullError,
  isQuotaExhaustedError,
  providers,
  defineProvider,
  rateLimit,
  throttleByHeaders,
  retryOn429,
  dailyQuotaGuard,
  type LimiterEvent,
  type LimiterSnapshot,
  responseLike,
  type ResponseLike,
} from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { virtualApi } from '../helpers/virtualApi.js';
import { reachableStrings } from '../helpers/scan.js';

const generic = () => providers.generic({ resetUnit: 'unix-seconds' });

describe('limiter pacing by headers (virtual time)', () => {
  it('50 concurrent streams on 10 per second never exceed 10 per window, get no 429 and finish in 5 windows', () => {
    const { api, done } = inVirtualTime(({ now }) => {
      const api = virtualApi(asyncScheduler, { limit: 10, windowMs: 1000 });
      const limiter = createLimiter({ provider: generic(), key: 'token-abc' });
      const done: number[] = [];
      for (let i = 0; i < 50; i++)
        api
          .request()
          .pipe(rateLimit(limiter))
          .subscribe(() => done.push(now()));
      return { api, done };
    });
    expect(done).toHaveLength(50);
    expect(api.count429()).toBe(0);
    for (const n of api.perWindow().values()) expect(n).toBeLessThanOrEqual(10);
    expect([...api.perWindow().keys()]).toEqual([0, 1, 2, 3, 4]);
    expect(Math.max(...done)).toBeLessThan(5000);
  });

  it('sends one request first on a cold start, then paces by what its headers said', () => {
    const { api } = inVirtualTime(() => {
      const api = virtualApi(asyncScheduler, { limit: 10, windowMs: 1000, latencyMs: 50 });
      const limiter = createLimiter({ provider: generic(), key: 'k' });
      for (let i = 0; i < 10; i++) api.request().pipe(rateLimit(limiter)).subscribe();
      return { api };
    });
    expect(api.hits.map((h) => h.at)).toEqual([0, ...Array(9).fill(50)]);
  });

  it('holds every stream for 3 s when one stream gets 429 with Retry-After: 3', () => {
    const { api, limitedAt } = inVirtualTime(() => {
      let limitedAt = -1;
      const api = virtualApi(asyncScheduler, {
        limit: 1000,
        windowMs: 60_000,
        override: (n) => {
          if (n !== 5) return undefined;
          limitedAt = asyncScheduler.now();
          return { status: 429, headers: { 'Retry-After': '3' } };
        },
      });
      const limiter = createLimiter({ provider: generic(), key: 'k' });
      // Streams arrive over time; the one that gets the 429 is not the only one held.
      for (let i = 0; i < 20; i++) {
        asyncScheduler.schedule(() => api.request().pipe(rateLimit(limiter)).subscribe(), i * 100);
      }
      return {
        api,
        get limitedAt() {
          return limitedAt;
        },
      };
    });
    expect(limitedAt).toBeGreaterThanOrEqual(0);
    const response = limitedAt + 10;
    const during = api.hits.filter((h) => h.at > response && h.at < response + 3000);
    expect(during).toEqual([]);
    const after = api.hits.filter((h) => h.at >= response + 3000);
    expect(after.length).toBeGreaterThan(10); // the retry and every stream that arrived meanwhile
    expect(Math.min(...after.map((h) => h.at))).toBe(response + 3000);
    expect(api.hits.filter((h) => h.status === 200)).toHaveLength(20);
  });

  it('follows a limit change in the headers from 10 to 5 from the next window on', () => {
    const { api } = inVirtualTime(() => {
      const api = virtualApi(asyncScheduler, { limit: (t) => (t < 3000 ? 10 : 5), windowMs: 1000 });
      const limiter = createLimiter({ provider: generic(), key: 'k' });
      for (let i = 0; i < 50; i++) api.request().pipe(rateLimit(limiter)).subscribe();
      return { api };
    });
    const w = api.perWindow();
    expect(api.count429()).toBe(0);
    expect([w.get(0), w.get(1), w.get(2)]).toEqual([10, 10, 10]);
    for (let i = 3; i < 7; i++) expect(w.get(i)).toBe(5);
  });

  it.each([
    ['ahead', 30_000],
    ['behind', -30_000],
  ])('waits the right time for a reset timestamp from a server clock 30 s %s (Date header)', (_, skewMs) => {
    const { api } = inVirtualTime(() => {
      const api = virtualApi(asyncScheduler, { limit: 10, windowMs: 1000, skewMs });
      const limiter = createLimiter({ provider: generic(), key: 'k' });
      // Start at 40 s on our clock, so the server's clock reads 70 s or 10 s.
      asyncScheduler.schedule(() => {
        for (let i = 0; i < 30; i++) api.request().pipe(rateLimit(limiter)).subscribe();
      }, 40_000);
      return { api };
    });
    expect(api.count429()).toBe(0);
    const starts = [...new Set(api.hits.map((h) => h.window))].map((w) =>
      Math.min(...api.hits.filter((h) => h.window === w).map((h) => h.at)),
    );
    // Each new window's first request goes out within the Date header's one-second resolution
    // plus the guard after the real reset, not 30 s late (ahead) and not early (behind: 429s).
    expect(starts).toHaveLength(3);
    expect(starts[0]).toBe(40_000);
    expect(starts[1]! - 41_000).toBeGreaterThanOrEqual(0);
    expect(starts[1]! - 41_000).toBeLessThanOrEqual(1200);
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(1000);
    expect(starts[2]! - starts[1]!).toBeLessThanOrEqual(1200);
  });

  it('unsubscribing 1,000 queued requests leaves 0 queued and no timer behind', () => {
    inVirtualTime(() => {
      const api = virtualApi(asyncScheduler, { limit: 1, windowMs: 60_000 });
      const limiter = createLimiter({ provider: generic(), key: 'k' });
      const states: LimiterSnapshot[] = [];
      limiter.state$.subscribe((s) => states.push(s));
      const subs = new Subscription();
      for (let i = 0; i < 1000; i++) subs.add(api.request().pipe(rateLimit(limiter)).subscribe());
      asyncScheduler.schedule(() => {
        expect(limiter.snapshot.queued).toBe(999);
        expect(limiter.hasTimer).toBe(true);
        subs.unsubscribe();
        expect(states.at(-1)!.queued).toBe(0);
        expect(states.at(-1)!.inFlight).toBe(0);
        expect(limiter.hasTimer).toBe(false);
      }, 100);
    });
  });

  it('admits higher priority first, and keeps order within a priority', () => {
    const order = inVirtualTime(() => {
      const api = virtualApi(asyncScheduler, { limit: 1, windowMs: 1000, latencyMs: 1 });
      const limiter = createLimiter({ provider: generic(), key: 'k' });
      const order: string[] = [];
      const go = (name: string, priority: number) =>
        api
          .request()
          .pipe(rateLimit(limiter, { priority }))
          .subscribe(() => order.push(name));
      go('first', 0);
      go('low-1', 0);
      go('low-2', 0);
      go('high', 5);
      return order;
    });
    expect(order).toEqual(['first', 'high', 'low-1', 'low-2']);
  });

  it('fails at once with QuotaExhaustedError carrying resumeAt when the wait exceeds maxWaitMs', () => {
    const result = inVirtualTime(({ now }) => {
      const api = virtualApi(asyncScheduler, { limit: 2, windowMs: 3_600_000 });
      const limiter = createLimiter({ provider: generic(), key: 'k', maxWaitMs: 60_000 });
      const errors: Array<{ at: number; e: unknown }> = [];
      for (let i = 0; i < 4; i++)
        api
          .request()
          .pipe(rateLimit(limiter))
          .subscribe({ error: (e) => errors.push({ at: now(), e }) });
      return { errors, api };
    });
    expect(result.api.hits).toHaveLength(2);
    expect(result.errors).toHaveLength(2);
    for (const { at, e } of result.errors) {
      expect(isQuotaExhaustedError(e)).toBe(true);
      expect(at).toBe(10); // when the response told us, not an hour later
      // The reset (3,600 s on the server) plus the guard, plus at most the Date header's
      // resolution and the latency by which the skew estimate errs on the late side.
      if (isQuotaExhaustedError(e)) expect(e.resumeAt - 3_600_050).toBeGreaterThanOrEqual(0);
      if (isQuotaExhaustedError(e)) expect(e.resumeAt - 3_600_050).toBeLessThanOrEqual(1010);
    }
  });

  it('refuses with QueueFullError past maxQueue, sending nothing', () => {
    const errors = inVirtualTime(() => {
      const api = virtualApi(asyncScheduler, { limit: 1, windowMs: 1000 });
      const limiter = createLimiter({ provider: generic(), key: 'k', maxQueue: 2 });
      const errors: unknown[] = [];
      for (let i = 0; i < 5; i++)
        api
          .request()
          .pipe(rateLimit(limiter))
          .subscribe({ error: (e) => errors.push(e) });
      return errors;
    });
    expect(errors).toHaveLength(2);
    expect(errors.every(isQueueFullError)).toBe(true);
  });

  it('shows a block as over once its cool-down has passed, with no request since', () => {
    const blocking = defineProvider({
      name: 'blocky',
      buckets: [{ name: 'default', limit: 1, windowMs: 1000 }],
      read: (res: ResponseLike) => ({ outcome: res.status === 403 ? 'blocked' : 'ok', buckets: [] }),
    });
    const seen = inVirtualTime(() => {
      const api = virtualApi(asyncScheduler, {
        limit: 100,
        windowMs: 1000,
        override: () => ({ status: 403, headers: {} }),
      });
      const limiter = createLimiter({ provider: blocking, key: 'k-cooldown', blockCooldownMs: 5_000 });
      api
        .request()
        .pipe(rateLimit(limiter))
        .subscribe({ error: () => undefined });
      const seen: Array<LimiterSnapshot['blocked']> = [];
      for (const t of [4_000, 6_000]) asyncScheduler.schedule(() => seen.push(limiter.snapshot.blocked), t);
      asyncScheduler.schedule(() => void limiter.close(), 7_000);
      return seen;
    });
    // Blocked during the cool-down; after it, the snapshot (a UI, a pool deciding what to evict)
    // no longer says blocked, as the next request would find.
    expect(seen[0]).toMatchObject({ status: 403, until: expect.any(Number) });
    expect(seen[1]).toBeNull();
  });

  it('a blocked credential fails every queued and later request with BlockedError until unblock()', () => {
    const blocking = defineProvider({
      name: 'blocky',
      buckets: [{ name: 'default', limit: 1, windowMs: 1000 }],
      read: (res: ResponseLike) => ({ outcome: res.status === 403 ? 'blocked' : 'ok', buckets: [] }),
    });
    const out = inVirtualTime(() => {
      const api = virtualApi(asyncScheduler, {
        limit: 100,
        windowMs: 1000,
        override: (n) => (n === 1 ? { status: 403, headers: {} } : undefined),
      });
      const limiter = createLimiter({ provider: blocking, key: 'k', blockCooldownMs: Infinity });
      const errors: unknown[] = [];
      const values: unknown[] = [];
      for (let i = 0; i < 3; i++)
        api
          .request()
          .pipe(rateLimit(limiter))
          .subscribe({ next: (v) => values.push(v), error: (e) => errors.push(e) });
      asyncScheduler.schedule(() => {
        api
          .request()
          .pipe(rateLimit(limiter))
          .subscribe({ error: (e) => errors.push(e) });
        limiter.unblock();
        api
          .request()
          .pipe(rateLimit(limiter))
          .subscribe({ next: (v) => values.push(v) });
      }, 5000);
      return { errors, values, api };
    });
    expect(out.errors).toHaveLength(4);
    expect(out.errors.every(isBlockedError)).toBe(true);
    expect(out.api.hits.map((h) => h.status)).toEqual([403, 200]);
    expect(out.values).toHaveLength(1);
  });

  it('emits events that explain the run and never contain the key', () => {
    const token = 'sk_live_SECRET_TOKEN_123';
    const { events, snapshot } = inVirtualTime(() => {
      const api = virtualApi(asyncScheduler, { limit: 3, windowMs: 1000 });
      const limiter = createLimiter({ provider: generic(), key: token, dedupe: false });
      const events: LimiterEvent[] = [];
      limiter.events$.subscribe((e) => events.push(e));
      merge(
        ...Array.from({ length: 8 }, () =>
          api.request().pipe(rateLimit(limiter, { url: `https://api.example.com/v1/x?api_token=${token}` })),
        ),
      ).subscribe();
      return {
        events,
        get snapshot() {
          return limiter.snapshot;
        },
      };
    });
    const types = new Set(events.map((e) => e.type));
    for (const t of ['queued', 'admitted', 'response', 'paused'] as const) expect(types.has(t)).toBe(true);
    expect(JSON.stringify(events)).not.toContain(token);
    expect(JSON.stringify(events)).not.toContain('SECRET');
    expect(JSON.stringify(snapshot)).not.toContain('SECRET');
    expect(snapshot.key).toMatch(/^key_[0-9a-f]{16}$/);
  });

  it('throttleByHeaders alone releases the permit when a request fails without a response', () => {
    const boom = new Error('ECONNRESET');
    const out = inVirtualTime(() => {
      const limiter = createLimiter({ provider: providers.generic({ limit: 2, windowMs: 1000 }), key: 'k' });
      const errors: unknown[] = [];
      for (let i = 0; i < 4; i++)
        throwError(() => boom)
          .pipe(throttleByHeaders(limiter))
          .subscribe({ error: (e: unknown) => errors.push(e) });
      return { errors, limiter };
    });
    expect(out.errors).toEqual([boom, boom, boom, boom]);
    expect(out.limiter.snapshot.inFlight).toBe(0);
    expect(out.limiter.snapshot.queued).toBe(0);
  });
});

describe('secrets', () => {
  it('the limiter keeps no copy of the key anywhere reachable from it', () => {
    const token = 'sk_live_SECRET_TOKEN_456';
    const limiter = createLimiter({ provider: providers.generic(), key: token });
    const strings = reachableStrings(limiter);
    expect(strings.length).toBeGreaterThan(10);
    expect(strings.filter((s) => s.includes('SECRET'))).toEqual([]);
  });
});

describe('several buckets', () => {
  const endpoints = defineProvider({
    name: 'endpoints',
    buckets: (req) => [
      { name: 'all', limit: 100, windowMs: 1000 },
      { name: `ep:${req.url ?? ''}`, limit: 1, windowMs: 60_000 },
    ],
    read: () => ({ outcome: 'ok', buckets: [] }),
  });

  it('a request waiting on one endpoint does not hold up requests on another; each takes from all its buckets', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: endpoints, key: 'k', coldStartConcurrency: 100, dedupe: false });
      const sent: Array<[string, number]> = [];
      const call = (url: string) =>
        new Observable<ResponseLike>((s) => {
          sent.push([url, now()]);
          s.next(responseLike(200, {}));
          s.complete();
        }).pipe(rateLimit(limiter, { url }));
      for (let i = 0; i < 5; i++) call('/a').subscribe();
      call('/b').subscribe();
      call('/c').subscribe();
      const early = limiter.snapshot;
      return { sent, early };
    });
    expect(out.sent).toEqual([
      ['/a', 0],
      ['/b', 0],
      ['/c', 0],
      // No reset from the server: each window is inferred from our send, plus the 50 ms guard.
      ['/a', 60_050],
      ['/a', 120_100],
      ['/a', 180_150],
      ['/a', 240_200],
    ]);
    expect(out.early.queued).toBe(4);
    expect(out.early.buckets.find((b) => b.name === 'all')!.remaining).toBe(97);
  });
});

describe('retry delay', () => {
  it('a listed status that is no rate limit backs off, on a clock that reads fractions of a millisecond', () => {
    // A real clock (performance.now(), a scheduler's) moves between two readings: "send at once"
    // must not read as a wait of a few microseconds, or a 503 goes again at once, every time.
    let t = 1_000.25;
    const scheduler = { now: () => (t += 0.0013), schedule: asyncScheduler.schedule.bind(asyncScheduler) };
    const limiter = createLimiter({ provider: generic(), key: 'k', scheduler, random: () => 0 });
    const delays = [1, 2, 3].map((attempts) =>
      limiter.retryDelay(
        { method: 'GET', url: '/items' },
        { attempts, maxRetries: 5, status: 503, cause: new Error('503') },
      ),
    );
    // The default backoff (1 s, doubling) with the least jitter: half of it.
    expect(delays).toEqual([500, 1_000, 2_000]);
  });

  it('a listed status that is no rate limit backs off on a smooth bucket too, whose next slot is near', () => {
    const delays = inVirtualTime(() => {
      const limiter = createLimiter({
        provider: providers.generic({ limit: 20, windowMs: 1_000, pacing: 'smooth' }),
        key: 'k',
        random: () => 0,
        coldStartConcurrency: 10,
      });
      // Two requests sent: the smooth bucket's next slot is 50 ms away.
      for (let i = 0; i < 2; i++)
        limiter.acquire({ url: '/items' }, { granted: (p) => p.release(), rejected: () => undefined });
      return [1, 2].map((attempts) =>
        limiter.retryDelay(
          { method: 'GET', url: '/items' },
          { attempts, maxRetries: 5, status: 503, cause: new Error('503') },
        ),
      );
    });
    expect(delays).toEqual([500, 1_000]);
  });
});

describe('bad request fields and pause values are refused, naming what was wrong', () => {
  it.each([
    ['priority', { priority: Number.NaN }, /`priority` must be a finite number, got NaN/],
    ['priority', { priority: 'high' }, /`priority` must be a finite number, got string/],
    ['method', { method: 5 }, /`method` must be a string, got 5/],
    ['url', { url: new URL('https://api.example.com/x') }, /`url` must be a string, got object/],
    ['retry', { retry: 'yes' }, /`retry` must be a boolean, got string/],
  ])(
    'a request whose %s is %p is a TypeError at every operator and at acquire, and takes nothing',
    (_f, bad, message) => {
      const limiter = createLimiter({ provider: generic(), key: 'k' });
      for (const operator of [rateLimit, throttleByHeaders, retryOn429, dailyQuotaGuard])
        expect(() => operator(limiter, bad as never)).toThrow(message);
      const handlers = { granted: () => undefined, rejected: () => undefined };
      expect(() => limiter.acquire(bad as never, handlers)).toThrow(message);
      expect(limiter.snapshot.inFlight).toBe(0);
      expect(limiter.snapshot.queued).toBe(0);
    },
  );

  it.each([
    [{ extractResponse: 5 }, /rateLimit: option `extractResponse` must be a function, got 5/],
    [{ statuses: 429 }, /rateLimit: option `statuses` must be an array of HTTP status codes \(100 to 599\), got 429/],
    [{ statuses: ['429'] }, /option `statuses` must be an array of HTTP status codes.*got an array with other values/],
    [{ reservePriority: 'high' }, /rateLimit: option `reservePriority` must be a number, got string/],
    // A number read from the environment, still a string: named as one (not "got 3").
    [{ maxRetries: '3' }, /option `maxRetries` must be a whole number >= 0, got string/],
  ])('rateLimit with %p is a TypeError naming the option', (config, message) => {
    const limiter = createLimiter({ provider: generic(), key: 'k' });
    expect(() => rateLimit(limiter, {}, config as never)).toThrow(message);
  });

  it.each([[Number.NaN], ['5000']])('pause(%p) is a TypeError and leaves a pause in force', (bad) => {
    const limiter = createLimiter({ provider: generic(), key: 'k' });
    limiter.pause(30_000);
    const until = limiter.snapshot.pausedUntil;
    expect(() => limiter.pause(bad as never)).toThrow(/pause\(ms\) needs a number of milliseconds/);
    expect(limiter.snapshot.pausedUntil).toBe(until);
  });
});
