import { parseHttpDate } from '../headers/httpDate.js';

/**
 * Estimates how far the server's clock is ahead of ours from responses' `Date` headers, so
 * that absolute reset times (unix seconds, ISO 8601) are converted to our clock.
 *
 * `Date` has one-second resolution and is stamped before the response travels, so each sample
 * `serverDate - localNow` underestimates the true offset by up to 1 s plus latency. The
 * estimate is the largest of the recent samples: it converges on the true offset from below,
 * and an underestimate makes a reset look later to us, which errs on the side of waiting.
 */
export class SkewEstimator {
  private readonly samples: number[] = [];
  private estimate = 0;

  constructor(private readonly window = 16) {}

  /** Server clock minus local clock, ms. 0 until a `Date` header has been seen. */
  get offsetMs(): number {
    return this.estimate;
  }

  /** Records one response's `Date` header (ignored if missing or garbage). */
  observe(dateHeader: string | undefined, localNow: number): void {
    const server = parseHttpDate(dateHeader);
    if (server === undefined) return;
    this.samples.push(server - localNow);
    if (this.samples.length > this.window) this.samples.shift();
    this.estimate = Math.max(...this.samples);
  }

  /** Converts a server-clock instant to the local clock. */
  toLocal(serverMs: number): number {
    return serverMs - this.estimate;
  }
}
