/**
 * The bucket math under arbitrary observations. Fixed and rolling buckets driven by
 * arbitrary sequences of time, admissions, readings (any numbers, resets in the past or in year
 * 9999) and releases; then the limiter fed arbitrary header maps through every provider, with
 * 429s and time passing. Nothing throws, no wait is NaN, negative or infinite, and nothing is
 * admitted past what the bucket allows.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { TestScheduler } from 'rxjs/testing';
import { PROBE_MS, type Bucket } from '../../lib/core/bucket.js';
import { createBucket } from '../../lib/core/buckets.js';
import { leakyBuckets } from '../../lib/core/leakyBucket.js';
import { rollingWindows } from '../../lib/core/rollingBucket.js';
import { RollingBucket } from '../../lib/core/rollingBucket.js';
import { createLimiter, responseLike, type Permit } from '../../lib/index.js';
import { headerMap, makeProvider, PROVIDERS } from '../reliability/arbitraries.js';

/** A provider bringing every bucket kind, for buckets made directly. */
const KINDS = { name: 'test', bucketKinds: [rollingWindows, leakyBuckets] };

const RUNS = 1000;
const GUARD = 50;
const START = Date.UTC(2026, 0, 1);
const YEAR_9999 = Date.UTC(9999, 11, 31, 23, 59, 59);
const totals = { fixed: 0, rolling: 0, limiter: 0, steps: 0, admitted: 0 };

type Op =
  | { op: 'advance'; ms: number }
  | { op: 'admit' }
  | { op: 'respond'; limit?: number; remaining?: number; reset?: number; windowMs?: number }
  | { op: 'release' }
  | { op: 'exhaust'; inMs: number };

const count = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 50 }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1, Number.MAX_SAFE_INTEGER) },
);
/** A reset relative to now: past, near, far, year 9999. */
const resetIn = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -2_000, max: 10_000 }) },
  { weight: 1, arbitrary: fc.constantFrom(-1e12, 0, 1, 999, 1000, 86_400_000, YEAR_9999 - START) },
);
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('advance' as const),
      ms: fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.constant(86_400_000)),
    }),
  },
  { weight: 5, arbitrary: fc.constant({ op: 'admit' as const }) },
  {
    weight: 3,
    arbitrary: fc.record(
      {
        op: fc.constant('respond' as const),
        limit: count,
        remaining: count,
        reset: resetIn,
        windowMs: fc.constantFrom(1, 1000, 2000, 60_000, 86_400_000),
      },
      { requiredKeys: ['op'] },
    ),
  },
  { weight: 2, arbitrary: fc.constant({ op: 'release' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('exhaust' as const), inMs: resetIn }) },
);
const spec = fc.record({
  limit: fc.option(count, { nil: undefined }),
  windowMs: fc.option(fc.constantFrom(1000, 2000, 60_000), { nil: undefined }),
  pacing: fc.constantFrom('burst' as const, 'smooth' as const),
  quota: fc.boolean(),
});

function finiteOrNull(n: number | undefined | null): void {
  if (n === undefined || n === null) return;
  expect(Number.isFinite(n)).toBe(true);
}

/** Runs `ops` on `b` and checks every step; `rolling` adds the sliding-window count. */
function drive(b: Bucket, ops: readonly Op[], coldStart: number, rolling: boolean): void {
  let now = START;
  const inFlight: number[] = [];
  const sends: number[] = [];
  /** Admissions since the bucket last set what is left; never more than it said. */
  let budget: number | undefined = b.remaining;
  let minWindow = b.windowMs ?? Infinity;
  for (const o of ops) {
    totals.steps++;
    const left = b.remaining;
    b.refill(now, GUARD);
    // A refill (the known reset passed) sets a new budget; otherwise it can only go down.
    if (!rolling)
      budget =
        b.remaining === undefined
          ? undefined
          : b.remaining > (left ?? -1)
            ? b.remaining
            : Math.min(budget ?? Infinity, b.remaining);
    const at = b.availableAt(now, GUARD, coldStart);
    if (at !== undefined) {
      expect(Number.isFinite(at)).toBe(true);
      expect(at).toBeGreaterThanOrEqual(now);
    }
    switch (o.op) {
      case 'advance':
        minWindow = Math.min(minWindow, b.windowMs ?? Infinity);
        now += o.ms;
        // Crossing a window refills: the budget is what the bucket now says.
        b.refill(now, GUARD);
        budget = b.remaining;
        break;
      case 'admit':
        if (at !== now) break;
        if (!rolling && budget !== undefined) {
          // Empty with no reset known and nothing in flight: one probe, the only way to learn.
          const probe = budget <= 0 && b.resetAt === undefined && b.inFlight === 0;
          expect({ budget, probe, ok: budget > 0 || probe }).toEqual({ budget, probe, ok: true });
          budget = Math.max(0, budget - 1);
        }
        if (rolling && b.limit !== undefined) {
          // Known limitation: a reading that lengthens the window cannot bring back sends the
          // log already let go of; count over the shortest window seen.
          minWindow = Math.min(minWindow, b.windowMs ?? Infinity);
          const inWindow = sends.filter((t) => t > now - minWindow - GUARD).length;
          // A limit of 0 frees no slot however long we wait: one probe at a time, none within a
          // second of the last, as an empty fixed window whose reset nobody told.
          if (b.limit === 0) {
            expect(inFlight.length).toBe(0);
            expect(sends.filter((t) => t > now - PROBE_MS)).toEqual([]);
          } else expect(inWindow).toBeLessThan(b.limit);
        }
        inFlight.push(b.take(now));
        sends.push(now);
        totals.admitted++;
        break;
      case 'respond': {
        const index = inFlight.shift();
        const reading = {
          name: b.name,
          ...(o.limit === undefined ? {} : { limit: o.limit }),
          ...(o.remaining === undefined ? {} : { remaining: o.remaining }),
          ...(o.windowMs === undefined ? {} : { windowMs: o.windowMs }),
        };
        const resetAt = o.reset === undefined ? undefined : now + o.reset;
        const before = b.remaining;
        b.apply(reading, index, resetAt, now);
        if (index !== undefined) b.release();
        // What is left never rises within a window, and never exceeds what the server said
        // once the reading was taken (a reading of an older window is ignored).
        if (
          !rolling &&
          o.remaining !== undefined &&
          b.remaining !== undefined &&
          resetAt !== undefined &&
          resetAt > now
        ) {
          expect(b.remaining <= o.remaining || b.remaining === before).toBe(true);
        }
        budget = b.remaining;
        break;
      }
      case 'release':
        if (inFlight.shift() !== undefined) b.release();
        break;
      case 'exhaust':
        b.exhaust(now + o.inMs);
        budget = b.remaining;
        break;
    }
    const s = b.snapshot();
    for (const n of [s.limit, s.remaining, s.inFlight]) {
      finiteOrNull(n);
      if (n !== null) expect(n).toBeGreaterThanOrEqual(0);
    }
    finiteOrNull(s.resetAt);
    finiteOrNull(s.windowMs);
  }
}

describe('bucket math under arbitrary observations', () => {
  it('fixed window: waits finite and >= now, never admits past what is left', () => {
    fc.assert(
      fc.property(spec, fc.array(op, { maxLength: 120 }), fc.integer({ min: 1, max: 3 }), (sp, ops, cold) => {
        totals.fixed++;
        drive(createBucket({ name: 'b', ...compact(sp) }), ops, cold, false);
      }),
      { numRuns: RUNS, seed: 7 },
    );
  });

  it('rolling window: never more than the limit in any window, waits finite and >= now', () => {
    fc.assert(
      fc.property(spec, fc.array(op, { maxLength: 120 }), fc.integer({ min: 1, max: 3 }), (sp, ops, cold) => {
        totals.rolling++;
        const windowMs = sp.windowMs ?? 60_000;
        const b = createBucket({ name: 'r', ...compact(sp), windowMs, rolling: true }, KINDS);
        expect(b).toBeInstanceOf(RollingBucket);
        drive(b, ops, cold, true);
      }),
      { numRuns: RUNS, seed: 7 },
    );
  });

  it('limiter: any headers through any provider, 429s and time: waits finite, >= 0, bounded', () => {
    const step = fc.record({
      dt: fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.constant(3_600_000)),
      method: fc.constantFrom('GET', 'POST'),
      status: fc.constantFrom(200, 200, 429, 403, 503),
      headers: headerMap,
    });
    fc.assert(
      fc.property(
        fc.constantFrom(...PROVIDERS),
        fc.array(step, { minLength: 1, maxLength: 40 }),
        fc.constantFrom(600_000, Infinity),
        (name, steps, maxWaitMs) => {
          totals.limiter++;
          const scheduler = new TestScheduler(() => undefined);
          scheduler.run(() => {
            const limiter = createLimiter({
              provider: makeProvider(name),
              key: 'k',
              scheduler,
              maxWaitMs,
              random: () => 0.5,
            });
            let t = 0;
            for (const st of steps) {
              t += st.dt;
              scheduler.schedule(() => {
                const info = { method: st.method, url: '/projects' };
                let permit: Permit | undefined;
                limiter.acquire(info, { granted: (p) => (permit = p), rejected: () => undefined });
                const headers = { date: new Date(START + scheduler.now()).toUTCString(), ...st.headers };
                if (permit) {
                  permit.observe(responseLike(st.status, headers));
                  permit.release();
                } else limiter.observe(responseLike(st.status, headers), info);
                const now = limiter.now();
                const resumeAt = limiter.resumeAt(info);
                expect(Number.isNaN(resumeAt)).toBe(false);
                expect(resumeAt).toBeGreaterThanOrEqual(now);
                expect(Number.isFinite(resumeAt)).toBe(true);
                // The longest a server can ask for, as the parsers read it, plus the backoff cap.
                expect(resumeAt - now).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER + 60_000 + 900_000);
                try {
                  const wait = limiter.retryDelay(info, {
                    attempts: 1,
                    maxRetries: 5,
                    status: 429,
                    cause: new Error('429'),
                  });
                  expect(Number.isFinite(wait) && wait >= 0 && wait <= maxWaitMs).toBe(true);
                } catch (e) {
                  expect((e as Error).name).toBe('QuotaExhaustedError');
                  expect(String((e as Error).message)).not.toMatch(/NaN/);
                }
                const snap = limiter.snapshot;
                for (const b of snap.buckets) {
                  for (const n of [b.limit, b.remaining, b.inFlight]) {
                    finiteOrNull(n);
                    if (n !== null) expect(n).toBeGreaterThanOrEqual(0);
                  }
                  finiteOrNull(b.resetAt);
                }
                finiteOrNull(snap.pausedUntil);
              }, t);
            }
          });
        },
      ),
      { numRuns: RUNS, seed: 7 },
    );
    console.log(`bucket.properties: ${JSON.stringify(totals)}`);
  });
});

function compact<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}
