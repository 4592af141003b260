import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, type SchedulerLike } from 'rxjs';
import { createLimiter, defineProvider, responseLike } from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

const ok = responseLike(200, {});
const twoPerSecond = defineProvider({
  name: 'two-per-second',
  buckets: [{ name: 'default', limit: 2, windowMs: 1000 }],
  read: () => ({ outcome: 'ok', buckets: [] }),
});

const HOUR = 3_600_000;

/** A scheduler on virtual time whose `now()` is set back an hour at `stepAt` (NTP, a user's clock). */
function steppedBack(stepAt: number): SchedulerLike {
  let back = 0;
  asyncScheduler.schedule(() => (back = HOUR), stepAt);
  return {
    now: () => asyncScheduler.now() - back,
    schedule: ((work: never, delay?: number, state?: never) =>
      asyncScheduler.schedule(work, delay, state)) as SchedulerLike['schedule'],
  };
}

describe("the limiter's clock, when a scheduler's now() steps back", () => {
  it('requests keep going at the allowed pace when the clock steps back an hour mid-run, and none fails', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: twoPerSecond, key: 'k', scheduler: steppedBack(2_500) });
      const granted: number[] = [];
      const failed: string[] = [];
      for (let i = 0; i < 20; i++)
        limiter.acquire(
          {},
          {
            granted: (p) => {
              granted.push(now());
              p.observe(ok);
              p.release();
            },
            rejected: (e) => failed.push(e.name),
          },
        );
      return { granted, failed };
    });
    // Before: the window's end read an hour away, past maxWaitMs: the waiting ones failed.
    expect(out.failed).toEqual([]);
    expect(out.granted).toHaveLength(20);
    // Two per second across the step too: never faster (the clock did not jump forward)…
    for (let i = 2; i < out.granted.length; i++)
      expect(out.granted[i]! - out.granted[i - 2]!).toBeGreaterThanOrEqual(1000);
    // …and about ten seconds for twenty, not an hour.
    expect(out.granted.at(-1)!).toBeLessThan(12_000);
  });
});
