/**
 * A window's end told as an instant of the server's clock, end to end in virtual time: later
 * readings of that instant bring the end forward only as far as the server allows, never past a
 * hold a 429 asked for, never past the latest the `Date` headers allow.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { asyncScheduler, catchError, EMPTY, from, mergeMap, Observable, timer } from 'rxjs';
import { createLimiter, providers, rateLimit, responseLike, type ResponseLike } from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { virtualApi } from '../helpers/virtualApi.js';

describe('a 429 with Retry-After past the reset, then a late 200 of that window', () => {
  it('sends nothing before the Retry-After ends', () => {
    const out = inVirtualTime(() => {
      const W = 10_000;
      const L = 10;
      const counts = new Map<number, number>();
      const log: Array<{ at: number; status: number }> = [];
      let penaltyUntil = 0;
      const request = (latencyBack: number) =>
        new Observable<ResponseLike>((s) => {
          let res: ResponseLike | undefined;
          const a = asyncScheduler.schedule(() => {
            const t = asyncScheduler.now();
            const w = Math.floor(t / W);
            const c = (counts.get(w) ?? 0) + 1;
            counts.set(w, c);
            const limited = c > L || t < penaltyUntil;
            log.push({ at: t, status: limited ? 429 : 200 });
            const headers: Record<string, string> = {
              date: new Date(Math.floor(t / 1000) * 1000).toUTCString(),
              'x-ratelimit-limit': String(L),
              'x-ratelimit-remaining': String(Math.max(0, L - c)),
              'x-ratelimit-reset': String(((w + 1) * W) / 1000),
            };
            if (limited) {
              headers['retry-after'] = '2';
              penaltyUntil = Math.max(penaltyUntil, t + 2000);
            }
            res = limited
              ? responseLike(429, headers, { 'violated-policies': ['default'] })
              : responseLike(200, headers);
          }, 10);
          const b = asyncScheduler.schedule(() => {
            s.next(res!);
            s.complete();
          }, 10 + latencyBack);
          return () => (a.unsubscribe(), b.unsubscribe());
        });
      const limiter = createLimiter({ provider: providers.generic({ resetUnit: 'unix-seconds' }), key: 'k' });
      const send = (at: number, back: number) =>
        timer(at).subscribe(() =>
          request(back)
            .pipe(rateLimit(limiter))
            .subscribe({ error: () => undefined }),
        );
      for (let k = 0; k < 8; k++) send(1000, 10); // 2 left
      // Another client of the token spends one at 8,999.
      timer(8_999).subscribe(() => counts.set(0, (counts.get(0) ?? 0) + 1));
      send(9_000, 290); // A: counted first (200, 0 left), answered late (9,310)
      timer(9_000).subscribe(() =>
        request(10)
          .pipe(rateLimit(limiter))
          .subscribe({ error: () => undefined }),
      ); // B: 429 at 9,020
      for (let k = 0; k < 4; k++) send(9_100, 10); // wait for the next window
      return { log };
    });
    const r429 = out.log.filter((h) => h.status === 429);
    // The server said: nothing until 11,010 (B reached it at 9,010 and asked for 2 s).
    expect(r429.filter((h) => h.at > 9_010)).toEqual([]);
  });
});

/** Server clock = ours + SKEW; fixed server-aligned windows; unix-second resets; Date header; 10 ms each way. */
function server(opts: { skewMs: number; windowMs: number; limit: number }) {
  const counts = new Map<number, number>();
  const log: Array<{ at: number; server: number; status: number }> = [];
  const request = () =>
    new Observable<ResponseLike>((s) => {
      let res: ResponseLike | undefined;
      const a = asyncScheduler.schedule(() => {
        const t = asyncScheduler.now();
        const sv = t + opts.skewMs;
        const w = Math.floor(sv / opts.windowMs);
        const c = (counts.get(w) ?? 0) + 1;
        counts.set(w, c);
        const status = c > opts.limit ? 429 : 200;
        log.push({ at: t, server: sv, status });
        res = responseLike(status, {
          date: new Date(Math.floor(sv / 1000) * 1000).toUTCString(),
          'x-ratelimit-limit': String(opts.limit),
          'x-ratelimit-remaining': String(Math.max(0, opts.limit - c)),
          'x-ratelimit-reset': String(((w + 1) * opts.windowMs) / 1000),
        });
      }, 10);
      const b = asyncScheduler.schedule(() => {
        s.next(res!);
        s.complete();
      }, 20);
      return () => (a.unsubscribe(), b.unsubscribe());
    });
  return { request, log };
}

describe('a server clock 400 ms behind ours, read first through a pinned offset, then by a poller whose answers never see a tick', () => {
  it('no 429 at the window end', () => {
    const burst = true;
    const out = inVirtualTime(() => {
      const api = server({ skewMs: -400, windowMs: 120_000, limit: 60 });
      const limiter = createLimiter({ provider: providers.generic({ resetUnit: 'unix-seconds' }), key: 'k' });
      const ends: number[] = [];
      const send = (at: number) =>
        timer(at).subscribe(() =>
          api
            .request()
            .pipe(rateLimit(limiter))
            .subscribe({ next: (r) => ends.push(r.status), error: () => ends.push(-1) }),
        );
      // A burst that pins the offset (its stamps straddle a tick of the server's second).
      if (burst) for (let k = 0; k < 20; k++) send(121_100 + 50 * k);
      // A poller at our phase .700 (server .300): every sample contains 0.
      for (let k = 0; k < 36; k++) send(123_700 + 3000 * k);
      // Work that spends the window and waits for the next one.
      for (let k = 0; k < 40; k++) send(230_000);
      return { api, ends, limiter };
    });
    const r429 = out.api.log.filter((h) => h.status === 429);
    expect(r429).toEqual([]);
  });
});

describe('requests that reach the server after the window they were sent in ended (a stall on the way)', () => {
  /**
   * A fixed window of `L` per `W` whose end is told as unix seconds, `Date` in whole seconds;
   * each call takes `up(i)` to arrive (now and then a stall of up to 200 ms) and 5 ms back.
   * `N` calls from `S` streams, starting `phase` into a second. The server's log.
   */
  function run(W: number, L: number, S: number, N: number, phase: number, up: (i: number) => number) {
    return inVirtualTime(() => {
      const api = virtualApi(asyncScheduler, { limit: L, windowMs: W, latencyMs: 5, uplinkMs: up });
      const limiter = createLimiter({ provider: providers.generic({ resetUnit: 'unix-seconds' }), key: 'k' });
      asyncScheduler.schedule(() => {
        from(Array.from({ length: N }))
          .pipe(
            mergeMap(
              () =>
                api.request().pipe(
                  rateLimit(limiter),
                  catchError(() => EMPTY),
                ),
              S,
            ),
          )
          .subscribe();
      }, 100_000 + phase);
      return api.hits;
    });
  }

  it('a reading of the next window, its end told as a later instant, starts that window however the clock offset moved: 0 × 429', () => {
    // A call sent just before the end of a window arrives after it: the server counts it in the
    // next window and tells that window's end, a later instant than the one we know. Read
    // through a clock offset the `Date` headers have pinned closer since, it came out less than
    // half a window after our reading of the old end (taken at the latest the offset then
    // allowed), and was taken as the same window: at the old end we refilled, in the middle of
    // the server's next window, and sent a window's worth too many.
    fc.assert(
      fc.property(
        fc.constantFrom(1000, 2000, 3000),
        fc.integer({ min: 3, max: 10 }),
        fc.integer({ min: 2, max: 20 }),
        fc.integer({ min: 0, max: 999 }),
        fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 20 }),
        (W, L, S, phase, stalls, base) => {
          const up = (i: number) =>
            ((i * 7) % 5 === 0 ? (stalls[i % stalls.length] ?? 0) : 0) + (base[i % base.length] ?? 0);
          const log = run(W, L, S, L * 4, phase, up);
          expect(log.filter((h) => h.status === 429)).toEqual([]);
        },
      ),
      { numRuns: 300, seed: 20261205 },
    );
  });
});
