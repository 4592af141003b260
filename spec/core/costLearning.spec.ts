/**
 * Costs learnt from the drop in `remaining` (`learnCost`), in virtual time against a simulated
 * fixed-window API that charges each route a hidden number of units and tells only what is left
 * (and the reset, as unix seconds): after the first window the limiter sends no request the
 * window cannot hold (no 429), every request is answered (no starvation), and a drop it cannot
 * attribute to one request alone (requests beside it, another client's spending) never lowers
 * what it takes a route to cost.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { asyncScheduler } from 'rxjs';
import {
  createLimiter,
  defineProvider,
  learnCosts,
  providers,
  responseLike,
  type Limiter,
  type Permit,
} from '../../lib/index.js';

const quiet = { outcome: 'ok' as const, buckets: [] };
import { createBucket } from '../../lib/core/buckets.js';
import { CostLearner } from '../../lib/core/costLearning.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { prng as mulberry32 } from '../reliability/arbitraries.js';

/** The server's clock at virtual 0: a whole second, so its windows end on whole seconds. */
const START = Date.UTC(2026, 10, 23, 12, 0, 0);

interface Api {
  readonly limit: number;
  readonly windowMs: number;
  /** Hidden cost per route (`/r0`, `/r1`…). */
  readonly costs: readonly number[];
  /** Units another client of the token spends at these times (virtual ms), if any. */
  readonly others?: ReadonlyArray<{ readonly at: number; readonly units: number }>;
}

interface Run extends Api {
  readonly streams: number;
  readonly perStream: number;
  readonly maxLatencyMs: number;
  readonly seed: number;
}

interface Outcome {
  /** Per request answered: its route, when it reached the server, and its status. */
  readonly answers: Array<{ route: number; arrivedAt: number; status: number }>;
  readonly rejected: number;
  readonly makespan: number;
  /** Units the server charged per window. */
  readonly charged: Map<number, number>;
}

/**
 * The API: windows aligned to the clock; a request is charged its route's cost when it arrives,
 * or refused (429, nothing charged) when that does not fit what is left.
 */
function server(api: Api, now: () => number) {
  let window = -1;
  let used = 0;
  const charged = new Map<number, number>();
  const roll = () => {
    const w = Math.floor(now() / api.windowMs);
    if (w !== window) {
      window = w;
      used = 0;
    }
    return w;
  };
  for (const o of api.others ?? [])
    asyncScheduler.schedule(() => {
      const w = roll();
      used = Math.min(api.limit, used + o.units);
      charged.set(w, (charged.get(w) ?? 0) + o.units);
    }, o.at);
  return {
    charged,
    arrive(route: number) {
      const w = roll();
      const cost = api.costs[route] ?? 1;
      const ok = used + cost <= api.limit;
      if (ok) {
        used += cost;
        charged.set(w, (charged.get(w) ?? 0) + cost);
      }
      const end = (w + 1) * api.windowMs;
      // The reset as unix seconds, with the server's `Date` (its clock is ours here).
      const headers = {
        date: new Date(START + now()).toUTCString(),
        'x-ratelimit-limit': String(api.limit),
        'x-ratelimit-remaining': String(api.limit - used),
        'x-ratelimit-reset': String((START + end) / 1000),
      };
      return { status: ok ? 200 : 429, headers };
    },
  };
}

function limiterFor(api: Api, key: string): Limiter {
  return createLimiter({
    provider: providers.generic({ limit: api.limit, windowMs: api.windowMs, learnCost: true }),
    key,
    maxWaitMs: 3_600_000,
  });
}

let keys = 0;

/** `streams` callers, each sending `perStream` requests one after another, on routes drawn from the seed. */
function run(r: Run): Outcome {
  return inVirtualTime(({ now }) => {
    const random = mulberry32(r.seed);
    const api = server(r, now);
    const limiter = limiterFor(r, `learn-${++keys}`);
    const answers: Outcome['answers'] = [];
    let rejected = 0;
    let last = 0;
    const send = (stream: number, k: number): void => {
      if (k >= r.perStream) return;
      // Each route comes early in the run: the first request of stream s is route s.
      const route = k === 0 ? stream % r.costs.length : Math.floor(random() * r.costs.length);
      const there = 1 + Math.floor((random() * r.maxLatencyMs) / 2);
      const back = 1 + Math.floor((random() * r.maxLatencyMs) / 2);
      limiter.acquire(
        { method: 'GET', url: `/r${route}/items/${k}` },
        {
          granted: (permit: Permit) =>
            asyncScheduler.schedule(() => {
              const arrivedAt = now();
              const res = api.arrive(route);
              asyncScheduler.schedule(() => {
                permit.observe(responseLike(res.status, res.headers));
                permit.release();
                answers.push({ route, arrivedAt, status: res.status });
                last = now();
                // A refused request is sent again (as retryOn429 would, once the limiter lets it).
                send(stream, res.status === 429 ? k : k + 1);
              }, back);
            }, there),
          rejected: () => rejected++,
        },
      );
    };
    for (let s = 0; s < r.streams; s++) send(s, 0);
    return { answers, rejected, makespan: last, charged: api.charged };
  });
}

const runs = fc
  .record({
    limit: fc.integer({ min: 40, max: 200 }),
    windowMs: fc.integer({ min: 5, max: 12 }).map((s) => s * 1000),
    routes: fc.integer({ min: 1, max: 4 }),
    streams: fc.integer({ min: 1, max: 8 }),
    perStream: fc.integer({ min: 5, max: 25 }),
    maxLatencyMs: fc.integer({ min: 2, max: 300 }),
    seed: fc.integer(),
  })
  .chain((s) =>
    fc.record({
      limit: fc.constant(s.limit),
      windowMs: fc.constant(s.windowMs),
      costs: fc.array(fc.integer({ min: 1, max: Math.floor(s.limit / 4) }), {
        minLength: s.routes,
        maxLength: s.routes,
      }),
      streams: fc.constant(Math.max(s.streams, s.routes)),
      perStream: fc.constant(s.perStream),
      maxLatencyMs: fc.constant(s.maxLatencyMs),
      seed: fc.constant(s.seed),
    }),
  );

describe('costs learnt from the drop in remaining', () => {
  it('with hidden per-route costs: no 429 after the first window, every request answered, windows well used', () => {
    fc.assert(
      fc.property(runs, (r) => {
        const out = run(r);
        const total = r.streams * r.perStream;
        // No starvation: every request answered, none failed.
        expect(out.rejected).toBe(0);
        expect(out.answers.filter((a) => a.status === 200)).toHaveLength(total);
        // After the first window, nothing the window could not hold was sent.
        const late = out.answers.filter((a) => a.status === 429 && a.arrivedAt >= r.windowMs);
        expect(late).toEqual([]);
        // Never more than the limit charged in a window (the server refuses beyond it).
        for (const units of out.charged.values()) expect(units).toBeLessThanOrEqual(r.limit);
        // Learnt, not merely careful: the work takes at most two windows more than the units
        // it needs fill (one window's rounding, one for the first window's probes).
        const need = out.answers.reduce((sum, a) => sum + (a.status === 200 ? (r.costs[a.route] ?? 1) : 0), 0);
        expect(out.makespan).toBeLessThanOrEqual((Math.ceil(need / r.limit) + 2) * r.windowMs);
      }),
      { numRuns: 60 },
    );
  });

  it('learns a route from a request sent alone, then sends the route side by side at that cost', () => {
    const api: Api = { limit: 100, windowMs: 60_000, costs: [7, 3] };
    const out = inVirtualTime(({ now }) => {
      const s = server(api, now);
      const limiter = limiterFor(api, `learn-${++keys}`);
      const permits: Permit[] = [];
      const ask = (route: number) =>
        limiter.acquire({ url: `/r${route}` }, { granted: (p) => permits.push(p), rejected: () => undefined });
      const answer = (p: Permit | undefined, route: number) => {
        const res = s.arrive(route);
        p?.observe(responseLike(res.status, res.headers));
        p?.release();
      };
      const inFlight = () => limiter.snapshot.buckets[0]?.inFlight;
      const steps: Array<number | undefined> = [];
      // The first of route 0: no reading to count from yet; it goes alone and gives one.
      ask(0);
      steps.push(inFlight());
      answer(permits[0], 0);
      // The second goes alone again (its key not learnt yet): its drop, 7, is its cost.
      ask(0);
      steps.push(inFlight());
      answer(permits[1], 0);
      // Learnt: two go side by side at 7 units each.
      ask(0);
      ask(0);
      steps.push(inFlight());
      answer(permits[3], 0);
      answer(permits[2], 0);
      return { steps, remaining: limiter.snapshot.buckets[0]?.remaining };
    });
    // One unit each while unknown (no cost learnt for any route yet), then 7 each.
    expect(out.steps).toEqual([1, 1, 14]);
    expect(out.remaining).toBe(100 - 4 * 7);
  });

  it('another client spending between two readings makes the cost look higher, never lower', () => {
    // Another client spends 10 units while the second request of route 0 is in flight.
    const api: Api = { limit: 100, windowMs: 60_000, costs: [5], others: [{ at: 1050, units: 10 }] };
    const out = inVirtualTime(({ now }) => {
      const s = server(api, now);
      const limiter = limiterFor(api, `learn-${++keys}`);
      const permits: Permit[] = [];
      const ask = () => limiter.acquire({ url: '/r0' }, { granted: (p) => permits.push(p), rejected: () => undefined });
      const answerAt = (i: number, at: number) =>
        asyncScheduler.schedule(() => {
          const res = s.arrive(0);
          permits[i]?.observe(responseLike(res.status, res.headers));
          permits[i]?.release();
        }, at);
      asyncScheduler.schedule(ask, 0);
      answerAt(0, 500);
      asyncScheduler.schedule(ask, 1000);
      answerAt(1, 1100);
      // Learnt 15 (its 5 and the other client's 10): two more fit side by side only at 15 each.
      asyncScheduler.schedule(() => {
        ask();
        ask();
      }, 2000);
      let inFlight: number | undefined;
      asyncScheduler.schedule(() => (inFlight = limiter.snapshot.buckets[0]?.inFlight), 2001);
      return () => inFlight;
    });
    expect(out()).toBe(30);
  });
});

describe('which drops are attributed to one request (CostLearner)', () => {
  const reading = (remaining: number, limit = 100) => ({ name: 'b', limit, remaining });
  /** A bucket whose last reading (nothing else in flight) left `left` of a window ending at 60 s. */
  function primed(left = 90) {
    const learner = new CostLearner(() => 'k', 2);
    const b = createBucket({ name: 'b', limit: 100, windowMs: 60_000 });
    const first = b.take(0, 1);
    learner.read(b, first, 1, reading(left), 60_000);
    b.release(first, 10, 1);
    return { learner, b };
  }

  it('a request sent alone: its drop is its cost', () => {
    const { learner, b } = primed();
    const start = learner.starting(b);
    const i = b.take(20, 1);
    expect(learner.attribute(b, i, start, reading(83), 60_000)).toBe(7);
  });

  it('not from an answer of 0 left: a floor, the request may have cost more than was left', () => {
    const { learner, b } = primed(3);
    const start = learner.starting(b);
    const i = b.take(20, 1);
    expect(learner.attribute(b, i, start, reading(0), 60_000)).toBeUndefined();
  });

  it('not a drop larger than the limit: figures that disagree (a remaining above the limit told after)', () => {
    const learner = new CostLearner(() => 'k', 2);
    const b = createBucket({ name: 'b', windowMs: 60_000 });
    const first = b.take(0, 1);
    learner.read(b, first, 1, { remaining: 900_000, limit: undefined }, 60_000);
    b.release(first, 10, 1);
    const start = learner.starting(b);
    const i = b.take(20, 1);
    expect(learner.attribute(b, i, start, reading(1, 5000), 60_000)).toBeUndefined();
  });

  it('not with another request of ours in flight at its send, or admitted before its answer', () => {
    const beside = primed();
    const other = beside.b.take(15, 1);
    const start = beside.learner.starting(beside.b);
    expect(start).toBeUndefined();
    const i = beside.b.take(20, 1);
    expect(beside.learner.attribute(beside.b, i, start, reading(80), 60_000)).toBeUndefined();
    beside.b.release(other, 30, 1);

    const after = primed();
    const s = after.learner.starting(after.b);
    const j = after.b.take(20, 1);
    after.b.take(25, 1); // admitted while it was out: the server may have counted it first
    expect(after.learner.attribute(after.b, j, s, reading(80), 60_000)).toBeUndefined();
  });

  it('not after a request that ended without a figure, nor across windows, limits or a rise', () => {
    const silent = primed();
    const k = silent.b.take(12, 1);
    silent.b.release(k, 14, 1); // no reading: the server may have counted it after the last one
    expect(silent.learner.starting(silent.b)).toBeUndefined();

    const { learner, b } = primed();
    const start = learner.starting(b);
    const i = b.take(20, 1);
    // Another window (its reset a window later), another limit, or more left than before.
    expect(learner.attribute(b, i, start, reading(95), 120_000)).toBeUndefined();
    expect(learner.attribute(b, i, start, reading(80, 120), 60_000)).toBeUndefined();
    expect(learner.attribute(b, i, start, reading(92), 60_000)).toBeUndefined();
    expect(learner.attribute(b, i, start, reading(90), 60_000)).toBeUndefined();
  });

  it('a window’s lowest figure is where the next drop counts from (a late answer’s higher one is not)', () => {
    const learner = new CostLearner(() => 'k', 2);
    const b = createBucket({ name: 'b', limit: 100, windowMs: 60_000 });
    const x = b.take(0, 1);
    const y = b.take(0, 1);
    // Answered out of order: y's (counted last) first, then x's older, higher figure.
    learner.read(b, y, 1, reading(80), 60_000);
    b.release(y, 5, 1);
    learner.read(b, x, 1, reading(90), 60_000);
    b.release(x, 6, 1);
    const start = learner.starting(b);
    const i = b.take(10, 1);
    expect(learner.attribute(b, i, start, reading(75), 60_000)).toBe(5);
  });

  it('keeps the largest of the last drops per key, and at most maxKeys keys (least recently used go)', () => {
    const learner = new CostLearner(() => 'k', 2);
    learner.learn('a', 'b', 5);
    learner.learn('a', 'b', 3);
    expect(learner.estimate('a', 'b')).toBe(5);
    for (const c of [2, 2, 2, 2]) learner.learn('a', 'b', c);
    expect(learner.estimate('a', 'b')).toBe(2);
    learner.learn('c', 'b', 9);
    learner.estimate('a', 'b'); // used: 'c' is now the least recently used
    learner.learn('d', 'b', 4);
    expect([learner.estimate('a', 'b'), learner.estimate('c', 'b'), learner.estimate('d', 'b')]).toEqual([
      2,
      undefined,
      4,
    ]);
    // A key not learnt yet is taken to cost the dearest ever learnt on the bucket.
    expect(learner.guess('b')).toBe(9);
  });

  it('remembers a bounded number of bucket names: names a server makes up and drops are forgotten', () => {
    const learner = new CostLearner(() => 'k', 2);
    learner.learn('a', 'steady', 7);
    // A server naming a new bucket every window (each one discovered, then evicted when idle).
    for (let i = 0; i < 100_000; i++) {
      learner.learn('a', `policy-${i}`, 2);
      if (i % 50 === 0) learner.learn('a', 'steady', 7); // the bucket in use, learnt at every answer
    }
    const names = (m: unknown) => (m as Map<string, unknown>).size;
    const inside = learner as unknown as { dearest: Map<string, number>; costs: Map<string, Map<string, number[]>> };
    expect(names(inside.dearest)).toBeLessThanOrEqual(128);
    expect(names(inside.costs.get('a'))).toBeLessThanOrEqual(128);
    // The names in use stay learnt.
    expect(learner.guess('steady')).toBe(7);
    expect(learner.estimate('a', 'steady')).toBe(7);
    expect(learner.guess('policy-99999')).toBe(2);
  });
});

describe('the learnCost option', () => {
  it('a limit of 0 told does not make the next request fail with a TypeError (a cost of 0)', async () => {
    const limiter = createLimiter({ provider: providers.generic({ learnCost: true }), key: 'zero', maxWaitMs: 0 });
    const reset = String(Math.floor(Date.now() / 1000) + 30);
    const headers = { 'x-ratelimit-limit': '0', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset };
    const once = () =>
      new Promise<string>((resolve) => {
        try {
          limiter.acquire(
            { method: 'GET', url: '/a' },
            {
              granted: (p: Permit) => {
                p.observe(responseLike(200, headers));
                p.release();
                resolve('sent');
              },
              rejected: (e) => resolve(e.name),
            },
          );
        } catch (e) {
          resolve((e as Error).name);
        }
      });
    expect(await once()).toBe('sent');
    expect(await once()).not.toBe('TypeError');
    await limiter.close();
  });

  it('a cost learnt above the limit (the limit cut since) is taken as the whole bucket, not refused for good', async () => {
    const limiter = createLimiter({ provider: providers.generic({ learnCost: true }), key: 'cut', maxWaitMs: 2000 });
    const reset = String(Math.floor(Date.now() / 1000) + 30);
    const once = (url: string, headers: Record<string, string>) =>
      new Promise<string>((resolve) => {
        limiter.acquire(
          { method: 'GET', url },
          {
            granted: (p: Permit) => {
              p.observe(responseLike(200, headers));
              p.release();
              resolve('sent');
            },
            rejected: (e) => resolve(e.name),
          },
        );
      });
    // A route learnt at 50 of a 100 limit; then the limit is cut to 20.
    expect(
      await once('/items/1', {
        'x-ratelimit-limit': '100',
        'x-ratelimit-remaining': '100',
        'x-ratelimit-reset': reset,
      }),
    ).toBe('sent');
    expect(
      await once('/items/1', { 'x-ratelimit-limit': '100', 'x-ratelimit-remaining': '50', 'x-ratelimit-reset': reset }),
    ).toBe('sent');
    const later = String(Math.floor(Date.now() / 1000) + 60);
    expect(
      await once('/other', { 'x-ratelimit-limit': '20', 'x-ratelimit-remaining': '20', 'x-ratelimit-reset': later }),
    ).toBe('sent');
    // Refused unsent for good before (50 > 20, nothing sent, nothing learnt again); now it goes.
    expect(
      await once('/items/1', { 'x-ratelimit-limit': '20', 'x-ratelimit-remaining': '19', 'x-ratelimit-reset': later }),
    ).toBe('sent');
    await limiter.close();
  });

  it('is checked when the profile is made: a TypeError names it', () => {
    expect(() => providers.generic({ learnCost: { maxKeys: 0 } })).toThrow(/learnCost/);
    expect(() => providers.generic({ learnCost: { keys: 3 } as never })).toThrow(/learnCost/);
    expect(() => defineProvider({ name: 'x', buckets: [], read: () => quiet, learnCost: true as never })).toThrow(
      /learnCost/,
    );
    expect(() => learnCosts({ maxKeys: 1.5 })).toThrow(/maxKeys|learnCosts/);
  });

  it('a request’s costKey wins over the route; the route (ids as :id) is the default key', () => {
    const learner = learnCosts({ maxKeys: 10 })();
    expect(learner.keyOf({ method: 'post', url: 'https://api.example.com/items/42?x=1' })).toBe('POST /items/:id');
    expect(learner.keyOf({ url: '/items/42', costKey: 'search' })).toBe('search');
    expect(learnCosts({ key: () => undefined })().keyOf({ url: '/a' })).toBeUndefined();
    // A key function that throws learns nothing for the request.
    expect(
      learnCosts({
        key: () => {
          throw new Error('no');
        },
      })().keyOf({ url: '/a' }),
    ).toBeUndefined();
  });
});
