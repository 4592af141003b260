import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { asyncScheduler, from, mergeMap, Observable, takeUntil, timer } from 'rxjs';
import { createBucket } from '../../lib/core/buckets.js';
import { leakyBuckets } from '../../lib/core/leakyBucket.js';
import { rollingWindows } from '../../lib/core/rollingBucket.js';
import {
  createLimiter,
  defineProvider,
  providers,
  responseLike,
  throttleByHeaders,
  type ResponseLike,
} from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

/** A provider bringing every bucket kind, for buckets made directly. */
const KINDS = { name: 'test', bucketKinds: [rollingWindows, leakyBuckets] };

/**
 * A server with one rolling window (TEOS-like) that logs each call when it *arrives*: `uplink(i)`
 * after the client subscribed. A call is refused when `limit` calls arrived in the last
 * `windowMs`. It sends no rate-limit headers, so the client paces from its own log alone.
 * `skewMs(i)`: how far behind the clock of the node that takes call `i` is (a server whose nodes
 * stamp one log on their own clocks). `letGoArrives`: a call the client unsubscribes from still
 * reaches the server (its bytes were on their way). `headers`: answers carry HubSpot's
 * `X-HubSpot-RateLimit-Max/-Remaining/-Interval-Milliseconds` (what is left once the call is
 * counted). `othersAt`: when calls of another client of the token reach the server (server
 * clock; before ours start, or while ours go): they count in the window like ours from then.
 */
function rollingApi(
  limit: number,
  windowMs: number,
  uplink: (i: number) => number,
  o: {
    downlink?: (i: number) => number;
    skewMs?: (i: number) => number;
    letGoArrives?: boolean;
    headers?: boolean;
    othersAt?: readonly number[];
  } = {},
) {
  const stamps: number[] = [...(o.othersAt ?? [])];
  /** Each call's arrival, status and when it was sent (subscribed to). */
  const log: Array<{ at: number; status: number; sent: number }> = [];
  /** When the first answer came back. */
  let answered = Infinity;
  let n = 0;
  const request = () =>
    new Observable<ResponseLike>((s) => {
      const i = n++;
      const sent = asyncScheduler.now();
      const t = asyncScheduler.schedule(() => {
        const now = asyncScheduler.now();
        const clock = now - (o.skewMs?.(i) ?? 0);
        const inWindow = stamps.filter((a) => a > clock - windowMs && a <= clock).length;
        stamps.push(clock);
        const status = inWindow >= limit ? 429 : 200;
        log.push({ at: now, status, sent });
        const headers = o.headers
          ? {
              'X-HubSpot-RateLimit-Max': String(limit),
              'X-HubSpot-RateLimit-Remaining': String(Math.max(0, limit - inWindow - 1)),
              'X-HubSpot-RateLimit-Interval-Milliseconds': String(windowMs),
            }
          : {};
        if (s.closed) return;
        s.add(
          asyncScheduler.schedule(
            () => {
              answered = Math.min(answered, asyncScheduler.now());
              s.next(responseLike(status, headers));
              s.complete();
            },
            o.downlink?.(i) ?? 10,
          ),
        );
      }, uplink(i));
      return () => {
        if (!o.letGoArrives) t.unsubscribe();
      };
    });
  return { request, log, firstAnswerAt: () => answered };
}

describe('rolling buckets', () => {
  const slowFirst = (resetGuardMs?: number) =>
    inVirtualTime(() => {
      // The first call takes 5 ms to arrive, every other 1 ms: an 11th sent a window after the
      // first was sent would arrive before the first has left the server's window.
      const api = rollingApi(10, 2000, (i) => (i === 0 ? 5 : 1));
      const provider = providers.teos({ hints: { minute: { limit: 10, windowMs: 2000 } } });
      const limiter = createLimiter({ provider, key: 'k', ...(resetGuardMs === undefined ? {} : { resetGuardMs }) });
      for (let i = 0; i < 12; i++) api.request().pipe(throttleByHeaders(limiter)).subscribe();
      return api;
    });

  it('a call counts a window from its answer, so a faster later request is not refused, and no later than the guard', () => {
    const api = slowFirst();
    expect(api.log).toHaveLength(12);
    expect(api.log.filter((h) => h.status === 429)).toEqual([]);
    // The first was answered at 15 (5 up, 10 down): the server logged it by then, so its slot is
    // free a window later; the guard after an end we bound ourselves is a thousandth of the
    // window, at least 10 ms (not the 50 ms after a reset the server told). Sent at 2,025, here at 2,026.
    expect(api.log[10]?.at).toBe(2026);
  });

  it('a resetGuardMs the user sets applies after every end, ours too', () => {
    const api = slowFirst(50);
    expect(api.log.filter((h) => h.status === 429)).toEqual([]);
    expect(api.log[10]?.at).toBe(2066);
  });

  it('latency that varies per call, both ways: 0 × 429, and each slot used again within a round trip and the guard', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 30 }),
        fc.integer({ min: 500, max: 5000 }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 30 }),
        (limit, windowMs, streams, ups, downs) => {
          const up = (i: number) => ups[i % ups.length] ?? 0;
          const down = (i: number) => downs[(i * 7) % downs.length] ?? 0;
          const requests = limit * 3;
          const api = inVirtualTime(() => {
            const api = rollingApi(limit, windowMs, up, { downlink: down });
            const provider = providers.teos({ hints: { minute: { limit, windowMs, pacing: 'burst' } } });
            const limiter = createLimiter({ provider, key: 'k' });
            from(Array.from({ length: requests }))
              .pipe(mergeMap(() => api.request().pipe(throttleByHeaders(limiter)), streams))
              .subscribe();
            return api;
          });
          expect(api.log).toHaveLength(requests);
          expect(api.log.filter((h) => h.status === 429)).toEqual([]);
          // The call `limit` places later arrives no later than a window after this one, plus
          // the most a round trip takes here (the trip back, and the next one's trip there) and
          // the guard: with enough streams nothing else holds it back.
          if (streams < limit) return;
          const at = api.log.map((h) => h.at);
          const guard = Math.max(10, windowMs / 1000);
          for (let i = 0; i + limit < at.length; i++)
            expect((at[i + limit] ?? 0) - (at[i] ?? 0)).toBeLessThanOrEqual(windowMs + 80 + guard + 1);
        },
      ),
      { numRuns: 60, seed: 20261204 },
    );
  });

  it.each([100, 400, 1500])(
    'a call that reaches the server %i ms late still counts from its arrival: no 429, however late',
    (lagMs) => {
      // One call of the first window is slow to arrive (far more than resetGuardMs), the rest fast:
      // a log of send times would free the slow call's slot a window after its send, while the
      // server counts it from its arrival. Counting each call until it ends, then a window from
      // its end, follows the server whatever the lag.
      const api = inVirtualTime(() => {
        const api = rollingApi(10, 2000, (i) => (i === 1 ? lagMs : 1));
        const provider = providers.teos({ hints: { minute: { limit: 10, windowMs: 2000, pacing: 'burst' } } });
        const limiter = createLimiter({ provider, key: 'k' });
        for (let i = 0; i < 40; i++) api.request().pipe(throttleByHeaders(limiter)).subscribe();
        return api;
      });
      expect(api.log).toHaveLength(40);
      expect(api.log.filter((h) => h.status === 429)).toEqual([]);
    },
  );
  it("a later call that overtook earlier ones is not read as another client's: the next window starts on time", () => {
    const api = inVirtualTime(() => {
      // Ten calls at once; the ninth (index 8) reaches the server last, after the tenth, and
      // its answer, which reads 0 left, comes back last. The first is answered at 11, the rest
      // about 200 ms later. Taking the tenth, answered already, as not yet counted when the
      // ninth was would read one call of another client in the window: the eleventh would wait
      // for the second of ours to leave it (at 2,212), not the first.
      const api = rollingApi(10, 2000, (i) => (i === 8 ? 9 : 1), {
        downlink: (i) => (i === 0 ? 10 : 200 + i),
        headers: true,
      });
      const provider = providers.hubspot({ hints: { interval: { limit: 10, windowMs: 2000 } } });
      const limiter = createLimiter({ provider, key: 'k', coldStartConcurrency: Infinity });
      for (let i = 0; i < 11; i++) api.request().pipe(throttleByHeaders(limiter)).subscribe();
      return api;
    });
    expect(api.log.filter((h) => h.status === 429)).toEqual([]);
    // The first was answered at 11: the eleventh goes a window and the guard (10 ms) later, and
    // arrives 1 ms after.
    expect(api.log[10]?.at).toBe(2022);
  });

  it('another client in the window, answers back in another order than the calls arrived: 0 × 429', () => {
    // Calls reach the server in the order they were sent (one trip there for all), and come
    // back after anything from 0 to 40 ms: a later call's answer often comes back first. Taking
    // it as counted before an earlier one, whose answer then reads one call more of ours than
    // the server had counted, would read one call of the other client as ours.
    fc.assert(
      fc.property(
        fc.integer({ min: 5, max: 40 }),
        fc.integer({ min: 500, max: 4000 }),
        fc.integer({ min: 2, max: 40 }),
        fc.integer({ min: 0, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 30 }),
        (limit, windowMs, streams, uplink, downs, others) => {
          const up = () => uplink;
          const down = (i: number) => downs[(i * 7) % downs.length] ?? 0;
          // The other client's calls, sent in the window before ours start (fewer than the limit).
          const othersAt = others.slice(0, limit - 1).map((f) => -Math.floor(f * (windowMs - 1)));
          const requests = limit * 3;
          const api = inVirtualTime(() => {
            const api = rollingApi(limit, windowMs, up, { downlink: down, headers: true, othersAt });
            const provider = providers.hubspot({ hints: { interval: { limit, windowMs } } });
            const limiter = createLimiter({ provider, key: 'k' });
            from(Array.from({ length: requests }))
              .pipe(mergeMap(() => api.request().pipe(throttleByHeaders(limiter)), streams))
              .subscribe();
            return api;
          });
          expect(api.log).toHaveLength(requests);
          expect(api.log.filter((h) => h.status === 429)).toEqual([]);
        },
      ),
      { numRuns: 200, seed: 20261204 },
    );
  });

  it('another client spending in the window while our calls reach the server out of order: 0 × 429', () => {
    // Each call takes its own time to reach the server (0 to 5 ms), so a later call often
    // arrives before an earlier one, and its answer, when it comes back first, does not count
    // that earlier one: taking it as counted read one call of the other client as ours. The
    // other client's calls land in the window before ours start (one landing among ours could
    // be refused however the bucket reads its answers: it has none yet that counts it).
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 20 }),
        fc.integer({ min: 500, max: 4000 }),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 10 }),
        (limit, windowMs, streams, ups, downs, others) => {
          const up = (i: number) => ups[i % ups.length] ?? 0;
          const down = (i: number) => downs[(i * 7) % downs.length] ?? 0;
          // Fewer than the limit, in the window before ours start.
          const othersAt = others.slice(0, limit - 1).map((f) => -Math.floor(f * (windowMs - 1)));
          const requests = limit * 3;
          const api = inVirtualTime(() => {
            const api = rollingApi(limit, windowMs, up, { downlink: down, headers: true, othersAt });
            const provider = providers.hubspot({ hints: { interval: { limit, windowMs } } });
            const limiter = createLimiter({ provider, key: 'k' });
            from(Array.from({ length: requests }))
              .pipe(mergeMap(() => api.request().pipe(throttleByHeaders(limiter)), streams))
              .subscribe();
            return api;
          });
          expect(api.log).toHaveLength(requests);
          expect(api.log.filter((h) => h.status === 429)).toEqual([]);
        },
      ),
      { numRuns: 300, seed: 20261204 },
    );
  });

  it('an earlier call still on its way is not counted by a later call that arrived first: 0 × 429', () => {
    // Limit 5, two calls of the other client in the window. Even calls take 0 ms to arrive, odd
    // ones 1 ms; answers come back at once. The third call (index 2) arrives before the second,
    // and its answer reads 1 left: counting the second as taken read one call of the other
    // client as ours, and a fourth call went, the sixth in the window.
    const api = inVirtualTime(() => {
      const api = rollingApi(5, 500, (i) => i % 2, { downlink: () => 0, headers: true, othersAt: [0, 0] });
      const provider = providers.hubspot({ hints: { interval: { limit: 5, windowMs: 500 } } });
      const limiter = createLimiter({ provider, key: 'k' });
      from(Array.from({ length: 15 }))
        .pipe(mergeMap(() => api.request().pipe(throttleByHeaders(limiter)), 2))
        .subscribe();
      return api;
    });
    expect(api.log).toHaveLength(15);
    expect(api.log.filter((h) => h.status === 429)).toEqual([]);
  });

  it('a later call let go before its answer is not counted by an earlier one that arrived first: 0 × 429', () => {
    // Limit 5, one call of the other client in the window; every other call of ours is let go
    // 3 ms after it is made, and still reaches the server. At 6 two calls go and arrive: the
    // first's answer reads 1 left, the second takes the last slot and is let go before its
    // answer comes back. Counting it as taken when the first's answer came back read the other
    // client's call as ours, and one more call went, the sixth in the window.
    const api = inVirtualTime(() => {
      const api = rollingApi(5, 500, () => 0, { downlink: () => 3, headers: true, othersAt: [0], letGoArrives: true });
      const provider = providers.hubspot({ hints: { interval: { limit: 5, windowMs: 500 } } });
      const limiter = createLimiter({ provider, key: 'k' });
      from(Array.from({ length: 15 }, (_, i) => i))
        .pipe(
          mergeMap(
            (i) =>
              i % 2 === 0
                ? api.request().pipe(throttleByHeaders(limiter), takeUntil(timer(3)))
                : api.request().pipe(throttleByHeaders(limiter)),
            2,
          ),
        )
        .subscribe();
      return api;
    });
    expect(api.log.filter((h) => h.status === 429)).toEqual([]);
  });

  it('a call let go before its answer and still on its way is not counted by a later call that arrived first: 0 × 429', () => {
    // Limit 5, two calls of the other client in the window, one stream. Our first call takes
    // 30 ms to reach the server and is let go at 3; the next one, sent then, arrives at once and
    // its answer reads 2 left (the first not counted yet). Taking the first as counted because
    // a call sent after it was let go was read, read one call of the other client as ours: a
    // third call went at 3, and the first, arriving at 30, was the sixth in the window.
    const api = inVirtualTime(() => {
      const api = rollingApi(5, 500, (i) => (i === 0 ? 30 : 0), {
        downlink: () => 0,
        headers: true,
        othersAt: [0, 0],
        letGoArrives: true,
      });
      const provider = providers.hubspot({ hints: { interval: { limit: 5, windowMs: 500 } } });
      const limiter = createLimiter({ provider, key: 'k' });
      from(Array.from({ length: 6 }, (_, i) => i))
        .pipe(
          mergeMap(
            (i) =>
              i === 0
                ? api.request().pipe(throttleByHeaders(limiter), takeUntil(timer(3)))
                : api.request().pipe(throttleByHeaders(limiter)),
            1,
          ),
        )
        .subscribe();
      return api;
    });
    expect(api.log).toHaveLength(6);
    expect(api.log.filter((h) => h.status === 429)).toEqual([]);
  });

  it('calls let go before their answers while another client spends in the window: 0 × 429 once an answer came back', () => {
    // Every 2nd to 5th call is let go 3 ms after it is made and still reaches the server, often
    // after later calls whose answers are read first (uplinks of 0 to 50 ms: within the guard
    // after it was let go, which bounds how late our log takes such a call to arrive). Calls
    // sent before any answer came back are not judged: nothing tells of the other client's
    // calls until a figure is read.
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 20 }),
        fc.integer({ min: 500, max: 4000 }),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 2, max: 5 }),
        (limit, windowMs, streams, ups, downs, others, every) => {
          const up = (i: number) => ups[i % ups.length] ?? 0;
          const down = (i: number) => downs[(i * 7) % downs.length] ?? 0;
          const othersAt = others.slice(0, limit - 1).map((f) => -Math.floor(f * (windowMs - 1)));
          const api = inVirtualTime(() => {
            const api = rollingApi(limit, windowMs, up, {
              downlink: down,
              headers: true,
              othersAt,
              letGoArrives: true,
            });
            const provider = providers.hubspot({ hints: { interval: { limit, windowMs } } });
            const limiter = createLimiter({ provider, key: 'k' });
            from(Array.from({ length: limit * 3 }, (_, i) => i))
              .pipe(
                mergeMap(
                  (i) =>
                    i % every === 0
                      ? api.request().pipe(throttleByHeaders(limiter), takeUntil(timer(3)))
                      : api.request().pipe(throttleByHeaders(limiter)),
                  streams,
                ),
              )
              .subscribe();
            return api;
          });
          expect(api.log.filter((h) => h.status === 429 && h.sent >= api.firstAnswerAt())).toEqual([]);
        },
      ),
      { numRuns: 300, seed: 20261204 },
    );
  });

  it('a call counts a window from its answer, not from when its permit is let go', () => {
    // The server logged the call by the time its answer came back (at 20); the caller read a
    // long body and let the permit go at 520. Its slot frees a window (and the guard) after the
    // answer, as the Redis store's log has it, not half a second later.
    const b = createBucket({ name: 'm', limit: 1, windowMs: 1000, rolling: true }, KINDS);
    const call = b.take(0);
    b.confirm(call, 20);
    b.release(call, 520);
    b.refill(600, 50);
    expect(b.availableAt(600, 50, 1)).toBe(1070);
  });
});

describe('rolling buckets: a call let go before its answer', () => {
  /** `resetGuardMs` of the limiter that sends; `sharedWithDefault`: another limiter of its credential, made first, leaves it to its default. */
  const run = (resetGuardMs?: number, sharedWithDefault = false) =>
    inVirtualTime(() => {
      // The first call takes 30 ms to reach the server; its caller gives up on it at 10 ms. The
      // next call takes 1 ms. The server logs the first at 30 and counts it until 2,030.
      const api = rollingApi(1, 2000, (i) => (i === 0 ? 30 : 1), { letGoArrives: true });
      const provider = providers.teos({ hints: { minute: { limit: 1, windowMs: 2000, pacing: 'burst' } } });
      // Made first, on the same token: the credential's buckets are made by this one.
      if (sharedWithDefault) createLimiter({ provider, key: 'k' });
      const limiter = createLimiter({ provider, key: 'k', ...(resetGuardMs === undefined ? {} : { resetGuardMs }) });
      api
        .request()
        .pipe(throttleByHeaders(limiter), takeUntil(timer(10)))
        .subscribe();
      api.request().pipe(throttleByHeaders(limiter)).subscribe();
      return api;
    });

  it('a limiter that sets resetGuardMs keeps it when another limiter of its credential left it to its default', () => {
    expect(run(50, true).log.map((h) => h.status)).toEqual([200, 200]);
  });

  it('with resetGuardMs set to 50: the next call arrives after the first has left the window', () => {
    const api = run(50);
    expect(api.log.map((h) => h.status)).toEqual([200, 200]);
  });

  it('with resetGuardMs left to its default: no 429 either (the end of a call let go is not bounded by an answer)', () => {
    const api = run();
    expect(api.log.map((h) => [h.at, h.status])).toEqual([
      [30, 200],
      [expect.any(Number), 200],
    ]);
  });
});

describe('rolling buckets: a server whose nodes log calls on their own clocks', () => {
  const run = (resetGuardMs?: number, skewMs = 20) =>
    inVirtualTime(() => {
      // Two nodes take the calls in turn, node 1's clock `skewMs` behind node 0's: a call node 0
      // logged leaves the window, as node 1 sees it, `skewMs` late.
      const api = rollingApi(1, 2000, (i) => (i === 0 ? 5 : 1), { skewMs: (i) => (i % 2 === 1 ? skewMs : 0) });
      const provider = providers.teos({ hints: { minute: { limit: 1, windowMs: 2000, pacing: 'burst' } } });
      const limiter = createLimiter({ provider, key: 'k', ...(resetGuardMs === undefined ? {} : { resetGuardMs }) });
      for (let i = 0; i < 2; i++) api.request().pipe(throttleByHeaders(limiter)).subscribe();
      return api;
    });

  it('nodes 20 ms apart, resetGuardMs set to 50: no 429', () => {
    expect(run(50).log.map((h) => h.status)).toEqual([200, 200]);
  });

  it('nodes up to 10 ms apart, resetGuardMs left to its default: no 429 either', () => {
    expect(run(undefined, 10).log.map((h) => h.status)).toEqual([200, 200]);
  });
});

describe('rolling buckets: the kind comes with the provider', () => {
  const quiet = { outcome: 'ok' as const, buckets: [] };

  it('createLimiter refuses a sliding window of a provider that does not bring rollingWindows, naming bucket and fix', () => {
    const bare = defineProvider({
      name: 'acme',
      buckets: [{ name: 'minute', limit: 5, windowMs: 60_000, rolling: true }],
      read: () => quiet,
    });
    expect(() => createLimiter({ provider: bare, key: 'acme-kinds-1' })).toThrow(
      new TypeError(
        'provider "acme": bucket "minute" has `rolling` but the provider\'s `bucketKinds` lacks rollingWindows; add `bucketKinds: [rollingWindows]` (from rx-ratelimit)',
      ),
    );
    const limiter = createLimiter({
      provider: defineProvider({ ...bare, bucketKinds: [rollingWindows] }),
      key: 'acme-kinds-2',
    });
    expect(limiter.snapshot.buckets).toEqual([]);
    void limiter.close();
  });

  it('a request whose route alone has a sliding window of a kind not brought fails with that TypeError', () => {
    const byRoute = defineProvider({
      name: 'acme',
      buckets: (r) => (r.url?.includes('/search') ? [{ name: 'search', limit: 5, windowMs: 1000, rolling: true }] : []),
      read: () => quiet,
    });
    const limiter = createLimiter({ provider: byRoute, key: 'acme-kinds-3' });
    const errors: unknown[] = [];
    throttleByHeaders(limiter, { method: 'GET', url: 'https://api.acme.test/search' })(
      new Observable<ResponseLike>((s) => s.next(responseLike(200, {}))),
    ).subscribe({ error: (e: unknown) => errors.push(e) });
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toContain('bucket "search" has `rolling`');
    void limiter.close();
  });

  it('the profiles that use sliding windows or leaky buckets bring them', () => {
    for (const provider of [providers.teos(), providers.hubspot(), providers.github(), providers.shopify()]) {
      expect(() => createLimiter({ provider, key: `kinds-${provider.name}` }).close()).not.toThrow();
    }
  });
});
