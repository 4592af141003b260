import { describe, expect, it } from '@jest/globals';
import { AxiosHeaders, type AxiosResponse } from 'axios';
import { asyncScheduler, Observable } from 'rxjs';
import { createLimiter, providers, rateLimit, responseLike } from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

// A service acting for many users with one credential (a NestJS back end) asks the API once for
// identical GETs: each caller then gets the answer as the server sent it, whatever the other
// callers do to theirs (annotate it for their user, sort it, filter it in place).

interface Deals {
  items: Array<{ id: number; viewer?: string }>;
}

const deals = (): Deals => ({ items: [{ id: 1 }, { id: 2 }] });

/**
 * GETs `/deals` at each `at` (ms) through one limiter, answered in 10 ms with `answer()`; each
 * caller records the body it got (as JSON, when it got it), then writes its own name into it.
 */
function callers<T>(
  answer: () => T,
  bodyOf: (value: T) => Deals,
  at: readonly number[],
  cache = false,
): { seen: string[]; sent: () => number } {
  return inVirtualTime(() => {
    const limiter = createLimiter({
      provider: providers.generic(),
      key: 'service',
      coldStartConcurrency: 10,
      ...(cache ? { cache: { ttlMs: 60_000 } } : {}),
    });
    let sent = 0;
    const get$ = new Observable<T>((s) => {
      sent++;
      const t = asyncScheduler.schedule(() => {
        s.next(answer());
        s.complete();
      }, 10);
      return () => t.unsubscribe();
    });
    const seen: string[] = [];
    at.forEach((t, i) =>
      asyncScheduler.schedule(
        () =>
          void get$.pipe(rateLimit(limiter, { url: '/deals', headers: {} })).subscribe((value) => {
            const body = bodyOf(value);
            seen.push(JSON.stringify(body));
            for (const item of body.items) item.viewer = `user-${i}`;
            body.items.reverse();
          }),
        t,
      ),
    );
    return { seen, sent: () => sent };
  });
}

const PRISTINE = JSON.stringify(deals());

const axiosAnswer = (): AxiosResponse<Deals> => ({
  status: 200,
  statusText: 'OK',
  headers: new AxiosHeaders({ 'content-type': 'application/json' }),
  data: deals(),
  config: { headers: new AxiosHeaders() },
});

describe('a caller that changes its response does not change another caller’s', () => {
  it('in flight: every caller of a shared request gets the body as sent (ResponseLike)', () => {
    const out = callers(
      () => responseLike(200, {}, deals()),
      (r) => r.body as Deals,
      [0, 0, 0],
    );
    expect(out.sent()).toBe(1);
    expect(out.seen).toEqual([PRISTINE, PRISTINE, PRISTINE]);
  });

  it('in flight: an axios response (data and headers)', () => {
    const headers: string[] = [];
    const out = callers(
      axiosAnswer,
      (r) => {
        headers.push(String(r.headers['x-seen-by']));
        r.headers['x-seen-by'] = 'someone';
        return r.data;
      },
      [0, 0],
    );
    expect(out.seen).toEqual([PRISTINE, PRISTINE]);
    expect(headers).toEqual(['undefined', 'undefined']);
  });

  it('from the cache: a later caller gets what the server sent, not what the first caller made of it', () => {
    const out = callers(
      () => responseLike(200, {}, deals()),
      (r) => r.body as Deals,
      [0, 100, 200],
      true,
    );
    expect(out.sent()).toBe(1);
    expect(out.seen).toEqual([PRISTINE, PRISTINE, PRISTINE]);
  });

  it('from the cache: an axios response keeps its shape', () => {
    const kinds: boolean[] = [];
    const out = callers(
      axiosAnswer,
      (r) => {
        kinds.push(r.headers instanceof AxiosHeaders && r.headers.get('content-type') === 'application/json');
        return r.data;
      },
      [0, 100],
      true,
    );
    expect(out.sent()).toBe(1);
    expect(out.seen).toEqual([PRISTINE, PRISTINE]);
    expect(kinds).toEqual([true, true]);
  });

  it('a body with a "__proto__" key is copied as data, not as a prototype', () => {
    const body = JSON.parse('{"__proto__": {"polluted": true}, "items": []}') as Deals;
    const got: unknown[] = [];
    inVirtualTime(() => {
      const limiter = createLimiter({ provider: providers.generic(), key: 'k', cache: { ttlMs: 60_000 } });
      const get$ = new Observable((s) => {
        s.next(responseLike(200, {}, body));
        s.complete();
      });
      for (const t of [0, 100])
        asyncScheduler.schedule(
          () =>
            void get$
              .pipe(rateLimit(limiter, { url: '/a', headers: {} }))
              .subscribe((r) => got.push((r as { body: unknown }).body)),
          t,
        );
    });
    const cached = got[1] as Record<string, unknown>;
    expect(Object.getPrototypeOf(cached)).toBe(Object.prototype);
    expect(Object.keys(cached)).toEqual(['__proto__', 'items']);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

describe('a body that cannot be copied', () => {
  it('is not cached (a class instance of the app’s, made by a transform)', () => {
    class Deal {
      constructor(readonly id: number) {}
    }
    const out = inVirtualTime(() => {
      const limiter = createLimiter({ provider: providers.generic(), key: 'k', cache: { ttlMs: 60_000 } });
      let sent = 0;
      const get$ = new Observable((s) => {
        sent++;
        s.next(responseLike(200, {}, [new Deal(1)]));
        s.complete();
      });
      for (const t of [0, 100])
        asyncScheduler.schedule(() => void get$.pipe(rateLimit(limiter, { url: '/a', headers: {} })).subscribe(), t);
      return () => sent;
    });
    expect(out()).toBe(2);
  });
});
