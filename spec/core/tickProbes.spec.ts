/**
 * Tick probes: where a window's last slots go when its end, read through a clock offset known
 * only to an interval, is uncertain. Every slot must go before the earliest the window may end
 * (so none is lost to the next window), across the span where the server's next second ticks.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import { createBucket } from '../../lib/core/buckets.js';
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
          const plan = planTickProbes(now, slack, end, limit, offset);
          if (plan === undefined) return;
          const probes = plan.at;
          expect(probes.length).toBe(Math.min(8, Math.floor(limit / 10)));
          for (const p of probes) {
            expect(p).toBeGreaterThanOrEqual(now);
            expect(p).toBeLessThan(end - slack);
          }
          // Latest first. The first pass (the last of `at`) within the span where one of the
          // server's seconds still to come may tick over (it ticks at our S − offset, the offset
          // anywhere in its interval); the later pass within the next second's span.
          expect([...probes].sort((a, b) => b - a)).toEqual(probes);
          const firstPass = probes.slice(plan.later);
          // Half go on the later pass, unless it would not end before the window may.
          const fits = firstPass[0]! + 1000 < end - slack - 100;
          if (fits) expect(plan.later).toBe(Math.floor(probes.length / 2));
          const tick = Math.ceil((firstPass[0]! + offset.lowerMs) / 1000) * 1000;
          expect(tick - offset.lowerMs).toBeGreaterThan(now);
          for (const p of firstPass) {
            expect(p).toBeGreaterThanOrEqual(tick - offset.upperMs);
            expect(p).toBeLessThanOrEqual(tick - offset.lowerMs);
          }
          for (const p of probes.slice(0, plan.later)) {
            expect(p).toBeGreaterThanOrEqual(tick + 1000 - offset.upperMs);
            expect(p).toBeLessThanOrEqual(tick + 1000 - offset.lowerMs);
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
    expect(planTickProbes(0, 2000, 6000, 120, { lowerMs: 30_000, upperMs: 31_000 })?.at).toHaveLength(8);
    // A window ending in an hour: planned at a later answer, within a minute of its end.
    expect(planTickProbes(0, 2000, 3_600_000, 120, { lowerMs: 30_000, upperMs: 31_000 })).toBeUndefined();
  });

  it('go across a tick that may still come when the window may end before the next one is sure to', () => {
    // Answers stamped with the server's second 34 came back from our 4,575 on; the last of them
    // was sent at 4,920: the server clock is 29,425 to 30,080 ahead. Its second 35 ticks over
    // somewhere in our 4,920 to 5,575, the one after from 5,920 on. The window may end as soon as
    // 5,800: the tick after cannot be probed before that, the one still to come can.
    const offset = { lowerMs: 29_425, upperMs: 30_080 };
    const probes = planTickProbes(4930, 400, 6200, 120, offset)!.at;
    expect(probes).toHaveLength(8);
    for (const p of probes) {
      expect(p).toBeGreaterThan(4930);
      expect(p).toBeLessThan(5700);
    }
    // Probing only the tick sure to come, nothing would be held, and the window's end would stay
    // unsure by the whole 655 ms of the interval.
    expect(Math.min(...probes)).toBeLessThan(5100);
    expect(Math.max(...probes)).toBeGreaterThan(5500);
  });

  it('go in two passes: half across the next tick, the rest across the one after, over what the first pass left', () => {
    const b = createBucket({ name: 'b', limit: 120, windowMs: 10_000 });
    const first = b.take(0);
    // The window ends at our 8,000 at the latest, 2 s earlier at the soonest; the offset is
    // known to a second, so the server's next second ticks over somewhere in our 1,000 to 2,000.
    b.apply({ name: 'b', limit: 120, remaining: 119 }, first, 8000, 20, 0, 38_000_000, 2000);
    b.planTickProbes(20, { lowerMs: 30_000, upperMs: 31_000 });
    while ((b.remaining ?? 0) > 8) b.take(20);
    // The first pass: four slots at even steps across that span.
    const sent: number[] = [];
    for (const at of [1000, 1200, 1400]) {
      const next = b.availableAt(at, 50, 1, 10)!;
      expect(next).toBeGreaterThan(1000);
      expect(next).toBeLessThan(2000);
      sent.push(next);
      b.take(next);
    }
    expect(sent).toEqual([...sent].sort((x, y) => x - y));
    // Their answers all read the old second: the tick is later than they went, so the offset's
    // upper bound falls (to 30,400 after the third). The last probe of the pass still goes
    // across this tick, not a second on (which lost that second, and left the next pass one
    // probe).
    b.planTickProbes(sent[2]! + 20, { lowerMs: 30_000, upperMs: 32_000 - sent[2]! });
    const last = b.availableAt(sent[2]! + 20, 50, 1, 10)!;
    expect(last).toBeGreaterThan(sent[2]!);
    expect(last).toBeLessThan(2000);
    b.take(last);
    // Its answer read the new second: the offset is known to 225 ms. The four still held go
    // across the next tick (our 2,600 to 2,825), not past the one already seen.
    b.planTickProbes(last + 25, { lowerMs: 30_175, upperMs: 30_400 });
    const next = b.availableAt(last + 25, 50, 1, 10)!;
    expect(next).toBeGreaterThan(2600);
    expect(next).toBeLessThan(2825);
    // Pinned to a tenth of a second: nothing more to learn, the held slots go at once.
    b.planTickProbes(2700, { lowerMs: 30_330, upperMs: 30_390 });
    expect(b.availableAt(2700, 50, 1, 10)).toBe(2700);
  });

  /** A window that ends at our 8,000 at the latest, 2 s earlier at the soonest, with 120 left. */
  const window8s = () => {
    const b = createBucket({ name: 'b', limit: 120, windowMs: 10_000 });
    const first = b.take(0);
    b.apply({ name: 'b', limit: 120, remaining: 119 }, first, 8000, 20, 0, 38_000_000, 2000);
    return b;
  };
  const next = (b: ReturnType<typeof window8s>, now: number) => b.availableAt(now, 50, 1, 10)!;

  it('planned with fewer slots left than a plan keeps, still go across the first tick', () => {
    const b = createBucket({ name: 'b', limit: 120, windowMs: 10_000 });
    const first = b.take(0);
    while ((b.remaining ?? 0) > 4) b.take(0);
    b.apply({ name: 'b', limit: 120, remaining: 119 }, first, 8000, 20, 0, 38_000_000, 2000);
    b.planTickProbes(20, { lowerMs: 30_000, upperMs: 31_000 });
    expect(b.remaining).toBeLessThan(8);
    // Planned as 8, the 4 left would all have been the second pass's, a second later.
    const at = next(b, 20);
    expect(at).toBeGreaterThan(1000);
    expect(at).toBeLessThan(2000);
  });

  it('a tick seen before any has gone leaves them in two passes, the first still on its tick', () => {
    const b = window8s();
    b.planTickProbes(20, { lowerMs: 30_000, upperMs: 31_000 });
    while ((b.remaining ?? 0) > 20) b.take(20);
    // An answer read the server's second 31 from our 600: the offset is at least 30,400.
    b.planTickProbes(600, { lowerMs: 30_400, upperMs: 31_000 });
    while ((b.remaining ?? 0) > 8) b.take(600);
    const p1 = next(b, 700);
    expect(p1).toBeGreaterThan(1000);
    expect(p1).toBeLessThan(1600);
    b.take(p1);
    // Its answer read the old second: the tick is later, and the next probe still goes on it.
    b.planTickProbes(p1 + 50, { lowerMs: 30_400, upperMs: 32_000 - p1 });
    const p2 = next(b, p1 + 50);
    expect(p2).toBeGreaterThan(p1);
    expect(p2).toBeLessThan(1600);
  });

  it("sent late, the first pass's last probe stays on its tick", () => {
    const b = window8s();
    b.planTickProbes(20, { lowerMs: 30_000, upperMs: 31_000 });
    while ((b.remaining ?? 0) > 8) b.take(20);
    const sent: number[] = [];
    for (let i = 0; i < 3; i++) {
      sent.push(next(b, 1000));
      b.take(sent[i]!);
    }
    const due = next(b, 1000);
    // Not sent at its time (no stream free, a busy event loop); an answer read the old second
    // 10 ms after it was due: the tick is still ahead, somewhere in our 1,600 to 2,000.
    b.planTickProbes(due + 10, { lowerMs: 30_000, upperMs: 32_000 - sent[2]! });
    expect(next(b, due + 10)).toBe(due + 10);
  });

  it('once the first pass has gone, the rest go over what its answers narrowed, even with no tick seen', () => {
    const b = window8s();
    b.planTickProbes(20, { lowerMs: 30_000, upperMs: 31_000 });
    while ((b.remaining ?? 0) > 8) b.take(20);
    for (let i = 0; i < 4; i++) b.take(next(b, 1000));
    // All four read the old second: the server's second ticks over in our 1,800 to 2,000 (a
    // probe at the span's end may come back with the old second if it reached the server first).
    // Planned across the next tick over the whole first interval: from our 2,000.
    const before = next(b, 1900);
    expect(before).toBeGreaterThan(2000);
    expect(before).toBeLessThan(2800);
    b.planTickProbes(1900, { lowerMs: 30_000, upperMs: 30_200 });
    // Over what the first pass left: the next tick falls in our 2,800 to 3,000.
    const after = next(b, 1900);
    expect(after).toBeGreaterThan(2800);
    expect(after).toBeLessThan(3000);
  });

  it('are not held where the answer and the window length pin the end without the clock offset', () => {
    // A 2-s window from its first request (GitHub's), its reset a whole second of the server's
    // clock, the offset known to 150 ms: the reset reads 2,500 at the latest, 1,150 ms earlier
    // at the soonest, but the window began by the answer at 30, so it ends by 2,030 whatever
    // the offset.
    const b = createBucket({ name: 'b', limit: 100, windowMs: 2000 });
    const first = b.take(0);
    b.apply({ name: 'b', limit: 100, remaining: 99 }, first, 2500, 30, 0, 2500, 1150);
    b.planTickProbes(30, { lowerMs: -75, upperMs: 75 });
    expect(b.resetAt).toBe(2030);
    // The window's last slots go as soon as they are wanted, not across the server's next tick.
    while ((b.remaining ?? 0) > 1) b.take(30);
    expect(b.availableAt(30, 50, 1, 10)).toBe(30);
  });
});
