/**
 * `maxWaitMs` bounds how long a request is held, from when it was queued: it is admitted by
 * then, or fails with `QuotaExhaustedError` by then (at once when its wait is known to end
 * later), wherever it is in the queue. Memory store, RxJS virtual time.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { asyncScheduler } from 'rxjs';
import {
  createLimiter,
  defineProvider,
  isQuotaExhaustedError,
  type Limiter,
  type QuotaExhaustedError,
} from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

/** A fixed window of `limit` per `windowMs`, known from the hints alone (no header is read). */
function windowed(limit: number, windowMs: number) {
  return defineProvider({
    name: `w-${limit}-${windowMs}`,
    buckets: [{ name: 'default', limit, windowMs }],
    read: () => ({ outcome: 'ok', buckets: [] }),
  });
}

interface Outcome {
  readonly id: number;
  readonly queuedAt: number;
  readonly priority: number;
  at?: number;
  admitted?: boolean;
  error?: unknown;
}

/**
 * Asks for `id` at `queuedAt` (virtual ms from the start); its permit goes back `holdMs` after
 * it is granted (`Infinity`: never).
 */
function ask(limiter: Limiter, out: Outcome[], queuedAt: number, priority = 0, holdMs = 10): void {
  asyncScheduler.schedule(() => {
    const o: Outcome = { id: out.length, queuedAt: asyncScheduler.now(), priority };
    out.push(o);
    limiter.acquire(
      { url: `/r/${o.id}`, priority },
      {
        granted: (permit) => {
          o.at = asyncScheduler.now();
          o.admitted = true;
          if (holdMs < Infinity) asyncScheduler.schedule(() => permit.release(), holdMs);
        },
        rejected: (error) => {
          o.at = asyncScheduler.now();
          o.admitted = false;
          o.error = error;
        },
      },
    );
  }, queuedAt);
}

/** Every request ended, and none later than `maxWaitMs` after it was queued. */
function expectBounded(out: readonly Outcome[], maxWaitMs: number, requests: number): void {
  expect(out).toHaveLength(requests);
  for (const o of out) {
    expect({ id: o.id, ended: o.at !== undefined }).toEqual({ id: o.id, ended: true });
    expect({ id: o.id, waited: (o.at as number) - o.queuedAt <= maxWaitMs }).toEqual({ id: o.id, waited: true });
    if (!o.admitted) {
      expect(isQuotaExhaustedError(o.error)).toBe(true);
      // It fails when it cannot go by its deadline: resuming no earlier than that.
      expect((o.error as QuotaExhaustedError).resumeAt).toBeGreaterThan(o.queuedAt + maxWaitMs);
    }
  }
}

describe('maxWaitMs bounds the wait from when a request was queued', () => {
  it('2 per 2 s, maxWaitMs 3 s, 10 requests at once: 4 go, 6 fail when the next window is past their deadline', () => {
    const out: Outcome[] = [];
    inVirtualTime(() => {
      const limiter = createLimiter({
        provider: windowed(2, 2000),
        key: 'k',
        maxWaitMs: 3000,
        coldStartConcurrency: 2,
      });
      for (let i = 0; i < 10; i++) ask(limiter, out, 0);
    });
    expectBounded(out, 3000, 10);
    const admitted = out.filter((o) => o.admitted);
    expect(admitted.map((o) => o.id)).toEqual([0, 1, 2, 3]);
    expect(admitted.slice(2).every((o) => (o.at as number) >= 2000)).toBe(true);
    // Before: the 5th and 6th waited for the window at 4 s (a wait of 4 s), judged at 2 s
    // against `now + maxWaitMs`. Now they fail by 3 s: that window is past their deadline.
    // (At 2 s the 3rd and 4th are in flight with no answer yet: the bucket's next time is not
    // trusted until they end, so the rest fail at their deadline, not at once.)
    const failed = out.filter((o) => !o.admitted);
    expect(failed.map((o) => o.id)).toEqual([4, 5, 6, 7, 8, 9]);
    for (const o of failed) {
      expect(o.at).toBeLessThanOrEqual(3000);
      expect((o.error as QuotaExhaustedError).resumeAt).toBeGreaterThanOrEqual(4000);
      expect((o.error as QuotaExhaustedError).message).toMatch(/a wait of 4\d{3} ms, more than maxWaitMs 3000 ms/);
    }
  });

  it('a head whose known time is past its deadline fails at once, not at its deadline', () => {
    const out: Outcome[] = [];
    inVirtualTime(() => {
      const limiter = createLimiter({
        provider: windowed(2, 2000),
        key: 'k',
        maxWaitMs: 3000,
        coldStartConcurrency: 2,
      });
      // Permits come back at once: at 2 s the window's end at 4 s is known.
      for (let i = 0; i < 6; i++) ask(limiter, out, 0, 0, 0);
    });
    expectBounded(out, 3000, 6);
    expect(out.map((o) => o.admitted)).toEqual([true, true, true, true, false, false]);
    const admittedAt = out[3]?.at as number;
    expect(out[4]?.at).toBe(admittedAt);
    expect(out[5]?.at).toBe(admittedAt);
  });

  it('a request behind the head fails at its own deadline, not the head’s (priorities, maxConcurrent)', () => {
    const out: Outcome[] = [];
    inVirtualTime(() => {
      const limiter = createLimiter({ provider: windowed(100, 1000), key: 'k', maxWaitMs: 1000, maxConcurrent: 1 });
      ask(limiter, out, 0, 0, Infinity); // holds the one slot for ever
      ask(limiter, out, 0, 0); // waits, deadline 1000
      ask(limiter, out, 500, 5); // goes before it (higher priority), deadline 1500
    });
    expect(out.map((o) => [o.id, o.admitted, o.at])).toEqual([
      [0, true, 0],
      [1, false, 1000],
      [2, false, 1500],
    ]);
  });

  it('a request that waited for a slot fails saying nobody can tell when, not "never"', () => {
    const out: Outcome[] = [];
    inVirtualTime(() => {
      const limiter = createLimiter({ provider: windowed(100, 1000), key: 'k', maxWaitMs: 1000, maxConcurrent: 1 });
      ask(limiter, out, 0, 0, Infinity); // holds the one slot for ever
      ask(limiter, out, 0, 0);
    });
    const error = out[1]?.error as QuotaExhaustedError;
    expect(isQuotaExhaustedError(error)).toBe(true);
    expect(error.resumeAt).toBe(Infinity);
    expect(error.message).toContain('no budget for a time nobody can tell');
    expect(error.message).not.toContain('never');
  });

  it('an older request of lower priority behind a parked head fails at its deadline (a bucket)', () => {
    const out: Outcome[] = [];
    inVirtualTime(() => {
      // 1 per 10 s: the head waits for a response that never comes (coldStartConcurrency 1).
      const limiter = createLimiter({ provider: windowed(1, 10_000), key: 'k', maxWaitMs: 2000 });
      ask(limiter, out, 0, 0, Infinity);
      ask(limiter, out, 0, 0);
      ask(limiter, out, 1000, 5);
    });
    expect(out[0]?.admitted).toBe(true);
    expectBounded(out.slice(1), 2000, 2);
    expect(out[1]?.at).toBe(2000);
    expect(out[2]?.at).toBeLessThanOrEqual(3000);
  });

  it('a pause that ends past a request’s deadline fails it now; a later request waits it out', () => {
    const out: Outcome[] = [];
    inVirtualTime(() => {
      const limiter = createLimiter({ provider: windowed(100, 1000), key: 'k', maxWaitMs: 3000 });
      limiter.pause(1500);
      ask(limiter, out, 0); // deadline 3000
      asyncScheduler.schedule(() => limiter.pause(2500), 1000); // until 3500
      ask(limiter, out, 1000); // deadline 4000
    });
    expect(out.map((o) => [o.id, o.admitted, o.at])).toEqual([
      [0, false, 1000],
      [1, true, 3500],
    ]);
    expect((out[0]?.error as QuotaExhaustedError).resumeAt).toBe(3500);
  });

  it('property: any limit, window, arrivals, priorities, pauses and maxWaitMs: each request admitted or failed by its deadline', () => {
    const arrival = fc.record({
      at: fc.integer({ min: 0, max: 6000 }),
      priority: fc.integer({ min: 0, max: 2 }),
      holdMs: fc.oneof(fc.integer({ min: 0, max: 800 }), fc.constant(Infinity)),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 50, max: 3000 }),
        fc.integer({ min: 0, max: 5000 }),
        fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
        fc.array(arrival, { minLength: 1, maxLength: 30 }),
        fc.array(fc.record({ at: fc.integer({ min: 0, max: 6000 }), ms: fc.integer({ min: 1, max: 6000 }) }), {
          maxLength: 3,
        }),
        (limit, windowMs, maxWaitMs, maxConcurrent, arrivals, pauses) => {
          const out: Outcome[] = [];
          inVirtualTime(() => {
            const limiter = createLimiter({
              provider: windowed(limit, windowMs),
              key: 'k',
              maxWaitMs,
              coldStartConcurrency: limit,
              ...(maxConcurrent === undefined ? {} : { maxConcurrent }),
            });
            for (const a of arrivals) ask(limiter, out, a.at, a.priority, a.holdMs);
            for (const p of pauses) asyncScheduler.schedule(() => limiter.pause(p.ms), p.at);
          });
          expectBounded(out, maxWaitMs, arrivals.length);
        },
      ),
      { numRuns: Number(process.env['PROP_RUNS'] ?? 150), seed: 11 },
    );
  });
});
