/**
 * The fixed-window providers under arbitrary traffic, in virtual time against the simulator,
 * each with what its docs make particular: Procore's hour aligned to the clock with a limit cut
 * mid-run; Planning Center's period opened by its first request, with no reset told, a count
 * that includes refused requests and a stricter limit past offset 30,000; Pipedrive's 2-second
 * window told in seconds left, with the daily POST/PUT budget and Cloudflare's block for
 * hammering; Fieldwire's catch-all and per-endpoint minute and hour. Requests at any time or
 * all at once, at any phase of the server's windows, 1–30 streams, latency jittered each way
 * (counted in another order than sent), one to three limiters on the token, a server clock that
 * may be off. No 429 and no block; every request ends with its answer or, past a budget that
 * cannot come back within `maxWaitMs`, unsent with QuotaExhaustedError; the run takes no
 * longer than the windows it needs.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { providers } from '../../lib/index.js';
import { assertEndedOnce } from './harness.js';
import { limitedCount, ROUND_START, runProvider, traffic, type RunRequest } from './providerRun.js';

const arrivals = (span: number, max: number) =>
  fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: span })), { minLength: 1, maxLength: max });
const rttOf = (o: { up: number[]; down: number[] }) => Math.max(...o.up) + Math.max(...o.down);

describe('Procore: an hour aligned to the clock, a limit cut mid-run (virtual time, an hour in 6 s)', () => {
  it('no 429, every request answered, within the windows it needs', () => {
    const SCALE = 600;
    const HOUR = 3_600_000 / SCALE;
    fc.assert(
      fc.property(
        fc.record({
          limit: fc.integer({ min: 10, max: 100 }),
          cut: fc.option(
            fc.record({ at: fc.integer({ min: 0, max: 20_000 }), to: fc.double({ min: 0.5, max: 1, noNaN: true }) }),
          ),
          calls: arrivals(10_000, 150),
          phaseMs: fc.integer({ min: 0, max: 3_600_000 }),
          skewMs: fc.oneof(fc.constant(0), fc.integer({ min: -30_000, max: 30_000 })),
          ...traffic,
        }),
        (o) => {
          const requests: RunRequest[] = o.calls.map((at, i) => ({
            at,
            method: 'GET',
            path: `/rest/v1.0/projects/${i}`,
            limiter: i,
          }));
          const cutTo = o.cut ? Math.max(1, Math.floor(o.limit * o.cut.to)) : o.limit;
          const out = runProvider({
            simulated: 'procore',
            provider: () => providers.procore({ hints: { hourly: { limit: o.limit, windowMs: HOUR } } }),
            engine: { timeScale: SCALE, clockOffsetMs: o.skewMs, procore: { limit: o.limit } },
            during: o.cut ? [{ at: o.cut.at, act: (e) => e.changeLimits('procore', { limit: cutTo }) }] : [],
            phaseMs: o.phaseMs,
            requests,
            streams: o.streams,
            limiters: o.limiters,
            up: o.up,
            down: o.down,
          });
          const ends = assertEndedOnce(out.ledgers);
          // A cut without notice refuses what is already in flight when it lands (at most the
          // streams), and nothing after the answer that shows it.
          const inFlightAtCut = o.cut ? o.streams * o.limiters : 0;
          expect(limitedCount(out, 'procore')).toBeLessThanOrEqual(inFlightAtCut);
          expect(ends).toEqual({ 'status 200': requests.length });
          const windows = Math.ceil(requests.length / cutTo) + 1;
          const perStream = Math.ceil(requests.length / (o.streams * o.limiters));
          expect(out.lastEnd).toBeLessThanOrEqual(
            Math.max(...o.calls) + windows * (HOUR + 1000 + 100 + rttOf(o)) + (perStream + 2) * (rttOf(o) + 1),
          );
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('Planning Center: periods opened by the first request, refused requests counted (virtual time, 20 s in 1 s)', () => {
  it('a count of 1 answered after the counts that followed it opens no new period: no 429', () => {
    // Planning Center tells a period's start only with a count of 1. A high-offset request went
    // first (its answer names only its own bucket, which ended the cold start), then six at
    // once; the first of them (count 1) came back 5 ms after the others (counts 2 to 4). Taken
    // as a new period, its reading wiped the lowest figure (1 left) and the two sent on it
    // made a sixth in a period of five.
    const requests: RunRequest[] = Array.from({ length: 7 }, (_, i) => ({
      at: 0,
      method: 'GET',
      path: `/people/v2/people?offset=${i === 0 ? 30_001 : i}`,
    }));
    const out = runProvider({
      simulated: 'planningCenter',
      provider: () => providers.planningCenter({ hints: { default: { limit: 5, windowMs: 1000 } } }),
      engine: { timeScale: 20, planningCenter: { limit: 5 } },
      phaseMs: 0,
      requests,
      streams: 7,
      up: [0],
      down: [0, 5, 0, 0, 0, 0, 0],
    });
    expect(assertEndedOnce(out.ledgers)).toEqual({ 'status 200': 7 });
    expect(limitedCount(out, 'planningCenter')).toBe(0);
    // Its reset still ends the period: the seventh goes in the next one, not a period later.
    expect(out.arrivals.at(-1)!.at).toBeLessThanOrEqual(1000 + 5 + 100);
  });

  it('no 429, every request answered, within the periods it needs', () => {
    const SCALE = 20;
    const PERIOD = 20_000 / SCALE;
    fc.assert(
      fc.property(
        fc.record({
          limit: fc.integer({ min: 5, max: 100 }),
          highShare: fc.double({ min: 0.3, max: 1, noNaN: true }),
          calls: fc.array(
            fc.record({ at: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 5000 })), high: fc.boolean() }),
            { minLength: 1, maxLength: 150 },
          ),
          phaseMs: fc.integer({ min: 0, max: 60_000 }),
          skewMs: fc.oneof(fc.constant(0), fc.integer({ min: -30_000, max: 30_000 })),
          ...traffic,
        }),
        (o) => {
          const high = Math.max(1, Math.floor(o.limit * o.highShare));
          const requests: RunRequest[] = o.calls.map((c, i) => ({
            at: c.at,
            method: 'GET',
            path: `/people/v2/people?per_page=100&offset=${c.high ? 30_100 + i : i}`,
            limiter: i,
          }));
          const out = runProvider({
            simulated: 'planningCenter',
            provider: () =>
              providers.planningCenter({
                hints: {
                  default: { limit: o.limit, windowMs: PERIOD },
                  'high-offset': { limit: high, windowMs: PERIOD },
                },
              }),
            engine: {
              timeScale: SCALE,
              clockOffsetMs: o.skewMs,
              planningCenter: { limit: o.limit, highOffsetLimit: high },
            },
            phaseMs: o.phaseMs,
            requests,
            streams: o.streams,
            limiters: o.limiters,
            up: o.up,
            down: o.down,
          });
          const ends = assertEndedOnce(out.ledgers);
          expect(limitedCount(out, 'planningCenter')).toBe(0);
          expect(ends).toEqual({ 'status 200': requests.length });
          const nHigh = o.calls.filter((c) => c.high).length;
          const periods = Math.ceil((requests.length - nHigh) / o.limit) + Math.ceil(nHigh / high);
          const perStream = Math.ceil(requests.length / (o.streams * o.limiters));
          expect(out.lastEnd).toBeLessThanOrEqual(
            Math.max(...o.calls.map((c) => c.at)) +
              periods * (PERIOD + 100 + rttOf(o)) +
              (perStream + 2) * (rttOf(o) + 1),
          );
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('Pipedrive: 2-second windows, the daily POST/PUT budget, the block (virtual time)', () => {
  it('no 429 and no 403, past the day QuotaExhaustedError unsent, within the windows it needs', () => {
    fc.assert(
      fc.property(
        fc.record({
          plan: fc.constantFrom(
            'essential' as const,
            'advanced' as const,
            'professional' as const,
            'enterprise' as const,
          ),
          dailyLimit: fc.oneof(fc.constant(10_000), fc.integer({ min: 1, max: 60 })),
          calls: fc.array(
            fc.record({
              at: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 6000 })),
              method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
            }),
            { minLength: 1, maxLength: 200 },
          ),
          phaseMs: fc.integer({ min: 0, max: 86_400_000 }),
          skewMs: fc.oneof(fc.constant(0), fc.integer({ min: -30_000, max: 30_000 })),
          ...traffic,
        }),
        (o) => {
          const requests: RunRequest[] = o.calls.map((c, i) => ({
            at: c.at,
            method: c.method,
            path: `/v1/deals/${i}`,
            limiter: i,
          }));
          const out = runProvider({
            simulated: 'pipedrive',
            provider: () => providers.pipedrive({ plan: o.plan }),
            engine: { clockOffsetMs: o.skewMs, pipedrive: { plan: o.plan, dailyLimit: o.dailyLimit } },
            phaseMs: o.phaseMs,
            requests,
            streams: o.streams,
            limiters: o.limiters,
            up: o.up,
            down: o.down,
            // The day ends at midnight UTC, which may be minutes away: waiting for it is fine.
            options: { maxWaitMs: 60_000 },
          });
          const ends = assertEndedOnce(out.ledgers);
          expect(limitedCount(out, 'pipedrive')).toBe(0);
          const writes = o.calls.filter((c) => c.method === 'POST' || c.method === 'PUT').length;
          const refused = ends['QuotaExhaustedError'] ?? 0;
          expect((ends['status 200'] ?? 0) + refused).toBe(requests.length);
          expect(out.arrivals).toHaveLength(requests.length - refused);
          // The run starts at ROUND_START (noon UTC) plus the phase, on the server's clock.
          const nearMidnight =
            86_400_000 - ((((ROUND_START + o.phaseMs + o.skewMs) % 86_400_000) + 86_400_000) % 86_400_000) < 70_000;
          if (!nearMidnight) expect(refused).toBe(Math.max(0, writes - o.dailyLimit));
          const limit = { essential: 20, advanced: 40, professional: 80, enterprise: 120 }[o.plan];
          const windows = Math.ceil((requests.length - refused) / limit);
          const perStream = Math.ceil(requests.length / (o.streams * o.limiters));
          if (!nearMidnight)
            expect(out.lastEnd).toBeLessThanOrEqual(
              Math.max(...o.calls.map((c) => c.at)) +
                windows * (2000 + 1000 + 100 + rttOf(o)) +
                (perStream + 2) * (rttOf(o) + 1),
            );
        },
      ),
      {
        numRuns: 40,
        // A day that ends 59 s after the start (noon plus the phase): the write past the budget
        // waits for midnight (inside maxWaitMs) and goes, rather than failing.
        examples: [
          [
            {
              plan: 'essential',
              dailyLimit: 1,
              calls: [
                { at: 0, method: 'POST' },
                { at: 0, method: 'PUT' },
                { at: 0, method: 'GET' },
              ],
              phaseMs: 43_140_963,
              skewMs: 0,
              streams: 1,
              up: [37, 0],
              down: [0],
              limiters: 1,
            },
          ],
        ],
      },
    );
  });
});

describe('Fieldwire: per-endpoint minute and hour, the catch-all (virtual time, a minute in 1 s)', () => {
  it('no 429, every request answered, within the windows it needs', () => {
    const SCALE = 60;
    fc.assert(
      fc.property(
        fc.record({
          endpoints: fc.array(
            fc.record({ minute: fc.integer({ min: 3, max: 40 }), hourShare: fc.integer({ min: 2, max: 60 }) }),
            { minLength: 1, maxLength: 3 },
          ),
          catchAll: fc.oneof(fc.constant(3000), fc.integer({ min: 20, max: 200 })),
          calls: fc.array(
            fc.record({ at: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 5000 })), endpoint: fc.nat() }),
            { minLength: 1, maxLength: 150 },
          ),
          phaseMs: fc.integer({ min: 0, max: 3_600_000 }),
          skewMs: fc.oneof(fc.constant(0), fc.integer({ min: -30_000, max: 30_000 })),
          ...traffic,
        }),
        (o) => {
          const key = (e: number) => `GET /projects/:id/ep${e}`;
          const limits = Object.fromEntries(
            o.endpoints.map((e, k) => [key(k), { minute: e.minute, hour: e.minute * e.hourShare }]),
          );
          const hints: Record<string, { windowMs: number; limit?: number }> = {
            'catch-all': { limit: o.catchAll, windowMs: 300_000 / SCALE },
          };
          o.endpoints.forEach((_, k) => {
            hints[`${key(k)}:minute`] = { windowMs: 60_000 / SCALE };
            hints[`${key(k)}:hour`] = { windowMs: 3_600_000 / SCALE };
          });
          const requests: RunRequest[] = o.calls.map((c, i) => ({
            at: c.at,
            method: 'GET',
            path: `/projects/${1000 + i}/ep${c.endpoint % o.endpoints.length}`,
            limiter: i,
          }));
          const out = runProvider({
            simulated: 'fieldwire',
            provider: () => providers.fieldwire({ endpoints: limits, hints }),
            engine: {
              timeScale: SCALE,
              clockOffsetMs: o.skewMs,
              fieldwire: { endpoints: limits, catchAll: o.catchAll },
            },
            phaseMs: o.phaseMs,
            requests,
            streams: o.streams,
            limiters: o.limiters,
            up: o.up,
            down: o.down,
          });
          const ends = assertEndedOnce(out.ledgers);
          expect(limitedCount(out, 'fieldwire')).toBe(0);
          expect(ends).toEqual({ 'status 200': requests.length });
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('Fieldwire: the catch-all, which tells nothing before its 429 (virtual time, 5 minutes in 5 s)', () => {
  const SCALE = 60;
  const WINDOW = 300_000 / SCALE;
  const limits = { 'GET /projects/:id/tasks': { minute: 10_000, hour: 100_000 } };
  const provider = (catchAll: number) =>
    providers.fieldwire({
      endpoints: limits,
      hints: {
        'catch-all': { limit: catchAll, windowMs: WINDOW },
        'GET /projects/:id/tasks:minute': { windowMs: 60_000 / SCALE },
        'GET /projects/:id/tasks:hour': { windowMs: 3_600_000 / SCALE },
      },
    });
  const run = (o: {
    catchAll: number;
    at: readonly number[];
    phaseMs: number;
    streams: number;
    up: number[];
    down: number[];
    limiters: number;
  }) =>
    runProvider({
      simulated: 'fieldwire',
      provider: () => provider(o.catchAll),
      engine: { timeScale: SCALE, fieldwire: { endpoints: limits, catchAll: o.catchAll } },
      phaseMs: o.phaseMs,
      requests: o.at.map((at, i) => ({ at, method: 'GET', path: `/projects/${i}/tasks`, limiter: i })),
      streams: o.streams,
      limiters: o.limiters,
      up: o.up,
      down: o.down,
    });

  it("one request, then a burst 2 s later, at any phase of the server's 5 s: no 429", () => {
    // Counted as a window opened by the first request, the limit went at its end and again at
    // the next one's start: with the server's windows aligned to its clock 3 s before ours,
    // both bursts fell in one of them, and the second was refused.
    for (const phaseMs of [0, 3000, 4900]) {
      const out = run({
        catchAll: 20,
        at: [0, ...Array<number>(39).fill(2000)],
        phaseMs,
        streams: 40,
        up: [5],
        down: [5],
        limiters: 1,
      });
      expect(assertEndedOnce(out.ledgers)).toEqual({ 'status 200': 40 });
      expect(limitedCount(out, 'fieldwire')).toBe(0);
    }
  });

  it("bursts at random times, at any phase of the server's windows: no 429, within the windows it needs", () => {
    fc.assert(
      fc.property(
        fc.record({
          catchAll: fc.integer({ min: 3, max: 40 }),
          bursts: fc.array(
            fc.record({ at: fc.integer({ min: 0, max: 12_000 }), size: fc.integer({ min: 1, max: 40 }) }),
            { minLength: 1, maxLength: 5 },
          ),
          phaseMs: fc.integer({ min: 0, max: 3_600_000 }),
          ...traffic,
        }),
        (o) => {
          const at = o.bursts.flatMap((b) => Array<number>(b.size).fill(b.at));
          const out = run({ ...o, at });
          expect(assertEndedOnce(out.ledgers)).toEqual({ 'status 200': at.length });
          expect(limitedCount(out, 'fieldwire')).toBe(0);
          // A sliding window frees each request a window after its answer (and the guard).
          const windows = Math.ceil(at.length / o.catchAll);
          const perStream = Math.ceil(at.length / (o.streams * o.limiters));
          expect(out.lastEnd).toBeLessThanOrEqual(
            Math.max(...at) + windows * (WINDOW + 100 + rttOf(o)) + (perStream + 2) * (rttOf(o) + 1),
          );
        },
      ),
      { numRuns: 40 },
    );
  });
});
