/**
 * A pool of limiters keyed by tenant: made on first use, one per key, evicted when idle with
 * nothing queued, in flight or in force (its `state$` completing), bounded by `max`, and a
 * whole-pool `state$` that never shows a key. Virtual time.
 */
import { describe, expect, it, jest } from '@jest/globals';
import { inspect } from 'node:util';
import { asyncScheduler, delay, of, type Observable } from 'rxjs';
import {
  createLimiter,
  createLimiterPool,
  defineProvider,
  isLimiterPoolFullError,
  isRateLimitError,
  rateLimit,
  RateLimitError,
  shareLimiter,
  responseLike,
  type Limiter,
  type LimiterPoolSnapshot,
  type LimiterSnapshot,
} from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

/** One bucket of `limit` per 10 s, read from X-RateLimit-Remaining/-Reset (seconds left). */
const fixed = (limit = 5) =>
  defineProvider({
    name: 'fixed',
    buckets: [{ name: 'main', limit, windowMs: 10_000 }],
    read(res) {
      const remaining = res.header('x-ratelimit-remaining');
      const reset = res.header('x-ratelimit-reset');
      return {
        outcome: res.status === 429 ? 'limited' : 'ok',
        buckets:
          remaining === undefined
            ? []
            : [{ name: 'main', limit, remaining: Number(remaining), reset: { inMs: Number(reset ?? 10) * 1000 } }],
        ...(res.status === 429 && res.header('retry-after') !== undefined
          ? { retryAfter: { delayMs: Number(res.header('retry-after')) * 1000 } }
          : {}),
      };
    },
  });

/** A request answered after `ms` with `status` and the given headers. */
const call = (status: number, headers: Record<string, string>, ms = 10): Observable<unknown> =>
  of(responseLike(status, headers)).pipe(delay(ms));

const token = (i: number) => `tenant-token-${i}-0123456789abcdef`;

describe('a limiter pool', () => {
  it('hands each key one limiter, made on first use, and another key another', () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({ provider: fixed(), scheduler: asyncScheduler });
      expect(pool.size).toBe(0);
      const a = pool.get(token(1));
      expect(pool.get(token(1))).toBe(a);
      const b = pool.get(token(2));
      expect(b).not.toBe(a);
      expect(pool.size).toBe(2);
      expect(pool.has(token(1))).toBe(true);
      void pool.close();
    });
  });

  it('paces each tenant by its own budget: one tenant spent does not hold up another', () => {
    inVirtualTime(({ now }) => {
      const pool = createLimiterPool({ provider: fixed(2), scheduler: asyncScheduler });
      const sentAt: Record<string, number[]> = { a: [], b: [] };
      for (const [name, key] of [
        ['a', token(1)],
        ['b', token(2)],
      ] as const) {
        for (let i = 0; i < 3; i++) {
          call(200, { 'x-ratelimit-remaining': String(1 - i), 'x-ratelimit-reset': '10' })
            .pipe(rateLimit(pool.get(key), { method: 'GET', url: '/x' }))
            .subscribe(() => sentAt[name]?.push(now() - 10));
        }
      }
      asyncScheduler.schedule(() => {
        // Two per 10 s for each tenant: the third of each waits for its own window (a window after
        // the answer that opened it, plus a guard of 10 ms), not for the other's.
        expect(sentAt['a']).toEqual([0, 10, 10_020]);
        expect(sentAt['b']).toEqual([0, 10, 10_020]);
        void pool.close();
      }, 30_000);
    });
  });

  it('evicts a limiter idle for idleMs with nothing queued or in flight; its state$ completes', () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({ provider: fixed(), scheduler: asyncScheduler, idleMs: 60_000 });
      const first = pool.get(token(1));
      let completedAt: number | undefined;
      first.state$.subscribe({ complete: () => (completedAt = asyncScheduler.now()) });
      call(200, { 'x-ratelimit-remaining': '4' })
        .pipe(rateLimit(first, { method: 'GET', url: '/x' }))
        .subscribe();
      asyncScheduler.schedule(() => expect(pool.size).toBe(1), 59_999);
      asyncScheduler.schedule(() => {
        expect(pool.size).toBe(0);
        expect(completedAt).toBe(60_000);
        // The next use makes a new limiter.
        expect(pool.get(token(1))).not.toBe(first);
        void pool.close();
      }, 60_001);
    });
  });

  it('evicts by last use, not by creation: a tenant used again outlives those created with it', () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({ provider: fixed(), scheduler: asyncScheduler, idleMs: 60_000 });
      for (let i = 1; i <= 3; i++) pool.get(token(i));
      // Tenant 2 is used again at 30 s; 1 and 3 are not.
      asyncScheduler.schedule(() => void pool.get(token(2)), 30_000);
      asyncScheduler.schedule(() => {
        expect([1, 2, 3].map((i) => pool.has(token(i)))).toEqual([false, true, false]);
      }, 60_000);
      // Idle from 30 s: gone by 90 s (its place in the pool's order is mended by the sweep).
      asyncScheduler.schedule(() => expect(pool.has(token(2))).toBe(true), 89_999);
      asyncScheduler.schedule(() => {
        expect(pool.size).toBe(0);
        void pool.close();
      }, 90_001);
    });
  });

  it('keeps a limiter with a request still queued or in flight past idleMs, and evicts it once done', () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({ provider: fixed(), scheduler: asyncScheduler, idleMs: 1_000 });
      // A request in flight for 2.5 s.
      call(200, { 'x-ratelimit-remaining': '4' }, 2_500)
        .pipe(rateLimit(pool.get(token(1)), { method: 'GET', url: '/slow' }))
        .subscribe();
      asyncScheduler.schedule(() => expect(pool.size).toBe(1), 2_400);
      // Done at 2.5 s; looked at again a second after the check that found it busy.
      asyncScheduler.schedule(() => expect(pool.size).toBe(0), 3_100);
      asyncScheduler.schedule(() => void pool.close(), 3_200);
    });
  });

  it('with the memory store, never forgets a pause still in force: the limiter stays until it ends', () => {
    inVirtualTime(({ now }) => {
      const pool = createLimiterPool({ provider: fixed(), scheduler: asyncScheduler, idleMs: 1_000 });
      // A 429 with Retry-After: 30 s.
      call(429, { 'retry-after': '30' })
        .pipe(rateLimit(pool.get(token(1)), { method: 'GET', url: '/x' }, { maxRetries: 0 }))
        .subscribe({ error: () => undefined });
      asyncScheduler.schedule(() => {
        expect(pool.size).toBe(1);
        const sentAt: number[] = [];
        call(200, { 'x-ratelimit-remaining': '4' })
          .pipe(rateLimit(pool.get(token(1)), { method: 'GET', url: '/x' }))
          .subscribe(() => sentAt.push(now() - 10));
        asyncScheduler.schedule(() => expect(sentAt).toEqual([30_010]), 30_000);
      }, 5_000);
      // Paused till 30.01 s: evicted at the first sweep after it ends and its request is answered.
      asyncScheduler.schedule(() => expect(pool.size).toBe(1), 30_000);
      asyncScheduler.schedule(() => {
        expect(pool.size).toBe(0);
        void pool.close();
      }, 40_000);
    });
  });

  it('with the memory store, never forgets a bucket spent until its reset', () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({ provider: fixed(), scheduler: asyncScheduler, idleMs: 1_000 });
      // The server says the window is spent for 60 s.
      call(200, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '60' })
        .pipe(rateLimit(pool.get(token(1)), { method: 'GET', url: '/x' }))
        .subscribe();
      asyncScheduler.schedule(() => {
        expect(pool.size).toBe(1);
        expect(pool.get(token(1)).snapshot.buckets[0]?.remaining).toBe(0);
      }, 30_000);
      asyncScheduler.schedule(() => {
        expect(pool.size).toBe(0);
        void pool.close();
      }, 63_000);
    });
  });

  it('with the memory store, keeps a blocked limiter through its cool-down and evicts it after, unused', () => {
    inVirtualTime(() => {
      const blocking = defineProvider({
        name: 'blocky',
        buckets: [{ name: 'main', limit: 5, windowMs: 10_000 }],
        read: (res) => ({ outcome: res.status === 403 ? 'blocked' : 'ok', buckets: [] }),
      });
      const pool = createLimiterPool({
        provider: blocking,
        scheduler: asyncScheduler,
        idleMs: 1_000,
        blockCooldownMs: 5_000,
      });
      call(403, {})
        .pipe(rateLimit(pool.get(token(1)), { method: 'GET', url: '/x' }))
        .subscribe({ error: () => undefined });
      // Blocked till 5.01 s: kept, though idle; no request comes after.
      asyncScheduler.schedule(() => expect(pool.size).toBe(1), 4_900);
      // Over at 5.01 s: evicted at the next sweep, not kept for good (nor shown blocked).
      asyncScheduler.schedule(() => {
        expect(pool.size).toBe(0);
        expect(pool.snapshot().limiters).toEqual([]);
        void pool.close();
      }, 7_100);
    });
  });

  it('at max, evicts the least recently used limiter that holds nothing, else throws LimiterPoolFullError', () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({ provider: fixed(), scheduler: asyncScheduler, max: 2 });
      const a = pool.get(token(1));
      pool.get(token(2));
      pool.get(token(1)); // token 2 is now the least recently used
      pool.get(token(3));
      expect(pool.size).toBe(2);
      expect(pool.has(token(2))).toBe(false);
      expect(pool.get(token(1))).toBe(a);
      // Both busy: a request in flight on each.
      for (const k of [1, 3])
        call(200, { 'x-ratelimit-remaining': '4' }, 5_000)
          .pipe(rateLimit(pool.get(token(k)), { method: 'GET', url: '/x' }))
          .subscribe();
      let error: unknown;
      try {
        pool.get(token(4));
      } catch (e) {
        error = e;
      }
      expect(isLimiterPoolFullError(error)).toBe(true);
      expect(error).toMatchObject({ name: 'LimiterPoolFullError', provider: 'fixed', max: 2 });
      expect(String((error as Error).message)).not.toContain('tenant-token');
      // One of the library's errors, like the others: caught by `isRateLimitError` and
      // `instanceof RateLimitError`, and labelled with the refused key as its limiter would show it.
      expect(error).toBeInstanceOf(RateLimitError);
      expect(isRateLimitError(error)).toBe(true);
      const refused = createLimiter({ provider: fixed(), key: token(4), scheduler: asyncScheduler });
      void refused.close();
      expect((error as RateLimitError).key).toBe(refused.key);
      expect(JSON.stringify(error)).not.toContain('tenant-token');
      asyncScheduler.schedule(() => void pool.close(), 6_000);
    });
  });

  it('at max, finds an idle limiter to evict behind many busy tenants in use', () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({ provider: fixed(), scheduler: asyncScheduler, max: 100 });
      for (let i = 0; i < 100; i++) pool.get(token(i));
      // The 70 tenants made first are busy (a request in flight for 5 s each, the limiter got
      // again for it); the 30 made last are idle. More busy tenants than one eviction looks at.
      for (let i = 0; i < 70; i++)
        call(200, { 'x-ratelimit-remaining': '4' }, 5_000)
          .pipe(rateLimit(pool.get(token(i)), { method: 'GET', url: '/x' }))
          .subscribe();
      asyncScheduler.schedule(() => {
        for (let k = 100; k < 130; k++) expect(() => pool.get(token(k))).not.toThrow();
        // Each new tenant took an idle one's place; no busy one was evicted.
        expect(pool.size).toBe(100);
        for (let i = 0; i < 70; i++) expect(pool.has(token(i))).toBe(true);
        // The new tenants hold nothing either: the least recently used of them makes room next.
        expect(() => pool.get(token(130))).not.toThrow();
        expect(pool.has(token(100))).toBe(false);
      }, 1_000);
      asyncScheduler.schedule(() => void pool.close(), 6_000);
    });
  });

  it('at max, admits a new tenant at once although busy tenants made first are the least recently used', () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({ provider: fixed(), scheduler: asyncScheduler, max: 100 });
      const send = (i: number) =>
        call(200, { 'x-ratelimit-remaining': '4' }, 5_000)
          .pipe(rateLimit(pool.get(token(i)), { method: 'GET', url: '/x' }))
          .subscribe();
      // 70 busy tenants, each got once (for its request), then 30 idle ones.
      for (let i = 0; i < 70; i++) send(i);
      for (let i = 70; i < 100; i++) pool.get(token(i));
      asyncScheduler.schedule(() => {
        // Every one of the 30 idle tenants makes room, from the first `get` on (each new tenant
        // holds a request in flight, so it is not the next to go).
        for (let k = 100; k < 130; k++) expect(() => send(k)).not.toThrow();
        for (let i = 0; i < 70; i++) expect(pool.has(token(i))).toBe(true);
        expect(() => pool.get(token(130))).toThrow(/maximum of 100/);
      }, 1_000);
      asyncScheduler.schedule(() => void pool.close(), 6_000);
    });
  });

  it('at max, a limiter that was busy when the pool was full and is idle now is evicted before one used after it', () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({ provider: fixed(), scheduler: asyncScheduler, max: 2 });
      // A and B each with a request in flight (A's answered at 1 s, B's at 2 s): no room for C.
      call(200, { 'x-ratelimit-remaining': '4' }, 1_000)
        .pipe(rateLimit(pool.get(token(1)), { method: 'GET', url: '/x' }))
        .subscribe();
      call(200, { 'x-ratelimit-remaining': '4' }, 2_000)
        .pipe(rateLimit(pool.get(token(2)), { method: 'GET', url: '/x' }))
        .subscribe();
      expect(() => pool.get(token(3))).toThrow(/maximum of 2 limiters/);
      asyncScheduler.schedule(() => {
        const c = pool.get(token(3)); // A is idle: evicted for C
        expect(pool.has(token(1))).toBe(false);
        asyncScheduler.schedule(() => {
          // B (last asked for at 0) and C (at 1.5 s) both idle: B is the least recently used.
          pool.get(token(4));
          expect(pool.has(token(2))).toBe(false);
          expect(pool.get(token(3))).toBe(c);
          void pool.close();
        }, 1_000);
      }, 1_500);
    });
  });

  it('at max, a new tenant that cannot be made (another registration of its key) evicts no one', () => {
    // Real time: limiters on a virtual clock are never shared, so never refused as duplicates.
    const provider = fixed();
    const pool = createLimiterPool({ provider, max: 1 });
    const innocent = pool.get(token(1));
    const other = shareLimiter({ provider, key: token(2), maxQueue: 3 }, 'another module');
    expect(() => pool.get(token(2))).toThrow(/limiter/i);
    expect(pool.size).toBe(1);
    expect(pool.get(token(1))).toBe(innocent);
    void other.release();
    void pool.close();
  });

  it('a default spelled out is the same limiter as one left out', () => {
    {
      const provider = fixed();
      const pool = createLimiterPool({ provider });
      const tenant = pool.get(token(1));
      const hold = shareLimiter(
        { provider, key: token(1), maxWaitMs: 600_000, dedupe: true, coldStartConcurrency: 1 },
        'another module',
      );
      expect(hold.limiter).toBe(tenant);
      void hold.release();
      void pool.close();
    }
  });

  it("a tenant's state$ completing on eviction may call the pool again: it stays within max and in order", () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({ provider: fixed(), scheduler: asyncScheduler, max: 2 });
      const again: Limiter[] = [];
      const a = pool.get(token(1));
      a.state$.subscribe({ complete: () => again.push(pool.get(token(1))) });
      pool.get(token(2));
      pool.get(token(2));
      // token 1 is the least recently used: evicted to make room for 3, and asked for again as
      // its state$ completes, which evicts token 2 (the pool holds 3 and 1 again).
      const c = pool.get(token(3));
      expect(pool.size).toBe(2);
      expect(again).toHaveLength(1);
      expect(again[0]).not.toBe(a);
      expect(pool.has(token(3)) && pool.has(token(1))).toBe(true);
      expect(pool.get(token(3))).toBe(c);
      void pool.close();
    });
  });

  it("the tenant being made, asked for again as an evicted one's state$ completes, is one limiter that completes on close", () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({ provider: fixed(), scheduler: asyncScheduler, max: 1 });
      const inner: Limiter[] = [];
      pool.get(token(1)).state$.subscribe({ complete: () => inner.push(pool.get(token(2))) });
      const outer = pool.get(token(2));
      expect(inner).toEqual([outer]);
      let completed = false;
      outer.state$.subscribe({ complete: () => (completed = true) });
      void pool.close();
      expect(completed).toBe(true);
    });
  });

  it('closed from a state$ completing in the idle sweep, the pool stays closed and empty', () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({ provider: fixed(), scheduler: asyncScheduler, idleMs: 1_000 });
      // The sweep meets the busy one first (kept, to be placed again), then evicts the other.
      const busy = pool.get(token(2));
      call(200, { 'x-ratelimit-remaining': '4' }, 5_000)
        .pipe(rateLimit(busy, { method: 'GET', url: '/x' }))
        .subscribe();
      pool.get(token(1)).state$.subscribe({ complete: () => void pool.close() });
      asyncScheduler.schedule(() => {
        expect(pool.size).toBe(0);
        expect(() => pool.get(token(2))).toThrow(/closed/);
      }, 2_000);
    });
  });

  it('an evicted or closed limiter still shows its state now', () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({ provider: fixed(), scheduler: asyncScheduler, max: 1 });
      const first = pool.get(token(1));
      pool.get(token(2));
      expect(first.snapshot).toMatchObject({ provider: 'fixed', inFlight: 0, queued: 0 });
      const second = pool.get(token(2));
      void pool.close();
      expect(second.snapshot).toMatchObject({ provider: 'fixed', inFlight: 0, queued: 0 });
      expect(JSON.stringify(second)).toContain('"provider":"fixed"');
    });
  });

  it('at max, evicts an idle limiter behind 100 least recently used ones holding requests', () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({
        provider: fixed(),
        scheduler: asyncScheduler,
        max: 101,
        stateIntervalMs: 100,
      });
      const seen: LimiterPoolSnapshot[] = [];
      pool.state$.subscribe((s) => seen.push(s));
      // The 100 least recently used each hold a request in flight for 5 s; one idle tenant after them.
      for (let i = 0; i < 100; i++)
        call(200, { 'x-ratelimit-remaining': '4' }, 5_000)
          .pipe(rateLimit(pool.get(token(i)), { method: 'GET', url: '/x' }))
          .subscribe();
      const idle = pool.get(token(100));
      let completedAt: number | undefined;
      idle.state$.subscribe({ complete: () => (completedAt = asyncScheduler.now()) });
      asyncScheduler.schedule(() => {
        expect(pool.size).toBe(101);
        expect(() => pool.get(token(101))).not.toThrow();
        expect(pool.has(token(100))).toBe(false);
        expect(completedAt).toBe(1_000);
        for (let i = 0; i < 100; i++) expect(pool.has(token(i))).toBe(true);
        expect(pool.size).toBe(101);
      }, 1_000);
      // The pool's state$ shows the eviction (batched: within stateIntervalMs).
      asyncScheduler.schedule(() => {
        expect(seen.at(-1)).toMatchObject({ size: 101, max: 101, created: 102, evicted: 1 });
        void pool.close();
      }, 6_000);
    });
  });

  it('at max, refuses while every limiter holds something, naming the max, and admits once one holds nothing', () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({ provider: fixed(), scheduler: asyncScheduler, max: 100 });
      // Each holds a request in flight, the first answered at 2 s, the others at 5 s.
      for (let i = 0; i < 100; i++)
        call(200, { 'x-ratelimit-remaining': '4' }, i === 0 ? 2_000 : 5_000)
          .pipe(rateLimit(pool.get(token(i)), { method: 'GET', url: '/x' }))
          .subscribe();
      asyncScheduler.schedule(() => {
        for (const k of [100, 101]) {
          let error: unknown;
          try {
            pool.get(token(k));
          } catch (e) {
            error = e;
          }
          expect(isLimiterPoolFullError(error)).toBe(true);
          expect(error).toMatchObject({ name: 'LimiterPoolFullError', max: 100 });
          expect(String((error as Error).message)).toMatch(/maximum of 100 limiters/);
        }
        expect(pool.size).toBe(100);
      }, 1_000);
      // Tenant 0 answered at 2 s holds nothing since: the next new tenant takes its place.
      asyncScheduler.schedule(() => {
        expect(() =>
          call(200, { 'x-ratelimit-remaining': '4' }, 5_000)
            .pipe(rateLimit(pool.get(token(100)), { method: 'GET', url: '/x' }))
            .subscribe(),
        ).not.toThrow();
        expect(pool.has(token(0))).toBe(false);
        expect(() => pool.get(token(101))).toThrow(/maximum of 100/);
      }, 3_000);
      asyncScheduler.schedule(() => void pool.close(), 9_000);
    });
  });

  it('at max, with the memory store, keeps a paused limiter until its pause ends, then makes room with it', () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({ provider: fixed(), scheduler: asyncScheduler, max: 2, idleMs: 600_000 });
      // Tenant 1: a 429 with Retry-After 30 s (paused till 30.01 s); tenant 2: a request in flight for 60 s.
      call(429, { 'retry-after': '30' })
        .pipe(rateLimit(pool.get(token(1)), { method: 'GET', url: '/x' }, { maxRetries: 0 }))
        .subscribe({ error: () => undefined });
      call(200, { 'x-ratelimit-remaining': '4' }, 60_000)
        .pipe(rateLimit(pool.get(token(2)), { method: 'GET', url: '/x' }))
        .subscribe();
      asyncScheduler.schedule(() => {
        expect(() => pool.get(token(3))).toThrow(/maximum of 2/);
        expect(pool.has(token(1))).toBe(true);
      }, 1_000);
      // Still paused at 30 s: kept, not forgotten.
      asyncScheduler.schedule(() => {
        expect(() => pool.get(token(3))).toThrow(/maximum of 2/);
        expect(pool.get(token(1)).snapshot.pausedUntil).toBe(30_010);
      }, 30_000);
      // The pause over (nothing else happened to the limiter), it makes room.
      asyncScheduler.schedule(() => {
        expect(() => pool.get(token(3))).not.toThrow();
        expect(pool.has(token(1))).toBe(false);
        expect(pool.has(token(2))).toBe(true);
      }, 30_100);
      asyncScheduler.schedule(() => void pool.close(), 61_000);
    });
  });

  it('at max, refuses a new tenant exactly when no limiter holds nothing (random traffic)', () => {
    inVirtualTime(({ now }) => {
      const pool = createLimiterPool({ provider: fixed(3), scheduler: asyncScheduler, max: 12, idleMs: 600_000 });
      let seed = 12345;
      const rand = () => (seed = (seed * 48_271) % 2_147_483_647) / 2_147_483_647;
      const limiters = new Map<number, Limiter>();
      const holdsNothing = (l: Limiter) => {
        const s = l.snapshot;
        const t = now();
        return (
          s.queued === 0 &&
          s.inFlight === 0 &&
          s.blocked === null &&
          (s.pausedUntil === null || s.pausedUntil <= t) &&
          s.buckets.every((b) => b.inFlight === 0 && !(b.remaining === 0 && b.resetAt !== null && b.resetAt > t))
        );
      };
      let refused = 0;
      let admitted = 0;
      for (let step = 0; step < 400; step++) {
        asyncScheduler.schedule(() => {
          const k = Math.floor(rand() * 40);
          const full = !pool.has(token(k)) && pool.size === 12;
          let limiter: Limiter;
          try {
            limiter = pool.get(token(k));
          } catch (e) {
            expect(isLimiterPoolFullError(e)).toBe(true);
            expect(full).toBe(true);
            // Looked at after the refusal (a snapshot pushes the state to the pool's watch):
            // every live limiter holds something.
            const free = [...limiters].filter(([i, l]) => pool.has(token(i)) && holdsNothing(l));
            expect(free).toHaveLength(0);
            refused++;
            return;
          }
          if (full) admitted++;
          limiters.set(k, limiter);
          const roll = rand();
          if (roll < 0.15) {
            call(429, { 'retry-after': String(1 + Math.floor(rand() * 20)) }, 50)
              .pipe(rateLimit(limiter, { method: 'GET', url: '/x' }, { maxRetries: 0 }))
              .subscribe({ error: () => undefined });
          } else if (roll < 0.75) {
            const remaining = String(Math.floor(rand() * 3));
            call(200, { 'x-ratelimit-remaining': remaining, 'x-ratelimit-reset': '10' }, Math.floor(rand() * 30_000))
              .pipe(rateLimit(limiter, { method: 'GET', url: '/x' }))
              .subscribe({ error: () => undefined });
          }
        }, step * 500);
      }
      asyncScheduler.schedule(
        () => {
          // Both happened at the cap: refusals, and new tenants that made room.
          expect(refused).toBeGreaterThan(10);
          expect(admitted).toBeGreaterThan(10);
          void pool.close();
        },
        400 * 500 + 60_000,
      );
    });
  });

  it('state$ lists every live limiter by label, batched, and never a key', () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({
        provider: fixed(),
        scheduler: asyncScheduler,
        idleMs: 10_000,
        stateIntervalMs: 100,
      });
      const seen: Array<{ at: number; s: LimiterPoolSnapshot }> = [];
      pool.state$.subscribe((s) => seen.push({ at: asyncScheduler.now(), s }));
      for (let i = 0; i < 3; i++)
        call(429, { 'retry-after': '5' })
          .pipe(rateLimit(pool.get(token(i)), { method: 'GET', url: '/x' }, { maxRetries: 0 }))
          .subscribe({ error: () => undefined });
      asyncScheduler.schedule(() => {
        const last = seen.at(-1)?.s;
        expect(last?.size).toBe(3);
        const paused = last?.limiters.filter((l: LimiterSnapshot) => l.pausedUntil !== null) ?? [];
        expect(paused).toHaveLength(3);
        for (const l of last?.limiters ?? []) expect(l.key).toMatch(/^key_[0-9a-f]{16}$/);
        expect(JSON.stringify(seen)).not.toContain('tenant-token');
        // Creation and three responses within 100 ms: a handful of emissions, not one per change.
        expect(seen.length).toBeLessThanOrEqual(3);
      }, 1_000);
      asyncScheduler.schedule(() => {
        // Evicted at 15 s (pauses over at 5 s, idle since 0 s, looked at again at 10 s).
        expect(seen.at(-1)?.s).toMatchObject({ size: 0, created: 3, evicted: 3 });
        void pool.close();
      }, 30_000);
    });
  });

  it('shows labels, never a key or a secret, when logged or serialized', () => {
    const pool = createLimiterPool({ provider: fixed(), labelSecret: 'label-secret-0123456789' });
    pool.get(token(1));
    for (const text of [inspect(pool, { depth: 10 }), JSON.stringify(pool), String(pool.get(token(1)).key)]) {
      expect(text).not.toContain('tenant-token');
      expect(text).not.toContain('label-secret');
    }
    expect(JSON.stringify(pool)).toMatch(/"key":"key_[0-9a-f]{16}"/);
    void pool.close();
  });

  it('stops listening to its limiters once nobody subscribes to state$', () => {
    inVirtualTime(() => {
      const pool = createLimiterPool({ provider: fixed(), scheduler: asyncScheduler });
      const limiter = pool.get(token(1));
      const observed = () => (limiter as unknown as { engine: { out: { watched: boolean } } }).engine.out.watched;
      const sub = pool.state$.subscribe();
      const sub2 = pool.state$.subscribe();
      // The limiter's own `state$` has a listener (the pool) while anyone watches the pool.
      expect(observed()).toBe(true);
      sub.unsubscribe();
      expect(observed()).toBe(true);
      sub2.unsubscribe();
      expect(observed()).toBe(false);
      void pool.close();
    });
  });

  it('refuses a key or a label of its own (each tenant has its own), never showing it', () => {
    for (const name of ['key', 'label'])
      expect(() => createLimiterPool({ provider: fixed(), [name]: 'tok-SECRET-1234' } as never)).toThrow(
        new RegExp(`option \`${name}\` is not a pool's`),
      );
    let error: unknown;
    try {
      createLimiterPool({ provider: fixed(), key: 'tok-SECRET-1234' } as never);
    } catch (e) {
      error = e;
    }
    expect(String(error)).not.toContain('SECRET');
  });

  it('an idleMs or stateIntervalMs past what a timer holds (24.8 days) sets its timers once, not every millisecond', async () => {
    const calls = { n: 0 };
    const real = globalThis.setTimeout;
    const spy = ((...args: Parameters<typeof setTimeout>) => {
      calls.n++;
      return real(...args);
    }) as typeof setTimeout;
    globalThis.setTimeout = spy;
    try {
      const pool = createLimiterPool({ provider: fixed(), idleMs: 30 * 86_400_000, stateIntervalMs: 1e10 });
      const sub = pool.state$.subscribe(() => undefined);
      pool.get('tenant-a');
      pool.get('tenant-b').pause(10);
      await new Promise((resolve) => real(resolve, 200));
      sub.unsubscribe();
      await pool.close();
    } finally {
      globalThis.setTimeout = real;
    }
    expect(calls.n).toBeLessThan(20);
  });

  it('a pause in force is not evicted when the wall clock stepped between the pool’s clock and the limiter’s', async () => {
    const pool = createLimiterPool({ provider: fixed(), max: 1 });
    pool.get('warm-up'); // the pool's clock is anchored to the wall clock now
    const real = Date.now.bind(Date);
    const stepped = jest.spyOn(Date, 'now').mockImplementation(() => real() - 3_600_000); // NTP steps it back 1 h
    try {
      const a = pool.get('tenant-a'); // evicts warm-up (idle); A's clock is anchored to the stepped wall
      a.pause(600_000);
      // A holds a pause of 10 minutes: the pool, full, cannot make room for B.
      expect(() => pool.get('tenant-b')).toThrow(/holds its maximum/);
      expect(pool.get('tenant-a')).toBe(a);
    } finally {
      stepped.mockRestore();
      await pool.close();
    }
  });

  it('checks its options when created, naming the bad one', () => {
    expect(() => createLimiterPool({ provider: fixed(), idleMs: -1 })).toThrow(/idleMs/);
    expect(() => createLimiterPool({ provider: fixed(), max: 0 })).toThrow(/max/);
    expect(() => createLimiterPool({ provider: fixed(), maxWaitMs: -5 })).toThrow(/^createLimiterPool: .*maxWaitMs/);
    const pool = createLimiterPool({ provider: fixed() });
    expect(() => pool.get('')).toThrow(TypeError);
    // A key from a hostile tenant header: refused before it is hashed or kept.
    expect(() => pool.get('k'.repeat(8193))).toThrow(/1 to 8192 characters/);
    expect(pool.get('k'.repeat(8192))).toBeDefined();
    expect(pool.snapshot().limiters).toHaveLength(1);
    void pool.close();
    expect(() => pool.get('x')).toThrow(/closed/);
  });
});
