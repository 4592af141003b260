import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, Observable } from 'rxjs';
import { createLimiter, providers, rateLimit, responseLike, type ResponseLike } from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

/**
 * Anonymous GETs of one URL (`at` ms each) through one limiter with the cache on, answered in
 * 10 ms by an endpoint that opens a new session for every request it is sent (`Set-Cookie`).
 * Returns the cookie each caller got and how many requests were sent.
 */
function sessions(at: readonly number[], extra: Record<string, string> = {}) {
  return inVirtualTime(() => {
    const limiter = createLimiter({
      provider: providers.generic(),
      key: 'app',
      coldStartConcurrency: 10,
      cache: { ttlMs: 60_000 },
    });
    let sent = 0;
    const get$ = new Observable<ResponseLike>((s) => {
      const session = `sid=session-${++sent}`;
      const t = asyncScheduler.schedule(() => {
        s.next(responseLike(200, { 'Set-Cookie': session, ...extra }, { ok: true }));
        s.complete();
      }, 10);
      return () => t.unsubscribe();
    });
    const cookies: Array<string | undefined> = [];
    for (const t of at)
      asyncScheduler.schedule(
        () =>
          void get$
            .pipe(rateLimit(limiter, { url: '/login', headers: {} }))
            .subscribe((r) => cookies.push(r.header('set-cookie'))),
        t,
      );
    return { cookies, sent: () => sent };
  });
}

describe('a response that sets a cookie', () => {
  it('is not cached: a later caller gets its own session, not the first caller’s', () => {
    const out = sessions([0, 100]);
    expect(out.sent()).toBe(2);
    expect(out.cookies).toEqual(['sid=session-1', 'sid=session-2']);
  });

  it('is not cached even when it says public, max-age', () => {
    const out = sessions([0, 100], { 'Cache-Control': 'public, max-age=60' });
    expect(out.cookies).toEqual(['sid=session-1', 'sid=session-2']);
  });
});

describe('a response that sets a cookie, in flight', () => {
  it('is not handed to the identical requests that joined it: each gets a session of its own', () => {
    const out = sessions([0, 0, 0]);
    expect(out.sent()).toBe(3);
    expect([...out.cookies].sort()).toEqual(['sid=session-1', 'sid=session-2', 'sid=session-3']);
  });

  it('a joiner sent on its own is still cancelled by unsubscribing', () => {
    const out = inVirtualTime(() => {
      const limiter = createLimiter({ provider: providers.generic(), key: 'app', coldStartConcurrency: 10 });
      let sent = 0;
      let cancelled = 0;
      const get$ = new Observable<ResponseLike>((s) => {
        const n = ++sent;
        let answered = false;
        // The first answer sets a cookie; the joiner's own request answers later.
        const t = asyncScheduler.schedule(
          () => {
            answered = true;
            s.next(responseLike(200, { 'Set-Cookie': `sid=${n}` }, {}));
            s.complete();
          },
          n === 1 ? 10 : 100,
        );
        return () => {
          if (!answered) cancelled++;
          t.unsubscribe();
        };
      });
      const got: string[] = [];
      const req = () => get$.pipe(rateLimit(limiter, { url: '/login', headers: {} }));
      req().subscribe(() => got.push('first'));
      const joiner = req().subscribe(() => got.push('joiner'));
      asyncScheduler.schedule(() => joiner.unsubscribe(), 50);
      return { got, sent: () => sent, cancelled: () => cancelled, limiter };
    });
    expect(out.got).toEqual(['first']);
    expect(out.sent()).toBe(2);
    expect(out.cancelled()).toBe(1);
    expect(out.limiter.snapshot.inFlight).toBe(0);
  });
});
