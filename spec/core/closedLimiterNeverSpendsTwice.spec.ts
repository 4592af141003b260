import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, delay, of } from 'rxjs';
import { createLimiter, createLimiterPool, providers, rateLimit, type Limiter } from '../../lib/index.js';
import { responseLike } from '../../lib/core/response.js';
import { inVirtualTime } from '../helpers/virtual.js';

/** A window of 10, `remaining` left, ending a minute on. */
const figures = (remaining: number) => ({
  'x-ratelimit-limit': '10',
  'x-ratelimit-remaining': String(remaining),
  'x-ratelimit-reset': '60',
});

/** The virtual time in whole seconds. */
const second = () => Math.floor(asyncScheduler.now() / 1000);

/**
 * Sends a request through `limiter` now, answered `ms` after it goes; `log` gets `name@s` when
 * it goes or `name:error@s`.
 */
function send(limiter: Limiter, log: string[], name: string, remaining: number, ms = 10): void {
  defer(() => {
    log.push(`${name}@${second()}`);
    return of(responseLike(200, figures(remaining))).pipe(delay(ms));
  })
    .pipe(rateLimit(limiter))
    .subscribe({ error: (e: Error) => log.push(`${name}:${e.name}@${second()}`) });
}

const logOf = (body: (log: string[]) => void): string[] =>
  inVirtualTime(() => {
    const log: string[] = [];
    body(log);
    return log;
  });

const at = (ms: number, work: () => void) => asyncScheduler.schedule(work, ms);

describe('a limiter used after close(), beside a newer limiter of its key', () => {
  it('refuses a request once a newer limiter of its key holds the credential, rather than spend the budget again', () => {
    const log = logOf((log) => {
      const key = 'token-closed-superseded';
      const old = createLimiter({ provider: providers.generic(), key });
      void old.close(); // idle: it leaves its credential, whose state is dropped
      at(1_000, () => {
        const current = createLimiter({ provider: providers.generic(), key });
        send(current, log, 'spent', 0); // the window is spent until 61 s
        at(1_000, () => send(old, log, 'old', 9));
        at(2_000, () => send(current, log, 'next', 9));
      });
    });
    // Through the old limiter the request would have gone at 2 s, into a spent window (a 429).
    expect(log).toEqual(['spent@1', 'old:LimiterClosedError@2', 'next@61']);
  });

  it('joins its credential again when no newer limiter holds it: one made while its request is out waits on it', () => {
    const log = logOf((log) => {
      const key = 'token-closed-revived';
      const old = createLimiter({ provider: providers.generic(), key });
      void old.close();
      // Answered at 2 s: the window is spent until 62 s.
      at(1_000, () => send(old, log, 'old', 0, 1_000));
      // Made while the old one's request is out: it shares the credential's state, so its first
      // request waits for that answer (nothing is known of the limit yet), which says wait.
      at(1_500, () => send(createLimiter({ provider: providers.generic(), key }), log, 'newer', 9));
    });
    expect(log).toEqual(['old@1', 'newer@62']);
  });

  it('a pool limiter kept past its eviction does not spend its tenant budget beside the one the pool made since', () => {
    const log = logOf((log) => {
      const pool = createLimiterPool({ provider: providers.generic(), idleMs: 1_000 });
      const kept = pool.get('tenant-a');
      send(kept, log, 'first', 9);
      at(5_000, () => {
        // Evicted by now (idle 1 s); the pool makes a new limiter for the tenant.
        send(pool.get('tenant-a'), log, 'spent', 0);
        at(1_000, () => send(kept, log, 'kept', 9));
      });
      at(90_000, () => void pool.close());
    });
    expect(log).toEqual(['first@0', 'spent@5', 'kept:LimiterClosedError@6']);
  });
});
