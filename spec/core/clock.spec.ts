import { describe, expect, it } from '@jest/globals';
import { SkewEstimator } from '../../lib/core/clock.js';

const date = (ms: number) => new Date(ms).toUTCString();
const T = Date.UTC(2026, 10, 23, 12, 0, 0);

describe('SkewEstimator', () => {
  it('reads synchronized clocks as 0 although Date drops the milliseconds', () => {
    const skew = new SkewEstimator();
    // Server stamps at T+450 ms, which its Date header shows as T.
    skew.observe(date(T + 450), T + 470, T + 430);
    expect(skew.offsetMs).toBe(0);
    expect(skew.toLocal(T + 60_000)).toBe(T + 60_000);
  });

  it.each([30_000, -30_000, 3_600_000, -3_600_000])(
    'bounds an offset of %i ms from below, to within the latency',
    (offset) => {
      const skew = new SkewEstimator();
      for (let i = 0; i < 20; i++) {
        const sent = T + i * 137; // requests at different phases within the second
        skew.observe(date(sent + 5 + offset), sent + 10, sent);
      }
      expect(skew.offsetMs).toBeLessThanOrEqual(offset);
      expect(offset - skew.offsetMs).toBeLessThanOrEqual(10);
    },
  );

  it('starts again when the server clock is stepped', () => {
    const skew = new SkewEstimator();
    skew.observe(date(T + 30_000), T + 10, T);
    skew.observe(date(T + 1000), T + 1010, T + 1000);
    expect(skew.offsetMs).toBe(0);
  });

  it('ignores a missing or garbage Date', () => {
    const skew = new SkewEstimator();
    skew.observe(undefined, T);
    skew.observe('yesterday', T);
    expect(skew.offsetMs).toBe(0);
  });
});
