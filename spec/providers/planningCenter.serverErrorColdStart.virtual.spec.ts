import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, from, map, mergeMap, of, timer, type Observable } from 'rxjs';
import { createLimiter, providers, rateLimit } from '../../lib/index.js';
import { createSimulatorEngine, virtualProvider, type SimulatorResponse } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

// Planning Center: "Individual endpoints may enforce their own limits that are lower or higher
// than the defaults" (100 per 20 s), so a limiter learns the limit from the first answers before
// it sends at the hint (its cold start). An answer that describes no bucket at all ends the cold
// start: that server tells nothing of its limits, and the hints rule. A gateway's 502 page (or
// any server error that tells nothing) was taken for such an answer: the next requests went at
// the hint, 100 at once into an endpoint of 40. A server error with no figures now only widens
// the cold start, as a success that describes other buckets does.

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
const LIMIT = 40;

/**
 * `n` requests asked for at once through one limiter (no hints); the first `errors` sends are
 * answered by a gateway with `status` and no Planning Center headers (the server never sees them).
 */
function run(n: number, errors: number, status: number, latencyMs: number) {
  return inVirtualTime(() => {
    const engine = createSimulatorEngine({
      latencyMs,
      planningCenter: { limit: LIMIT },
      now: () => START + asyncScheduler.now(),
    });
    const api = virtualProvider(engine, asyncScheduler);
    const statuses: number[] = [];
    let sends = 0;
    const send = (path: string): Observable<SimulatorResponse> =>
      defer(() => {
        if (sends++ < errors)
          return timer(latencyMs, asyncScheduler).pipe(
            map((): SimulatorResponse => ({ status, headers: { 'Content-Type': 'text/html' }, body: 'Bad Gateway' })),
          );
        return api.request('planningCenter', { method: 'GET', path, token: 'pco-token' }).pipe(
          map((r) => {
            statuses.push(r.status);
            return r;
          }),
        );
      });
    const limiter = createLimiter({ provider: providers.planningCenter(), key: 'pco-token' });
    const ended: number[] = [];
    from(Array.from({ length: n }, (_, i) => `/people/v2/people?offset=${i}`))
      .pipe(
        mergeMap((path) => send(path).pipe(rateLimit(limiter, { method: 'GET', url: path }))),
        mergeMap((r) => of(ended.push(r.status))),
      )
      .subscribe();
    return { statuses, ended };
  });
}

describe('providers.planningCenter: a server error that tells nothing does not end the cold start (virtual time)', () => {
  it.each([
    [502, 1, 50],
    [502, 3, 50],
    [503, 1, 200],
    [500, 2, 20],
  ])(
    'a %i first (%i of them, %i ms each way), then a burst into an endpoint limit of 40: no 429, nothing lost',
    (status, errors, latencyMs) => {
      const out = run(100, errors, status, latencyMs);
      expect(out.ended).toHaveLength(100);
      expect(out.statuses.filter((s) => s === 429)).toEqual([]);
    },
  );
});
