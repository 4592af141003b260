/**
 * Another client of the same token opens the provider's window before our limiter sees it (an
 * SSR render and the browser that hydrates it; a cron job beside a worker). Our first reading
 * then overstates the window's end by up to its rounding, and the server opens the next window
 * while we still count on the old one. A newer reading must win over that estimate: no refill
 * on the stale figure, no 429, no 403 block.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { asyncScheduler } from 'rxjs';
import { createLimiter, providers, rateLimit } from '../../lib/index.js';
import { createSimulatorEngine, virtualProvider } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
const RUNS = 40;

/**
 * Pipedrive advanced (40 per 2 s, reset as whole seconds left), 20 ms latency. The other client
 * spends one request at `t0`; ours sends one GET 0.7 s later, then 200 GETs, 20 at a time,
 * 2.25 s after `t0`.
 */
function run(t0: number) {
  return inVirtualTime(({ now }) => {
    const engine = createSimulatorEngine({
      latencyMs: 20,
      pipedrive: { plan: 'advanced' },
      now: () => START + asyncScheduler.now(),
    });
    const api = virtualProvider(engine, asyncScheduler);
    const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: 'token-S' });
    const outcomes: string[] = [];
    let last = 0;
    const ours = (i: number) =>
      api
        .request('pipedrive', { path: `/v1/deals/${i}`, token: 'token-S' })
        .pipe(rateLimit(limiter, { url: `/v1/deals/${i}` }));
    asyncScheduler.schedule(() => api.request('pipedrive', { path: '/v1/deals/0', token: 'token-S' }).subscribe(), t0);
    asyncScheduler.schedule(
      () =>
        ours(1).subscribe({ next: (r) => outcomes.push(String(r.status)), error: (e: Error) => outcomes.push(e.name) }),
      t0 + 700,
    );
    asyncScheduler.schedule(() => {
      let next = 0;
      const start = () => {
        if (next >= 200) return;
        const i = 100 + next++;
        ours(i).subscribe({
          next: (r) => {
            outcomes.push(String(r.status));
            last = now();
          },
          error: (e: Error) => (outcomes.push(e.name), start()),
          complete: start,
        });
      };
      for (let k = 0; k < 20; k++) start();
    }, t0 + 2250);
    return { outcomes, engine, burstMs: () => last - (t0 + 2250) };
  });
}

describe('a reading newer than our estimate of the window wins', () => {
  it('another client opening the window first costs no 429 and no block, whatever its phase', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1999 }), (t0) => {
        const out = run(t0);
        const counts = Object.values(out.engine.stats().pipedrive)[0]!;
        expect(counts.limited).toBe(0);
        expect(out.outcomes).toEqual(Array(201).fill('200'));
        // 200 requests at 40 per 2 s: the last goes 4 windows after the first, plus per window
        // the reset guard (50 ms) and a round trip (40 ms); never a window more.
        expect(out.burstMs()).toBeLessThanOrEqual(8000 + 20 + 4 * 90);
      }),
      { numRuns: RUNS },
    );
  });
});
