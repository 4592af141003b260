import { describe, expect, it, jest } from '@jest/globals';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { asyncScheduler, defer, delay, from, merge, mergeMap, of, type Observable } from 'rxjs';
import {
  createLimiter,
  createLimiterPool,
  defineProvider,
  isDuplicateLimiterError,
  providers,
  rateLimit,
  shareLimiter,
  type Limiter,
} from '../../lib/index.js';
import { responseLike } from '../../lib/core/response.js';
import { createSimulatorEngine, virtualProvider, type SimulatorResponse } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

/** Virtual runs start at a round UTC time, so the simulator's clock-aligned windows start with them. */
const START = Date.UTC(2026, 10, 23, 12, 0, 0);

/**
 * `requests` GETs per limiter, 15 streams each, all limiters at once against one simulated
 * Pipedrive (advanced plan: 40 requests per 2 s per token), each limiter on its own token.
 */
function run(limiters: readonly { limiter: Limiter; token: string }[], requests: number) {
  return inVirtualTime(({ now }) => {
    const engine = createSimulatorEngine({
      latencyMs: 20,
      pipedrive: { plan: 'advanced' },
      now: () => START + asyncScheduler.now(),
    });
    const api = virtualProvider(engine, asyncScheduler);
    const statuses: number[] = [];
    const errors: unknown[] = [];
    let last = 0;
    merge(
      ...limiters.map(({ limiter, token }, n) =>
        from(Array.from({ length: requests }, (_, i) => i)).pipe(
          mergeMap((i) => {
            const path = `/v1/deals/${n}-${i}`;
            const request$: Observable<SimulatorResponse> = api.request('pipedrive', { method: 'GET', path, token });
            return request$.pipe(rateLimit(limiter, { method: 'GET', url: path }));
          }, 15),
        ),
      ),
    ).subscribe({
      next: (r) => {
        statuses.push(r.status);
        last = now();
      },
      error: (e) => errors.push(e),
    });
    return { engine, statuses, errors, elapsed: () => last };
  });
}

/** A request answered 10 ms after it was sent, with no rate-limit headers. */
const responseOf = () => defer(() => of(responseLike(200, {})).pipe(delay(10)));

describe('one limit state per provider and credential in a process', () => {
  it('two limiters made for one Pipedrive token share its budget: no 429, nothing lost', () => {
    const out = inVirtualTime(() => {
      const a = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: 'token-shared' });
      const b = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: 'token-shared' });
      return { a, b };
    });
    // Each limiter alone would believe it owns 40 per 2 s and send 80 per 2 s together.
    const result = run(
      [
        { limiter: out.a, token: 'token-shared' },
        { limiter: out.b, token: 'token-shared' },
      ],
      100,
    );
    const counts = result.engine.statsFor('pipedrive', 'token-shared');
    expect(result.errors).toEqual([]);
    expect(result.statuses).toHaveLength(200);
    expect(counts.limited).toBe(0);
    expect(counts.blocked).toBe(0);
    // 200 requests at 40 per 2 s: at least four full windows after the first.
    expect(result.elapsed()).toBeGreaterThanOrEqual(8000);
  });

  it('a resetGuardMs one limiter sets holds for its requests when another limiter of the credential left it to its default', () => {
    // One bucket of 2 per 10 s, whose window no header dates: it ends a window after the first
    // answer from it (10), then the guard. The limiter that set resetGuardMs: 50 sends its third
    // at 10,060 when alone; it must not take the other limiter's default guard (10 ms) instead.
    const thirdAt = (withDefaultFirst: boolean) =>
      inVirtualTime(({ now }) => {
        const provider = defineProvider({
          name: 'fixed',
          buckets: [{ name: 'main', limit: 2, windowMs: 10_000 }],
          read: () => ({ outcome: 'ok', buckets: [] }),
        });
        if (withDefaultFirst) createLimiter({ provider, key: 'token-guard' });
        const b = createLimiter({ provider, key: 'token-guard', resetGuardMs: 50 });
        const sentAt: number[] = [];
        for (let i = 0; i < 3; i++)
          responseOf()
            .pipe(rateLimit(b, { method: 'GET', url: '/x' }))
            .subscribe(() => sentAt.push(now() - 10));
        return sentAt;
      });
    const alone = thirdAt(false);
    expect(alone).toEqual([0, 10, 10_060]);
    expect(thirdAt(true)).toEqual(alone);
  });

  it('room that frees goes to the request that waited longest, whichever limiter of the credential holds it', () => {
    // One call per second for the token. Limiter a holds a request from 5 ms and another from
    // 20 ms, limiter b one from 10 ms. Each limiter drains its own queue on its own timer; a's
    // runs first at each window's end (it was set first). The three go in the order they were
    // asked for, not a's two first.
    const order = inVirtualTime(({ now }) => {
      const provider = defineProvider({
        name: 'fair',
        buckets: [{ name: 'main', limit: 1, windowMs: 1000 }],
        read: () => ({ outcome: 'ok', buckets: [] }),
      });
      const a = createLimiter({ provider, key: 'token-fair' });
      const b = createLimiter({ provider, key: 'token-fair' });
      const went: Array<[string, number]> = [];
      const ask = (limiter: Limiter, name: string, at: number) =>
        asyncScheduler.schedule(() => {
          defer(() => {
            went.push([name, now()]);
            return responseOf();
          })
            .pipe(rateLimit(limiter))
            .subscribe();
        }, at);
      ask(a, 'first', 0);
      ask(a, 'a, asked at 5', 5);
      ask(b, 'b, asked at 10', 10);
      ask(a, 'a, asked at 20', 20);
      return went;
    });
    expect(order.map(([name]) => name)).toEqual(['first', 'a, asked at 5', 'b, asked at 10', 'a, asked at 20']);
    // One a second: each after the window before it.
    for (let i = 1; i < order.length; i++) expect(order[i]![1] - order[i - 1]![1]).toBeGreaterThanOrEqual(1000);
  });

  it('a pause one limiter meets holds the other limiter of the credential too', () => {
    inVirtualTime(({ now }) => {
      const a = createLimiter({ provider: providers.generic(), key: 'token-paused' });
      const b = createLimiter({ provider: providers.generic(), key: 'token-paused' });
      a.pause(5_000);
      expect(b.snapshot.pausedUntil).toBe(now() + 5_000);
      b.pause(0);
      expect(a.snapshot.pausedUntil).toBeNull();
    });
  });

  it('limiters of other keys or other providers keep states of their own', () => {
    inVirtualTime(({ now }) => {
      const a = createLimiter({ provider: providers.generic(), key: 'token-1' });
      const otherKey = createLimiter({ provider: providers.generic(), key: 'token-2' });
      const otherProvider = createLimiter({ provider: providers.procore(), key: 'token-1' });
      a.pause(5_000);
      expect(a.snapshot.pausedUntil).toBe(now() + 5_000);
      expect(otherKey.snapshot.pausedUntil).toBeNull();
      expect(otherProvider.snapshot.pausedUntil).toBeNull();
    });
  });

  it('a key with a line break never reaches the state of another provider’s key', () => {
    inVirtualTime(({ now }) => {
      // Same rules; provider "svc\nbilling" with key "tok" against provider "svc" with key "billing\ntok".
      const named = (name: string) => providers.generic({ name });
      const a = createLimiter({ provider: named('svc\nbilling'), key: 'tok' });
      const b = createLimiter({ provider: named('svc'), key: 'billing\ntok' });
      a.pause(5_000);
      expect(a.snapshot.pausedUntil).toBe(now() + 5_000);
      expect(b.snapshot.pausedUntil).toBeNull();
    });
  });

  it('keys that differ only in a lone surrogate are refused, never one state (UTF-8 reads each as U+FFFD)', async () => {
    // A JWT claim or JSON field may hold "\uD800": hashed as UTF-8 it was the key "tok-\uFFFD".
    for (const key of ['tok-\uD800', 'tok-\uDC00', 'x\uDBFF\uDBFF\uDC00']) {
      expect(() => createLimiter({ provider: providers.generic(), key })).toThrow(
        /option `key` must be a string of well-formed Unicode .*got \(hidden\)/,
      );
    }
    const pool = createLimiterPool({ provider: providers.generic() });
    try {
      const replaced = pool.get('tok-\uFFFD');
      expect(() => pool.get('tok-\uD800')).toThrow(TypeError);
      // A surrogate pair (an emoji) is well-formed: its own key, not the replacement character's.
      const emoji = pool.get('tok-\uD83D\uDE00');
      expect(emoji).not.toBe(replaced);
      expect(emoji.key).not.toBe(replaced.key);
      expect(pool.size).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it('a limiter made after the others were closed starts from a fresh state', async () => {
    const a = createLimiter({ provider: providers.generic(), key: 'token-closed' });
    a.pause(60_000);
    await a.close();
    const b = createLimiter({ provider: providers.generic(), key: 'token-closed' });
    expect(b.snapshot.pausedUntil).toBeNull();
    await b.close();
  });

  it('limiters of one key whose provider options differ keep their own states, with one warning', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      inVirtualTime(({ now }) => {
        const hour = createLimiter({ provider: providers.atlassian(), key: 'token-rules' });
        const compressed = createLimiter({
          provider: providers.atlassian({ hints: { quota: { limit: 40, windowMs: 2000 } } }),
          key: 'token-rules',
        });
        const again = createLimiter({
          provider: providers.atlassian({ hints: { quota: { limit: 40, windowMs: 2000 } } }),
          key: 'token-rules',
        });
        hour.pause(5_000);
        expect(compressed.snapshot.pausedUntil).toBeNull();
        compressed.pause(1_000);
        expect(again.snapshot.pausedUntil).toBe(now() + 1_000);
      });
      expect(warn).toHaveBeenCalledTimes(1);
      const message = String(warn.mock.calls[0]?.[0]);
      expect(message).toMatch(/atlassian .*different buckets/);
      expect(message).not.toContain('token-rules');
    } finally {
      warn.mockRestore();
    }
  });

  it('a limiter dropped without close() leaves its credential once collected', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const provider = providers.generic();
    // What the dropped limiter learnt: 3 of 10 left in a window that ends in an hour.
    (() => {
      const limiter = createLimiter({ provider, key: 'token-dropped' });
      limiter.observe(
        responseLike(200, { 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': '3600' }),
      );
    })();
    const remaining = async () => {
      const probe = createLimiter({ provider, key: 'token-dropped' });
      const left = probe.snapshot.buckets.find((b) => b.limit === 10)?.remaining;
      await probe.close();
      return left;
    };
    expect(await remaining()).toBe(3);
    // Nothing holds the dropped limiter: once collected, its credential is dropped with it.
    let left = await remaining();
    for (let i = 0; i < 50 && left !== undefined; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
      left = await remaining();
    }
    expect(left).toBeUndefined();
  });
});

describe('registrations of one credential with other provider options', () => {
  it('one provider object whose rules changed as it learnt is still the same provider', async () => {
    let resource = 'core';
    const provider = defineProvider({
      name: 'learning',
      buckets: () => [{ name: resource, limit: 10, windowMs: 1000 }],
      read: () => ({ outcome: 'ok', buckets: [] }),
    });
    const first = shareLimiter({ provider, key: 'token-learning' }, 'module A');
    resource = 'graphql'; // what a response taught it
    const second = shareLimiter({ provider, key: 'token-learning' }, 'module B');
    expect(second.limiter).toBe(first.limiter);
    await second.release();
    await first.release();
  });

  it('refuses one key with two caches of different lifetimes, naming both (an object option is compared by its fields)', async () => {
    const key = 'token-two-caches';
    const hour = shareLimiter({ provider: providers.generic(), key, cache: { ttlMs: 3_600_000 } }, 'reports');
    try {
      expect(() => shareLimiter({ provider: providers.generic(), key, cache: { ttlMs: 1 } }, 'live balance')).toThrow(
        /\{ cache: \{ ttlMs: 1 \} \} against \{ cache: \{ ttlMs: 3600000 \} \}/,
      );
      // The same cache written again, in another object, is the same setting.
      const again = shareLimiter({ provider: providers.generic(), key, cache: { ttlMs: 3_600_000 } }, 'other');
      expect(again.limiter).toBe(hour.limiter);
      await again.release();
    } finally {
      await hour.release();
    }
  });

  it('shareLimiter and a pool refuse one key under two plans, naming both places, never the key', async () => {
    const key = 'token-two-plans';
    const enterprise = shareLimiter({ provider: providers.pipedrive({ plan: 'enterprise' }), key }, 'module A');
    try {
      let error: unknown;
      try {
        shareLimiter({ provider: providers.pipedrive({ plan: 'essential' }), key }, 'module B');
      } catch (e) {
        error = e;
      }
      expect(isDuplicateLimiterError(error)).toBe(true);
      expect(String(error)).toMatch(/module B and module A/);
      expect(String(error)).not.toContain(key);
      const pool = createLimiterPool({ provider: providers.pipedrive({ plan: 'essential' }) });
      expect(() => pool.get(key)).toThrow(/limiter pool of pipedrive/);
      await pool.close();
      // The same options share, as before; its release works passed on as a function.
      const again = shareLimiter({ provider: providers.pipedrive({ plan: 'enterprise' }), key }, 'module C');
      expect(again.limiter).toBe(enterprise.limiter);
      const { release } = again;
      await release();
    } finally {
      await enterprise.release();
    }
  });
});
