import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, from, map, mergeMap, tap } from 'rxjs';
import { createLimiter, providers, rateLimit } from '../../lib/index.js';
import { createSimulatorEngine, virtualProvider } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

// Planning Center: "Individual endpoints may enforce their own limits that are lower or higher
// than the defaults ... never hard-code rate limit values" (its rate-limit docs). A request with
// an offset above 30,000 counts against the default bucket and the stricter high-offset one, and
// its answer describes only the stricter one: it says nothing of the default bucket's limit.

const START = Date.UTC(2026, 10, 23, 12, 0, 0);

/** `paths` asked for at once through one limiter (no hints), against a server of `limit` per 20 s. */
function run(paths: readonly string[], limit: number, latencyMs: number) {
  return inVirtualTime(({ now }) => {
    const engine = createSimulatorEngine({
      latencyMs,
      planningCenter: { limit, highOffsetLimit: Math.floor(limit * 0.75) },
      now: () => START + asyncScheduler.now(),
    });
    const api = virtualProvider(engine, asyncScheduler);
    const limiter = createLimiter({ provider: providers.planningCenter(), key: 'pco-token' });
    const statuses: number[] = [];
    const done: number[] = [];
    let last = 0;
    from(paths)
      .pipe(
        mergeMap((path) =>
          defer(() =>
            api
              .request('planningCenter', { method: 'GET', path, token: 'pco-token' })
              .pipe(tap((r) => statuses.push(r.status))),
          ).pipe(
            rateLimit(limiter, { method: 'GET', url: path }),
            map((r) => {
              last = now();
              return done.push(r.status);
            }),
          ),
        ),
      )
      .subscribe();
    return { statuses, done, snapshot: () => limiter.snapshot, last: () => last };
  });
}

describe('providers.planningCenter: an answer about the high-offset bucket does not end the default bucket’s cold start', () => {
  const plain = (n: number) => Array.from({ length: n }, (_, i) => `/people/v2/people?offset=${i}`);

  it.each([
    [1, 30, 0],
    [1, 30, 40],
    [1, 12, 5],
    [1, 50, 120],
    [5, 30, 50],
    [10, 30, 50],
    [30, 30, 50],
    [150, 30, 50],
  ])(
    '%i high-offset requests first, then a burst into an endpoint limit of %i (latency %i ms): no 429, nothing lost',
    (first, limit, latencyMs) => {
      const highs = Array.from({ length: first }, (_, i) => `/people/v2/people?offset=${30_100 + i}`);
      const paths = [...highs, ...plain(limit + 30)];
      const out = run(paths, limit, latencyMs);
      expect(out.done).toHaveLength(paths.length);
      expect(out.statuses.filter((s) => s === 429)).toEqual([]);
      // The default bucket learnt the endpoint's limit from its own answers, not from the hint (100).
      expect(out.snapshot().buckets.find((b) => b.name === 'default')?.limit).toBe(limit);
    },
  );

  it('high-offset requests alone still ramp up to their own bucket’s pace: the default bucket does not hold them one at a time', () => {
    // 60 high-offset requests into a high-offset limit of 75: nothing to wait for, so they take
    // a few round trips of the ramp (1, 2, 4, … in flight), not one round trip each.
    const paths = Array.from({ length: 60 }, (_, i) => `/people/v2/people?offset=${30_001 + i}`);
    const out = run(paths, 100, 50);
    expect(out.done).toHaveLength(60);
    expect(out.statuses.filter((s) => s === 429)).toEqual([]);
    // A round trip is 100 ms: one at a time would take 6 s.
    expect(out.last()).toBeLessThan(1500);
  });
});
