/**
 * Tick probes: where a window's last slots go when its end, read through a clock offset known
 * only to an interval, is uncertain. Every slot must go before the earliest the window may end
 * (so none is lost to the next window), across the span where the server's next second ticks.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import { planTickProbes } from '../../lib/core/windowEnd.js';

describe('tick probes', () => {
  it('go before the earliest end the window may have, across where the server second ticks', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 1000, max: 10_000 }),
        fc.integer({ min: 1000, max: 2000 }),
        fc.integer({ min: -40_000, max: 40_000 }),
        fc.integer({ min: 101, max: 1000 }),
        fc.integer({ min: 10, max: 500 }),
        (now, endIn, slack, lower, width, limit) => {
          const end = now + endIn;
          const offset = { lowerMs: lower, upperMs: lower + width };
          const probes = planTickProbes(now, slack, end, limit, offset);
          if (probes === undefined) return;
          expect(probes.length).toBe(Math.min(8, Math.floor(limit / 10)));
          for (const p of probes) {
            expect(p).toBeGreaterThanOrEqual(now);
            expect(p).toBeLessThan(end - slack);
          }
          // Latest first, and within the span where the server's next second ticks over.
          expect([...probes].sort((a, b) => b - a)).toEqual(probes);
          const tick = Math.ceil((now + offset.upperMs) / 1000) * 1000;
          for (const p of probes) {
            expect(p).toBeGreaterThanOrEqual(tick - offset.upperMs);
            expect(p).toBeLessThanOrEqual(tick - offset.lowerMs);
          }
        },
      ),
    );
  });

  it('are not planned without a Date header, with the offset pinned, a small limit or an end far away', () => {
    const pinned = { lowerMs: 30_000, upperMs: 30_050 };
    expect(planTickProbes(0, 2000, 6000, 120, { lowerMs: -Infinity, upperMs: Infinity })).toBeUndefined();
    expect(planTickProbes(0, 2000, 6000, 120, pinned)).toBeUndefined();
    expect(planTickProbes(0, 2000, 6000, 9, { lowerMs: 30_000, upperMs: 31_000 })).toBeUndefined();
    expect(planTickProbes(0, 2000, 6000, 120, { lowerMs: 30_000, upperMs: 31_000 })).toHaveLength(8);
    // A window ending in an hour: planned at a later answer, within a minute of its end.
    expect(planTickProbes(0, 2000, 3_600_000, 120, { lowerMs: 30_000, upperMs: 31_000 })).toBeUndefined();
  });
});
