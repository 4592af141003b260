import { parseHttpDate } from '../headers/httpDate.js';

interface Sample {
  readonly lower: number;
  readonly upper: number;
}

/**
 * Estimates how far the server's clock is ahead of ours from responses' `Date` headers, so
 * that absolute reset times (unix seconds, ISO 8601) are converted to our clock.
 *
 * `Date` has one-second resolution and was stamped somewhere between our send and our
 * receive, so each response bounds the offset to an interval:
 * `[date - receivedAt, date + 1000 - sentAt]`. The intersection of recent intervals narrows it.
 * If it contains 0 the clocks agree as far as `Date` can tell, and 0 is used: otherwise the
 * sub-second truncation alone would make every reset look up to a second late. If it does not,
 * the lower bound is used: an offset taken too small makes resets look later, never earlier,
 * so the error costs a little waiting, not a 429.
 */
export class SkewEstimator {
  private samples: Sample[] = [];
  private estimate = 0;

  constructor(private readonly window = 32) {}

  /** Server clock minus local clock, ms. 0 until a `Date` header says otherwise. */
  get offsetMs(): number {
    return this.estimate;
  }

  /**
   * Records one response's `Date` header (ignored if missing or garbage). `sentAt` is when the
   * request left (unknown for responses the limiter did not admit).
   */
  observe(dateHeader: string | undefined, receivedAt: number, sentAt?: number): void {
    const date = parseHttpDate(dateHeader);
    if (date === undefined) return;
    const sample = { lower: date - receivedAt, upper: sentAt === undefined ? Infinity : date + 1000 - sentAt };
    this.samples.push(sample);
    if (this.samples.length > this.window) this.samples.shift();
    let lower = -Infinity;
    let upper = Infinity;
    for (const s of this.samples) {
      lower = Math.max(lower, s.lower);
      upper = Math.min(upper, s.upper);
    }
    if (lower > upper) {
      // Intervals that do not overlap: a clock was stepped. Start again from this response.
      this.samples = [sample];
      ({ lower, upper } = sample);
    }
    this.estimate = lower <= 0 && upper >= 0 ? 0 : lower;
  }

  /** Converts a server-clock instant to the local clock. */
  toLocal(serverMs: number): number {
    return serverMs - this.estimate;
  }
}
