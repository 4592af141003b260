/**
 * One timer kept at the earliest moment asked of it: the limiter's drain (the earliest moment a
 * waiting request could go: a reset, a pacing slot, the end of a pause, a deadline), whatever the
 * number of waiting requests, and a lease list's (leases.ts), set for its soonest lease.
 */
import type { SchedulerLike } from 'rxjs';
import { backgroundTimer } from './clock.js';

/** The longest delay `setTimeout` keeps (about 24.8 days); longer ones fire after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** What a timer asks of its owner: its clock, and what to do when it fires. */
export interface TimerHost {
  timerNow(): number;
  timerFired(): void;
}

export class DrainTimer {
  private timer: { unsubscribe(): void; readonly closed?: boolean; readonly detached?: boolean } | undefined;
  private at = Infinity;

  /**
   * @param background The timer must not keep a Node process alive (a permit's lease: a safety
   * net, never the reason a script or a test run keeps running): see `backgroundTimer`.
   */
  constructor(
    private readonly scheduler: SchedulerLike,
    private readonly host: TimerHost,
    private readonly background = false,
  ) {}

  /** Fires at `at`, unless it is set to fire earlier already. */
  schedule(at: number): void {
    if (this.timer && this.timer.closed !== true && this.at <= at) return;
    this.cancel();
    this.at = at;
    const work = () => {
      this.timer = undefined;
      this.at = Infinity;
      this.host.timerFired();
    };
    // Node fires a timeout past 2^31 - 1 ms after 1 ms: a wait that long (a reset in year
    // 9999) is slept in pieces; the drain sets the timer again.
    const ms = Math.min(MAX_TIMER_MS, Math.max(0, at - this.host.timerNow()));
    this.timer = this.background ? backgroundTimer(this.scheduler, work, ms) : this.scheduler.schedule(work, ms);
  }

  cancel(): void {
    // Called at every admission and response, mostly with no timer set: then `at` (a number
    // in an object of its own) is not written, and stays out of the CPU's caches.
    if (this.timer === undefined) return;
    this.timer.unsubscribe();
    this.timer = undefined;
    this.at = Infinity;
  }

  /** Set, and keeping nothing waiting: a Node process, or an app's zone (see `backgroundTimer`). */
  get detached(): boolean {
    return this.timer?.detached === true;
  }

  get pending(): boolean {
    return this.timer !== undefined && this.timer.closed !== true;
  }
}
