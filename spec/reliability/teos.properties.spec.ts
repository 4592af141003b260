/**
 * TEOS under arbitrary traffic, in virtual time against the simulator (a minute compressed to a
 * second, a day to 24 minutes): a rolling minute and a rolling day that count every call, even
 * throttled ones; headers only after a few calls to an endpoint; resets as ISO 8601 instants on
 * a server clock that may be off. Calls at any time or all at once, 1–30 streams, latency
 * jittered each way (counted in another order than sent), one to three limiters on the key. No
 * 429; every call ends with its answer or, when the day cannot free within `maxWaitMs`, with
 * QuotaExhaustedError unsent; the run takes no longer than the windows it needs.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { providers } from '../../lib/index.js';
import { assertEndedOnce } from './harness.js';
import { limitedCount, runProvider, type RunRequest, traffic } from './providerRun.js';

const SCALE = 60;
const MINUTE = 60_000 / SCALE;
const DAY = 86_400_000 / SCALE;

describe('TEOS rolling minute and day (virtual time, the simulator, a minute in a second)', () => {
  it('no 429; every call answered, or refused unsent past the day; within the windows it needs', () => {
    fc.assert(
      fc.property(
        fc.record({
          perMinute: fc.integer({ min: 3, max: 40 }),
          perDay: fc.oneof(fc.constant(10_000), fc.integer({ min: 10, max: 150 })),
          headersAfter: fc.integer({ min: 1, max: 4 }),
          calls: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 5000 })), {
            minLength: 1,
            maxLength: 100,
          }),
          endpoints: fc.integer({ min: 1, max: 4 }),
          ...traffic,
          skewMs: fc.oneof(fc.constant(0), fc.integer({ min: -30_000, max: 30_000 })),
          burst: fc.boolean(),
          waitForDay: fc.boolean(),
        }),
        (o) => {
          const requests: RunRequest[] = o.calls.map((at, i) => ({
            at,
            method: 'GET',
            path: `/api/v1/items${'/x'.repeat(i % o.endpoints)}/${i}`,
            limiter: i,
          }));
          const out = runProvider({
            simulated: 'teos',
            provider: () =>
              providers.teos({
                hints: {
                  minute: { limit: o.perMinute, windowMs: MINUTE, ...(o.burst ? { pacing: 'burst' as const } : {}) },
                  day: { limit: o.perDay, windowMs: DAY },
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
            options: { maxWaitMs: o.waitForDay ? 2 * DAY : 10 * MINUTE },
            horizonMs: 4 * DAY,
          });
          const ends = assertEndedOnce(out.ledgers);
          expect(limitedCount(out, 'teos')).toBe(0);
          const n = requests.length;
          const served = o.waitForDay ? n : Math.min(n, o.perDay);
          expect(ends).toEqual({
            'status 200': served,
            ...(served < n ? { QuotaExhaustedError: n - served } : {}),
          });
          expect(out.arrivals).toHaveLength(served);
          // A rolling window frees each call a window after its answer (and the guard); a day
          // spent frees when its oldest call ages out.
          const rtt = Math.max(...o.up) + Math.max(...o.down);
          const minutes = Math.ceil(served / o.perMinute);
          const days = Math.ceil(served / o.perDay) - 1;
          const lastAt = Math.max(...o.calls);
          const perStream = Math.ceil(served / (o.streams * o.limiters));
          expect(out.lastEnd).toBeLessThanOrEqual(
            lastAt + days * (DAY + rtt + 100) + minutes * (MINUTE + rtt + 100) + (perStream + 2) * (rtt + 1),
          );
        },
      ),
      {
        numRuns: 50,
        examples: [
          [
            {
              perMinute: 10,
              perDay: 10,
              headersAfter: 3,
              calls: [0, 0, 0, 0, 0, 0, 0],
              endpoints: 2,
              streams: 4,
              up: [0, 2, 1, 0, 0],
              down: [0, 0, 2, 2, 2],
              limiters: 1,
              skewMs: 0,
              burst: true,
              waitForDay: false,
            },
          ],
        ],
      },
    );
  });
});
