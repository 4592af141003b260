/**
 * Request cost under arbitrary traffic, in virtual time. Requests of arbitrary costs (1 to the
 * limit) arrive at arbitrary times against a server that counts each request's cost in fixed
 * windows and answers with what is left, or against a sliding window known only from its hint;
 * latency is jittered. The limiter never lets the server count more than the limit in a window
 * (no 429), and never more than the limit by cost in any sliding window; every request goes.
 * A costly request that arrives while cheap ones keep coming is admitted within a bounded time.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { asyncScheduler } from 'rxjs';
import { createLimiter, defineProvider, responseLike, rollingWindows, type RateLimitError } from '../../lib/index.js';
import { runMsWindows } from '../helpers/msWindows.js';
import { inVirtualTime } from '../helpers/virtual.js';

const GUARD = 50;
let runs = 0;

interface Arrival {
  readonly at: number;
  readonly cost: number;
}

const arrivals = (limit: number, span: number) =>
  fc.array(
    fc.record({
      at: fc.integer({ min: 0, max: span }),
      cost: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: limit })),
    }),
    { minLength: 1, maxLength: 60 },
  );

/**
 * A server with fixed windows opened by the first request after the last one ended
 * (spec/helpers/msWindows.ts). It counts a request when it is sent; only the answer takes time
 * (jittered). A request sent just before a told reset that reaches the server after it is
 * counted in the next window while its answer reads as the old one's: that edge is the window
 * accounting's, with one unit as with many, and is left out here so that the property is about
 * cost.
 */
function runFixed(o: { limit: number; windowMs: number; latency: number[]; requests: Arrival[] }) {
  return runMsWindows({
    limit: o.limit,
    windowMs: o.windowMs,
    requests: o.requests,
    toServer: () => 0,
    toClient: (n) => o.latency[n % o.latency.length] ?? 0,
    resetGuardMs: GUARD,
  });
}

/**
 * A window the limiter knows only from its hint, sliding or (`fixed`) opened by the first send;
 * every send is recorded with its cost.
 */
function runSliding(o: { limit: number; windowMs: number; holdMs: number; requests: Arrival[]; fixed?: boolean }) {
  return inVirtualTime(({ now }) => {
    const provider = defineProvider({
      name: o.fixed ? 'cost-fixed-hint' : 'cost-sliding',
      buckets: [{ name: 'units', limit: o.limit, windowMs: o.windowMs, rolling: !o.fixed }],
      bucketKinds: [rollingWindows],
      read: () => ({ outcome: 'ok', buckets: [] }),
    });
    const limiter = createLimiter({
      provider,
      key: `cost-prop-${++runs}`,
      maxWaitMs: 1e9,
      resetGuardMs: GUARD,
      coldStartConcurrency: o.limit,
    });
    const sends: Array<{ at: number; cost: number }> = [];
    const errors: RateLimitError[] = [];
    for (const r of o.requests)
      asyncScheduler.schedule(() => {
        limiter.acquire(
          { url: '/x', cost: r.cost },
          {
            granted: (permit) => {
              sends.push({ at: now(), cost: r.cost });
              asyncScheduler.schedule(() => {
                permit.observe(responseLike(200, {}));
                permit.release();
              }, o.holdMs);
            },
            rejected: (e) => errors.push(e),
          },
        );
      }, r.at);
    return { sends, errors };
  });
}

/** The most units sent in any window of `windowMs` (each send opens one). */
function busiestWindow(sends: ReadonlyArray<{ at: number; cost: number }>, windowMs: number): number {
  let most = 0;
  for (const s of sends) {
    const units = sends.filter((x) => x.at >= s.at && x.at < s.at + windowMs).reduce((n, x) => n + x.cost, 0);
    most = Math.max(most, units);
  }
  return most;
}

describe('request cost under arbitrary traffic (virtual time)', () => {
  it('fixed windows counted by the server: never more than the limit by cost in a window, every request goes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 30 }).chain((limit) =>
          fc.record({
            limit: fc.constant(limit),
            windowMs: fc.constantFrom(500, 1000, 2000),
            latency: fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 8 }),
            requests: arrivals(limit, 5000),
          }),
        ),
        (o) => {
          const out = runFixed(o);
          expect(out.errors).toEqual([]);
          expect(out.server.over).toBe(0);
          expect(Math.max(0, ...out.server.counted)).toBeLessThanOrEqual(o.limit);
          expect(out.done).toBe(o.requests.length);
        },
      ),
      {
        numRuns: Number(process.env.PROP_RUNS ?? 150),
        examples: [
          // Two requests answered after a 429-free first window, then two costly ones arriving together.
          [
            {
              limit: 11,
              windowMs: 1000,
              latency: [3],
              requests: [
                { at: 3106, cost: 4 },
                { at: 3106, cost: 8 },
                { at: 1, cost: 11 },
                { at: 0, cost: 1 },
                { at: 1, cost: 1 },
              ],
            },
          ],
        ],
      },
    );
  });

  it('a sliding window: never more than the limit by cost in any window, every request goes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 30 }).chain((limit) =>
          fc.record({
            limit: fc.constant(limit),
            windowMs: fc.constantFrom(500, 1000),
            holdMs: fc.integer({ min: 0, max: 100 }),
            requests: arrivals(limit, 3000),
          }),
        ),
        (o) => {
          const out = runSliding(o);
          expect(out.errors).toEqual([]);
          expect(out.sends).toHaveLength(o.requests.length);
          expect(busiestWindow(out.sends, o.windowMs)).toBeLessThanOrEqual(o.limit);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a costly request among cheap ones that keep coming is admitted within two windows', () => {
    fc.assert(
      fc.property(
        fc.record({
          limit: fc.integer({ min: 4, max: 30 }),
          windowMs: fc.constantFrom(500, 1000),
          holdMs: fc.integer({ min: 0, max: 50 }),
          // Cheap ones at up to the limit's rate: the window never empties while they come.
          rate: fc.double({ min: 0.3, max: 1, noNaN: true }),
          costShare: fc.double({ min: 0.3, max: 1, noNaN: true }),
          costlyAt: fc.integer({ min: 0, max: 3000 }),
          sliding: fc.boolean(),
        }),
        (o) => {
          const gap = Math.ceil(o.windowMs / (o.limit * o.rate));
          const cost = Math.max(2, Math.round(o.limit * o.costShare));
          const cheap: Arrival[] = [];
          for (let t = 0; t < 8000; t += gap) cheap.push({ at: t, cost: 1 });
          const requests = [...cheap, { at: o.costlyAt, cost }];
          const out = o.sliding
            ? runSliding({ limit: o.limit, windowMs: o.windowMs, holdMs: o.holdMs, requests })
            : runSliding({ limit: o.limit, windowMs: o.windowMs, holdMs: o.holdMs, requests, fixed: true });
          expect(out.errors).toEqual([]);
          const costly = out.sends.find((s) => s.cost === cost && s.cost > 1);
          expect(costly).toBeDefined();
          // Two windows, each plus the guard and a hold, and one gap for the cheap one ahead.
          const bound = 2 * (o.windowMs + GUARD + o.holdMs) + gap;
          expect((costly?.at ?? Infinity) - o.costlyAt).toBeLessThanOrEqual(bound);
        },
      ),
      { numRuns: 150 },
    );
  });
});
