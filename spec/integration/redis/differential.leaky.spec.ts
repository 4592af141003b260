/**
 * Memory and Redis keep one leaky-bucket accounting: the same random sequence of admissions
 * (with costs), answers (figures of what is available, capacities and rates that change,
 * reconciled costs, throttled answers that hold the bucket), releases, 429s and waits is fed to
 * a memory `LeakyBucket` (lib/core/leakyBucket.ts) and to the Redis store's scripts (real
 * Redis), and both must grant the same and report the same units available.
 *
 * One clock, read where Redis read it. A leaky bucket restores continuously, so the two sides
 * agree only if they compute at the same instants: Redis takes its time from `TIME` inside each
 * script, and the memory bucket is run at the instant Redis wrote with each step (the bucket
 * hash's `lva`, and the hold a 429 wrote), and with the send time Redis was given for each
 * answer (the age the session passed to OBSERVE, read from the call). So the comparison is
 * exact (to floating-point dust), with no tolerance: a step may land on any boundary. The
 * waits Redis reports are compared with the call's own duration as tolerance (the session
 * counts them from the call's send).
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { Redis } from 'ioredis';

import { createBucket } from '../../../lib/core/buckets.js';
import { leakyBuckets } from '../../../lib/core/leakyBucket.js';
import { rollingWindows } from '../../../lib/core/rollingBucket.js';
import type { LeakyBucket } from '../../../lib/core/leakyBucket.js';
import type { StoreAcquireOptions, StoreBucketSpec, StoreSession } from '../../../lib/core/store.js';
import { redisKeys } from '../../../lib/stores/redis/keys.js';
import { redisStore } from '../../../lib/stores/redis/index.js';
import { REDIS } from '../../helpers/redis.js';

/** A provider bringing every bucket kind, for buckets made directly. */
const KINDS = { name: 'test', bucketKinds: [rollingWindows, leakyBuckets] };

const GUARD = 50;
const secret = 'rx-ratelimit-test-secret';
const clients: Redis[] = [];
afterAll(() => {
  for (const c of clients) c.disconnect();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Step =
  | { readonly op: 'acquire'; readonly count: number }
  | {
      readonly op: 'answer';
      readonly which: number;
      readonly limit: number | undefined;
      readonly remaining: number | undefined;
      readonly rate: number | undefined;
      /** What the request really cost (Shopify GraphQL's actualQueryCost). */
      readonly actual: number | undefined;
      /** A throttled answer that named the bucket: held this long. */
      readonly holdMs: number | undefined;
    }
  | { readonly op: 'release'; readonly which: number }
  | { readonly op: 'exhaust'; readonly ms: number }
  | { readonly op: 'wait'; readonly ms: number };

const step = (capacity: number, rate: number, cost: number): fc.Arbitrary<Step> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant('acquire' as const), count: fc.integer({ min: 1, max: 8 }) }) },
    {
      weight: 4,
      arbitrary: fc.record({
        op: fc.constant('answer' as const),
        which: fc.nat(),
        limit: fc.option(fc.integer({ min: Math.max(1, Math.floor(capacity / 2)), max: capacity + 5 }), {
          nil: undefined,
        }),
        remaining: fc.option(fc.integer({ min: 0, max: capacity }), { nil: undefined }),
        rate: fc.option(
          fc.integer({ min: 1, max: 40 }).map((r) => (r * rate) / 20),
          { nil: undefined },
        ),
        actual: fc.option(fc.integer({ min: 0, max: cost + 2 }), { nil: undefined }),
        holdMs: fc.option(
          fc.integer({ min: 1, max: 20 }).map((t) => t * 100),
          { nil: undefined, freq: 6 },
        ),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('release' as const), which: fc.nat() }) },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('exhaust' as const),
        ms: fc.integer({ min: 1, max: 20 }).map((t) => t * 100),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        op: fc.constant('wait' as const),
        ms: fc.integer({ min: 1, max: 40 }).map((t) => t * 10),
      }),
    },
  );

const scenario = fc
  .record({
    capacity: fc.integer({ min: 1, max: 40 }),
    // Units a second: from one per 2 s to 40 a second (Shopify REST restores 2 to 40).
    rate: fc.integer({ min: 1, max: 80 }).map((r) => r / 2),
    cold: fc.constantFrom(1, 100),
  })
  .chain((s) =>
    fc.oneof(fc.constant(1), fc.integer({ min: 1, max: s.capacity })).chain((cost) =>
      fc.record({
        s: fc.constant({ ...s, cost }),
        steps: fc.array(step(s.capacity, s.rate, cost), { minLength: 1, maxLength: 16 }),
      }),
    ),
  );

describe('memory and Redis keep one leaky-bucket accounting', () => {
  it('the same admissions, answers, releases, 429s and waits give the same grants and units available', async () => {
    const client = new Redis({ port: REDIS.port, host: '127.0.0.1' });
    clients.push(client);
    const prefix = `rxrl-diff-leaky-${process.pid}-${Date.now()}:`;
    const store = redisStore({ client, secret, prefix, subscribe: false, timeoutMs: 5000 });
    // The age of each answer's request as the session passed it to OBSERVE (its 4th argument).
    const ages: string[] = [];
    const scripts = client as unknown as Record<string, (...args: Array<string | number>) => Promise<unknown>>;
    const observe = scripts['rxrlObserve'];
    if (!observe) throw new Error('the store defined no OBSERVE');
    scripts['rxrlObserve'] = (...args) => {
      ages.push(String(args[Number(args[0]) + 4]));
      return observe.apply(client, args);
    };
    let run = 0;
    let compared = 0;
    let waits = 0;
    let restored = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async ({ s, steps }) => {
        run++;
        const key = `token-${run}`;
        const bucketKey = redisKeys(prefix, 'differential', key, secret).bucket('b');
        const session: StoreSession | undefined = store.open({ key, provider: 'differential', emit: () => undefined });
        if (!session) throw new Error('no session');
        const spec: StoreBucketSpec = {
          name: 'b',
          limit: s.capacity,
          windowMs: undefined,
          quota: false,
          pacing: 'burst',
          restorePerSecond: s.rate,
        };
        const options: StoreAcquireOptions = {
          coldStartConcurrency: s.cold,
          resetGuardMs: GUARD,
          ...(s.cost === 1 ? {} : { costs: [s.cost] }),
        };
        const memory = createBucket({ name: 'b', limit: s.capacity, restorePerSecond: s.rate }, KINDS) as LeakyBucket;
        /** The instant Redis last wrote the bucket at (its Redis ms). */
        const redisNow = async (): Promise<number> => Number(await client.hget(bucketKey, 'lva'));
        const redisLevel = async (): Promise<number> => Number(await client.hget(bucketKey, 'lvl'));
        /** Requests in flight: the Redis lease, the admission index they hold in both, the units they hold. */
        const inFlight: Array<{ lease: string; index: number }> = [];
        // A 429 writes its hold before the answer is read (the limiter's order); in memory, when
        // the answer told nothing, the bucket empties at that instant. Never in the same ms as
        // the last figure: memory keeps a figure read at the very instant of the 429.
        // (When the answer told a figure, memory applies it first and keeps it: the hold is
        // returned, for the caller to apply after the answer.)
        const exhaust = async (ms: number, told: boolean): Promise<number> => {
          await sleep(2);
          session.exhaust(spec, ms, { told });
          await client.ping(); // the store's write has run
          const t = await redisNow();
          const hold = Number(await client.hget(bucketKey, 'hold'));
          if (!told) {
            memory.refill(t, GUARD);
            memory.exhaust(hold);
          }
          return hold;
        };
        for (const st of steps) {
          if (st.op === 'acquire') {
            const before = performance.now();
            const grant = await session.acquire([spec], st.count, options);
            const took = performance.now() - before;
            const t = await redisNow();
            memory.refill(t, GUARD);
            let granted = 0;
            let wait: number | undefined;
            while (granted < st.count) {
              const at = memory.availableAt(t, GUARD, s.cold, 0, s.cost);
              if (at !== t) {
                if (granted === 0) wait = at === undefined ? undefined : at - t;
                break;
              }
              const index = memory.take(t, s.cost);
              const lease = grant.leases[granted];
              if (lease !== undefined) inFlight.push({ lease, index });
              granted++;
            }
            expect(grant.leases.length).toBe(granted);
            const state = grant.buckets[0];
            expect(state?.level).toBeCloseTo(memory.available(t), 6);
            expect(state?.remaining).toBe(memory.remaining);
            if (granted === 0) {
              if (wait === undefined) expect(grant.waitMs).toBeUndefined();
              else {
                // Redis rounds up to its ms; the session counts from the call's send, taking off
                // the time from the send to the answer's read (its monotonic clock), which lies
                // within the call as timed here: however long a stall made it.
                expect(grant.waitMs).toBeLessThanOrEqual(Math.ceil(wait) + 1);
                expect(grant.waitMs).toBeGreaterThanOrEqual(wait - took - 1);
                waits++;
              }
            }
            compared++;
          } else if (st.op === 'wait') {
            await sleep(st.ms);
            restored++;
          } else if (st.op === 'exhaust') {
            await exhaust(st.ms, false);
            expect(await redisLevel()).toBeCloseTo(memory.available(await redisNow()), 6);
          } else if (inFlight.length > 0) {
            const [req] = inFlight.splice(st.which % inFlight.length, 1);
            if (!req) continue;
            if (st.op === 'answer') {
              const told = st.remaining !== undefined;
              const hold = st.holdMs === undefined ? undefined : await exhaust(st.holdMs, told);
              ages.length = 0;
              session.observe(
                req.lease,
                [
                  {
                    name: 'b',
                    limit: st.limit,
                    remaining: st.remaining,
                    resetInMs: undefined,
                    windowMs: undefined,
                    index: req.index,
                    ...(st.rate === undefined ? {} : { restorePerSecond: st.rate }),
                    ...(st.actual === undefined || st.actual === s.cost ? {} : { cost: st.actual }),
                  },
                ],
                [spec],
              );
              await client.ping(); // the store's write has run
              const t = await redisNow();
              const age = ages[0] === undefined || ages[0] === '' ? undefined : Number(ages[0]);
              memory.refill(t, GUARD);
              const held = st.actual ?? s.cost;
              if (held !== s.cost) memory.reconcile(req.index, s.cost, held);
              memory.apply(
                {
                  name: 'b',
                  ...(st.limit === undefined ? {} : { limit: st.limit }),
                  ...(st.remaining === undefined ? {} : { remaining: st.remaining }),
                  ...(st.rate === undefined ? {} : { restorePerSecond: st.rate }),
                },
                req.index,
                undefined,
                t,
                age === undefined ? undefined : t - age,
                undefined,
                1000,
                held,
              );
              if (told && hold !== undefined) memory.exhaust(hold);
              memory.release(req.index, t, held);
              expect(await redisLevel()).toBeCloseTo(memory.available(t), 6);
            } else {
              session.release(req.lease, [spec]);
              await client.ping();
              // RELEASE brings the level to its instant first (restored while the lease was out).
              memory.release(req.index, await redisNow(), s.cost);
            }
          }
        }
        await session.close();
      }),
      {
        numRuns: 200,
        // Always among the runs: a full bucket's burst, then a request that waits for its units;
        // a newer figure raising what is left while an older one may not; a reconciled cost
        // given back; a throttled answer with no figure holding and emptying the bucket.
        examples: [
          [
            {
              s: { capacity: 4, rate: 2, cold: 100, cost: 1 },
              steps: [
                { op: 'acquire', count: 6 },
                { op: 'wait', ms: 300 },
                { op: 'acquire', count: 2 },
                {
                  op: 'answer',
                  which: 0,
                  limit: 4,
                  remaining: 1,
                  rate: undefined,
                  actual: undefined,
                  holdMs: undefined,
                },
                { op: 'acquire', count: 1 },
              ],
            },
          ],
          [
            {
              s: { capacity: 10, rate: 5, cold: 1, cost: 4 },
              steps: [
                { op: 'acquire', count: 3 },
                { op: 'answer', which: 0, limit: 10, remaining: 6, rate: 10, actual: 1, holdMs: undefined },
                { op: 'acquire', count: 3 },
                {
                  op: 'answer',
                  which: 0,
                  limit: undefined,
                  remaining: 9,
                  rate: undefined,
                  actual: 2,
                  holdMs: undefined,
                },
                {
                  op: 'answer',
                  which: 0,
                  limit: undefined,
                  remaining: 0,
                  rate: undefined,
                  actual: undefined,
                  holdMs: 500,
                },
                { op: 'acquire', count: 1 },
                { op: 'acquire', count: 1 },
              ],
            },
          ],
          [
            {
              s: { capacity: 5, rate: 10, cold: 100, cost: 1 },
              steps: [
                { op: 'acquire', count: 2 },
                {
                  op: 'answer',
                  which: 0,
                  limit: undefined,
                  remaining: undefined,
                  rate: undefined,
                  actual: undefined,
                  holdMs: 300,
                },
                { op: 'acquire', count: 1 },
                { op: 'wait', ms: 350 },
                { op: 'acquire', count: 5 },
              ],
            },
          ],
        ],
      },
    );
    console.log(
      `leaky, memory vs Redis: ${run} sequences, ${compared} admissions compared, ${waits} waits, ${restored} waits slept`,
    );
    expect(compared).toBeGreaterThan(run);
    expect(waits).toBeGreaterThan(run / 10);
  }, 240_000);
});
