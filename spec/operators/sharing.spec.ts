import { describe, expect, it } from '@jest/globals';
import { AxiosHeaders } from 'axios';
import { asyncScheduler, Observable, Subscription } from 'rxjs';
import {
  createLimiter,
  providers,
  rateLimit,
  responseLike,
  type LimiterEvent,
  type RequestInfo,
  type ResponseLike,
} from '../../lib/index.js';
import type { RequestHeaders } from '../../lib/core/request.js';
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

  it('a GET joins one in flight only if it would end the same: one that may not be retried is not joined by one that may', () => {
    const out = inVirtualTime(() => {
      const sent: number[] = [];
      // The first request sent is answered 429 (retry in 1 s), every later one 200.
      const get = () =>
        new Observable<ResponseLike>((s) => {
          sent.push(asyncScheduler.now());
          const status = sent.length === 1 ? 429 : 200;
          const t = asyncScheduler.schedule(() => {
            s.next(responseLike(status, status === 429 ? { 'retry-after': '1' } : {}));
            s.complete();
          }, 10);
          return () => t.unsubscribe();
        });
      const limiter = createLimiter({ provider: providers.generic(), key: 'k', coldStartConcurrency: 10 });
      const ended: string[] = [];
      const end = (who: string) => ({
        next: (r: ResponseLike) => ended.push(`${who} ${r.status}`),
        error: (e: { response?: ResponseLike; status?: number }) => ended.push(`${who} error ${e.status ?? 429}`),
      });
      get()
        .pipe(rateLimit(limiter, { url: '/a', headers: NONE, retry: false }))
        .subscribe(end('no-retry'));
      get()
        .pipe(rateLimit(limiter, { url: '/a', headers: NONE }))
        .subscribe(end('plain'));
      return { sent, ended };
    });
    // Two requests at 0 (not one shared), and the plain GET retried past the 429 it may retry.
    expect(out.sent.filter((t) => t === 0)).toHaveLength(2);
    expect(out.ended).toContain('plain 200');
    expect(out.ended).toHaveLength(2);
  });

  it.each([
    ['a plain body', (n: number) => ({ items: [n] })],
    // Bodies shaped like Angular's Sent and progress events: without Angular's extractor, a
    // value is an answer whatever its shape.
    ['a body shaped like a Sent event', (n: number) => ({ type: 0, n })],
    ['a body that is exactly { type: 0 }', () => ({ type: 0 })],
    ['a body shaped like a progress event', (n: number) => ({ type: 1, loaded: n })],
  ])(
    'an identical GET made from a subscriber’s handler, after the answer went out, gets an answer of its own: %s',
    (_name, body) => {
      // No response the extractor reads: the request stayed open to joiners after its value
      // went out, and one made from `next` got the completion only.
      const out = inVirtualTime(() => {
        let sent = 0;
        const got: unknown[] = [];
        const limiter = createLimiter({ provider: providers.generic(), key: 'k' });
        const get = () =>
          new Observable<unknown>((s) => {
            sent++;
            const t = asyncScheduler.schedule(() => {
              s.next(body(sent));
              s.complete();
            }, 10);
            return () => t.unsubscribe();
          }).pipe(rateLimit(limiter, { url: 'https://api.example.com/x', headers: { Authorization: 'Bearer A' } }));
        get().subscribe((first) => {
          got.push(first);
          get().subscribe({ next: (second) => got.push(second), complete: () => got.push('done') });
        });
        return { got, sent: () => sent };
      });
      expect(out.got).toEqual([body(1), body(2), 'done']);
    },
  );

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

/**
 * A GET endpoint in virtual time that answers each request for the user (`Authorization`) and
 * language (`Accept-Language`) it was sent with, and counts what it is sent.
 */
function personalEndpoint(responseHeaders: Record<string, string> = {}, latencyMs = 50) {
  const sent: string[] = [];
  const get = (url: string, headers: Record<string, string>) =>
    new Observable<ResponseLike>((s) => {
      const user = headers['Authorization'] ?? headers['authorization'] ?? 'nobody';
      sent.push(`${user} ${url}`);
      const t = asyncScheduler.schedule(() => {
        s.next(responseLike(200, responseHeaders, { user, lang: headers['Accept-Language'] ?? null }));
        s.complete();
      }, latencyMs);
      return () => t.unsubscribe();
    });
  return { get, sent };
}

const ALICE = { Authorization: 'Bearer alice-secret-token' };
const BOB = { Authorization: 'Bearer bob-secret-token' };

describe('a response is never shared across users or representations', () => {
  /** GETs `url` with `headers` through `rateLimit` at `at` ms; the bodies land in `got`. */
  function client(options: Partial<Parameters<typeof createLimiter>[0]>, responseHeaders?: Record<string, string>) {
    const api = personalEndpoint(responseHeaders);
    const limiter = createLimiter({ provider: providers.generic(), key: 'k', coldStartConcurrency: 10, ...options });
    const got: unknown[] = [];
    const get = (at: number, url: string, headers: Record<string, string>, info: Partial<RequestInfo> = {}) =>
      asyncScheduler.schedule(
        () =>
          void api
            .get(url, headers)
            .pipe(rateLimit(limiter, { url, headers, ...info }))
            .subscribe((r) => got.push(r.body)),
        at,
      );
    return { api, limiter, got, get };
  }

  it('two users GET one URL at once: one request each, each gets their own body', () => {
    const out = inVirtualTime(() => {
      const c = client({});
      c.get(0, '/me', ALICE);
      c.get(0, '/me', BOB);
      c.get(0, '/me', ALICE); // joins Alice's request
      return c;
    });
    expect(out.api.sent).toEqual([`${ALICE.Authorization} /me`, `${BOB.Authorization} /me`]);
    expect(out.got).toEqual([
      { user: ALICE.Authorization, lang: null },
      { user: ALICE.Authorization, lang: null },
      { user: BOB.Authorization, lang: null },
    ]);
    expect(out.limiter.snapshot.totals.saved).toBe(1);
  });

  it('with the cache on, one user after the other: each gets their own body', () => {
    const out = inVirtualTime(() => {
      const c = client({ cache: { ttlMs: 60_000 } });
      c.get(0, '/me', ALICE);
      c.get(100, '/me', BOB); // Alice's response is cached, not Bob's to have
      c.get(200, '/me', ALICE); // from the cache
      c.get(300, '/me', BOB); // from the cache
      return c;
    });
    expect(out.api.sent).toEqual([`${ALICE.Authorization} /me`, `${BOB.Authorization} /me`]);
    expect(out.got.map((b) => (b as { user: string }).user)).toEqual([
      ALICE.Authorization,
      BOB.Authorization,
      ALICE.Authorization,
      BOB.Authorization,
    ]);
  });

  it.each([
    ['Cookie', 'session=a', 'session=b'],
    ['x-api-token', 'token-a', 'token-b'],
    ['X-API-Key', 'key-a', 'key-b'],
    ['Accept', 'application/json', 'text/csv'],
    ['Accept-Language', 'de', 'fr'],
    ['Accept-Encoding', 'gzip', 'identity'],
    ['Procore-Company-Id', '1', '2'],
  ])('requests that differ in %s are sent each, in flight and from the cache', (name, a, b) => {
    const out = inVirtualTime(() => {
      const c = client({ cache: { ttlMs: 60_000 } });
      c.get(0, '/a', { [name]: a });
      c.get(0, '/a', { [name]: b });
      c.get(100, '/a', { [name]: b });
      return c;
    });
    expect(out.api.sent).toHaveLength(2);
  });

  it('a token in the query string separates requests too', () => {
    const out = inVirtualTime(() => {
      const c = client({});
      c.get(0, '/a?api_token=alice', {});
      c.get(0, '/a?api_token=bob', {});
      return c;
    });
    expect(out.api.sent).toHaveLength(2);
  });

  it('header names compare case-insensitively: the same headers share', () => {
    const out = inVirtualTime(() => {
      const c = client({});
      c.get(0, '/a', { Authorization: 'x' });
      c.get(0, '/a', { authorization: 'x' });
      return c;
    });
    expect(out.api.sent).toHaveLength(1);
  });

  it('without headers rateLimit cannot tell who a request is sent as: nothing is shared or cached', () => {
    const out = inVirtualTime(() => {
      const api = personalEndpoint();
      const limiter = createLimiter({ provider: providers.generic(), key: 'k', cache: { ttlMs: 60_000 } });
      const got: unknown[] = [];
      // As with fromFetch(url, { headers }): the headers are in the request, not in the info.
      const get = (at: number, headers: Record<string, string>) =>
        asyncScheduler.schedule(
          () =>
            void api
              .get('/me', headers)
              .pipe(rateLimit(limiter, { url: '/me' }))
              .subscribe((r) => got.push(r.body)),
          at,
        );
      get(0, ALICE);
      get(0, BOB);
      get(100, BOB);
      return { api, got };
    });
    expect(out.api.sent).toHaveLength(3);
    expect(out.got.map((b) => (b as { user: string }).user)).toEqual([
      ALICE.Authorization,
      BOB.Authorization,
      BOB.Authorization,
    ]);
  });

  it('a shareKey stands for the URL; the headers still separate users', () => {
    const out = inVirtualTime(() => {
      const c = client({});
      c.get(0, '/deals?cb=1', ALICE, { shareKey: 'deals' });
      c.get(0, '/deals?cb=2', ALICE, { shareKey: 'deals' });
      c.get(0, '/deals?cb=3', BOB, { shareKey: 'deals' });
      return c;
    });
    expect(out.api.sent).toEqual([`${ALICE.Authorization} /deals?cb=1`, `${BOB.Authorization} /deals?cb=3`]);
  });
});

describe('the cache honours Vary and Cache-Control', () => {
  function cached(responseHeaders: Record<string, string>, requests: Array<[number, Record<string, string>]>) {
    return inVirtualTime(() => {
      const api = personalEndpoint(responseHeaders);
      const limiter = createLimiter({ provider: providers.generic(), key: 'k', cache: { ttlMs: 60_000 } });
      const got: unknown[] = [];
      for (const [at, headers] of requests)
        asyncScheduler.schedule(
          () =>
            void api
              .get('/a', headers)
              .pipe(rateLimit(limiter, { url: '/a', headers }))
              .subscribe((r) => got.push(r.body)),
          at,
        );
      return { sent: api.sent, got };
    });
  }

  it('a response that varies on a header is served only to requests with the same value', () => {
    const out = cached({ Vary: 'Accept-Language' }, [
      [0, { 'Accept-Language': 'de' }],
      [100, { 'Accept-Language': 'fr' }],
      [200, { 'Accept-Language': 'de' }],
    ]);
    expect(out.sent).toHaveLength(2);
    expect(out.got.map((b) => (b as { lang: string }).lang)).toEqual(['de', 'fr', 'de']);
  });

  it.each([
    ['Vary', '*', '*'],
    ['Vary', 'Accept, *', 'Accept, *'],
    // A browser's cookies are not in the request's headers: a new session would get the last one's.
    ['Vary', 'Cookie', 'Cookie'],
    ['Vary', 'accept, COOKIE', 'accept, COOKIE'],
    ['Vary', 'of 1,606 characters', `${'X-Long, '.repeat(200)}Accept`],
    ['Cache-Control', 'no-store', 'no-store'],
    ['Cache-Control', 'max-age=60, private', 'max-age=60, private'],
    ['Cache-Control', 'No-Cache', 'No-Cache'],
    ['Cache-Control', 'private="Set-Cookie"', 'private="Set-Cookie"'],
  ])('a response with %s %s is not cached', (name, _label, value) => {
    const out = cached({ [name]: value }, [
      [0, ALICE],
      [100, ALICE],
    ]);
    expect(out.sent).toHaveLength(2);
  });

  it('a response that varies is not cached for a shareKey without headers (nothing proves the next request alike)', () => {
    const count = (vary: Record<string, string>) =>
      inVirtualTime(() => {
        const api = personalEndpoint(vary);
        const limiter = createLimiter({ provider: providers.generic(), key: 'k', cache: { ttlMs: 60_000 } });
        for (const at of [0, 100])
          asyncScheduler.schedule(
            () =>
              void api
                .get('/a', {})
                .pipe(rateLimit(limiter, { url: '/a', shareKey: 'a' }))
                .subscribe(),
            at,
          );
        return api;
      }).sent.length;
    expect(count({ Vary: 'Accept-Language' })).toBe(2);
    expect(count({})).toBe(1);
  });

  it('public, max-age responses are cached', () => {
    const out = cached({ 'Cache-Control': 'public, max-age=60', Vary: 'Accept-Encoding' }, [
      [0, ALICE],
      [100, ALICE],
    ]);
    expect(out.sent).toHaveLength(1);
  });
});

describe('the share key', () => {
  it('holds no credential or query token in clear, and events and state show neither', () => {
    const limiter = createLimiter({ provider: providers.generic(), key: 'k' });
    const events: LimiterEvent[] = [];
    limiter.events$.subscribe((e) => events.push(e));
    const info: RequestInfo = {
      url: 'https://api.example.com/v1/me?api_token=query-secret-123',
      headers: { Authorization: 'Bearer header-secret-456', 'X-Api-Key': 'key-secret-789' },
    };
    const key = limiter.sharing.keyOf(info) ?? '';
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    // Salted per limiter: the same request has another key elsewhere.
    expect(createLimiter({ provider: providers.generic(), key: 'k' }).sharing.keyOf(info)).not.toBe(key);
    const sub = new Subscription();
    for (let i = 0; i < 2; i++)
      sub.add(
        new Observable<never>(() => undefined).pipe(rateLimit(limiter, info)).subscribe({ error: () => undefined }),
      );
    const seen = JSON.stringify([events, limiter.snapshot]);
    sub.unsubscribe();
    expect(events.some((e) => e.type === 'shared')).toBe(true);
    for (const secret of ['query-secret-123', 'header-secret-456', 'key-secret-789'])
      expect(seen).not.toContain(secret);
  });
});

describe('request headers in any container', () => {
  it('a plain object, Headers, Map, pairs, AxiosHeaders and an Angular HttpHeaders with the same headers give the same key', () => {
    const limiter = createLimiter({ provider: providers.generic(), key: 'k' });
    const same: RequestHeaders[] = [
      { Authorization: 'Bearer a', Accept: ['application/json'] },
      new Headers({ authorization: 'Bearer a', accept: 'application/json' }),
      new Map([
        ['Accept', 'application/json'],
        ['AUTHORIZATION', 'Bearer a'],
      ]),
      [
        ['authorization', 'Bearer a'],
        ['accept', 'application/json'],
      ],
      new AxiosHeaders({ Authorization: 'Bearer a', Accept: 'application/json', 'X-Unset': null }),
      // Angular's HttpHeaders' shape (the real one is exercised in sharing.sockets.spec.ts).
      {
        keys: () => ['Authorization', 'Accept'],
        getAll: (name: string) => (name === 'Accept' ? ['application/json'] : ['Bearer a']),
      },
    ];
    const keys = same.map((headers) => limiter.sharing.keyOf({ url: '/a', headers }));
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toBeDefined();
    expect(limiter.sharing.keyOf({ url: '/a', headers: new Headers({ authorization: 'Bearer b' }) })).not.toBe(keys[0]);
  });
});
