/**
 * A legacy Fieldwire endpoint over real sockets: no header until a 429, 10 per aligned second.
 * The limiter infers the capacity from the first 429 and paces the following windows by it.
 * Real time: asserted are the 429 bound and that nothing is lost, never a duration.
 */
import { describe, expect, it } from '@jest/globals';
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { fromFetch } from 'rxjs/fetch';
import { createLimiter, providers, rateLimit } from '../../lib/index.js';
import { startSimulator } from '../../lib/testing/index.js';

const KEY = 'GET /projects/:id/legacy_reports';

describe('a legacy endpoint no header describes, over real sockets', () => {
  it('40 GETs over 10 streams: the overflow of the first window is refused, nothing is lost', async () => {
    const sim = await startSimulator({
      latencyMs: 2,
      fieldwire: { legacy: [KEY], legacyLimit: 10, legacyWindowMs: 1000 },
    });
    try {
      // Start just after a second boundary: the first window's requests then all fall in it (a
      // boundary among them would count a success of the window before; see the virtual suite).
      await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 100));
      const limiter = createLimiter({ provider: providers.fieldwire(), key: 'token-L' });
      const statuses = await lastValueFrom(
        from(Array.from({ length: 40 }, (_, i) => i)).pipe(
          mergeMap((i) => {
            const path = `/projects/${100 + i}/legacy_reports`;
            return fromFetch(`${sim.urlFor('fieldwire')}${path}`, {
              headers: { authorization: 'Bearer token-L' },
            }).pipe(
              rateLimit(limiter, { method: 'GET', url: path }),
              mergeMap(async (res) => {
                await res.arrayBuffer();
                return res.status;
              }),
            );
          }, 10),
          toArray(),
        ),
      );
      const counts = Object.values(sim.stats().fieldwire)[0];
      expect(statuses).toEqual(Array(40).fill(200));
      expect(counts?.ok).toBe(40);
      // 10 (the requests in flight at the first 429) is the bound asserted in virtual time. Here
      // the margin is one more window's worth: on a loaded machine an event-loop stall of a
      // second delivers requests sent in one window into the next (seen beside a CPU burner).
      expect(counts?.limited).toBeLessThanOrEqual(2 * 10);
      expect(counts?.blocked).toBe(0);
      const bucket = limiter.snapshot.buckets.find((b) => b.name === `${KEY}:minute`);
      // The exact figures are asserted in virtual time. Here a stalled event loop or requests
      // reaching the server out of order may make the first guess cautious (a lower capacity, a
      // longer window: slower, never a 429), never bolder.
      expect(bucket?.source).toBe('inferred');
      expect(bucket?.limit).toBeLessThanOrEqual(10);
    } finally {
      await sim.close();
    }
  }, 30_000);
});
