import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, Observable } from 'rxjs';
import { createBucket } from '../../lib/core/buckets.js';
import { createLimiter, providers, responseLike, throttleByHeaders, type ResponseLike } from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

/**
 * A server with one rolling window (TEOS-like) that logs each call when it *arrives*: `uplink(i)`
 * after the client subscribed. A call is refused when `limit` calls arrived in the last
 * `windowMs`. It sends no rate-limit headers, so the client paces from its own log alone.
 */
function rollingApi(limit: number, windowMs: number, uplink: (i: number) => number) {
  const arrivals: number[] = [];
  const log: Array<{ at: number; status: number }> = [];
  let n = 0;
  const request = () =>
    new Observable<ResponseLike>((s) => {
      const i = n++;
      const t = asyncScheduler.schedule(() => {
        const now = asyncScheduler.now();
        const inWindow = arrivals.filter((a) => a > now - windowMs).length;
        arrivals.push(now);
        const status = inWindow >= limit ? 429 : 200;
        log.push({ at: now, status });
        s.add(
          asyncScheduler.schedule(() => {
            s.next(responseLike(status, {}));
            s.complete();
          }, 10),
        );
      }, uplink(i));
      return () => t.unsubscribe();
    });
  return { request, log };
}

describe('rolling buckets', () => {
  it('a send leaves the window only after resetGuardMs, so a faster later request is not refused', () => {
    const api = inVirtualTime(() => {
      // The first call takes 5 ms to arrive, every other 1 ms: the 11th, sent the instant the
      // first leaves our log, would arrive before the first has left the server's window.
      const api = rollingApi(10, 2000, (i) => (i === 0 ? 5 : 1));
      const provider = providers.teos({ hints: { minute: { limit: 10, windowMs: 2000 } } });
      const limiter = createLimiter({ provider, key: 'k' });
      for (let i = 0; i < 12; i++) api.request().pipe(throttleByHeaders(limiter)).subscribe();
      return api;
    });
    expect(api.log).toHaveLength(12);
    expect(api.log.filter((h) => h.status === 429)).toEqual([]);
    // …at the cost of the guard (50 ms by default), once per window.
    expect(api.log[10]?.at).toBeGreaterThanOrEqual(2051);
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
  it('a call counts a window from its answer, not from when its permit is let go', () => {
    // The server logged the call by the time its answer came back (at 20); the caller read a
    // long body and let the permit go at 520. Its slot frees a window (and the guard) after the
    // answer, as the Redis store's log has it, not half a second later.
    const b = createBucket({ name: 'm', limit: 1, windowMs: 1000, rolling: true });
    const call = b.take(0);
    b.confirm(call, 20);
    b.release(call, 520);
    b.refill(600, 50);
    expect(b.availableAt(600, 50, 1)).toBe(1070);
  });
});
