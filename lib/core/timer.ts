/**
 * The limiter's one timer: set for the earliest moment a waiting request could go (a reset, a
 * pacing slot, the end of a pause, a deadline), whatever the number of waiting requests.
 */
import type { SchedulerLike, Subscription } from 'rxjs';

/** The longest delay `setTimeout` keeps (about 24.8 days); longer ones fire after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export class DrainTimer {
  private timer: Subscription | undefined;
  private at = Infinity;

  constructor(
    private readonly scheduler: SchedulerLike,
    private readonly now: () => number,
    private readonly fire: () => void,
  ) {}

  /** Fires at `at`, unless it is set to fire earlier already. */
  schedule(at: number): void {
    if (this.timer && !this.timer.closed && this.at <= at) return;
    this.cancel();
    this.at = at;
    this.timer = this.scheduler.schedule(
      () => {
        this.timer = undefined;
        this.at = Infinity;
        this.fire();
      },
      // Node fires a timeout past 2^31 - 1 ms after 1 ms: a wait that long (a reset in year
      // 9999) is slept in pieces; the drain sets the timer again.
      Math.min(MAX_TIMER_MS, Math.max(0, at - this.now())),
    );
  }

  cancel(): void {
    // Called at every admission and response, mostly with no timer set: then `at` (a number
    // in an object of its own) is not written, and stays out of the CPU's caches.
    if (this.timer === undefined) return;
    this.timer.unsubscribe();
    this.timer = undefined;
    this.at = Infinity;
  }

  get pending(): boolean {
    return this.timer !== undefined && !this.timer.closed;
  }
}
