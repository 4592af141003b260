import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { asyncScheduler, catchError, EMPTY, from, mergeMap, Observable, takeUntil, timer } from 'rxjs';
import { createBucket } from '../../lib/core/buckets.js';
import { leakyBuckets } from '../../lib/core/leakyBucket.js';
import { rollingWindows } from '../../lib/core/rollingBucket.js';
import {
  createLimiter,
  defineProvider,
  providers,
  rateLimit,
  responseLike,
  throttleByHeaders,
  type ResponseLike,
} from '../../lib/index.js';
import { createSimulatorEngine, virtualProvider } from '../../lib/testing/index.js';
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
 * counted). `othersAt`: when another client of the token sent calls before ours (server clock,
 * up to 0): they count in the window like ours. `request(cost)`: a call the server counts as
 * `cost` calls (refused when they do not all fit).
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
    /** Call `i` is answered without headers (HubSpot's CRM searches), or fails on its way back. */
    bare?: (i: number) => boolean;
    fails?: (i: number) => boolean;
  } = {},
) {
  const stamps: number[] = [...(o.othersAt ?? [])];
  const log: Array<{ at: number; status: number }> = [];
  let n = 0;
  const request = (cost = 1) =>
    new Observable<ResponseLike>((s) => {
      const i = n++;
      const t = asyncScheduler.schedule(() => {
        const now = asyncScheduler.now();
        const clock = now - (o.skewMs?.(i) ?? 0);
        const inWindow = stamps.filter((a) => a > clock - windowMs).length;
        for (let u = 0; u < cost; u++) stamps.push(clock);
        const status = inWindow + cost > limit ? 429 : 200;
        log.push({ at: now, status });
        const headers =
          o.headers && !o.bare?.(i)
            ? {
                'X-HubSpot-RateLimit-Max': String(limit),
                'X-HubSpot-RateLimit-Remaining': String(Math.max(0, limit - inWindow - cost)),
                'X-HubSpot-RateLimit-Interval-Milliseconds': String(windowMs),
              }
            : {};
        if (s.closed) return;
        s.add(
          asyncScheduler.schedule(
            () => {
              if (o.fails?.(i)) return s.error(new Error('connection reset'));
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
  return { request, log };
}

/**
 * `limit * 3` calls from `streams` streams through a HubSpot limiter (its interval hinted as the
 * window) against {@link rollingApi} with its headers: the server's log of what it answered.
 */
function hubspotRun(
  limit: number,
  windowMs: number,
  streams: number,
  uplink: (i: number) => number,
  o: {
    downlink: (i: number) => number;
    othersAt?: readonly number[];
    bare?: (i: number) => boolean;
    fails?: (i: number) => boolean;
    requests?: number;
    /** What the `j`th request costs (one unit by default). */
    cost?: (j: number) => number;
  },
) {
  return inVirtualTime(() => {
    const api = rollingApi(limit, windowMs, uplink, { ...o, headers: true });
    const limiter = createLimiter({
      provider: providers.hubspot({ hints: { interval: { limit, windowMs } } }),
      key: 'k',
    });
    from(Array.from({ length: o.requests ?? limit * 3 }, (_, j) => o.cost?.(j) ?? 1))
      .pipe(
        mergeMap(
          (cost) =>
            api.request(cost).pipe(
              throttleByHeaders(limiter, cost === 1 ? {} : { cost }),
              catchError(() => EMPTY),
            ),
          streams,
        ),
      )
      .subscribe();
    return api;
  });
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
          const api = hubspotRun(limit, windowMs, streams, up, { downlink: down, othersAt });
          expect(api.log).toHaveLength(limit * 3);
          expect(api.log.filter((h) => h.status === 429)).toEqual([]);
        },
      ),
      { numRuns: 200, seed: 20261204 },
    );
  });

  it('another client in the window, our calls reaching the server out of order as well as answered out of order: 0 × 429', () => {
    // Each call takes 0–20 ms to reach the server and 0–40 ms to come back, so an earlier call
    // is often counted after a later one whose figure is read first, or read after it though
    // it counted less. Taking our earlier calls as counted by every later figure read another
    // client's calls as ours (a 429 in about half of these runs).
    fc.assert(
      fc.property(
        fc.integer({ min: 5, max: 40 }),
        fc.integer({ min: 500, max: 4000 }),
        fc.integer({ min: 2, max: 40 }),
        fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 30 }),
        (limit, windowMs, streams, ups, downs, others) => {
          const up = (i: number) => ups[(i * 5) % ups.length] ?? 0;
          const down = (i: number) => downs[(i * 7) % downs.length] ?? 0;
          const othersAt = others.slice(0, limit - 1).map((f) => -Math.floor(f * (windowMs - 1)));
          const api = hubspotRun(limit, windowMs, streams, up, { downlink: down, othersAt });
          expect(api.log).toHaveLength(limit * 3);
          expect(api.log.filter((h) => h.status === 429)).toEqual([]);
        },
      ),
      { numRuns: 300, seed: 20261205 },
    );
  });

  it('calls that cost several units, another client in the window, calls out of order both ways: 0 × 429, and nothing refused', () => {
    // The server counts a call of cost 3 as 3. Taking the calls sent after one as one unit
    // each, whatever they cost, read the units our later calls had already spent as fewer,
    // and another client's as none (limit 9, calls of cost 2, another client's 2: a 429).
    fc.assert(
      fc.property(
        fc.integer({ min: 9, max: 40 }),
        fc.integer({ min: 500, max: 4000 }),
        fc.integer({ min: 2, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 10 }),
        (limit, windowMs, streams, ups, downs, costs, others) => {
          const up = (i: number) => ups[(i * 5) % ups.length] ?? 0;
          const down = (i: number) => downs[(i * 7) % downs.length] ?? 0;
          const othersAt = others.slice(0, limit - 3).map((f) => -Math.floor(f * (windowMs - 1)));
          const cost = (j: number) => costs[j % costs.length] ?? 1;
          const api = hubspotRun(limit, windowMs, streams, up, { downlink: down, othersAt, cost, requests: limit * 2 });
          expect(api.log).toHaveLength(limit * 2);
          expect(api.log.filter((h) => h.status === 429)).toEqual([]);
        },
      ),
      { numRuns: 200, seed: 20261205 },
    );
  });

  it("a call of cost 2 after another client spent 2 of 9: the server's count read in units, no 429", () => {
    const api = hubspotRun(9, 1000, 4, () => 0, {
      downlink: (i) => (i % 2 === 0 ? 30 : 5),
      othersAt: [-100, -50],
      cost: () => 2,
      requests: 12,
    });
    expect(api.log).toHaveLength(12);
    expect(api.log.filter((h) => h.status === 429)).toEqual([]);
  });

  it.each([
    ['answered without headers', { bare: (i: number) => i === 1 }],
    ['failing on its way back', { fails: (i: number) => i === 1 }],
  ])('another client in the window, an earlier call overtaken by a later one and %s: 0 × 429', (_, how) => {
    // Limit 4, one call of another client. Call 1 reaches the server after call 2, and its
    // answer carries no figure: call 2's figure, read after, must not be taken as counting it.
    const up = [0, 5, 1, 0];
    const down = [0, 0, 20, 0];
    const api = hubspotRun(4, 1000, 2, (i) => up[i] ?? 0, {
      downlink: (i) => down[i] ?? 0,
      othersAt: [0],
      requests: 4,
      ...how,
    });
    expect(api.log.filter((h) => h.status === 429)).toEqual([]);
  });

  it("another client in the window, more figures read during one call's trip than the bucket keeps: 0 × 429", () => {
    // Limit 200, 131 calls in flight: call 1 is overtaken by call 131 and read early, then the
    // figures of calls 2–130 push it out of what the bucket remembers before 131's is read.
    const s = 131;
    const up = (i: number) => (i === 1 ? 3 : i === s ? 2 : i >= 2 && i < s ? 1 : 0);
    const down = (i: number) => (i === 1 ? 10 : i === s ? 100 : i >= 2 && i < s ? 50 : 0);
    const api = hubspotRun(200, 10_000, s, up, { downlink: down, othersAt: [0], requests: 200 });
    expect(api.log).toHaveLength(200);
    expect(api.log.filter((h) => h.status === 429)).toEqual([]);
  });

  it.each([
    ['every answer with a figure', () => false],
    ['every other answer without one', (i: number) => i % 2 === 1],
  ])(
    "no other client, calls out of order both ways, %s: our own calls are never held as another client's (mean ≤ 2.5 windows for 3 windows of calls)",
    (_, bare) => {
      // Three windows' worth of calls take two windows and a round trip at the least. Reading
      // every earlier call answered after a call was sent as possibly newer than its figure
      // (even one that counted less) kept what our own reordered calls took as another
      // client's for a window: 2.80 windows; counting every call a figure may have missed
      // beside it, with no other client seen, 2.9 with half the answers bare.
      const random = fc.sample(
        fc.tuple(
          fc.integer({ min: 40, max: 100 }),
          fc.integer({ min: 500, max: 4000 }),
          fc.integer({ min: 10, max: 20 }),
          fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 30 }),
          fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 30 }),
        ),
        { numRuns: 100, seed: 20261205 },
      );
      let windows = 0;
      for (const [limit, windowMs, streams, ups, downs] of random) {
        const up = (i: number) => ups[(i * 5) % ups.length] ?? 0;
        const down = (i: number) => downs[(i * 7) % downs.length] ?? 0;
        const api = hubspotRun(limit, windowMs, streams, up, { downlink: down, bare });
        expect(api.log.filter((h) => h.status === 429)).toEqual([]);
        windows += (api.log[api.log.length - 1]?.at ?? 0) / windowMs;
      }
      expect(windows / random.length).toBeLessThanOrEqual(2.5);
    },
  );

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

describe("rolling buckets: another client's calls leave one at a time", () => {
  /**
   * TEOS's minute at timeScale 3 (10 calls per 20 s, hinted, burst pacing): another client of
   * the token sends its calls at `othersAt` (its own, no limiter); ours go in `batches` of
   * [start, calls, streams], each trip `latencyMs` each way.
   */
  function teosMinute(
    othersAt: readonly number[],
    batches: ReadonlyArray<readonly [number, number, number]>,
    latencyMs: number,
  ) {
    return inVirtualTime(() => {
      const engine = createSimulatorEngine({
        latencyMs,
        timeScale: 3,
        teos: { perMinute: 10, perDay: 1_000_000, headersAfter: 1 },
        now: () => asyncScheduler.now(),
      });
      const api = virtualProvider(engine, asyncScheduler);
      const call = (path: string) => api.request('teos', { method: 'GET', path, token: 'teos-key' });
      for (const at of othersAt) asyncScheduler.schedule(() => call('/api/v1/theirs').subscribe(), at);
      const limiter = createLimiter({
        provider: providers.teos({ hints: { minute: { limit: 10, windowMs: 20_000, pacing: 'burst' } } }),
        key: 'teos-key',
        maxWaitMs: 120_000,
      });
      const failed: unknown[] = [];
      let n = 0;
      for (const [at, calls, streams] of batches)
        asyncScheduler.schedule(() => {
          from(Array.from({ length: calls }, () => `/api/v1/items/${n++}`))
            .pipe(mergeMap((path) => call(path).pipe(rateLimit(limiter, { method: 'GET', url: path })), streams))
            .subscribe({ error: (e: unknown) => failed.push(e) });
        }, at);
      return { failed, stats: () => Object.values(engine.stats().teos)[0] };
    });
  }

  it('two calls of another client 6 s apart: the reset the server tells frees the older one only (no 429)', () => {
    // The reset names when the oldest call leaves the window (20 s after the first), not when
    // both do: freeing both then sent one call too many until the second left, 6 s later.
    const out = teosMinute([0, 6000], [[7000, 30, 10]], 10);
    expect(out.failed).toEqual([]);
    expect(out.stats()).toMatchObject({ ok: 32, limited: 0 });
  });

  it('another client at random times, then ours, any phase, streams and latency: 0 × 429, every call answered', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 19_000 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 2000 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 200 }),
        (others, after, streams, latencyMs) => {
          const last = Math.max(...others);
          const out = teosMinute(others, [[last + 1 + after, 30, streams]], latencyMs);
          expect(out.failed).toEqual([]);
          expect(out.stats()).toMatchObject({ ok: 30 + others.length, limited: 0 });
        },
      ),
      { numRuns: 100, seed: 20261205 },
    );
  });

  it('our calls the server let go and our log keeps a guard longer are not read as counted: 0 × 429 with another client among ours', () => {
    // Our call at 0 left the server's window a window after it arrived; our log keeps it a
    // guard longer. A figure read in between counted the other client's call but not that one
    // of ours: taking it as counted read no other client, and sent one call too many when our
    // log let it go.
    const single = teosMinute(
      [5000],
      [
        [0, 1, 1],
        [6000, 20, 1],
      ],
      10,
    );
    expect(single.failed).toEqual([]);
    expect(single.stats()).toMatchObject({ ok: 22, limited: 0 });
    // Ours first (answered before the other client sends), then theirs, then one of ours (its
    // figure shows theirs: no race for the last slots, which no client can win without
    // knowing), then the rest, at any phase, streams and latency.
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.integer({ min: 3000, max: 19_000 }), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 0, max: 2000 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 200 }),
        (first, firstStreams, others, after, streams, latencyMs) => {
          const later = Math.max(...others) + 1 + after;
          const out = teosMinute(
            others,
            [
              [0, first, firstStreams],
              [later, 1, 1],
              [later + 500, 20, streams],
            ],
            latencyMs,
          );
          expect(out.failed).toEqual([]);
          expect(out.stats()).toMatchObject({ ok: first + 21 + others.length, limited: 0 });
        },
      ),
      { numRuns: 150, seed: 20261205 },
    );
  });

  it("the unit the server's reset frees may be our oldest call: it comes back when that call leaves our log", () => {
    // Limit 3 per 1 s. Our call at 0 (answered at 10), another client's at 500, ours at 600
    // reads 0 left and the reset: our first call leaving (at 1,005 on the server). Freeing a
    // unit of theirs then is right (the server dropped ours); once our log lets our first call
    // go as well (a window and the guard after its answer), that unit was freed twice.
    const b = createBucket({ name: 'm', limit: 3, windowMs: 1000, rolling: true }, KINDS);
    const first = b.take(0);
    b.confirm(first, 10);
    b.apply({ name: 'm', limit: 3, remaining: 2 }, first, undefined, 10);
    b.release(first, 10);
    b.refill(600, 50);
    const second = b.take(600);
    b.confirm(second, 610);
    b.apply({ name: 'm', limit: 3, remaining: 0 }, second, 1005, 610);
    b.release(second, 610);
    // At the reset: one call may go (the server holds theirs and our second).
    b.refill(1005, 50);
    expect(b.availableAt(1005, 50, 1)).toBe(1005);
    const third = b.take(1005);
    b.confirm(third, 1015);
    b.release(third, 1015);
    // Our first call has left our log: theirs, our second and third fill the window until
    // theirs leaves, not before.
    b.refill(1100, 50);
    expect(b.availableAt(1100, 50, 1)).toBeGreaterThan(1100);
  });
  it("later calls whose figures counted no more than the first one read are ours, not another client's: the day goes on", () => {
    // A rolling day of 10 and no other client. Six calls go at once; the second is answered first
    // and read 4 left (the server counted 6), with four later calls still out: taken as not
    // counted, they read as another client's four calls, held a day, and the seventh call
    // would wait a day. The later calls' figures then count 3, 4, 5 and 6: each arrived before
    // it (or after calls left), so they add nothing beyond its count.
    const day = 86_400_000;
    const b = createBucket({ name: 'day', limit: 10, windowMs: day, rolling: true }, KINDS);
    const calls = Array.from({ length: 6 }, () => b.take(0));
    const answer = (k: number, remaining: number | undefined, at: number) => {
      const i = calls[k] as number;
      b.confirm(i, at);
      if (remaining !== undefined) b.apply({ name: 'day', limit: 10, remaining }, i, undefined, at);
      b.release(i, at, 1, remaining !== undefined);
    };
    answer(1, 4, 5);
    b.refill(5, 50);
    // The first figure alone: four of another client's, as far as it can tell.
    expect(b.availableAt(5, 50, 12)).toBeGreaterThan(day);
    // and, with answers still out that may show less, no wait that long is trusted yet.
    expect(b.awaitsAnswers).toBe(true);
    answer(2, 7, 6);
    answer(3, 6, 7);
    answer(4, 5, 8);
    answer(5, 4, 9);
    answer(0, undefined, 10);
    b.refill(10, 50);
    expect(b.awaitsAnswers).toBe(false);
    // Six of ours and at most one other: three more may go now.
    expect(b.remaining).toBe(3);
    expect(b.availableAt(10, 50, 12, 0, 3)).toBe(10);
  });

  it('later calls answered without a figure before a slow one, beside one whose figure was read first, are counted in its figure: the day goes on', () => {
    // A rolling day of 10 and no other client. Five calls go at once; the first takes long on
    // its way there. The second comes back first reading 9 left, the other three with no figure
    // (TEOS tells none on a first call to an endpoint), then the first reads 5 left: all five
    // counted. Its figure, older than the second's, only raises what others spent; taken as not
    // counted yet, the three silent ones raised it by three, held a day.
    const day = 86_400_000;
    const b = createBucket({ name: 'day', limit: 10, windowMs: day, rolling: true }, KINDS);
    const calls = Array.from({ length: 5 }, () => b.take(0));
    const second = calls[1] as number;
    b.confirm(second, 40);
    b.apply({ name: 'day', limit: 10, remaining: 9 }, second, undefined, 40);
    b.release(second, 40, 1, true);
    for (const i of calls.slice(2)) {
      b.confirm(i, 50);
      b.release(i, 50, 1, false);
    }
    const first = calls[0] as number;
    b.confirm(first, 900);
    b.apply({ name: 'day', limit: 10, remaining: 5 }, first, undefined, 900);
    b.release(first, 900, 1, true);
    b.refill(900, 50);
    expect(b.remaining).toBe(5);
    expect(b.availableAt(900, 50, 12, 0, 5)).toBe(900);
  });

  it('a later call answered without a figure does not lower what a fresh figure shows another client spent', () => {
    // Limit 10. A figure shows five calls of another client. Ours x goes, then y; y arrives after
    // x but is answered first, with no figure; x then reads 3 left (five of theirs, x and y).
    // Taking y as counted before x read four of theirs: one call too many.
    const b = createBucket({ name: 'm', limit: 10, windowMs: 60_000, rolling: true }, KINDS);
    const probe = b.take(0);
    b.confirm(probe, 100);
    b.apply({ name: 'm', limit: 10, remaining: 4 }, probe, undefined, 100);
    b.release(probe, 100, 1, true);
    b.refill(1000, 50);
    const x = b.take(1000);
    const y = b.take(1100);
    b.confirm(y, 1200);
    b.release(y, 1200, 1, false);
    b.confirm(x, 1500);
    b.apply({ name: 'm', limit: 10, remaining: 3 }, x, undefined, 1500);
    b.release(x, 1500, 1, true);
    b.refill(1500, 50);
    // Five of theirs, our probe, x and y: two left.
    expect(b.remaining).toBe(2);
  });
});
