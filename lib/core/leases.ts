/**
 * Permit leases: a permit never given back (a request that never settles) would hold its slot
 * (a cold start's only one, a `maxConcurrent` one) forever, so after `permitTimeoutMs` it is
 * released for it. The leases of every limiter on one scheduler with one lease length are one
 * list, soonest first, through the permits themselves, with one timer for its head. A timer per
 * permit was a Node `Timeout` and two closures per request in flight: with 10,000 tenants'
 * requests in flight, garbage the collector copied; a list per limiter set and cleared a timer
 * per request wherever a tenant had one request at a time. In real time the timer also stays set
 * when the list empties: one request at a time cleared it and set it again each.
 */
import type { SchedulerLike } from 'rxjs';
import { inRealTime } from './clock.js';
import { DrainTimer, type TimerHost } from './timer.js';

/** What a lease list keeps of a permit: fields on the permit, no object of its own. */
export interface Leased {
  /**
   * When its lease began on its limiter's clock: it ends the list's lease length later (an end
   * of its own would be a field and a boxed number more on every permit in flight).
   */
  readonly leasedAt: number;
  leasePrev: Leased | undefined;
  leaseNext: Leased | undefined;
  /** The list it is on (undefined: none). */
  leaseList: LeaseList | undefined;
  /** Its limiter's clock. */
  leaseNow(): number;
  /** The lease ended: released for its holder (it is off the list by then). */
  expire(now: number): void;
}

export class LeaseList implements TimerHost {
  private head: Leased | undefined = undefined;
  private tail: Leased | undefined = undefined;
  /** Set for the head's lease, on the head's clock; one set for an earlier end stays (it sets the next). */
  private readonly timer: DrainTimer;

  /** @param ms The lease length. */
  constructor(
    private readonly scheduler: SchedulerLike,
    private readonly ms: number,
  ) {
    this.timer = new DrainTimer(scheduler, this, true);
  }

  /** The timer's clock: the head's limiter's. */
  timerNow(): number {
    return this.head === undefined ? this.scheduler.now() : this.head.leaseNow();
  }

  timerFired(): void {
    this.expire();
  }

  /**
   * Puts `p` last on the list. Leases of one length end in the order they were given, each
   * checked on its own limiter's clock. Limiters' clocks on one scheduler agree to within a few
   * milliseconds, unless the wall clock was stepped between their making (clock.ts): then the
   * timer, set for a lease on one clock and read on another's, may fire early (a wake-up more).
   */
  add(p: Leased): void {
    p.leaseList = this;
    p.leasePrev = this.tail;
    if (this.tail) this.tail.leaseNext = p;
    else this.head = p;
    this.tail = p;
    // A list with a head has its timer set for the head's end or earlier (`expire` sets it
    // again last), which is no later than this lease's: the head, the oldest permit in flight
    // and out of the CPU's caches at 10,000 tenants, is not read for each new lease.
    this.timer.schedule(p.leasedAt + this.ms);
  }

  /** Takes `p` off the list (given back, or expired). */
  remove(p: Leased): void {
    const { leasePrev: prev, leaseNext: next } = p;
    if (prev) prev.leaseNext = next;
    else this.head = next;
    if (next) next.leasePrev = prev;
    else this.tail = prev;
    p.leasePrev = p.leaseNext = p.leaseList = undefined;
    // Nothing left to expire: a timer kept costs one wake-up in a lease length at most (it finds
    // nothing, or sets itself for the new head), cheaper than clearing it and setting it again
    // for the next request; kept only where it keeps nothing waiting: unref'd (Node, real time;
    // in virtual time it is cleared, so a flushed `TestScheduler` runs none after the last
    // request), and outside Zone.js, which counts a pending timer as work in progress (an
    // Angular app would not be stable, nor a server render done, until it fired).
    if (this.head === undefined && !(this.timer.detached && !zoned())) this.timer.cancel();
  }

  private arm(): void {
    if (this.head !== undefined) this.timer.schedule(this.head.leasedAt + this.ms);
  }

  private expire(): void {
    for (let p = this.head; p !== undefined; p = this.head) {
      const now = p.leaseNow();
      if (now < p.leasedAt + this.ms) break;
      this.remove(p);
      p.expire(now);
    }
    this.arm();
  }
}

/** Is Zone.js loaded (an Angular app with zones)? Its timers are tracked as pending work. */
function zoned(): boolean {
  return (globalThis as { Zone?: unknown }).Zone !== undefined;
}

const lists = new WeakMap<SchedulerLike, Map<number, LeaseList>>();

/**
 * The lease list of `scheduler` for leases of `ms`. Leases in virtual time (`TestScheduler.run`
 * drives `asyncScheduler` too) are listed apart from those in real time: one list would order
 * an instant of one clock against an instant of the other.
 */
export function leaseList(scheduler: SchedulerLike, ms: number): LeaseList {
  let byLength = lists.get(scheduler);
  if (byLength === undefined) lists.set(scheduler, (byLength = new Map()));
  const key = inRealTime(scheduler) ? ms : -ms;
  let list = byLength.get(key);
  if (list === undefined) byLength.set(key, (list = new LeaseList(scheduler, ms)));
  return list;
}
