/**
 * The five providers of the seeds under traffic the other properties do not draw, in virtual
 * time against the simulator: a server clock off by up to two hours (or by a fraction of a
 * second), delays with heavy tails (a request can stall for seconds, so answers come back far
 * out of order), connections that drop before the server sees a request or after it counted it
 * (the answer lost), bursts separated by idles long enough for buckets to be forgotten, hints
 * that do not match the server's limits, one to three limiters on the credential. What a user
 * sees: no 429; every request ends with its answer or the network's own error; no more time than
 * the windows the work needs.
 *
 * Where a dimension finds a known defect of the window rules (windowEdges.known.virtual.spec.ts
 * keeps each counterexample), the property draws around it: Planning Center's answers come back
 * in the order the server counted them and no answer is lost after the server counted it;
 * Fieldwire's delays stay within 40 ms each way, without idles; TEOS is told its limits.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { providers } from '../../lib/index.js';
import {
  checkEndings,
  heavyDelays,
  refusedCount,
  runAdversarial,
  runFieldwireEndpoints,
  type NetFault,
} from './adversarialRun.js';
import type { RunRequest } from './providerRun.js';

/**
 * Bursts after idles: gaps within a window or two, or (with `idles`) long enough for buckets to
 * be forgotten (10 min).
 */
const bursts = (windowMs: number, maxSize: number, idles = true) =>
  fc
    .array(
      fc.record({
        gap: idles
          ? fc.oneof(
              { weight: 3, arbitrary: fc.integer({ min: 0, max: 2 * windowMs }) },
              { weight: 1, arbitrary: fc.integer({ min: 600_000, max: 1_500_000 }) },
            )
          : fc.integer({ min: 0, max: 2 * windowMs }),
        size: fc.integer({ min: 1, max: maxSize }),
        spread: fc.integer({ min: 0, max: windowMs }),
      }),
      { minLength: 1, maxLength: 4 },
    )
    .map((bs) => {
      const at: number[] = [];
      let t = 0;
      for (const b of bs) {
        t += b.gap;
        for (let k = 0; k < b.size; k++) at.push(t + Math.floor((b.spread * k) / Math.max(1, b.size)));
      }
      return at;
    });

const skew = fc.oneof(
  fc.constant(0),
  fc.integer({ min: -7_200_000, max: 7_200_000 }),
  fc.integer({ min: -1500, max: 1500 }),
);

/** Mostly clean; sometimes one send in 3–8 loses its connection (of the kinds given). */
const faultsOf = (kinds: readonly NetFault[]): fc.Arbitrary<NetFault[]> =>
  fc.oneof(
    fc.constant<NetFault[]>(['none']),
    fc
      .tuple(fc.integer({ min: 2, max: 7 }), fc.constantFrom(...kinds))
      .map(([clean, f]) => [...Array<NetFault>(clean).fill('none'), f]),
  );

/**
 * One-way delays, used in turn per send: with heavy tails (stalls of seconds), at most `maxMs`,
 * or (`inOrder`) one delay each way for the whole run, so that answers come back in the order
 * the server counted them.
 */
const delaysOf = (o: { maxMs?: number; inOrder?: boolean }) =>
  o.inOrder
    ? fc.integer({ min: 0, max: o.maxMs ?? 600 }).map((d) => [d])
    : o.maxMs === undefined
      ? heavyDelays
      : fc.array(fc.integer({ min: 0, max: o.maxMs }), { minLength: 1, maxLength: 16 });

/** The network of a run: streams, delays each way, limiters on the credential, faults, clock skew. */
const netWith = (o: { maxDelayMs?: number; inOrder?: boolean; faults?: readonly NetFault[] } = {}) => ({
  streams: fc.integer({ min: 1, max: 30 }),
  up: delaysOf({ ...(o.maxDelayMs !== undefined ? { maxMs: o.maxDelayMs } : {}), inOrder: o.inOrder ?? false }),
  down: delaysOf({ ...(o.maxDelayMs !== undefined ? { maxMs: o.maxDelayMs } : {}), inOrder: o.inOrder ?? false }),
  limiters: fc.integer({ min: 1, max: 3 }),
  faults: faultsOf(o.faults ?? ['lost-before', 'lost-after']),
  skewMs: skew,
});

const maxRtt = (o: { up: number[]; down: number[] }) => Math.max(...o.up) + Math.max(...o.down);

/** The run ends within the windows its work needs: per window its length, a second and a round trip. */
function expectWithin(
  o: { up: number[]; down: number[]; streams: number; limiters: number },
  at: readonly number[],
  lastEnd: number,
  windows: number,
  windowMs: number,
) {
  const rtt = maxRtt(o);
  const perStream = Math.ceil(at.length / (o.streams * o.limiters));
  expect(lastEnd).toBeLessThanOrEqual(
    Math.max(...at) + (windows + 1) * (windowMs + 1000 + 100 + rtt) + (perStream + 2) * (rtt + 1),
  );
}

const RUNS = Number(process.env['ADV_RUNS'] ?? 25);

describe('adversarial traffic against the five providers (virtual time, the simulator)', () => {
  it('Procore, an hour in 6 s, its limit unknown or hinted: no 429, nothing lost', () => {
    const SCALE = 600;
    const HOUR = 3_600_000 / SCALE;
    fc.assert(
      fc.property(
        fc.record({
          limit: fc.integer({ min: 5, max: 80 }),
          hinted: fc.boolean(),
          at: bursts(HOUR, 60),
          phaseMs: fc.integer({ min: 0, max: 3_600_000 }),
          ...netWith(),
        }),
        (o) => {
          const requests: RunRequest[] = o.at.map((at, i) => ({
            at,
            method: 'GET',
            path: `/rest/v1.0/projects/${i}`,
            limiter: i,
          }));
          const out = runAdversarial({
            simulated: 'procore',
            provider: () =>
              providers.procore({ hints: { hourly: { windowMs: HOUR, ...(o.hinted ? { limit: o.limit } : {}) } } }),
            engine: { timeScale: SCALE, clockOffsetMs: o.skewMs, procore: { limit: o.limit } },
            phaseMs: o.phaseMs,
            requests,
            streams: o.streams,
            limiters: o.limiters,
            up: o.up,
            down: o.down,
            faults: o.faults,
          });
          const ends = checkEndings(out);
          expect(refusedCount(out, 'procore')).toBe(0);
          expect((ends['status 200'] ?? 0) + (ends['lost'] ?? 0)).toBe(requests.length);
          expectWithin(o, o.at, out.lastEnd, Math.ceil(requests.length / o.limit), HOUR);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('Planning Center, 20 s in 1 s, refused requests counted: no 429, nothing lost', () => {
    const SCALE = 20;
    const PERIOD = 20_000 / SCALE;
    fc.assert(
      fc.property(
        fc.record({
          limit: fc.integer({ min: 5, max: 100 }),
          hinted: fc.boolean(),
          at: bursts(PERIOD, 60),
          phaseMs: fc.integer({ min: 0, max: 60_000 }),
          ...netWith({ inOrder: true, faults: ['lost-before'] }),
        }),
        (o) => {
          const requests: RunRequest[] = o.at.map((at, i) => ({
            at,
            method: 'GET',
            path: `/people/v2/people?offset=${i}`,
            limiter: i,
          }));
          const out = runAdversarial({
            simulated: 'planningCenter',
            provider: () =>
              providers.planningCenter({
                hints: { default: { windowMs: PERIOD, ...(o.hinted ? { limit: o.limit } : {}) } },
              }),
            engine: { timeScale: SCALE, clockOffsetMs: o.skewMs, planningCenter: { limit: o.limit } },
            phaseMs: o.phaseMs,
            requests,
            streams: o.streams,
            limiters: o.limiters,
            up: o.up,
            down: o.down,
            faults: o.faults,
          });
          const ends = checkEndings(out);
          expect(refusedCount(out, 'planningCenter')).toBe(0);
          expect((ends['status 200'] ?? 0) + (ends['lost'] ?? 0)).toBe(requests.length);
          expectWithin(o, o.at, out.lastEnd, Math.ceil(requests.length / o.limit), PERIOD);
        },
      ),
      {
        numRuns: RUNS,
        examples: [
          // A period opened by a call sent 218 ms before the told end of the last (that end read
          // an answer's trip late): its answer (a count of 1, a new end) came back before the
          // figures of calls sent earlier, and was taken for the old period's; the period it
          // opened was refilled as ours, one call too many. A count of 1 from a call sent after
          // the old period's figure of 4 left was read is no figure of that period.
          [
            {
              limit: 5,
              hinted: false,
              at: [0, 762, 913, 1000, 1087, 1174, 1261, 1348, 1435, 1522],
              phaseMs: 0,
              streams: 4,
              up: [161],
              down: [57],
              limiters: 1,
              faults: ['none'],
              skewMs: 0,
            },
          ],
          // The same with three limiters (one bucket) and 32 ms between calls: during the count
          // of 1's trip back, nine lower figures of the old period were read (the last three by
          // one admission) and pushed the one read before it went (15 left) out of the last 8.
          [
            {
              limit: 17,
              hinted: false,
              at: [
                0, 709, 741, 773, 806, 838, 870, 903, 935, 967, 1000, 1032, 1064, 1097, 1129, 1161, 1194, 1226, 1258,
                1291, 1323, 1355, 1388, 1420, 1452, 1485, 1517, 1549, 1582, 1614, 1646, 1000,
              ],
              phaseMs: 0,
              streams: 10,
              up: [0],
              down: [259],
              limiters: 3,
              faults: ['none'],
              skewMs: 0,
            },
          ],
        ],
      },
    );
  });

  it('Pipedrive, 2-s windows, a plan that may not be the one the server applies: no 429, no 403, nothing lost', () => {
    const PLANS = ['essential', 'advanced', 'professional', 'enterprise'] as const;
    fc.assert(
      fc.property(
        fc.record({
          plan: fc.constantFrom(...PLANS),
          told: fc.constantFrom(...PLANS),
          at: bursts(2000, 120),
          methods: fc.array(fc.constantFrom('GET', 'GET', 'POST', 'PUT', 'DELETE'), { minLength: 1, maxLength: 8 }),
          phaseMs: fc.integer({ min: 0, max: 3_600_000 }),
          ...netWith(),
        }),
        (o) => {
          const requests: RunRequest[] = o.at.map((at, i) => ({
            at,
            method: o.methods[i % o.methods.length]!,
            path: `/v1/deals/${i}`,
            limiter: i,
          }));
          const out = runAdversarial({
            simulated: 'pipedrive',
            provider: () => providers.pipedrive({ plan: o.told }),
            engine: { clockOffsetMs: o.skewMs, pipedrive: { plan: o.plan } },
            phaseMs: o.phaseMs,
            requests,
            streams: o.streams,
            limiters: o.limiters,
            up: o.up,
            down: o.down,
            faults: o.faults,
          });
          const ends = checkEndings(out);
          expect(refusedCount(out, 'pipedrive')).toBe(0);
          expect((ends['status 200'] ?? 0) + (ends['lost'] ?? 0)).toBe(requests.length);
          const limit = { essential: 20, advanced: 40, professional: 80, enterprise: 120 }[o.plan];
          expectWithin(o, o.at, out.lastEnd, Math.ceil(requests.length / limit), 2000);
        },
      ),
      {
        numRuns: RUNS,
        examples: [
          // Calls 1.6 s on the way there: 18 sent just after the first answer are counted in
          // the server's next window; their answers tell its reset but read as the old window's
          // (sent before its end, "2 s left" after a long trip back). The earliest then reads 19,
          // a new window: the six answered first count beside it (a 429 when they did not).
          [
            {
              plan: 'essential',
              told: 'essential',
              at: Array.from({ length: 22 }, () => 0),
              methods: ['GET'],
              phaseMs: 0,
              streams: 6,
              up: [1572],
              down: [428, 1, 0],
              limiters: 3,
              faults: ['none'],
              skewMs: 0,
            },
          ],
          // The first answer back after 1.95 s of a 2-s window: its reset ends our window that
          // late. Calls sent once its figure (19) was read read 19 again, with a later reset:
          // counted afresh, a new window, though lower figures read since they went had become
          // the window's lowest (judged against those only, they were taken for the old one's).
          [
            {
              plan: 'essential',
              told: 'essential',
              at: Array.from({ length: 34 }, () => 0),
              methods: ['GET'],
              phaseMs: 0,
              streams: 4,
              up: [60, 14, 50, 2, 0],
              down: [1950, 60, 34, 600, 49, 0, 8],
              limiters: 2,
              faults: ['none', 'none', 'none', 'none', 'lost-before'],
              skewMs: 0,
            },
          ],
          // A window opened by a late arrival, the old window's figure read after it, taken for
          // the new window's lowest (windowOpenedByLateArrival.virtual.spec.ts).
          [
            {
              plan: 'advanced',
              told: 'essential',
              at: [0, ...Array.from({ length: 76 }, (_, k) => 366 + 11 * k), 600_366],
              methods: ['GET'],
              phaseMs: 0,
              streams: 15,
              up: [0, 527],
              down: [473, 0, 0, 529, 0, 60],
              limiters: 1,
              faults: ['none'],
              skewMs: 0,
            },
          ],
          // The first answer back after 1.94 s, then the earliest of ten sent once it was read
          // reads 19 with a reset just later than ours (counted afresh): those answered or lost
          // since it went, read as the old window's, count beside it (a 429 when only those that
          // told a reset clearly later did, and none that was lost).
          [
            {
              plan: 'essential',
              told: 'essential',
              at: Array.from({ length: 22 }, () => 600_000),
              methods: ['GET'],
              phaseMs: 0,
              streams: 5,
              up: [60],
              down: [1940, 61, 0, 0, 0],
              limiters: 2,
              faults: ['none', 'none', 'lost-after'],
              skewMs: 0,
            },
          ],
          [
            {
              plan: 'essential',
              told: 'essential',
              at: Array.from({ length: 25 }, () => 0),
              methods: ['GET'],
              phaseMs: 0,
              streams: 10,
              up: [0, 0, 60],
              down: [2000, 1, 0],
              limiters: 2,
              faults: ['none', 'none', 'none', 'none', 'none', 'none', 'lost-before'],
              skewMs: 0,
            },
          ],
        ],
      },
    );
  });

  it('Fieldwire, a minute in 1 s, endpoints and the catch-all: no 429, nothing lost', () => {
    fc.assert(
      fc.property(
        fc.record({
          endpoints: fc.array(
            fc.record({ minute: fc.integer({ min: 3, max: 40 }), hourShare: fc.integer({ min: 2, max: 60 }) }),
            { minLength: 1, maxLength: 3 },
          ),
          catchAll: fc.oneof(fc.constant(3000), fc.integer({ min: 20, max: 200 })),
          at: bursts(1000, 60, false),
          phaseMs: fc.integer({ min: 0, max: 3_600_000 }),
          ...netWith({ maxDelayMs: 40, faults: ['lost-before'] }),
        }),
        (o) => {
          const { out, ends, sent } = runFieldwireEndpoints(o);
          expect(refusedCount(out, 'fieldwire')).toBe(0);
          expect((ends['status 200'] ?? 0) + (ends['lost'] ?? 0)).toBe(sent);
        },
      ),
      {
        numRuns: RUNS,
        examples: [
          // ep1's minute (4), its reset 0 until spent: our end of a window projected from a
          // told one and bounded by a send at 1050 (2050), the server's 1754. A call sent at
          // 1722, after "3 left" was read at 1050, came back reading 3 again; one sent at 1756,
          // after "2 left" was read, read 2 again: each counted afresh, in a window that began
          // after that figure. Taken for the old window's (only a rise was), the refill at 2100
          // sent two into a window that had counted 3 of 4.
          [
            {
              endpoints: [
                { minute: 5, hourShare: 2 },
                { minute: 4, hourShare: 3 },
              ],
              catchAll: 26,
              at: [0, 0, 1, 2, 2, 3, 4, 4, 5, 6, 6, 7, 8, ...Array.from({ length: 15 }, () => 1722)],
              phaseMs: 168_246,
              streams: 2,
              up: [0, 0, 0, 0, 3, 0, 32, 0, 0],
              down: [0, 2],
              limiters: 3,
              faults: ['none', 'none', 'lost-before'],
              skewMs: 0,
            },
          ],
        ],
      },
    );
  });

  it('TEOS, a minute in 1 s, its rolling minute and day told: no 429, nothing lost', () => {
    const SCALE = 60;
    const MINUTE = 60_000 / SCALE;
    const DAY = 86_400_000 / SCALE;
    fc.assert(
      fc.property(
        fc.record({
          perMinute: fc.integer({ min: 3, max: 40 }),
          perDay: fc.oneof(fc.constant(10_000), fc.integer({ min: 20, max: 150 })),
          headersAfter: fc.integer({ min: 1, max: 4 }),
          at: bursts(MINUTE, 50),
          ...netWith(),
        }),
        (o) => {
          const requests: RunRequest[] = o.at.map((at, i) => ({
            at,
            method: 'GET',
            path: `/api/v1/items/${i}`,
            limiter: i,
          }));
          const out = runAdversarial({
            simulated: 'teos',
            provider: () =>
              providers.teos({
                hints: {
                  minute: { windowMs: MINUTE, limit: o.perMinute },
                  day: { windowMs: DAY, limit: o.perDay },
                },
              }),
            engine: {
              timeScale: SCALE,
              clockOffsetMs: o.skewMs,
              teos: { perMinute: o.perMinute, perDay: o.perDay, headersAfter: o.headersAfter },
            },
            phaseMs: 0,
            requests,
            streams: o.streams,
            limiters: o.limiters,
            up: o.up,
            down: o.down,
            faults: o.faults,
            options: { maxWaitMs: 2 * DAY },
          });
          const ends = checkEndings(out);
          expect(refusedCount(out, 'teos')).toBe(0);
          // Two days serve twice the day's limit. Past that, a call waits for a slot its
          // predecessor took a day after the first day's calls arrived: just past its deadline
          // two days after it was asked for, it ends unsent with QuotaExhaustedError.
          const refused = ends['QuotaExhaustedError'] ?? 0;
          expect(refused).toBeLessThanOrEqual(Math.max(0, requests.length - 2 * o.perDay));
          expect((ends['status 200'] ?? 0) + (ends['lost'] ?? 0) + refused).toBe(requests.length);
        },
      ),
      {
        numRuns: RUNS,
        examples: [
          // Three limiters of one key, 56 calls, 20 a day: one of the first asked for, in the
          // third limiter, waited past two days while calls asked for a day later through the
          // other two took each slot as it freed (their timers ran first): QuotaExhaustedError.
          [
            {
              perMinute: 3,
              perDay: 20,
              headersAfter: 1,
              at: Array.from({ length: 56 }, () => 0),
              streams: 3,
              up: [60],
              down: [0],
              limiters: 3,
              faults: ['none'],
              skewMs: 0,
            },
          ],
          // A call 877 ms on its way there, a burst of ours sent after it answered first, most
          // without a figure (TEOS's first call to an endpoint): its figure counts them, taken
          // as not counted they read as another client's fourteen calls, held a day.
          [
            {
              perMinute: 31,
              perDay: 35,
              headersAfter: 1,
              at: [
                ...Array.from({ length: 39 }, () => 600_000),
                ...Array.from({ length: 12 }, () => 600_001),
                ...Array.from({ length: 12 }, () => 600_002),
                ...Array.from({ length: 4 }, () => 600_000),
              ],
              streams: 15,
              up: [97, 0, 0, 877, 0],
              down: [254, 0, 60, 0, 291, 0, 33],
              limiters: 3,
              faults: ['none'],
              skewMs: 0,
            },
          ],
        ],
      },
    );
  });
});
