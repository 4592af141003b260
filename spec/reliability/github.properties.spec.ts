/**
 * GitHub under arbitrary traffic, in virtual time against the simulator (an hour compressed to a
 * minute): the primary limits per resource (`core`, `search`, `code_search`; each window opened
 * by its first request, resets in whole unix seconds) and the secondary content-creation limits
 * (sliding; a 403 with `retry-after` past them), in random mixes of reads, searches and writes,
 * at any time or all at once, 1–30 streams, latency jittered each way, one to three limiters on
 * the token, a server clock that may be off. No rate-limit 403; every request ends with its
 * answer; the run takes no longer than the windows it needs, each with its reset's second of
 * rounding, the guard and a round trip.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { providers } from '../../lib/index.js';
import { assertEndedOnce } from './harness.js';
import { limitedCount, runProvider, serverStatuses, type RunRequest, traffic } from './providerRun.js';

const SCALE = 60;
const KINDS = ['core', 'search', 'code', 'write'] as const;
type Kind = (typeof KINDS)[number];

const pathOf = (kind: Kind, i: number) =>
  kind === 'search'
    ? `/search/issues?q=${i}`
    : kind === 'code'
      ? `/search/code?q=${i}`
      : kind === 'write'
        ? `/repos/octo/hello/issues/${i}/comments`
        : `/repos/octo/hello/issues/${i}`;

describe('GitHub primary and secondary limits (virtual time, the simulator, an hour in a minute)', () => {
  it('no rate-limit 403, every request answered, within the windows it needs', () => {
    fc.assert(
      fc.property(
        fc.record({
          core: fc.integer({ min: 20, max: 200 }),
          perMinute: fc.integer({ min: 5, max: 40 }),
          calls: fc.array(
            fc.record({
              at: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 4000 })),
              kind: fc.constantFrom(...KINDS),
            }),
            { minLength: 1, maxLength: 120 },
          ),
          ...traffic,
          phaseMs: fc.integer({ min: 0, max: 60_000 }),
          skewMs: fc.oneof(fc.constant(0), fc.integer({ min: -5000, max: 5000 })),
          limitedStatus: fc.constantFrom(403 as const, 429 as const),
        }),
        (o) => {
          const requests: RunRequest[] = o.calls.map((c, i) => ({
            at: c.at,
            method: c.kind === 'write' ? 'POST' : 'GET',
            path: pathOf(c.kind, i),
            limiter: i,
          }));
          const perHour = Math.max(o.perMinute, 3 * o.perMinute);
          const out = runProvider({
            simulated: 'github',
            provider: () =>
              providers.github({
                hints: {
                  core: { limit: o.core, windowMs: 3_600_000 / SCALE },
                  search: { windowMs: 60_000 / SCALE },
                  code_search: { windowMs: 60_000 / SCALE },
                  'content:minute': { limit: o.perMinute, windowMs: 60_000 / SCALE },
                  'content:hour': { limit: perHour, windowMs: 3_600_000 / SCALE },
                },
              }),
            engine: {
              timeScale: SCALE,
              clockOffsetMs: o.skewMs,
              github: {
                core: o.core,
                contentPerMinute: o.perMinute,
                contentPerHour: perHour,
                limitedStatus: o.limitedStatus,
              },
            },
            phaseMs: o.phaseMs,
            requests,
            streams: o.streams,
            limiters: o.limiters,
            up: o.up,
            down: o.down,
          });
          assertEndedOnce(out.ledgers);
          expect(limitedCount(out, 'github')).toBe(0);
          const ok = (serverStatuses(out.arrivals)[200] ?? 0) + (serverStatuses(out.arrivals)[201] ?? 0);
          expect(ok).toBe(requests.length);
          expect(out.arrivals).toHaveLength(requests.length);
          // Windows each resource needs (core counts writes too), each at most its length, the
          // second a whole-second reset may add, the guard and a round trip; streams that wait
          // on one resource hold back the others, so the resources' times add up.
          const n = (k: Kind) => o.calls.filter((c) => c.kind === k).length;
          const rtt = Math.max(...o.up) + Math.max(...o.down);
          const step = (w: number) => w + 1000 + 100 + rtt;
          const coreWindows = Math.ceil((n('core') + n('write')) / o.core);
          const need =
            Math.max(0, coreWindows - 1) * step(60_000) +
            Math.max(0, Math.ceil(n('search') / 30) - 1) * step(1000) +
            Math.max(0, Math.ceil(n('code') / 10) - 1) * step(1000) +
            Math.max(0, Math.ceil(n('write') / o.perMinute) - 1) * step(1000);
          const lastAt = Math.max(...o.calls.map((c) => c.at));
          const perStream = Math.ceil(requests.length / (o.streams * o.limiters));
          expect(out.lastEnd).toBeLessThanOrEqual(lastAt + need + (perStream + 4) * (rtt + 1) + 1200);
        },
      ),
      { numRuns: 50 },
    );
  });
});
