import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, Observable } from 'rxjs';
import { createLimiter, providers, rateLimit, responseLike, type ResponseLike } from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

/** Answers 429 with `Retry-After: 2` to the requests whose index `limited(i)` says, 200 otherwise, after 10 ms. */
function api(limited: (i: number) => boolean) {
  const log: Array<{ at: number; status: number }> = [];
  let n = 0;
  const request = () =>
    new Observable<ResponseLike>((s) => {
      const i = n++;
      const status = limited(i) ? 429 : 200;
      log.push({ at: asyncScheduler.now(), status });
      const t = asyncScheduler.schedule(() => {
        s.next(responseLike(status, status === 429 ? { 'retry-after': '2' } : {}));
        s.complete();
      }, 10);
      return () => t.unsubscribe();
    });
  return { request, log };
}

describe('429s to a burst of concurrent requests', () => {
  it('count as one 429, not one in a row per stream: the pause is the server’s, not an escalated backoff', () => {
    const server = inVirtualTime(() => {
      // The first request warms the limiter up; the next five go at once and are all refused.
      const server = api((i) => i >= 1 && i <= 5);
      const limiter = createLimiter({ provider: providers.generic(), key: 'k', random: () => 1 });
      server.request().pipe(rateLimit(limiter)).subscribe();
      asyncScheduler.schedule(() => {
        for (let i = 0; i < 5; i++) server.request().pipe(rateLimit(limiter)).subscribe();
      }, 100);
      return server;
    });
    const retries = server.log.slice(6);
    expect(retries).toHaveLength(5);
    expect(retries.every((r) => r.status === 200)).toBe(true);
    // Retry-After: 2 from the 429s read at 110 ms: every retry goes at 2.11 s, not after 2, 4, 8, 16 s of backoff.
    expect(Math.max(...retries.map((r) => r.at))).toBeLessThan(2200);
  });
});
