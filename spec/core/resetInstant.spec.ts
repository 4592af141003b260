import { describe, expect, it } from '@jest/globals';
import { createBucket } from '../../lib/core/buckets.js';
import { SkewEstimator } from '../../lib/core/clock.js';

const S = 1_795_000_010_000; // a real epoch instant (server clock)

/**
 * A window's end told as an instant of the server's clock, read again at later answers: the same
 * instant names the same window, a later reading may bring the end forward only to the latest the
 * `Date` headers allow, and never undo a hold a 429 asked for.
 */
describe('a reset instant read again within its window', () => {
  it('a late answer of the window does not undo the hold a 429 asked for past the reset', () => {
    const b = createBucket({ name: 'b', limit: 10, windowMs: 60_000 });
    const i0 = b.take(0);
    const i1 = b.take(0);
    // First answer: the server's instant S reads as our 10,000.
    b.apply({ name: 'b', limit: 10, remaining: 9 }, i0, 10_000, 100, 0, S, 2000);
    // A 429 that named the bucket: held until our 11,500 (Retry-After past the reset).
    b.exhaust(11_500);
    expect(b.resetAt).toBe(11_500);
    // A late 200 of the same window, same instant, same offset (nothing pinned closer).
    b.apply({ name: 'b', limit: 10, remaining: 8 }, i1, 10_000, 300, 0, S, 2000);
    expect(b.resetAt).toBeGreaterThanOrEqual(11_500);
  });

  it('is brought forward no earlier than the latest the Date headers allow, when the offset interval widens to hold 0', () => {
    // Server clock 400 ms behind ours. Local t -> server t - 400.
    const truth = -400;
    const skew = new SkewEstimator();
    const dateOf = (t: number) => new Date(Math.floor((t + truth) / 1000) * 1000).toUTCString();
    const base = 1_795_000_000_000; // our clock, ms
    // A burst at t=base+0..base+999, every 50 ms, round trip 20 ms: pins the offset near -400.
    for (let t = base; t < base + 1000; t += 50) skew.observe(dateOf(t + 10), t + 20, t);
    expect(skew.lowerMs).toBeLessThanOrEqual(truth);
    expect(skew.offsetMs).toBeLessThan(-300);
    const b = createBucket({ name: 'b', limit: 100, windowMs: 3_600_000 });
    const windowEndServer = base + 600_000 - 400 + 400; // server instant S (whole second)
    const Sx = Math.ceil(windowEndServer / 1000) * 1000;
    const trueLocalEnd = Sx - truth;
    const i0 = b.take(base + 1000);
    const now0 = base + 1020;
    const read = () => [Sx, 1000 + Math.min(1000, skew.uncertaintyMs), 1, Sx - skew.lowerMs] as const;
    b.apply({ name: 'b', limit: 100, remaining: 99 }, i0, skew.toLocal(Sx), now0, base + 1000, ...read());
    expect(b.resetAt!).toBeGreaterThanOrEqual(trueLocalEnd);
    // Then a poller: one request every 3 s, at local phase .700 (server phase .300), for 120 s.
    let last = 0;
    for (let k = 1; k <= 40; k++) {
      const t = base + 2000 + k * 3000 + 700;
      skew.observe(dateOf(t + 10), t + 20, t);
      const i = b.take(t);
      b.apply({ name: 'b', limit: 100, remaining: 99 - k }, i, skew.toLocal(Sx), t + 20, t, ...read());
      last = t + 20;
    }
    expect(last).toBeLessThan(trueLocalEnd);
    // The estimator now says 0 (its 32 seconds of samples all contain 0): S reads as S.
    expect(skew.offsetMs).toBe(0);
    // The window's end must not be before the true one (else refill at resetAt + 50 ms guard -> 429).
    expect(b.resetAt!).toBeGreaterThanOrEqual(trueLocalEnd);
  });
});

describe('a reset instant read through a wider offset after its end was brought forward', () => {
  it('is the same window: a window a 429 emptied stays empty', () => {
    const b = createBucket({ name: 'b', limit: 100, windowMs: 3_600_000 });
    const i = [0, 1, 2, 3].map(() => b.take(0));
    // First reading: S read as our 10,000 (offset unsure).
    b.apply({ name: 'b', limit: 100, remaining: 99 }, i[0], 10_000, 100, 0, S, 2000);
    // Offset pinned: S read as 8,500; the window's lowest figure 50 (other clients spend it).
    b.apply({ name: 'b', limit: 100, remaining: 50 }, i[1], 8_500, 200, 0, S, 1050);
    b.exhaust(8_500); // a 429 named the bucket: held empty for the rest of the window
    expect(b.remaining).toBe(0);
    // The pinning samples left the estimator (32 answered seconds later), the offset is wider
    // again: a late answer (counted before the lowest, figure 80) reads S as 9,600.
    b.apply({ name: 'b', limit: 100, remaining: 80 }, i[2], 9_600, 300, 0, S, 2000);
    // Same server instant: same window. Held empty, nothing comes back.
    expect(b.remaining).toBe(0);
  });
});
