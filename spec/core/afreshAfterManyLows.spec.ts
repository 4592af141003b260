/**
 * Planning Center's period opens at the first call after one ended, and its count of 1 (with the
 * new end) is the only reset it tells. Calls 32 ms apart, each answered 259 ms after the server
 * counted it: the first period's end is read 259 ms late (its count of 1 came back then), and a
 * call sent at its real end opens the next period. During its trip back the answers of calls
 * sent before it lower the window's lowest figure nine times, the last three with nothing
 * admitted in between. Its count of 1 is counted afresh against the figure read before it went
 * (15: it reads 16), however many lower ones were read since: figures read by one admission
 * judge the same calls and keep one place in `lows` (the last 8), so they no longer push out the
 * one it needs. Taken for an answer of the old period, the refill at the old end counted neither
 * it nor the call answered with it, and the answers of the new period's calls sent before that
 * end were dropped as the old period's: the new period got one call too many (random-seed soak
 * of the adversarial Planning Center property, three limiters of one credential: one bucket).
 * The bucket alone against the server's periods, in plain numbers (ms).
 */
import { describe, expect, it } from '@jest/globals';
import { createBucket } from '../../lib/core/buckets.js';

const LIMIT = 17;
const WINDOW = 1000;
const TRIP = 259;
/** When each call is wanted (the soak's counterexample). */
const AT = [
  0, 709, 741, 773, 806, 838, 870, 903, 935, 967, 1000, 1032, 1064, 1097, 1129, 1161, 1194, 1226, 1258, 1291, 1323,
  1355, 1388, 1420, 1452, 1485, 1517, 1549, 1582, 1614, 1646, 1000,
];

/**
 * Plays the calls in order of `AT`, each when the bucket lets it go (each millisecond: the calls
 * due, then the answers due, what the bucket lets go after each: the order of the soak's run);
 * returns the counts of the server's periods.
 */
function periods(): number[] {
  const b = createBucket({ name: 'default', limit: LIMIT, windowMs: WINDOW });
  const counts: number[] = [];
  let start = Number.NaN;
  const answers: Array<{ at: number; index: number; sentAt: number; count: number }> = [];
  const waiting = AT.map((at, id) => ({ at, id })).sort((x, y) => x.at - y.at || x.id - y.id);
  /** What the bucket lets go now, in order (as the limiter drains its queue at each answer). */
  const drain = (now: number) => {
    b.refill(now, 50, true);
    while (waiting.length > 0 && waiting[0]!.at <= now && b.availableAt(now, 50, 1, 0, 1, true) === now) {
      waiting.shift();
      const index = b.take(now);
      // The server counts it now, in a period that opens at the first call after one ended.
      if (!(now >= start && now < start + WINDOW)) {
        start = now;
        counts.push(0);
      }
      const count = ++counts[counts.length - 1]!;
      answers.push({ at: now + TRIP, index, sentAt: now, count });
    }
  };
  for (let now = 0; waiting.length > 0 || answers.length > 0; now++) {
    drain(now);
    while (answers.length > 0 && answers[0]!.at <= now) {
      const a = answers.shift()!;
      const reading = {
        name: 'default',
        limit: LIMIT,
        remaining: Math.max(0, LIMIT - a.count),
        windowMs: WINDOW,
        ...(a.count === 1 ? { reset: { inMs: WINDOW } } : {}),
      };
      b.apply(reading, a.index, a.count === 1 ? now + WINDOW : undefined, now, a.sentAt);
      b.release(a.index, now, 1, true);
      drain(now);
    }
  }
  return counts;
}

describe('a count of 1 back after many lower figures read by few admissions', () => {
  it('opens the new window: no period of the server’s counts more than its limit', () => {
    const counts = periods();
    expect(Math.max(...counts)).toBeLessThanOrEqual(LIMIT);
    expect(counts.reduce((x, y) => x + y, 0)).toBe(AT.length);
  });

  it('the new period’s limit still goes', () => {
    expect(periods()[1]).toBe(LIMIT);
  });
});
