import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, Observable, Subscription } from 'rxjs';
import {
  createLimiter,
  providers,
  rateLimit,
  responseLike,
  type LimiterEvent,
  type ResponseLike,
} from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

/** A request sent without headers, said so: what lets `rateLimit` share it. */
const NONE = {};

/** A GET endpoint in virtual time that counts what it is sent. */
function endpoint(latencyMs = 50) {
  const sent: string[] = [];
  const get = (url: string) =>
    new Observable<ResponseLike>((s) => {
      sent.push(url);
      const t = asyncScheduler.schedule(() => {
        s.next(responseLike(200, {}, { url, n: sent.length }));
        s.complete();
      }, latencyMs);
      return () => t.unsubscribe();
    });
  return { get, sent };
}

describe('spending less of the quota', () => {
  it('identical GETs in flight at once share one request; each subscriber gets the response', () => {
    const out = inVirtualTime(() => {
      const api = endpoint();
      const limiter = createLimiter({ provider: providers.generic(), key: 'k', coldStartConcurrency: 10 });
      const events: LimiterEvent[] = [];
      limiter.events$.subscribe((e) => events.push(e));
      const got: unknown[] = [];
      for (let i = 0; i < 5; i++)
        api
          .get('/a')
          .pipe(rateLimit(limiter, { url: '/a', headers: NONE }))
          .subscribe((r) => got.push(r.body));
      api
        .get('/b')
        .pipe(rateLimit(limiter, { url: '/b', headers: NONE }))
        .subscribe((r) => got.push(r.body));
      // After the first /a answered, a new /a is sent again (no cache configured).
      asyncScheduler.schedule(
        () =>
          api
            .get('/a')
            .pipe(rateLimit(limiter, { url: '/a', headers: NONE }))
            .subscribe(),
        100,
      );
      return { api, got, events, totals: () => limiter.snapshot.totals };
    });
    expect(out.api.sent).toEqual(['/a', '/b', '/a']);
    expect(out.got).toHaveLength(6);
    expect(out.totals().saved).toBe(4);
    expect(out.events.filter((e) => e.type === 'shared')).toHaveLength(4);
  });

  it('a shared request is cancelled only when its last subscriber leaves', () => {
    const out = inVirtualTime(() => {
      const api = endpoint(100);
      const limiter = createLimiter({ provider: providers.generic(), key: 'k' });
      const got: string[] = [];
      const first = api
        .get('/a')
        .pipe(rateLimit(limiter, { url: '/a', headers: NONE }))
        .subscribe(() => got.push('first'));
      api
        .get('/a')
        .pipe(rateLimit(limiter, { url: '/a', headers: NONE }))
        .subscribe(() => got.push('second'));
      asyncScheduler.schedule(() => first.unsubscribe(), 10);
      return { got, api };
    });
    expect(out.api.sent).toEqual(['/a']);
    expect(out.got).toEqual(['second']);
  });

  it('POSTs, requests without a url or without headers, and shareKey: false are never shared; dedupe: false turns it off', () => {
    const count = (limiterOptions: { dedupe?: boolean }, info: Parameters<typeof rateLimit>[1]) =>
      inVirtualTime(() => {
        const api = endpoint();
        const limiter = createLimiter({
          provider: providers.generic(),
          key: 'k',
          coldStartConcurrency: 10,
          ...limiterOptions,
        });
        for (let i = 0; i < 3; i++) api.get('/a').pipe(rateLimit(limiter, info)).subscribe();
        return api.sent.length;
      });
    expect(count({}, { method: 'POST', url: '/a', headers: NONE })).toBe(3);
    expect(count({}, { headers: NONE })).toBe(3);
    expect(count({}, { url: '/a', headers: NONE, shareKey: false })).toBe(3);
    expect(count({ dedupe: false }, { url: '/a', headers: NONE })).toBe(3);
    expect(count({}, { url: '/a', headers: NONE })).toBe(1);
  });

  it('the cache serves fresh 2xx GET responses for ttlMs, bounded to maxEntries', () => {
    const out = inVirtualTime(() => {
      const api = endpoint(10);
      const limiter = createLimiter({ provider: providers.generic(), key: 'k', cache: { ttlMs: 1000, maxEntries: 2 } });
      const sub = new Subscription();
      const get = (url: string, at: number) =>
        asyncScheduler.schedule(
          () =>
            sub.add(
              api
                .get(url)
                .pipe(rateLimit(limiter, { url, headers: NONE }))
                .subscribe(),
            ),
          at,
        );
      get('/a', 0);
      get('/a', 100); // cached
      get('/b', 200);
      get('/c', 300); // evicts /a (oldest)
      get('/a', 400); // sent again
      get('/c', 1200); // fresh until 1310
      get('/c', 1400); // expired: sent again
      return { api, totals: () => limiter.snapshot.totals, size: () => limiter.sharing.size };
    });
    expect(out.api.sent).toEqual(['/a', '/b', '/c', '/a', '/c']);
    expect(out.totals().saved).toBe(2);
    expect(out.size()).toBeLessThanOrEqual(2);
  });

  it('fetch Responses are cloned, so every subscriber can read the body', async () => {
    const limiter = createLimiter({ provider: providers.generic(), key: 'k', coldStartConcurrency: 5 });
    let sent = 0;
    const get$ = new Observable<Response>((s) => {
      sent++;
      void Promise.resolve().then(() => {
        s.next(new Response('{"ok":true}', { status: 200, headers: { 'content-type': 'application/json' } }));
        s.complete();
      });
    });
    const bodies = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<unknown>((resolve, reject) => {
            get$
              .pipe(rateLimit(limiter, { url: '/x', headers: NONE }))
              .subscribe({ next: (r) => void r.json().then(resolve, reject), error: reject });
          }),
      ),
    );
    expect(sent).toBe(1);
    expect(bodies).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
  });

  it('rejects a bad cache option', () => {
    expect(() => createLimiter({ provider: providers.generic(), key: 'k', cache: { ttlMs: 0 } })).toThrow(
      /option `cache.ttlMs` must be/,
    );
  });
});
