/**
 * Atlassian (Jira Cloud) under arbitrary traffic, in virtual time against the simulator: the
 * burst limit of each endpoint and method (a token bucket refilled at its steady rate, which the
 * profile paces evenly) and the hourly points quota (aligned to the UTC hour, its `r` told only
 * once less than a fifth is left), with reads, creates, updates and deletes over a few
 * endpoints, at any time or all at once, 1–30 streams, latency jittered each way, one to three
 * limiters on the app, a server clock that may be off. Writes go to many issues (an issue's
 * write limit is a bucket only once a 429 names it: docs/providers/atlassian.md), and a request
 * costs one point (a read's real points are known only from what it returns: ibid.). No 429;
 * every request ends with its answer, or unsent when the quota cannot reset within
 * `maxWaitMs`; the run takes no longer than the rates allow plus round trips.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { providers } from '../../lib/index.js';
import { assertEndedOnce } from './harness.js';
import { limitedCount, runProvider, type RunRequest, traffic } from './providerRun.js';

const METHODS = ['GET', 'POST', 'PUT', 'DELETE'] as const;
type Method = (typeof METHODS)[number];

const pathOf = (method: Method, endpoint: number, i: number) =>
  method === 'POST'
    ? `/rest/api/3/issue${endpoint ? '' : `/ABC-${i + 1}/comment`}`
    : endpoint
      ? `/rest/api/3/issue/ABC-${i + 1}`
      : `/rest/api/3/project/${i}`;

const calls = fc.array(
  fc.record({
    at: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3000 })),
    method: fc.constantFrom(...METHODS),
    endpoint: fc.integer({ min: 0, max: 1 }),
  }),
  { minLength: 1, maxLength: 120 },
);

describe('Atlassian burst limits and points quota (virtual time, the simulator)', () => {
  it('burst limits of 2–40 a second per endpoint and method: no 429, every request answered, at the steady rate', () => {
    fc.assert(
      fc.property(
        fc.record({
          rates: fc.record({
            GET: fc.integer({ min: 2, max: 40 }),
            POST: fc.integer({ min: 2, max: 40 }),
            PUT: fc.integer({ min: 2, max: 40 }),
            DELETE: fc.integer({ min: 2, max: 40 }),
          }),
          calls,
          ...traffic,
          skewMs: fc.oneof(fc.constant(0), fc.integer({ min: -30_000, max: 30_000 })),
        }),
        (o) => {
          const requests: RunRequest[] = o.calls.map((c, i) => ({
            at: c.at,
            method: c.method,
            path: pathOf(c.method, c.endpoint, i),
            limiter: i,
          }));
          const out = runProvider({
            simulated: 'atlassian',
            provider: () => providers.atlassian({ auth: 'api-token', burstPerSecond: o.rates }),
            engine: {
              clockOffsetMs: o.skewMs,
              atlassian: { quota: false, burstPerSecond: { ...o.rates, PATCH: 50 } },
            },
            phaseMs: 0,
            requests,
            streams: o.streams,
            limiters: o.limiters,
            up: o.up,
            down: o.down,
          });
          const ends = assertEndedOnce(out.ledgers);
          expect(limitedCount(out, 'atlassian')).toBe(0);
          expect((ends['status 200'] ?? 0) + (ends['status 201'] ?? 0)).toBe(requests.length);
          // Evenly paced, each endpoint's requests take a gap of 1 / rate each; streams that wait
          // on one endpoint hold back the others, so the endpoints' times add up.
          const rtt = Math.max(...o.up) + Math.max(...o.down);
          let need = 0;
          for (const m of METHODS)
            for (const e of [0, 1]) {
              const k = o.calls.filter((c) => c.method === m && c.endpoint === e).length;
              need += (k * 1000) / o.rates[m];
            }
          const lastAt = Math.max(...o.calls.map((c) => c.at));
          const perStream = Math.ceil(requests.length / (o.streams * o.limiters));
          expect(out.lastEnd).toBeLessThanOrEqual(lastAt + 1.05 * need + (perStream + 2) * (rtt + 1) + 100);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('a points quota of 20–200 an hour, an hour in 2 s, at any phase of the hour: no 429, every request answered or refused unsent', () => {
    const SCALE = 1800;
    const HOUR = 3_600_000 / SCALE;
    fc.assert(
      fc.property(
        fc.record({
          quota: fc.integer({ min: 20, max: 200 }),
          calls,
          ...traffic,
          phaseMs: fc.integer({ min: 0, max: 3_600_000 }),
          skewMs: fc.oneof(fc.constant(0), fc.integer({ min: -3000, max: 3000 })),
          waitForHour: fc.boolean(),
        }),
        (o) => {
          const requests: RunRequest[] = o.calls.map((c, i) => ({
            at: c.at,
            method: c.method,
            path: pathOf(c.method, c.endpoint, i),
            limiter: i,
          }));
          const out = runProvider({
            simulated: 'atlassian',
            provider: () => providers.atlassian({ hints: { quota: { limit: o.quota, windowMs: HOUR } } }),
            engine: {
              timeScale: SCALE,
              clockOffsetMs: o.skewMs,
              atlassian: { quota: o.quota, readPoints: 1, writePoints: 1 },
            },
            phaseMs: o.phaseMs,
            requests,
            streams: o.streams,
            limiters: o.limiters,
            up: o.up,
            down: o.down,
            options: { maxWaitMs: o.waitForHour ? 2 * HOUR : HOUR / 100 },
          });
          const ends = assertEndedOnce(out.ledgers);
          expect(limitedCount(out, 'atlassian')).toBe(0);
          const answered = (ends['status 200'] ?? 0) + (ends['status 201'] ?? 0);
          expect(answered + (ends['QuotaExhaustedError'] ?? 0)).toBe(requests.length);
          expect(out.arrivals).toHaveLength(answered);
          if (o.waitForHour) {
            expect(answered).toBe(requests.length);
            // Hours aligned to the clock: each spent one waits for the next, plus the guard.
            const rtt = Math.max(...o.up) + Math.max(...o.down);
            const hours = Math.ceil(requests.length / o.quota);
            const lastAt = Math.max(...o.calls.map((c) => c.at));
            const perStream = Math.ceil(requests.length / (o.streams * o.limiters));
            expect(out.lastEnd).toBeLessThanOrEqual(
              lastAt + hours * (HOUR + 1000 + 100 + rtt) + (perStream + 2) * (rtt + 1),
            );
          }
        },
      ),
      { numRuns: 50 },
    );
  });
});
