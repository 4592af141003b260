/**
 * A request leaves some time after its permit was granted: the event loop is busy, a socket
 * is being opened, a body serialized. Granted at the end of one window, it can reach the server
 * in the next one, after the limiter refilled. Virtual time; the lag is injected between the
 * grant and the subscription to the request.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { asyncScheduler, defer, from, mergeMap, switchMap, timer } from 'rxjs';
import { createLimiter, rateLimit } from '../../lib/index.js';
import { createSimulatorEngine, virtualProvider } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { countedAs, WINDOW_CASES, type WindowCase } from '../helpers/windowCases.js';

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
/**
 * Up to 6 × the limiter's `resetGuardMs` and 15 × the answer's latency: a stalled event loop, not
 * a slow network. (Tried up to 400 ms: no 429 either. A permit counts in its window until its
 * answer, and a refill leaves room for what is still in flight, so a late send lands in a
 * window that already counts it.)
 */
const MAX_LAG_MS = 300;

function run(c: WindowCase, o: { phaseMs: number; lags: readonly number[]; streams: number; requests: number }) {
  return inVirtualTime(({ now }) => {
    const start = START + o.phaseMs;
    const engine = createSimulatorEngine({ latencyMs: 20, ...c.options, now: () => start + asyncScheduler.now() });
    const api = virtualProvider(engine, asyncScheduler);
    const limiter = createLimiter({ provider: c.provider(), key: 'token-S' });
    const statuses: number[] = [];
    let last = 0;
    from(Array.from({ length: o.requests }, (_, i) => i))
      .pipe(
        mergeMap((i) => {
          const path = c.path(i);
          const lag = o.lags[i % o.lags.length] ?? 0;
          // Subscribed when the permit is granted; the request leaves `lag` ms later.
          const send = defer(() => timer(lag).pipe(switchMap(() => api.request(c.sim, { path, token: 'token-S' }))));
          return send.pipe(rateLimit(limiter, { url: path }));
        }, o.streams),
      )
      .subscribe({
        next: (r) => {
          statuses.push(r.status);
          last = now();
        },
      });
    return { statuses, engine, makespan: () => last };
  });
}

describe('a request sent some time after its permit (virtual time)', () => {
  for (const [name, c] of Object.entries(WINDOW_CASES)) {
    it(`${name}: each request leaves 0–${MAX_LAG_MS} ms after its grant, 0 × 429`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 1999 }),
          fc.array(fc.integer({ min: 0, max: MAX_LAG_MS }), { minLength: 1, maxLength: 20 }),
          fc.integer({ min: 1, max: 30 }),
          (phaseMs, lags, streams) => {
            const out = run(c, { phaseMs, lags, streams, requests: 200 });
            // `rateLimit` retries a 429, so the statuses alone would hide one: the server counts.
            expect(out.engine.statsFor(c.sim, countedAs(c, 'token-S')).limited).toBe(0);
            expect(out.statuses.filter((s) => s !== 200)).toEqual([]);
            expect(out.statuses).toHaveLength(200);
          },
        ),
        { numRuns: 15 },
      );
    });
  }
});
