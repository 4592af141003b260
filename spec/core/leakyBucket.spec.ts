/**
 * The leaky (token) bucket kind: a capacity and a restore rate, no window. Admission waits
 * exactly until enough units have come back for a request's cost; the server's readings
 * correct the estimate (a reading may lower it; only a newer one may raise it); a cost told
 * after the response gives units back; a throttled answer holds the bucket; a shared store that
 * does not hold leaky buckets is refused by name. Timing in virtual time.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { asyncScheduler } from 'rxjs';
import {
  createLimiter,
  defineProvider,
  parseUsedLimit,
  readRetryAfter,
  responseLike,
  type Limiter,
  type LimiterStore,
  type Permit,
  type RateLimitError,
  type RequestInfo,
  leakyBuckets,
} from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

/** A bucket of `capacity` units that restores `rate` a second, read from `x-call-limit: used/limit`. */
function leaky(capacity: number, rate: number, name = 'leaky') {
  return defineProvider({
    name,
    buckets: [{ name: 'bucket', limit: capacity, restorePerSecond: rate }],
    bucketKinds: [leakyBuckets],
    read: (res) => {
      const told = parseUsedLimit(res.header('x-call-limit'));
      const costHeader = res.header('x-actual-cost');
      const buckets = told
        ? [{ name: 'bucket', limit: told.limit, remaining: Math.max(0, told.limit - told.used) }]
        : [];
      const cost = costHeader === undefined ? {} : { cost: Number(costHeader) };
      if (res.status === 429) return { outcome: 'limited', buckets, limitedBy: 'bucket', ...readRetryAfter(res) };
      return { outcome: 'ok', buckets, ...cost };
    },
  });
}

let keys = 0;
const key = () => `leaky-${++keys}`;

/**
 * Acquires, recording when each request was granted or how it failed. `answered`: the requests
 * answered at once, with nothing to read (until then one may not have reached the server).
 */
function recorder(limiter: Limiter, now: () => number, answered: (tag: string) => boolean = () => false) {
  const granted: Array<{ tag: string; at: number; permit: Permit }> = [];
  const rejected: Array<{ tag: string; error: RateLimitError }> = [];
  const ask = (tag: string, info: RequestInfo = {}) =>
    limiter.acquire(info, {
      granted: (permit) => {
        granted.push({ tag, at: now(), permit });
        if (answered(tag)) answer(permit, {});
      },
      rejected: (error) => rejected.push({ tag, error }),
    });
  return { granted, rejected, ask };
}

const bucketOf = (limiter: Limiter) => limiter.snapshot.buckets.find((b) => b.name === 'bucket');
const answer = (permit: Permit | undefined, headers: Record<string, string>, status = 200) => {
  permit?.observe(responseLike(status, headers));
  permit?.release();
};

describe('leaky bucket', () => {
  it('a full bucket admits its capacity at once, then one request each time a unit comes back, exactly', () => {
    const out = inVirtualTime(({ now }) => {
      // 4 units, 2 a second: one unit every 500 ms.
      const limiter = createLimiter({ provider: leaky(4, 2), key: key(), coldStartConcurrency: 100, resetGuardMs: 0 });
      const r = recorder(limiter, now, () => true);
      for (let i = 0; i < 7; i++) r.ask(`r${i}`);
      asyncScheduler.schedule(() => undefined, 5000);
      return () => r.granted.map((g) => g.at);
    })();
    expect(out).toEqual([0, 0, 0, 0, 500, 1000, 1500]);
  });

  it('a request sent from a full bucket counts a trip’s restore as lost (the reset guard, at least)', () => {
    const out = inVirtualTime(({ now }) => {
      // 4 units, 2 a second; the default reset guard, 50 ms: 0.1 unit.
      const limiter = createLimiter({ provider: leaky(4, 2), key: key(), coldStartConcurrency: 100 });
      const r = recorder(limiter, now, () => true);
      for (let i = 0; i < 6; i++) r.ask(`r${i}`);
      asyncScheduler.schedule(() => undefined, 5000);
      return () => r.granted.map((g) => g.at);
    })();
    // The server's bucket stays full until the first request gets there, and restores nothing
    // meanwhile: the fourth unit is 0.9 of one, back in 50 ms.
    expect(out.map((t) => Math.round(t * 1000) / 1000)).toEqual([0, 0, 0, 50, 550, 1050]);
  });

  it('requests held up between admission and send from a full bucket: nothing comes back until they reach the server', () => {
    const out = inVirtualTime(({ now }) => {
      // 10 units, 10 a second. A model of the server: full until a request arrives.
      const server = { level: 10, at: 0, refused: 0 };
      const arrive = () => {
        const level = Math.min(10, server.level + (now() - server.at) / 100);
        server.at = now();
        if (level + 1e-9 >= 1) server.level = level - 1;
        else {
          server.level = level;
          server.refused++;
        }
      };
      const limiter = createLimiter({ provider: leaky(10, 10), key: key(), coldStartConcurrency: 100, maxWaitMs: 1e9 });
      const r = recorder(limiter, now);
      // Five admitted at once from the full bucket, then held up 700 ms before they are sent (a
      // busy event loop, a slow connection): the server's bucket stays full, restoring nothing.
      for (let i = 0; i < 5; i++) r.ask(`held${i}`);
      asyncScheduler.schedule(() => {
        for (let i = 0; i < 10; i++) r.ask(`later${i}`);
      }, 600);
      // What is admitted at 600 goes at once.
      asyncScheduler.schedule(() => {
        for (let i = r.granted.filter((g) => g.tag.startsWith('later')).length; i > 0; i--) arrive();
      }, 601);
      asyncScheduler.schedule(() => {
        for (let i = 0; i < 5; i++) arrive();
      }, 700);
      asyncScheduler.schedule(() => undefined, 5000);
      return () => ({ refused: server.refused, soon: r.granted.filter((g) => g.at <= 600).length });
    })();
    // The five held up take 5 of the 10 units when they arrive: 5 more went at 600, not 9.
    expect(out).toEqual({ refused: 0, soon: 10 });
  });

  it('a request of cost 3 waits until 3 units have come back, not a moment longer', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: leaky(10, 2), key: key(), coldStartConcurrency: 100, resetGuardMs: 0 });
      const r = recorder(limiter, now, () => true);
      r.ask('nine', { cost: 9 });
      r.ask('three', { cost: 3 });
      r.ask('one');
      asyncScheduler.schedule(() => undefined, 5000);
      return () => r.granted.map((g) => [g.tag, g.at]);
    })();
    // 1 left after the first; 2 more come back in 1000 ms; then the bucket is empty and
    // the next unit is 500 ms later (FIFO behind the costly request).
    expect(out).toEqual([
      ['nine', 0],
      ['three', 1000],
      ['one', 1500],
    ]);
  });

  it('ending a request gives nothing back: units come back only with time', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: leaky(2, 1), key: key(), coldStartConcurrency: 100, resetGuardMs: 0 });
      const r = recorder(limiter, now);
      r.ask('a');
      r.ask('b');
      for (const g of [...r.granted]) g.permit.release();
      r.ask('c');
      asyncScheduler.schedule(() => undefined, 3000);
      return () => ({ at: r.granted.map((g) => g.at), snapshot: bucketOf(limiter) });
    })();
    expect(out.at).toEqual([0, 0, 1000]);
    expect(out.snapshot).toMatchObject({ limit: 2, restorePerSecond: 1, windowMs: null });
  });

  it('the snapshot shows whole units available and when the bucket is full again', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: leaky(10, 4), key: key(), coldStartConcurrency: 100, resetGuardMs: 0 });
      const r = recorder(limiter, now, () => true);
      r.ask('a', { cost: 6 });
      const at0 = bucketOf(limiter);
      let at600: ReturnType<typeof bucketOf> | undefined;
      asyncScheduler.schedule(() => (at600 = bucketOf(limiter)), 600);
      asyncScheduler.schedule(() => undefined, 2000);
      return () => ({ at0, at600 });
    })();
    expect(out.at0).toMatchObject({ remaining: 4, resetAt: 1500, limit: 10 });
    // 4 + 0.6 s × 4 = 6.4 units: 6 whole ones.
    expect(out.at600).toMatchObject({ remaining: 6, resetAt: 1500 });
  });

  it('a reading lowers what is available (someone else spent); the waits follow from there', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: leaky(10, 2), key: key() });
      const r = recorder(limiter, now);
      r.ask('first');
      // The server says 9 of 10 are used: 1 available, taken by nobody in flight.
      asyncScheduler.schedule(() => answer(r.granted[0]?.permit, { 'x-call-limit': '9/10' }), 100);
      asyncScheduler.schedule(() => {
        for (let i = 0; i < 3; i++) r.ask(`after${i}`);
      }, 100);
      asyncScheduler.schedule(() => undefined, 5000);
      return () => r.granted.map((g) => [g.tag, g.at]);
    })();
    expect(out).toEqual([
      ['first', 0],
      ['after0', 100],
      ['after1', 600],
      ['after2', 1100],
    ]);
  });

  it('a reading does not count our requests still in flight as available', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: leaky(10, 1), key: key(), coldStartConcurrency: 100, resetGuardMs: 0 });
      const r = recorder(limiter, now);
      for (const tag of ['a', 'b', 'c', 'd', 'e']) r.ask(tag);
      // The server has counted a only: 1 used. b to e are on their way and will be counted.
      answer(r.granted[0]?.permit, { 'x-call-limit': '1/10' });
      return bucketOf(limiter)?.remaining;
    });
    expect(out).toBe(5);
  });

  it('a late answer with an older, higher figure does not raise what is available', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: leaky(10, 1), key: key(), coldStartConcurrency: 100, resetGuardMs: 0 });
      const r = recorder(limiter, now);
      r.ask('a');
      r.ask('b');
      // b's answer comes first (the server counted it second): 5 used. a's, later: 4 used.
      asyncScheduler.schedule(() => answer(r.granted[1]?.permit, { 'x-call-limit': '5/10' }), 10);
      asyncScheduler.schedule(() => answer(r.granted[0]?.permit, { 'x-call-limit': '4/10' }), 20);
      let after: number | null | undefined;
      asyncScheduler.schedule(() => (after = bucketOf(limiter)?.remaining), 20);
      return () => after;
    })();
    // 5 available at 10 (less a, in flight then: 4), a little restored by 20 (0.01 units).
    expect(out).toBe(4);
  });

  it('a newer answer (a request sent after the last reading came back) may raise what is available', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: leaky(10, 1), key: key(), coldStartConcurrency: 100, resetGuardMs: 0 });
      const r = recorder(limiter, now);
      r.ask('a');
      asyncScheduler.schedule(() => answer(r.granted[0]?.permit, { 'x-call-limit': '8/10' }), 10);
      asyncScheduler.schedule(() => r.ask('b'), 20);
      // Someone else's spending has leaked away meanwhile: the server says 3 used.
      asyncScheduler.schedule(() => answer(r.granted[1]?.permit, { 'x-call-limit': '3/10' }), 30);
      let after: number | null | undefined;
      asyncScheduler.schedule(() => (after = bucketOf(limiter)?.remaining), 30);
      return () => after;
    })();
    expect(out).toBe(7);
  });

  it('a newer answer raises what is available no further than the requests that ended since it was sent allow', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: leaky(10, 1), key: key(), coldStartConcurrency: 100, resetGuardMs: 0 });
      const r = recorder(limiter, now);
      r.ask('p');
      r.ask('x');
      // p's answer (the server counted p alone): the first figure, taken as it is.
      asyncScheduler.schedule(() => answer(r.granted[0]?.permit, { 'x-call-limit': '1/10' }), 10);
      asyncScheduler.schedule(() => r.ask('r'), 20);
      // x reached the server after r (a slow send, another process's request): its answer
      // comes first and counts both; r's, later, counts r but not x, which is no longer in flight.
      asyncScheduler.schedule(() => answer(r.granted[1]?.permit, { 'x-call-limit': '3/10' }), 30);
      asyncScheduler.schedule(() => answer(r.granted[2]?.permit, { 'x-call-limit': '2/10' }), 30);
      let after: number | null | undefined;
      asyncScheduler.schedule(() => (after = bucketOf(limiter)?.remaining), 30);
      return () => after;
    })();
    // 7 on the server (3 used, 0.02 restored): r's figure less nothing in flight would say 8,
    // one too many; less x, which ended since r was sent, 7.
    expect(out).toBe(7);
  });

  it('a cost told after the response gives the difference back at once', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({
        provider: leaky(100, 10),
        key: key(),
        coldStartConcurrency: 100,
        resetGuardMs: 0,
      });
      const r = recorder(limiter, now);
      r.ask('estimate', { cost: 50 });
      const before = bucketOf(limiter)?.remaining;
      answer(r.granted[0]?.permit, { 'x-actual-cost': '12' });
      return { before, after: bucketOf(limiter)?.remaining };
    });
    expect(out).toEqual({ before: 50, after: 88 });
  });

  it('a 429 that names the bucket holds it until the told wait, then one unit per restore', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: leaky(4, 2), key: key(), coldStartConcurrency: 100, resetGuardMs: 0 });
      const r = recorder(limiter, now, (tag) => tag !== 'a');
      r.ask('a');
      asyncScheduler.schedule(
        () => answer(r.granted[0]?.permit, { 'x-call-limit': '4/4', 'retry-after': '2' }, 429),
        100,
      );
      asyncScheduler.schedule(() => {
        for (let i = 0; i < 5; i++) r.ask(`b${i}`);
      }, 100);
      asyncScheduler.schedule(() => undefined, 10_000);
      return () => r.granted.map((g) => g.at);
    })();
    // Held until 2100, when the bucket is full again (4 units in 2 s). Three go; the server's
    // bucket stays full until the first of them gets there (a trip: 100 ms, 0.2 units lost),
    // so the fourth waits those 100 ms, and the fifth a unit (500 ms) more.
    expect(out).toEqual([0, 2100, 2100, 2100, 2200, 2700]);
  });

  it('createLimiter refuses a leaky bucket with a shared store that does not hold one, naming provider, bucket and store', () => {
    let opened = false;
    // A store of the user's own that does not say it holds leaky buckets (the Redis store does).
    const store: LimiterStore = {
      kind: 'custom',
      open: () => {
        opened = true;
        return undefined;
      },
    };
    const make = () => createLimiter({ provider: leaky(40, 2, 'shop'), key: key(), store });
    expect(make).toThrow(TypeError);
    expect(make).toThrow(/provider "shop" uses a leaky \(token\) bucket \("bucket"\), which the custom store/);
    expect(opened).toBe(false);
  });

  it('createLimiter refuses a leaky bucket of a provider that does not bring leakyBuckets, naming bucket and fix', () => {
    const bare = defineProvider({
      name: 'shop',
      buckets: [{ name: 'bucket', limit: 40, restorePerSecond: 2 }],
      read: () => ({ outcome: 'ok', buckets: [] }),
    });
    const make = () => createLimiter({ provider: bare, key: key() });
    expect(make).toThrow(TypeError);
    expect(make).toThrow(
      'provider "shop": bucket "bucket" has `restorePerSecond` but the provider\'s `bucketKinds` lacks leakyBuckets; add `bucketKinds: [leakyBuckets]` (from rx-ratelimit)',
    );
    expect(() => createLimiter({ provider: { ...bare, bucketKinds: [leakyBuckets] }, key: key() })).not.toThrow();
  });
});

/**
 * A model of the server: a leaky bucket that counts each request when it arrives (after a
 * random trip), refuses one that does not fit, and answers with `used/limit` after another
 * random trip. Requests arrive at random times with random costs, through one limiter.
 */
describe('leaky bucket against a model server (property)', () => {
  const arrivals = fc.array(
    fc.record({ gapMs: fc.integer({ min: 0, max: 400 }), cost: fc.integer({ min: 1, max: 6 }) }),
    { minLength: 1, maxLength: 60 },
  );
  const trips = fc
    .tuple(
      fc.integer({ min: 0, max: 40 }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 2, maxLength: 16 }),
    )
    .map(([base, jitters]) => jitters.map((j) => base + Math.round(j * base)));

  // A request sent while the server's bucket is full loses the restore of its trip there
  // (the server's bucket is full until it arrives, ours restores from the send): the limiter
  // takes a trip to last no longer than the longest round trip of late. Latencies here are a
  // base and a jitter of up to that base, each way: no one-way trip is longer than a round trip.
  it('nothing is refused, whatever the costs, arrivals and latencies', () => {
    fc.assert(
      fc.property(
        arrivals,
        trips,
        fc.integer({ min: 6, max: 30 }),
        fc.integer({ min: 1, max: 8 }),
        (reqs, lat, capacity, rate) => {
          const out = inVirtualTime(({ now }) => {
            const server = { level: capacity, at: 0, refused: 0 };
            const serverLevel = (t: number) => Math.min(capacity, server.level + ((t - server.at) * rate) / 1000);
            const limiter = createLimiter({
              provider: leaky(capacity, rate),
              key: key(),
              maxWaitMs: 1e9,
            });
            let granted = 0;
            let trip = 0;
            const nextTrip = () => lat[trip++ % lat.length] ?? 0;
            let t = 0;
            for (const req of reqs) {
              t += req.gapMs;
              asyncScheduler.schedule(() => {
                limiter.acquire(
                  { cost: req.cost },
                  {
                    granted: (permit) => {
                      granted++;
                      asyncScheduler.schedule(() => {
                        const level = serverLevel(now());
                        const fits = level + 1e-9 >= req.cost;
                        if (fits) server.level = level - req.cost;
                        else {
                          server.level = level;
                          server.refused++;
                        }
                        server.at = now();
                        // The server reports whole units used, rounded up.
                        const used = Math.ceil(capacity - server.level - 1e-9);
                        const headers = {
                          'x-call-limit': `${used}/${capacity}`,
                          ...(fits ? {} : { 'retry-after': '1' }),
                        };
                        asyncScheduler.schedule(() => answer(permit, headers, fits ? 200 : 429), nextTrip());
                      }, nextTrip());
                    },
                    rejected: () => undefined,
                  },
                );
              }, t);
            }
            asyncScheduler.schedule(() => void limiter.close(), t + 600_000);
            return () => ({ refused: server.refused, granted });
          })();
          expect(out.refused).toBe(0);
          expect(out.granted).toBe(reqs.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('each request goes exactly when a bucket only it uses has its cost back (first come, first served)', () => {
    fc.assert(
      fc.property(arrivals, fc.integer({ min: 6, max: 30 }), fc.integer({ min: 1, max: 8 }), (reqs, capacity, rate) => {
        // The ideal schedule: in arrival order, each at its arrival or its predecessor's start,
        // or later when units are missing: (missing / rate) later.
        const ideal: number[] = [];
        let level = capacity;
        let at = 0;
        let t = 0;
        let prev = 0;
        for (const req of reqs) {
          t += req.gapMs;
          let start = Math.max(t, prev);
          const avail = Math.min(capacity, level + ((start - at) * rate) / 1000);
          if (avail < req.cost) start += ((req.cost - avail) / rate) * 1000;
          level = Math.min(capacity, level + ((start - at) * rate) / 1000) - req.cost;
          at = start;
          prev = start;
          ideal.push(start);
        }
        const got = inVirtualTime(({ now }) => {
          // Answers that report nothing: the bucket runs on its own figures.
          const limiter = createLimiter({
            provider: leaky(capacity, rate),
            key: key(),
            maxWaitMs: 1e9,
            resetGuardMs: 0,
          });
          const grants: number[] = [];
          let sent = 0;
          for (const req of reqs) {
            sent += req.gapMs;
            asyncScheduler.schedule(() => {
              limiter.acquire(
                { cost: req.cost },
                { granted: (permit) => (grants.push(now()), answer(permit, {})), rejected: () => undefined },
              );
            }, sent);
          }
          asyncScheduler.schedule(() => void limiter.close(), sent + 600_000);
          return () => grants;
        })();
        expect(got).toHaveLength(ideal.length);
        got.forEach((g, i) => expect(g).toBeCloseTo(ideal[i] ?? NaN, 6));
      }),
      { numRuns: 100 },
    );
  });
});
