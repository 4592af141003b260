/**
 * Waits a server dictates (Retry-After, resets, window lengths) are capped by
 * `maxServerWaitMs`; `pause(0)` and `resume()` start a credential again. In virtual time.
 */
import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, Observable } from 'rxjs';

import {
  createLimiter,
  defineProvider,
  providers,
  rateLimit,
  responseLike,
  type ResponseLike,
} from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

/**
 * A key of its own for each limiter made here: limiters of one provider and key in a process
 * share one limit state, and these stand for independent credentials.
 */
let keys = 0;
const freshKey = () => `k${++keys}`;

type Answer = { status: number; headers: Record<string, string> };

/** An API whose n-th answer (from 0) is `answer(n)`, 10 ms after the request is sent. */
function scriptedApi(answer: (n: number) => Answer) {
  const sent: number[] = [];
  const request = () =>
    new Observable<ResponseLike>((s) => {
      const n = sent.length;
      sent.push(asyncScheduler.now());
      const { status, headers } = answer(n);
      const t = asyncScheduler.schedule(() => {
        s.next(responseLike(status, headers));
        s.complete();
      }, 10);
      return () => t.unsubscribe();
    });
  return { request, sent };
}

const ok = (remaining = 50, resetSeconds = 60): Answer => ({
  status: 200,
  headers: {
    'x-ratelimit-limit': '100',
    'x-ratelimit-remaining': String(remaining),
    'x-ratelimit-reset': String(resetSeconds),
  },
});

const HOUR = 3_600_000;

describe('server-dictated waits are capped', () => {
  it('does not obey Retry-After: 999999999 (31 years): it backs off instead and sends again within a minute', () => {
    const { sent, pausedUntil } = inVirtualTime(() => {
      const api = scriptedApi((n) => (n === 0 ? { status: 429, headers: { 'retry-after': '999999999' } } : ok()));
      const limiter = createLimiter({
        provider: providers.generic(),
        key: freshKey(),
        random: () => 1,
        maxWaitMs: Infinity,
      });
      api.request().pipe(rateLimit(limiter)).subscribe();
      let pausedUntil: number | null = null;
      asyncScheduler.schedule(() => (pausedUntil = limiter.snapshot.pausedUntil), 20);
      return { sent: api.sent, pausedUntil: () => pausedUntil };
    });
    // The 429 at 10 ms is answered by the first backoff (1 s, full jitter), not by 2058.
    expect(pausedUntil()).toBe(10 + 1000);
    expect(sent).toEqual([0, 1010]);
  });

  it('still obeys a Retry-After within the cap (2 hours)', () => {
    const pausedUntil = inVirtualTime(() => {
      const api = scriptedApi(() => ({ status: 429, headers: { 'retry-after': String(2 * 3600) } }));
      const limiter = createLimiter({ provider: providers.generic(), key: freshKey(), maxWaitMs: Infinity });
      api
        .request()
        .pipe(rateLimit(limiter, {}, { maxRetries: 0 }))
        .subscribe({ error: () => undefined });
      let at: number | null = null;
      asyncScheduler.schedule(() => (at = limiter.snapshot.pausedUntil), 20);
      return () => at;
    });
    expect(pausedUntil()).toBe(10 + 2 * HOUR);
  });

  it('takes a Retry-After past maxServerWaitMs as garbage: a 10 s cap turns "retry in 20 s" into the backoff', () => {
    const pausedUntil = inVirtualTime(() => {
      const api = scriptedApi(() => ({ status: 429, headers: { 'retry-after': '20' } }));
      const limiter = createLimiter({
        provider: providers.generic(),
        key: freshKey(),
        random: () => 0,
        maxServerWaitMs: 10_000,
      });
      api
        .request()
        .pipe(rateLimit(limiter, {}, { maxRetries: 0 }))
        .subscribe({ error: () => undefined });
      let at: number | null = null;
      asyncScheduler.schedule(() => (at = limiter.snapshot.pausedUntil), 20);
      return () => at;
    });
    expect(pausedUntil()).toBe(10 + 500);
  });

  it('drops a reset dated 9999 on an empty bucket: the next reading with a sane reset is taken and requests flow', () => {
    const { sent, resetAt } = inVirtualTime(() => {
      const api = scriptedApi((n) =>
        n === 0
          ? {
              status: 200,
              headers: {
                'x-ratelimit-limit': '100',
                'x-ratelimit-remaining': '0',
                'x-ratelimit-reset': '253402300799',
              },
            }
          : ok(50, 5),
      );
      const limiter = createLimiter({ provider: providers.generic(), key: freshKey() });
      for (let i = 0; i < 3; i++) api.request().pipe(rateLimit(limiter)).subscribe();
      let resetAt: number | null | undefined;
      asyncScheduler.schedule(() => (resetAt = limiter.snapshot.buckets[0]?.resetAt), 5000);
      return { sent: api.sent, resetAt: () => resetAt };
    });
    // The empty bucket with no credible reset probes with one request after 1 s (+ the 50 ms
    // reset guard); its answer (reset in 5 s) is the window, and the other request follows it.
    // That one, sent once 50 left was read, reads 50 again: no call sent after that figure
    // could in its window, so a window that began after it, ending 5 s after this answer.
    expect(sent).toEqual([0, 1060, 1070]);
    expect(resetAt()).toBe(1080 + 5000);
  });

  it('ignores a window length past the cap (it would hold an empty bucket for years)', () => {
    const sent = inVirtualTime(() => {
      // Reads `window` (ms) and `left` headers; the first answer says an empty window of 31 years.
      const provider = defineProvider({
        name: 'windowed',
        buckets: [{ name: 'main' }],
        read: (res) => ({
          outcome: 'ok',
          buckets: [
            { name: 'main', limit: 10, remaining: Number(res.header('left')), windowMs: Number(res.header('window')) },
          ],
        }),
      });
      const api = scriptedApi((n) => ({
        status: 200,
        headers: n === 0 ? { left: '0', window: '1000000000000' } : { left: '5', window: '60000' },
      }));
      const limiter = createLimiter({ provider, key: freshKey(), maxWaitMs: Infinity });
      for (let i = 0; i < 2; i++) api.request().pipe(rateLimit(limiter)).subscribe();
      return api.sent;
    });
    // Empty with no credible window: probed after 1 s (+ the reset guard), as with no window at all.
    expect(sent).toEqual([0, 1060]);
  });

  it('obeys a Retry-After and a reset far longer than the window the profile declares', () => {
    // A profile's window may be shorter than the limit the server enforces (a per-second hint in
    // front of an hourly quota): the server's word is never cut to the profile's window, which
    // sent requests into 429s until a retry limit, where waiting would have succeeded.
    const out = inVirtualTime(() => {
      const api = scriptedApi((n) => (n === 0 ? { status: 429, headers: { 'retry-after': '1800' } } : ok()));
      const limiter = createLimiter({
        provider: providers.generic({ limit: 20, windowMs: 1_000 }),
        key: freshKey(),
        maxWaitMs: Infinity,
      });
      api.request().pipe(rateLimit(limiter)).subscribe();
      let pausedUntil: number | null = null;
      asyncScheduler.schedule(() => (pausedUntil = limiter.snapshot.pausedUntil), 20);
      return { sent: api.sent, pausedUntil: () => pausedUntil };
    });
    expect(out.pausedUntil()).toBe(10 + 1_800_000);
    expect(out.sent).toEqual([0, 10 + 1_800_000]);
  });

  it('refuses a bad maxServerWaitMs with a TypeError naming it', () => {
    for (const bad of [-1, Number.NaN, 500, '1h'] as unknown[])
      expect(() =>
        createLimiter({ provider: providers.generic(), key: freshKey(), maxServerWaitMs: bad as number }),
      ).toThrow(/`maxServerWaitMs`/);
  });
});

describe('pause(0) and resume() start again', () => {
  it('pause(0) ends a pause: the waiting request goes at once', () => {
    const { sent, pausedUntil } = inVirtualTime(() => {
      const api = scriptedApi(() => ok());
      const limiter = createLimiter({ provider: providers.generic(), key: freshKey(), maxWaitMs: Infinity });
      limiter.pause(60_000);
      api.request().pipe(rateLimit(limiter)).subscribe();
      let pausedUntil: number | null = -1;
      asyncScheduler.schedule(() => {
        limiter.pause(0);
        pausedUntil = limiter.snapshot.pausedUntil;
      }, 100);
      return { sent: api.sent, pausedUntil: () => pausedUntil };
    });
    expect(pausedUntil()).toBeNull();
    expect(sent).toEqual([100]);
  });

  it('resume() lifts a server pause, and an empty bucket forgets its reset and probes', () => {
    const { sent, events } = inVirtualTime(() => {
      const api = scriptedApi((n) =>
        n === 0
          ? // Empty for 20 hours (within the cap, so obeyed), and a 429 asking for 2 hours.
            {
              status: 429,
              headers: {
                'x-ratelimit-limit': '100',
                'x-ratelimit-remaining': '0',
                'x-ratelimit-reset': String(20 * 3600),
                'retry-after': String(2 * 3600),
              },
            }
          : ok(99, 60),
      );
      const limiter = createLimiter({ provider: providers.generic(), key: freshKey(), maxWaitMs: Infinity });
      const events: string[] = [];
      limiter.events$.subscribe((e) => events.push(e.type));
      api
        .request()
        .pipe(rateLimit(limiter, {}, { maxRetries: 0 }))
        .subscribe({ error: () => undefined });
      asyncScheduler.schedule(() => {
        for (let i = 0; i < 3; i++) api.request().pipe(rateLimit(limiter)).subscribe();
      }, 100);
      asyncScheduler.schedule(() => limiter.resume(), 1000);
      return { sent: api.sent, events };
    });
    // One probe at the resume; its answer (99 left) lets the other two go.
    expect(sent).toEqual([0, 1000, 1010, 1010]);
    expect(events).toContain('resumed');
  });

  it('resume() lifts a block whose cool-down is endless', () => {
    const { sent, errors } = inVirtualTime(() => {
      const api = scriptedApi((n) => (n === 0 ? { status: 403, headers: { 'content-type': 'text/html' } } : ok()));
      const limiter = createLimiter({
        provider: providers.pipedrive({ plan: 'essential' }),
        key: freshKey(),
        blockCooldownMs: Infinity,
      });
      const errors: string[] = [];
      const go = () =>
        api
          .request()
          .pipe(rateLimit(limiter, { method: 'GET', url: '/v1/deals' }))
          .subscribe({ error: (e: Error) => errors.push(e.name) });
      go();
      asyncScheduler.schedule(() => {
        go();
        limiter.resume();
        go();
      }, 100);
      return { sent: api.sent, errors };
    });
    expect(errors).toEqual(['BlockedError', 'BlockedError']); // its own 403, then one refused before resume()
    expect(sent).toEqual([0, 100]);
  });
});

describe('429s to a burst of concurrent requests', () => {
  it('count as one 429, not one in a row per stream: the pause is the server’s, not an escalated backoff', () => {
    const sent = inVirtualTime(() => {
      // The first request warms the limiter up; the next five go at once and are all refused.
      const api = scriptedApi((n) =>
        n >= 1 && n <= 5 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 200, headers: {} },
      );
      const limiter = createLimiter({ provider: providers.generic(), key: freshKey(), random: () => 1 });
      api.request().pipe(rateLimit(limiter)).subscribe();
      asyncScheduler.schedule(() => {
        for (let i = 0; i < 5; i++) api.request().pipe(rateLimit(limiter)).subscribe();
      }, 100);
      return api.sent;
    });
    // Five retries, all answered 200 (the script refuses only requests 1–5).
    const retries = sent.slice(6);
    expect(retries).toHaveLength(5);
    // Retry-After: 2 from the 429s read at 110 ms: every retry goes at 2.11 s, not after 2, 4, 8, 16 s of backoff.
    expect(Math.max(...retries)).toBeLessThan(2200);
  });
});

describe('random option', () => {
  it('a random source returning NaN still pauses after a 429 (the backoff counts it as the longest jitter)', () => {
    const sent = inVirtualTime(() => {
      const api = scriptedApi((n) => (n === 0 ? { status: 429, headers: {} } : ok()));
      const limiter = createLimiter({ provider: providers.generic(), key: freshKey(), random: () => Number.NaN });
      api.request().pipe(rateLimit(limiter)).subscribe();
      return api.sent;
    });
    expect(sent).toEqual([0, 1010]);
  });

  it('refuses a random that is not a function with a TypeError naming it', () => {
    expect(() =>
      createLimiter({ provider: providers.generic(), key: freshKey(), random: 0.5 as unknown as () => number }),
    ).toThrow(/`random`/);
  });
});
