import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, Observable } from 'rxjs';
import {
  createLimiter,
  dailyQuotaGuard,
  defineProvider,
  isQuotaExhaustedError,
  parseCount,
  rateLimit,
  responseLike,
  type RequestInfo,
  type ResponseLike,
} from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

const DAY = 86_400_000;

/** A provider with a daily budget on writes, reported in a header on write responses. */
const dailyWrites = defineProvider({
  name: 'daily',
  buckets: (req: RequestInfo) =>
    req.method === 'POST'
      ? [{ name: 'default' }, { name: 'daily', limit: 10_000, windowMs: DAY, quota: true }]
      : [{ name: 'default' }],
  read: (res: ResponseLike) => {
    const left = parseCount(res.header('x-daily-requests-left'));
    return {
      outcome: res.status === 429 ? 'limited' : 'ok',
      buckets: left === undefined ? [] : [{ name: 'daily', remaining: left, reset: { at: DAY } }],
    };
  },
});

/** A server with `budget` writes a day; counts what it receives. */
function writesApi(budget: number) {
  let left = budget;
  const sent: string[] = [];
  const request = (method: string) =>
    new Observable<ResponseLike>((s) => {
      sent.push(method);
      if (method === 'POST') left--;
      const headers: Record<string, string> =
        method === 'POST' ? { 'x-daily-requests-left': String(Math.max(0, left)) } : {};
      const t = asyncScheduler.schedule(() => {
        s.next(responseLike(left < 0 ? 429 : 200, headers));
        s.complete();
      }, 5);
      return () => t.unsubscribe();
    });
  return { request, sent };
}

describe('dailyQuotaGuard', () => {
  it('ends the POSTs past the daily budget with QuotaExhaustedError: none sent, none lost; GETs go on', () => {
    const out = inVirtualTime(() => {
      const api = writesApi(5);
      const limiter = createLimiter({ provider: dailyWrites, key: 'k' });
      const ok: string[] = [];
      const errors: unknown[] = [];
      for (let i = 0; i < 12; i++) {
        const method = i % 4 === 3 ? 'GET' : 'POST';
        // Each request starts after the previous one answered, as a sequential sync job would.
        asyncScheduler.schedule(
          () =>
            api
              .request(method)
              .pipe(rateLimit(limiter, { method }))
              .subscribe({ next: () => ok.push(method), error: (e) => errors.push(e) }),
          i * 10,
        );
      }
      return { api, ok, errors };
    });
    const posts = out.api.sent.filter((m) => m === 'POST');
    expect(posts).toHaveLength(5);
    expect(out.ok.filter((m) => m === 'POST')).toHaveLength(5);
    expect(out.ok.filter((m) => m === 'GET')).toHaveLength(3);
    expect(out.errors).toHaveLength(4);
    for (const e of out.errors) {
      expect(isQuotaExhaustedError(e)).toBe(true);
      if (isQuotaExhaustedError(e)) {
        expect(e.bucket).toBe('daily');
        expect(e.resumeAt).toBe(DAY + 50);
      }
    }
  });

  it('keeps a reserve for high-priority requests', () => {
    const out = inVirtualTime(() => {
      const api = writesApi(3);
      const limiter = createLimiter({ provider: dailyWrites, key: 'k' });
      const results: string[] = [];
      const post = (name: string, priority: number, at: number) =>
        asyncScheduler.schedule(
          () =>
            api
              .request('POST')
              .pipe(rateLimit(limiter, { method: 'POST', priority }, { reserve: 2 }))
              .subscribe({
                next: () => results.push(`${name}:ok`),
                error: (e: Error) => results.push(`${name}:${e.name}`),
              }),
          at,
        );
      post('a', 0, 0); // leaves 2: only the reserve
      post('b', 0, 10);
      post('urgent', 1, 20);
      return results;
    });
    expect(out).toEqual(['a:ok', 'b:QuotaExhaustedError', 'urgent:ok']);
  });

  it('checks before subscribing, so a refused request is never sent', () => {
    const limiter = createLimiter({ provider: dailyWrites, key: 'k' });
    const api = writesApi(0);
    const errors: unknown[] = [];
    const values: ResponseLike[] = [];
    inVirtualTime(() => {
      // The server's budget is already spent: this POST gets the 429 (delivered as received,
      // a POST is not retried) whose header tells the limiter the day is over.
      api
        .request('POST')
        .pipe(rateLimit(limiter, { method: 'POST' }))
        .subscribe({ next: (v) => values.push(v), error: (e) => errors.push(e) });
      asyncScheduler.schedule(
        () =>
          api
            .request('POST')
            .pipe(dailyQuotaGuard(limiter, { method: 'POST' }))
            .subscribe({ error: (e) => errors.push(e) }),
        50,
      );
    });
    expect(api.sent).toEqual(['POST']);
    expect(values.map((v) => v.status)).toEqual([429]);
    expect(errors.map((e) => (e as Error).name)).toEqual(['QuotaExhaustedError']);
  });

  it('rejects a bad reserve with a TypeError naming it', () => {
    const limiter = createLimiter({ provider: dailyWrites, key: 'k' });
    expect(() => dailyQuotaGuard(limiter, {}, { reserve: 1.5 })).toThrow(
      /`reserve` must be a whole number >= 0, got 1.5/,
    );
    // `null` (a config value left empty) is no reserve: refused too, not read as 0.
    expect(() => dailyQuotaGuard(limiter, {}, { reserve: null as never })).toThrow(
      /dailyQuotaGuard: option `reserve` must be a whole number >= 0, got null/,
    );
  });
});
