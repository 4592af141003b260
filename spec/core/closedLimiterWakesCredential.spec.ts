import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, delay, of, type Subscription } from 'rxjs';
import { createLimiter, providers, rateLimit, type Limiter } from '../../lib/index.js';
import { responseLike } from '../../lib/core/response.js';
import { inVirtualTime } from '../helpers/virtual.js';

/** `remaining` of 10, and a reset a minute on when `reset` says so. */
const figures = (remaining: number, reset = false) => ({
  'x-ratelimit-limit': '10',
  'x-ratelimit-remaining': String(remaining),
  ...(reset ? { 'x-ratelimit-reset': '60' } : {}),
});

/**
 * Sends a request through `limiter` now, answered `ms` after it goes with `headers`; `log`
 * gets `name@time` when it goes, or `name:error@time`.
 */
function send(
  limiter: Limiter,
  log: string[],
  name: string,
  ms: number,
  headers: Record<string, string>,
): Subscription {
  return defer(() => {
    log.push(`${name}@${asyncScheduler.now()}`);
    return of(responseLike(200, headers)).pipe(delay(ms));
  })
    .pipe(rateLimit(limiter))
    .subscribe({ error: (e: Error) => log.push(`${name}:${e.name}@${asyncScheduler.now()}`) });
}

/** Runs `body` in virtual time and returns its log once every request has ended (at 100 s). */
function logOf(body: (log: string[]) => void): string[] {
  return inVirtualTime(() => {
    const log: string[] = [];
    body(log);
    return log;
  });
}

describe('a limiter closed with requests in flight', () => {
  // Two limiters of one credential with the memory store share one state: a request of one
  // waits on the buckets the other's requests in flight hold (here a cold start: nothing goes
  // beside the first request until its answer tells the limit). close() must not cut the
  // closed limiter's answers off from the other limiter's waiting requests.
  it.each([Infinity, 30_000])(
    'a limiter closed with a request in flight still wakes the other limiter of its credential (maxWaitMs %s)',
    (maxWaitMs) => {
      const key = `token-closed-in-flight-${maxWaitMs}`;
      const log = logOf((log) => {
        const a = createLimiter({ provider: providers.generic(), key, maxWaitMs });
        const b = createLimiter({ provider: providers.generic(), key, maxWaitMs });
        send(a, log, 'a', 1000, figures(9));
        send(b, log, 'b', 10, figures(8));
        void a.close();
      });
      // b goes with a's answer, not at its deadline (30 s) or never (Infinity).
      expect(log).toEqual(['a@0', 'b@1000']);
    },
  );

  it('a closed limiter stays in its credential until its last request in flight is answered', () => {
    const log = logOf((log) => {
      const key = 'token-closed-two-in-flight';
      const a = createLimiter({ provider: providers.generic(), key, coldStartConcurrency: 2 });
      const b = createLimiter({ provider: providers.generic(), key });
      // The first answer says the window is spent and not when it ends: only the second one,
      // still in flight, can tell. It does at 3 s, when a has given back its first permit.
      send(a, log, 'a1', 1000, figures(0));
      send(a, log, 'a2', 3000, figures(9, true));
      send(b, log, 'b', 10, figures(8, true));
      void a.close();
    });
    expect(log).toEqual(['a1@0', 'a2@0', 'b@3000']);
  });

  it.each([Infinity, 30_000])(
    'a request sent through a limiter after close() wakes the other limiter of its credential, and is woken by it (maxWaitMs %s)',
    (maxWaitMs) => {
      const log = logOf((log) => {
        const key = `token-sent-after-close-${maxWaitMs}`;
        const a = createLimiter({ provider: providers.generic(), key, maxWaitMs });
        const b = createLimiter({ provider: providers.generic(), key, maxWaitMs });
        // Closed idle (it leaves the credential), then used again: the memory store still answers.
        void a.close();
        send(a, log, 'a', 1000, figures(9));
        send(b, log, 'b', 10, figures(8));
        // The other way round, on a credential of its own: the closed limiter's request waits
        // on the other's.
        const otherKey = `${key}-waits`;
        const c = createLimiter({ provider: providers.generic(), key: otherKey, maxWaitMs });
        const d = createLimiter({ provider: providers.generic(), key: otherKey, maxWaitMs });
        void c.close();
        send(d, log, 'd', 2000, figures(9));
        send(c, log, 'c', 10, figures(8));
      });
      expect(log).toEqual(['a@0', 'd@0', 'b@1000', 'c@2000']);
    },
  );

  it('a closed limiter leaves its credential with its last answer: a limiter made later starts from a fresh state', () => {
    const key = 'token-closed-then-fresh';
    const remaining = (limiter: Limiter) => limiter.snapshot.buckets.find((b) => b.limit === 10)?.remaining;
    const seen = logOf((log) => {
      const a = createLimiter({ provider: providers.generic(), key });
      send(a, log, 'a', 1000, figures(3, true));
      void a.close();
      // While a's request is out, a limiter of its credential joins its state and sees its answer.
      const b = createLimiter({ provider: providers.generic(), key });
      asyncScheduler.schedule(() => {
        log.push(`b sees ${remaining(b)}`);
        void b.close();
      }, 1500);
      // Both closed and idle: the state was dropped, and nothing of a's answer is left.
      asyncScheduler.schedule(() => {
        const c = createLimiter({ provider: providers.generic(), key });
        log.push(`c sees ${remaining(c)}`);
        void c.close();
      }, 2000);
    });
    expect(seen).toEqual(['a@0', 'b sees 3', 'c sees undefined']);
  });

  it('a closed limiter whose last waiting request is cancelled leaves its credential', () => {
    const key = 'token-closed-cancelled';
    const remaining = (limiter: Limiter) => limiter.snapshot.buckets.find((b) => b.limit === 10)?.remaining;
    const seen = logOf((log) => {
      const a = createLimiter({ provider: providers.generic(), key });
      const b = createLimiter({ provider: providers.generic(), key });
      send(b, log, 'b', 1000, figures(3, true));
      // a's request waits on b's (a cold start) and is given up before b's answer.
      const waiting = send(a, log, 'a', 10, figures(2, true));
      void a.close();
      void b.close();
      asyncScheduler.schedule(() => waiting.unsubscribe(), 500);
      // b left with its answer, a with its cancelled request: nothing holds the state.
      asyncScheduler.schedule(() => {
        const c = createLimiter({ provider: providers.generic(), key });
        log.push(`c sees ${remaining(c)}`);
        void c.close();
      }, 2000);
    });
    expect(seen).toEqual(['b@0', 'c sees undefined']);
  });
});
