import { describe, expect, it } from '@jest/globals';
import {
  asyncScheduler,
  defer,
  forkJoin,
  merge,
  NEVER,
  Observable,
  of,
  take,
  throwError,
  timer,
  mergeMap,
  type SchedulerLike,
} from 'rxjs';
import {
  createLimiter,
  defineProvider,
  providers,
  rateLimit,
  readRetryAfter,
  responseLike,
  retryOn429,
  throttleByHeaders,
  type Limiter,
  type ResponseLike,
} from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { virtualApi } from '../helpers/virtualApi.js';

/**
 * A key of its own for each limiter made here: limiters of one provider and key in a process
 * share one limit state, and these stand for independent credentials.
 */
let keys = 0;
const freshKey = () => `k${++keys}`;

describe('every request ends: throwing callbacks, cancellations, waits that never come', () => {
  it('an extractResponse that throws neither hangs the request nor leaks its permit', () => {
    const out = inVirtualTime(() => {
      const limiter = createLimiter({ provider: providers.generic(), key: freshKey() });
      const results: string[] = [];
      const extractResponse = (x: unknown) => {
        const r = (x as { response: { status: number } }).response;
        return responseLike(r.status, {});
      };
      timer(10)
        .pipe(
          mergeMap(() => throwError(() => new Error('ECONNRESET'))),
          throttleByHeaders(limiter, {}, { extractResponse }),
        )
        .subscribe({ error: (e: Error) => results.push(`first:${e.message}`) });
      of(responseLike(200, {}))
        .pipe(throttleByHeaders(limiter))
        .subscribe({ complete: () => results.push('second:complete') });
      return { results, limiter };
    });
    expect([...out.results].sort()).toEqual(['first:ECONNRESET', 'second:complete']);
    expect(out.limiter.snapshot.inFlight).toBe(0);
  });

  it('a request queued by an error handler while the queue is failed wholesale still ends', () => {
    const out = inVirtualTime(() => {
      const limiter = createLimiter({ provider: providers.generic(), key: freshKey() });
      const probe = () =>
        new Observable<ResponseLike>((s) => {
          const t = asyncScheduler.schedule(
            () => s.error(Object.assign(new Error('429'), { status: 429, headers: { 'retry-after': '3600' } })),
            100,
          );
          return () => t.unsubscribe();
        });
      const results: string[] = [];
      forkJoin([probe().pipe(rateLimit(limiter)), probe().pipe(rateLimit(limiter))]).subscribe({
        error: () =>
          probe()
            .pipe(rateLimit(limiter))
            .subscribe({ error: (e: Error) => results.push(e.name) }),
      });
      return { results, limiter };
    });
    expect(out.results).toEqual(['QuotaExhaustedError']);
    expect(out.limiter.snapshot.queued).toBe(0);
    expect(out.limiter.hasTimer).toBe(false);
  });

  it('a request cancelled while its grant is pending in the same drain is not sent', () => {
    const out = inVirtualTime(() => {
      const limiter = createLimiter({ provider: providers.generic(), key: freshKey() });
      let sentB = 0;
      const probe = new Observable<ResponseLike>((s) => {
        const t = asyncScheduler.schedule(() => (s.next(responseLike(200, {})), s.complete()), 100);
        return () => t.unsubscribe();
      });
      probe.pipe(throttleByHeaders(limiter)).subscribe();
      const a$ = of(responseLike(200, {})).pipe(throttleByHeaders(limiter));
      const b$ = new Observable<ResponseLike>(() => {
        sentB++;
      }).pipe(throttleByHeaders(limiter));
      merge(a$, b$).pipe(take(1)).subscribe();
      return { sentB: () => sentB, limiter };
    });
    expect(out.sentB()).toBe(0);
    expect(out.limiter.snapshot.inFlight).toBe(0);
  });

  it('a wait that depends on a response that never comes ends after maxWaitMs', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: providers.generic(), key: freshKey(), maxWaitMs: 1000 });
      NEVER.pipe(throttleByHeaders(limiter)).subscribe();
      const ended: Array<[string, number]> = [];
      of(responseLike(200, {}))
        .pipe(throttleByHeaders(limiter))
        .subscribe({ error: (e: Error) => ended.push([e.name, now()]) });
      return { ended, limiter };
    });
    expect(out.ended).toEqual([['QuotaExhaustedError', 1000]]);
    expect(out.limiter.hasTimer).toBe(false);
  });
});

describe('a retry queued again on the limiter', () => {
  /** A provider whose `buckets` hook throws once `broken` is set (a user's profile whose config went bad). */
  const flaky = () => {
    const state = { broken: false };
    const provider = defineProvider({
      name: 'flaky',
      buckets: () => {
        if (state.broken) throw new Error('profile config gone');
        return [{ name: 'default', limit: 10, windowMs: 1000 }];
      },
      read: (res) => ({ outcome: res.status === 429 ? 'limited' : 'ok', buckets: [], ...readRetryAfter(res) }),
    });
    return { state, provider };
  };

  for (const [way, pipe] of [
    ['rateLimit', (l: Limiter) => rateLimit<ResponseLike>(l, { method: 'GET' })],
    [
      'throttleByHeaders + retryOn429',
      (l: Limiter) => (s: Observable<ResponseLike>) =>
        s.pipe(throttleByHeaders(l, { method: 'GET' }), retryOn429(l, { method: 'GET' })),
    ],
  ] as const) {
    it(`ends with the error of a provider hook that throws when the retry is queued (${way})`, () => {
      const out = inVirtualTime(({ now }) => {
        const { state, provider } = flaky();
        const limiter = createLimiter({ provider, key: freshKey() });
        let sends = 0;
        const request$ = defer(() => {
          sends++;
          // The profile goes bad while the request waits for its retry.
          asyncScheduler.schedule(() => (state.broken = true), 500);
          return of(responseLike(429, { 'retry-after': '1' }));
        });
        const ended: Array<[string, number]> = [];
        request$.pipe(pipe(limiter)).subscribe({
          next: () => ended.push(['next', now()]),
          error: (e: Error) => ended.push([e.message, now()]),
          complete: () => ended.push(['complete', now()]),
        });
        return { ended, sends: () => sends, limiter };
      });
      expect(out.ended).toEqual([['profile config gone', 1000]]);
      expect(out.sends()).toBe(1);
      expect(out.limiter.snapshot.inFlight).toBe(0);
      expect(out.limiter.hasTimer).toBe(false);
    });
  }
});

describe('a shared GET that fails as it is queued', () => {
  it('is not left for identical GETs to join: they are sent on their own and end', () => {
    const out = inVirtualTime(() => {
      const state = { broken: true };
      const provider = defineProvider({
        name: 'flaky-shared',
        buckets: () => {
          if (state.broken) throw new Error('profile config gone');
          return [{ name: 'default', limit: 10, windowMs: 1000 }];
        },
        read: () => ({ outcome: 'ok', buckets: [] }),
      });
      state.broken = false;
      const limiter = createLimiter({ provider, key: freshKey() });
      state.broken = true;
      const info = { method: 'GET', url: 'https://api.example.com/v1/deals', headers: [] };
      let sends = 0;
      const request$ = defer(() => {
        sends++;
        return of(responseLike(200, {}));
      });
      const ended: string[] = [];
      request$.pipe(rateLimit(limiter, info)).subscribe({
        error: (e: Error) => ended.push(`first:${e.message}`),
        complete: () => ended.push('first:complete'),
      });
      state.broken = false;
      request$.pipe(rateLimit(limiter, info)).subscribe({
        error: (e: Error) => ended.push(`second:${e.message}`),
        complete: () => ended.push('second:complete'),
      });
      return { ended, sends: () => sends, limiter };
    });
    expect(out.ended).toEqual(['first:profile config gone', 'second:complete']);
    expect(out.sends()).toBe(1);
    expect(out.limiter.snapshot.inFlight).toBe(0);
  });
});

describe('edges of the options', () => {
  it('maxQueue: 0 means "never wait": a request that can go at once goes, one that would wait fails with QueueFullError', () => {
    const out = inVirtualTime(() => {
      const api = virtualApi(asyncScheduler, { limit: 5, windowMs: 1000 });
      const limiter = createLimiter({
        provider: providers.generic({ resetUnit: 'unix-seconds' }),
        key: freshKey(),
        maxQueue: 0,
        coldStartConcurrency: 3,
      });
      const ended: string[] = [];
      for (let i = 0; i < 5; i++)
        api
          .request()
          .pipe(rateLimit(limiter))
          .subscribe({ next: (r) => ended.push(String(r.status)), error: (e: Error) => ended.push(e.name) });
      return { ended, api, limiter };
    });
    // Three go at once (the cold start allows three), the two that would have to wait are refused.
    expect(out.ended.filter((e) => e === 'QueueFullError')).toHaveLength(2);
    expect(out.api.hits).toHaveLength(3);
    expect(out.limiter.snapshot).toMatchObject({ queued: 0, inFlight: 0 });
  });

  it('a wait longer than setTimeout can hold (a Retry-After of 300 days, under a one-year maxServerWaitMs) is slept in pieces, never as a timer past 2^31 - 1 ms', () => {
    const delays: number[] = [];
    const out = inVirtualTime(() => {
      const scheduler: SchedulerLike = {
        now: () => asyncScheduler.now(),
        schedule: (work: never, delay?: number, state?: unknown) => {
          delays.push(delay ?? 0);
          return asyncScheduler.schedule(work, delay, state);
        },
      };
      const limiter = createLimiter({
        provider: providers.generic(),
        key: freshKey(),
        maxWaitMs: Infinity,
        maxServerWaitMs: 365 * 86_400_000,
        scheduler,
      });
      const ended: string[] = [];
      of(responseLike(429, { 'retry-after': String(300 * 86_400) }))
        .pipe(rateLimit(limiter, {}, { maxRetries: 0 }))
        .subscribe({ error: (e: Error) => ended.push(e.name) });
      const waiting = of(responseLike(200, {}))
        .pipe(rateLimit(limiter))
        .subscribe({ next: () => ended.push('sent') });
      // Two timer periods later nothing has gone (a timer clamped to 1 ms would have let it go).
      timer(2 ** 32).subscribe(() => {
        ended.push(`after 2^32 ms: ${limiter.snapshot.queued} queued`);
        waiting.unsubscribe();
      });
      return { ended };
    });
    expect(out.ended).toEqual(['RetryLimitError', 'after 2^32 ms: 1 queued']);
    expect(delays.length).toBeGreaterThan(0);
    expect(Math.max(...delays)).toBeLessThanOrEqual(2 ** 31 - 1);
  });
});
