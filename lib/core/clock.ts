import { asyncScheduler, type SchedulerLike } from 'rxjs';
import { parseHttpDate } from '../headers/httpDate.js';

/**
 * Is `scheduler` the default one running in real time? Under `TestScheduler.run`,
 * `asyncScheduler` reads virtual time, which is never within a second of the wall clock (it
 * starts at 0).
 */
export function inRealTime(scheduler: SchedulerLike, now = scheduler.now()): boolean {
  return scheduler === asyncScheduler && Math.abs(now - Date.now()) <= 1000;
}

/**
 * The limiter's clock, in epoch ms: the scheduler's time, made monotonic where that is the
 * wall clock. With the default `asyncScheduler` outside virtual time, time is the wall clock
 * read when the clock was made plus the monotonic time since (`performance.now()`), so a step
 * of the wall clock (NTP, a VM resumed, someone setting the date) neither ends a pause or a
 * window early nor stretches it by the step. Under `TestScheduler.run` (where `asyncScheduler`
 * reads virtual time, far from the wall clock) and with any other scheduler, the scheduler's
 * own `now()` is used as it is. Absolute server times (resets, HTTP-dates) are converted to
 * this clock by the skew estimator (from `Date` headers), which absorbs any drift from the wall.
 *
 * Limiters and pools made on the default scheduler share one such clock while it reads the wall
 * clock to within `SHARED_CLOCK_TOLERANCE_MS`: at 10,000 tenants a request then reads a
 * clock that stays in the CPU's caches, not one of its tenant's own. One made when the wall clock
 * is further from it (stepped by NTP, or after a laptop's sleep, during which the monotonic clock
 * stands still, or drifted apart) gets a new clock, read from the wall clock then, which the ones
 * made after it share; those made before keep theirs, so a pause or window in force is not moved
 * by the step. (A limiter for a credential that already has one in the process, memory store,
 * runs on that credential's clock, whenever it is made: engine.ts.)
 */
export function limiterClock(scheduler: SchedulerLike): () => number {
  if (scheduler !== asyncScheduler) return () => scheduler.now();
  if (shared === undefined || !wallAgrees(shared)) shared = anchoredClock();
  return shared;
}

/** The clock limiters made now on the default scheduler share (see {@link limiterClock}). */
let shared: (() => number) | undefined;

/**
 * How far from the wall clock the shared clock may read for a limiter made now to take it: a
 * limiter made alone would read the wall clock exactly then, and a Unix-time reset told with no
 * `Date` header is read on this clock as it is (no more early than the reset guard, 50 ms).
 */
const SHARED_CLOCK_TOLERANCE_MS = 25;

/** Does `clock` read the wall clock to within the tolerance? (Always, in virtual time.) */
function wallAgrees(clock: () => number): boolean {
  const t = asyncScheduler.now();
  return !inRealTime(asyncScheduler, t) || Math.abs(clock() - t) <= SHARED_CLOCK_TOLERANCE_MS;
}

/** A clock on the default scheduler, anchored to the wall clock at its first real-time read. */
function anchoredClock(): () => number {
  let wallAt = Number.NaN;
  let monoAt = 0;
  return () => {
    const t = asyncScheduler.now();
    // Read about seven times a request: two clock reads, not three, when the scheduler's time
    // is within a second of ours (real time, the wall clock not stepped); otherwise it is told
    // from virtual time by the wall clock, as on the first read.
    if (!Number.isNaN(wallAt)) {
      const mono = wallAt + (performance.now() - monoAt);
      if (Math.abs(t - mono) <= 1000) return mono;
    }
    if (!inRealTime(asyncScheduler, t)) return t;
    if (Number.isNaN(wallAt)) {
      wallAt = t;
      monoAt = performance.now();
    }
    return wallAt + (performance.now() - monoAt);
  };
}

/**
 * A timer that does not keep a Node process alive (a permit's lease: a safety net, never the
 * reason a script or a test run keeps running). On the default scheduler in real time it is an
 * unref'd `setTimeout`; under `TestScheduler` and with any other scheduler, the scheduler's own.
 */
export function backgroundTimer(
  scheduler: SchedulerLike,
  work: () => void,
  ms: number,
): { unsubscribe(): void; readonly detached?: boolean } {
  if (!inRealTime(scheduler)) return scheduler.schedule(work, ms);
  const handle = setTimeout(work, ms);
  const unref = (handle as { unref?: () => void }).unref;
  if (typeof unref === 'function') unref.call(handle);
  // `detached`: it keeps nothing waiting (Node's `unref`; not a browser's or Deno's number).
  return { unsubscribe: () => clearTimeout(handle), detached: typeof unref === 'function' };
}

interface Sample {
  /** The second of our clock the response came back in (samples of one second are merged). */
  readonly at: number;
  readonly lower: number;
  readonly upper: number;
}

/**
 * Estimates how far the server's clock is ahead of ours from responses' `Date` headers, so
 * that absolute reset times (unix seconds, ISO 8601) are converted to our clock.
 *
 * `Date` has one-second resolution and was stamped somewhere between our send and our
 * receive, so each response bounds the offset to an interval:
 * `[date - receivedAt, date + 1000 - sentAt]`. The intersection of the intervals of the last
 * 32 seconds that had answers (merged per second) narrows it: the responses stamped just after
 * the server's second ticked over pin it to about a round trip, however the traffic clusters
 * (a burst per window used to fill a short list of recent samples with one second's stamps,
 * leaving the offset unknown to a second). If it contains 0 the clocks agree as far as `Date` can tell, and 0 is used:
 * otherwise the sub-second truncation alone would make every reset look up to a second late.
 * If it does not, the lower bound is used: an offset taken too small makes resets look later,
 * never earlier, so the error costs a little waiting, not a 429.
 */
export class SkewEstimator {
  private samples: Sample[] = [];
  /** Answers that agree on the interval since it last started again. */
  private agreeing = 0;
  /** The last answer that disagreed with them, until the next one. */
  private disagreeing: Sample | undefined;
  private estimate = 0;
  /** The offset server instants are read through (`toLocal`): see the constructor. */
  private reading = 0;
  private width = Infinity;
  private lower = -Infinity;
  private upper = Infinity;

  /**
   * @param window How many seconds of answers are kept (the last ones that had answers).
   * @param toleranceMs How much earlier than the truth a server instant may read (the guard the
   *   limiter keeps after a reset). While the interval holds 0, instants are read with no offset
   *   only if its lower bound is within this of 0; else through that bound plus this: a server
   *   clock behind ours by less than a second, which `Date` cannot tell from none, read with no
   *   offset ended every window early by its lag, and the burst after each reset earned 429s.
   */
  constructor(
    private readonly window = 32,
    private readonly toleranceMs = Infinity,
  ) {}

  /** Server clock minus local clock, ms. 0 until a `Date` header says otherwise. */
  get offsetMs(): number {
    return this.estimate;
  }

  /**
   * How much later than the truth a server instant may read once converted (`toLocal`): the
   * width of the offset's interval, `Infinity` until a response with a known send time.
   */
  get uncertaintyMs(): number {
    return this.estimate === 0 && this.width === Infinity ? Infinity : this.upper - this.reading;
  }

  /**
   * How much later than the truth `toLocal` may read, where the clocks are not taken to agree:
   * 0 while instants are read with no offset (the interval holds 0, its lower bound within the
   * tolerance), else the interval's upper bound less the offset read through (0 if unbounded).
   */
  get lateByMs(): number {
    if (this.reading === 0 && this.lower <= 0 && this.upper >= 0) return 0;
    return Number.isFinite(this.upper) ? this.upper - this.reading : 0;
  }

  /**
   * How much later than with no offset `toLocal` reads while the interval holds 0 (a server
   * clock behind ours by more than the tolerance is not ruled out), else 0.
   */
  get heldBackMs(): number {
    return this.lower <= 0 && this.upper >= 0 ? Math.max(0, -this.reading) : 0;
  }

  /** The least server-minus-local offset the `Date` headers allow, ms (-Infinity until told). */
  get lowerMs(): number {
    return this.lower;
  }

  /** The greatest server-minus-local offset the `Date` headers allow, ms (Infinity until told). */
  get upperMs(): number {
    return this.upper;
  }

  /**
   * Records one response's `Date` header (ignored if missing or garbage). `sentAt` is when the
   * request left (unknown for responses the limiter did not admit).
   */
  observe(dateHeader: string | undefined, receivedAt: number, sentAt?: number): void {
    const date = parseHttpDate(dateHeader);
    if (date === undefined) return;
    const at = Math.floor(receivedAt / 1000);
    // A clock stepped back: merge no sample into a later second.
    if ((this.samples[this.samples.length - 1]?.at ?? -Infinity) > at) this.samples = [];
    if (this.samples.length === 0) {
      this.agreeing = 0;
      this.lower = -Infinity;
      this.upper = Infinity;
    }
    const sample = { at, lower: date - receivedAt, upper: sentAt === undefined ? Infinity : date + 1000 - sentAt };
    if (sample.lower > this.upper || sample.upper < this.lower) {
      // Disagrees with what the answers so far agree on: the server's clock was stepped, or
      // this one `Date` is wrong (a cached answer, a gateway with its own clock, a hostile
      // proxy). Taken alone, one 429 stamped 20 hours ago read its reset 20 hours late. Against
      // two or more answers that agree it waits for a second one like it, in a row.
      const pending = this.disagreeing;
      if (this.agreeing >= 2 && !(pending && pending.lower <= sample.upper && sample.lower <= pending.upper)) {
        this.disagreeing = sample;
        return;
      }
      this.samples = pending && this.agreeing >= 2 ? [pending] : [];
      this.agreeing = this.samples.length;
      this.lower = -Infinity;
      this.upper = Infinity;
    }
    this.disagreeing = undefined;
    this.agreeing++;
    const last = this.samples[this.samples.length - 1];
    if (last?.at === at)
      this.samples[this.samples.length - 1] = {
        at,
        lower: Math.max(last.lower, sample.lower),
        upper: Math.min(last.upper, sample.upper),
      };
    else this.samples.push(sample);
    if (this.samples.length > this.window) this.samples.shift();
    let lower = -Infinity;
    let upper = Infinity;
    for (const s of this.samples) {
      lower = Math.max(lower, s.lower);
      upper = Math.min(upper, s.upper);
    }
    if (lower > upper) {
      // Intervals that do not overlap (merged within one second): start again from this response.
      this.samples = [sample];
      this.agreeing = 1;
      ({ lower, upper } = sample);
    }
    this.width = upper - lower;
    this.lower = lower;
    this.upper = upper;
    this.estimate = lower <= 0 && upper >= 0 ? 0 : lower;
    this.reading = lower <= 0 && upper >= 0 ? Math.min(0, lower + this.toleranceMs) : lower;
    if (!Number.isFinite(this.reading)) this.reading = 0;
  }

  /**
   * Converts a server-clock instant to the local clock: late rather than early (never earlier
   * than the truth by more than the tolerance).
   */
  toLocal(serverMs: number): number {
    return serverMs - this.reading;
  }
}
