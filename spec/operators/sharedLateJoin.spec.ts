import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, Observable } from 'rxjs';
import { createLimiter, providers, rateLimit, responseLike, type ResponseLike } from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

/**
 * A GET of `/a` answered after 10 ms; the request observable completes `completeAfterMs` after
 * its answer (0: at once, as axios and fetch do). `log` records what each caller got.
 */
function run(completeAfterMs: number, cache: boolean) {
  return inVirtualTime(() => {
    const limiter = createLimiter({
      provider: providers.generic(),
      key: 'k',
      coldStartConcurrency: 5,
      ...(cache ? { cache: { ttlMs: 60_000 } } : {}),
    });
    let sent = 0;
    const get$ = new Observable<ResponseLike>((s) => {
      const n = ++sent;
      const t = asyncScheduler.schedule(() => {
        s.next(responseLike(200, {}, { n }));
        if (completeAfterMs === 0) s.complete();
        else asyncScheduler.schedule(() => s.complete(), completeAfterMs);
      }, 10);
      return () => t.unsubscribe();
    });
    const log: string[] = [];
    const get = (who: string) =>
      get$.pipe(rateLimit(limiter, { url: '/a', headers: {} })).subscribe({
        next: (r) => log.push(`${who} got ${JSON.stringify(r.body)}`),
        complete: () => log.push(`${who} done`),
      });
    // The first caller asks again as soon as it has its answer (a refresh in its handler).
    get$.pipe(rateLimit(limiter, { url: '/a', headers: {} })).subscribe({
      next: () => {
        log.push('first got it');
        get('again');
      },
    });
    // Another caller asks between the answer and the end of the request.
    if (completeAfterMs > 0) asyncScheduler.schedule(() => get('between'), 10 + completeAfterMs / 2);
    return { log, sent: () => sent };
  });
}

describe('a GET that joins an identical one after its answer was handed out', () => {
  it.each([
    ['the request ends at once (axios, fetch)', 0, false],
    ['the request ends later', 6, false],
    ['the request ends later, cache on', 6, true],
  ])('gets an answer, not an empty completion: %s', (_name, completeAfterMs, cache) => {
    const out = run(completeAfterMs, cache);
    const empty = ['again', 'between'].filter(
      (who) => out.log.includes(`${who} done`) && !out.log.some((l) => l.startsWith(`${who} got`)),
    );
    expect(empty).toEqual([]);
    expect(out.log.some((l) => l.startsWith('again got'))).toBe(true);
  });
});
