/**
 * The sliding-window bucket kind (lib/core/bucket.ts has the fixed window it extends).
 */
import { Bucket } from './bucket.js';
import type { BucketKind, BucketReading, BucketSpec } from './provider.js';
import { ownEndGuard, PROBE_MS } from './window.js';

/**
 * How many of its last reads (and of its calls ended without one) a rolling bucket keeps, to
 * tell which later calls were counted first (the Redis store keeps as many).
 */
export const READS_KEPT = 128;

/** A call of ours a figure may have missed: its units, and when it reached the server at the latest. */
interface Unread {
  readonly units: number;
  arrivedBy: number;
}

/** A call of ours in flight: when it went, its units, the units admitted up to and with it, and when its answer came back. */
interface InFlight {
  readonly sentAt: number;
  cost: number;
  through: number;
  answeredAt: number | undefined;
  /** The number of its figure among every figure read (`readCount`), -1 before one is read. */
  readSeq: number;
}

/** The figure that set what others spent: its call's admission index, what it left and counted, when the call was sent, its units. */
interface SetBy {
  index: number;
  left: number;
  count: number;
  sent: number;
  units: number;
}

/** A figure read (`apply`): of which call, when, what the server had counted, and the call's units. */
interface Read {
  index: number;
  at: number;
  count: number;
  units: number;
  /** What the figure left (`count` is the limit less it, as the limit was then). */
  left: number;
}

/**
 * A sliding window (TEOS's rolling 24 hours): each request counts for `windowMs` after the
 * server logged it, so the budget comes back one request at a time, not all at a reset. The
 * server logs a call when it arrives, which may be long after we sent it (a busy event loop, a
 * slow connection): so a call of ours counts while it is in flight and for `windowMs` after it
 * ended (its answer came back, or it was let go without one), never from its send. Admission keeps that log of our own calls; the server's figures
 * only add to it (a `remaining` of 0 holds the bucket until the reset it reports, which covers
 * calls from other clients of the token).
 */
export class RollingBucket extends Bucket {
  override readonly rolling = true;
  /** When each of our ended calls ended, oldest first; `head` is the first still in the window. */
  private readonly log: number[] = [];
  /**
   * When each call of `log` was sent (same order): it reached the server no sooner, so the
   * server may have let it go a window after that, long before our log does (a late answer).
   */
  private readonly logSent: number[] = [];
  /** The longest an entry of `log` took from its send to its end: how far past a window's edge to look for one sent before it. */
  private longestTrip = 0;
  private head = 0;
  /**
   * Our calls in flight, by admission index: they count until they end, then from their end,
   * or from when their answer came back (the server logged the call by then, so it counts a
   * window from the answer, not from when the caller let go of the permit).
   */
  private readonly pending = new Map<number, InFlight>();
  /** Units of the calls in flight. */
  private pendingUnits = 0;
  /** Units admitted so far (`InFlight.through` is this after the call's admission). */
  private admittedUnits = 0;
  private heldUntil = 0;
  /** When our last call was sent or ended (a limit of 0 probes a while after it). */
  private lastCallAt = -Infinity;
  /**
   * Requests the server counts that our log does not (other clients of the token): all of
   * them leave by `othersUntil` (a window after the figure that counted them), and the oldest,
   * a unit at least, by `othersFirstAt` (the reset the server told: on a sliding window, when
   * its oldest call leaves). That call may have been ours, the oldest in our log when the figure
   * was read: the unit comes back when that call leaves our log (`ownFirstGoneAt`), or it would
   * be freed twice.
   */
  private others = 0;
  private othersUntil = 0;
  private othersFirstAt = 0;
  private ownFirstGoneAt = Infinity;
  /**
   * When the calls of our log that the figure which set `others` took as gone from the server
   * (`leftServerBy`) ended, oldest first, as many as `others` holds (the first `READS_KEPT`, as
   * the Redis store keeps them): `others` counts them, so
   * while they stay in our log they count once, not twice (`doubled`).
   */
  private readonly othersLogged: number[] = [];
  /** Entries of `othersLogged` in use (the array is kept, so that setting `others` allocates nothing). */
  private othersLoggedLength = 0;
  /** The figure that last set `others` (`capOthers`); none for one that left nothing or of a call not known. */
  private othersSetBy: SetBy | undefined;
  /** The record `othersSetBy` points at when set, made once and reused. */
  private setBySlot: SetBy | undefined;
  /** A figure set `others` while later calls of ours were in flight (`awaitsAnswers`). */
  private othersAwait = false;
  /**
   * The figures read last, oldest first (so `at` never decreases): at most {@link READS_KEPT},
   * the oldest record reused for the next figure. A record per figure, held for the tenant's
   * next answers, outlived the young generation under many tenants.
   */
  private readonly reads: Read[] = [];
  /** Figures read so far (`reads` keeps the last {@link READS_KEPT}). */
  private readCount = 0;
  /**
   * Our calls, by index, sent before the call whose figure last set `others`, that may not have
   * reached the server by its send (see `missedBy`): that figure may not count them, so, once
   * another client is seen, they count beside `others` until a figure that must count them is
   * read (theirs, or one sent after they arrived).
   */
  private readonly unread = new Map<number, Unread>();
  /** Units of `unread`. */
  private unreadUnits = 0;
  /**
   * Our last calls that ended without a figure read (an answer without headers, an error, a
   * call let go), oldest first: a figure read later may not count them, as `unread`.
   */
  private readonly silent: Array<Unread & { readonly index: number }> = [];
  /**
   * The latest instant a forgotten entry of `reads` or `silent` bore (read, or reached the
   * server by): a figure of a call sent before it cannot tell what it missed, and only raises.
   */
  private forgottenAt = -Infinity;
  /** Until when a figure showed another client's calls in the window, for sure (`apply`). */
  private othersSeenUntil = -Infinity;
  /** Figures come from a shared store (`adopt`), which admits across processes. */
  private shared = false;
  /** The reset guard of the last refill: how long after `windowMs` a send still counts. */
  private guardMs = 0;
  /** Whether the last refill allowed {@link ownEndGuard} after an answered call (`Bucket.refill`). */
  private tight = false;
  /**
   * The last `availableAt` waited for a time that only bounds when others' calls leave
   * (`nextFreeAt`): not a known wait (`awaitsAnswers`).
   */
  private boundOnly = false;

  constructor(
    spec: BucketSpec,
    private readonly span: number,
  ) {
    super(spec);
    this.windowMs = span;
  }

  override refill(now: number, guardMs = 0, tight = false): void {
    this.trim(now, guardMs, tight);
    // A shared store's figures count every process's sends: they hold until its next answer.
    if (this.shared) return;
    const used = this.used(now);
    const held = this.heldUntil > now;
    this.remaining = this.limit === undefined ? undefined : held ? 0 : Math.max(0, this.limit - used);
    this.resetAt = held
      ? this.heldUntil
      : used > 0
        ? (this.head < this.log.length ? (this.log[this.head] ?? now) : now) + (this.windowMs ?? this.span)
        : undefined;
    this.resetKind = this.resetAt === undefined ? undefined : 'server';
  }

  override availableAt(
    now: number,
    guardMs: number,
    coldStart: number,
    _waiting = 0,
    cost = 1,
    tight = false,
  ): number | undefined {
    this.boundOnly = false;
    if (this.coldHeld(coldStart)) return undefined;
    if (this.heldUntil > now) return this.heldUntil;
    // With a shared store: its count is full until its oldest call ages out (the store admits).
    if (this.shared && this.remaining === 0 && this.resetAt !== undefined) return Math.max(now, this.resetAt + guardMs);
    // A limit of 0 frees no slot however long we wait: as an empty window whose reset nobody
    // told, one request goes a while after the last one ended, and its answer tells the rest.
    if (this.limit === 0) return this.inFlight > 0 ? undefined : Math.max(now, this.lastCallAt + PROBE_MS);
    const used = this.used(now);
    if (this.limit !== undefined && used + cost > this.limit)
      return this.nextFreeAt(now, used + cost - this.limit, guardMs, tight);
    return this.pacing === 'smooth' ? Math.max(now, this.nextSmoothAt) : now;
  }

  /**
   * Also while calls are in flight after a figure set `others` with later calls of ours still
   * out: their figures may show that fewer of those were others' (`capOthers`), so a wait that
   * spends a day on them is not trusted to fail a request before its deadline. Until nothing is
   * in flight (no walk of the calls in flight; as the Redis store's 'dbt'). And when the last
   * `availableAt` could only bound its wait (`nextFreeAt`): it is not known to end past a
   * request's deadline, which alone ends that wait, or a figure read before then.
   */
  override get awaitsAnswers(): boolean {
    return super.awaitsAnswers || (this.othersAwait && this.pending.size > 0) || this.boundOnly;
  }

  override take(now: number, cost = 1): number {
    const index = this.admitted++;
    this.inFlight += cost;
    this.pendingUnits += cost;
    this.admittedUnits += cost;
    this.pending.set(index, { sentAt: now, cost, through: this.admittedUnits, answeredAt: undefined, readSeq: -1 });
    this.lastCallAt = Math.max(this.lastCallAt, now);
    if (this.remaining !== undefined) this.remaining = Math.max(0, this.remaining - cost);
    if (this.pacing === 'smooth') this.nextSmoothAt = this.nextSlot(now, this.spacing() * cost);
    return index;
  }

  override apply(
    reading: BucketReading,
    index: number | undefined,
    resetAt: number | undefined,
    now?: number,
  ): number | null | undefined {
    this.confirm(index);
    this.readWindow(reading);
    // Sends that have left the window are no longer ours to count against the reading.
    if (now !== undefined) this.trim(now, this.guardMs, this.tight);
    const before = this.limit;
    this.readLimit(reading);
    // The units of the call this figure answers (one if it ended before).
    const call = index === undefined ? undefined : this.pending.get(index);
    const units = index === undefined ? 0 : (call?.cost ?? 1);
    // A server that reports what is left but not the limit (TEOS) bounds it from below: what is
    // left plus the call the figure counted. The largest bound yet; never above a limit told.
    if (
      reading.limit === undefined &&
      reading.remaining !== undefined &&
      this.limitSource !== 'hint' &&
      this.limitSource !== 'headers'
    ) {
      const least = reading.remaining + units;
      if (least > 0 && least > (this.limit ?? 0)) {
        this.limit = least;
        this.limitSource = 'inferred';
      }
    }
    let hold = reading.remaining === 0 && resetAt !== undefined;
    if (reading.remaining !== undefined && this.limit !== undefined) {
      // What the server counted beyond our own calls up to this request is someone else's. Our
      // calls sent after this one are taken as not counted yet, but those whose figures came
      // back first: they were counted first (a later call can overtake an earlier one on the
      // way there, and its figure then counts it). Taking them as not counted read their slots
      // as another client's, and held them until the next answer: at a window's end, the
      // next window's first slots. All in units: a call of cost 3 is 3 of the server's count.
      let read = 0;
      if (index !== undefined) for (const r of this.reads) if (r.index > index) read += r.units;
      const later = index === undefined ? this.inFlight : this.unitsAfter(index);
      const counted = this.limit - reading.remaining - this.own() + later;
      // A later call's figure, read already, is newer than this one (if they arrived in the
      // order they were sent, the server counted this call before it, and no later call of
      // ours took the slot): then this one only raises the figure. With nothing newer to bound
      // it (none read, or that figure is over), the later calls count as not counted yet.
      // An earlier call's figure read after this call was sent may be newer too: that call may
      // have reached the server after this one (so this figure does not count it, though our
      // log does). Unless it counted fewer than this one: then, as nothing of a window of
      // seconds leaves it in a round trip, it arrived first.
      const serverCount = this.limit - reading.remaining;
      const sentAt = call?.sentAt;
      let newerEarlier = sentAt !== undefined && this.forgottenAt > sentAt;
      if (index !== undefined && sentAt !== undefined && !newerEarlier)
        for (let k = this.reads.length - 1; k >= 0; k--) {
          const r = this.reads[k] as Read;
          if (r.at <= sentAt) break;
          if (r.index < index && r.count >= serverCount) {
            newerEarlier = true;
            break;
          }
        }
      const fresh = (read === 0 && !newerEarlier) || this.othersUntil <= (now ?? -Infinity);
      // Our calls still in our log that the server may have let go by the time it counted this
      // one: a window since their send has passed (it logged them on arrival, which may be that
      // early, however late their answer came back); our log keeps them a window from their
      // end, and a guard. Taken as counted, they read as many of another client's calls as
      // ours, which then went when our log let them go, while the server's count did not: a
      // 429 (one answer in four 300 ms late, a limit cut below the hint).
      const goneEnds = now === undefined ? [] : this.leftServerBy(now);
      const gone = goneEnds.length;
      // Beside a later call's figure read first, later calls answered without a figure before
      // this one came back count as counted first too (TEOS's first calls to an endpoint tell
      // none): taken as not counted, a figure back after a slow trip read a burst that overtook
      // it as another client's calls, held a window (on a rolling day, the day's last calls
      // refused). Only then: such a figure only raises what others spent. A fresh figure sets
      // it, and a call answered first may still have arrived after it (slower to serve).
      let early = 0;
      if (!fresh && index !== undefined && now !== undefined)
        for (const u of this.silent) if (u.index > index && u.arrivedBy <= now) early += u.units;
      const others = Math.max(0, counted + gone - (fresh ? 0 : read + early));
      // The calls it counted arrived by now: they leave the window a window (and the margin
      // after an end we bound ourselves) from now at the latest. The reset the server tells is
      // when the oldest leaves (a unit at least), not all of them: a sliding window frees one
      // call at a time.
      const until = now === undefined ? (resetAt ?? Infinity) : now + this.ownWindow(this.guardMs, this.tight);
      const firstAt = Math.min(resetAt ?? Infinity, until);
      // Whether another client spent any of the window: a figure counted more than every call
      // of ours it could have counted (our log keeps each at least as long as the server).
      if (counted > later && now !== undefined) this.othersSeenUntil = Math.max(this.othersSeenUntil, until);
      const seen = this.othersSeenUntil > (now ?? -Infinity);
      if (fresh || others > this.othersAt(now ?? -Infinity) - this.unreadUnits) {
        this.setOthers(others, until, firstAt, now, goneEnds);
        this.othersFrom(index, reading.remaining, serverCount, sentAt, units, later);
        // What this figure missed only matters beside another client's spend (ours is in our
        // log): with none seen, none of it is counted twice.
        if (fresh && index !== undefined && sentAt !== undefined) this.missedBy(index, sentAt, seen);
      }
      // Calls that reached the server before this one was sent: its figure, merged above,
      // counts them.
      if (sentAt !== undefined)
        for (const [k, u] of this.unread)
          if (u.arrivedBy <= sentAt) {
            this.unreadUnits -= u.units;
            this.unread.delete(k);
          }
      if (index !== undefined) {
        this.unreadUnits -= this.unread.get(index)?.units ?? 0;
        this.unread.delete(index);
        // Only the last reads are kept: forgetting one takes fewer later calls as counted, and
        // a figure of a call sent before it was read can no longer be told fresh (`forgottenAt`).
        let r: Read;
        if (this.reads.length >= READS_KEPT) {
          r = this.reads.shift() as Read;
          this.forgottenAt = Math.max(this.forgottenAt, r.at);
        } else r = { index: 0, at: -Infinity, count: 0, units: 0, left: 0 };
        r.index = index;
        r.at = now ?? -Infinity;
        r.count = serverCount;
        r.units = units;
        r.left = reading.remaining;
        this.reads.push(r);
        if (call) call.readSeq = this.readCount;
        this.readCount++;
      }
      // Every call the server counts may be one of ours (those sent after this one can overtake
      // it on the way): the window frees as our oldest calls leave it, which our own log times
      // from their answers, with no clock offset, not at the server's reset, an instant of its
      // clock read as late as that offset allows while `Date` headers leave it unsure (up to a
      // second past the truth). Whatever the later calls cannot be shown to explain counts as
      // others' until then; were they not counted after all, their 429s hold the bucket.
      if (hold && counted <= later) {
        hold = false;
        if (counted + gone > 0 && this.othersAt(now ?? -Infinity) - this.unreadUnits < counted + gone) {
          this.setOthers(counted + gone, until, firstAt, now, goneEnds);
          this.othersFrom(index, reading.remaining, serverCount, sentAt, units, later);
        }
      }
      if (now !== undefined) this.capOthers(now);
    }
    if (hold && resetAt !== undefined) this.heldUntil = Math.max(this.heldUntil, resetAt);
    if (reading.limit !== undefined || reading.remaining !== undefined || resetAt !== undefined)
      this.source = 'headers';
    return before !== this.limit && this.limit !== undefined ? (before ?? null) : undefined;
  }

  /** Notes which figure set `others`, for {@link capOthers}. */
  private othersFrom(
    index: number | undefined,
    left: number,
    count: number,
    sentAt: number | undefined,
    units: number,
    later: number,
  ): void {
    if (index === undefined || sentAt === undefined || left <= 0) this.othersSetBy = undefined;
    else {
      const f = (this.othersSetBy = this.setBySlot ??= { index: 0, left: 0, count: 0, sent: -Infinity, units: 0 });
      f.index = index;
      f.left = left;
      f.count = count;
      f.sent = sentAt;
      f.units = units;
    }
    if (this.othersSetBy !== undefined && this.others > 0 && later > 0 && this.pendingUnits - units > 0)
      this.othersAwait = true;
  }

  /**
   * Lowers `others` to what the figure that set it can show at most. Its count is what the
   * server had when that call (f) arrived; what it counts now is no more than that and our calls
   * still in our log that may have arrived after it. Not among them: f itself, a call of ours
   * that came back before f went (it arrived first), and a call whose figure counted no more
   * than f's. That one arrived first, or after calls left the server's window, at least as many
   * as arrived with it; either way it adds nothing beyond f's count, nor does any call that
   * arrived before it. So `others` is at most f's count less those calls (the rest of our log
   * is ours, counted in `own`). Without this, a call answered first or without a figure made
   * f's figure read our calls as another client's, held a window: on a rolling day, calls the
   * server would have taken failed for a day. A figure that left nothing is not used (its
   * count may be more than it says), nor a call that may have left our log. Counted no more:
   * left as much, and counted no more by the limit of each figure's time (a limit cut between
   * them, or an inferred limit that rose since).
   */
  private capOthers(now: number): void {
    const f = this.othersSetBy;
    if (f === undefined || this.others <= 0 || this.limit === undefined || this.othersUntil <= now) return;
    const since = now - (this.windowMs ?? this.span);
    let covered = f.units;
    for (const r of this.reads)
      if (
        r.index !== f.index &&
        r.at > since &&
        ((r.left > 0 && r.left >= f.left && r.count <= f.count) || r.at <= f.sent)
      )
        covered += r.units;
    for (const u of this.silent)
      if (u.index !== f.index && u.arrivedBy <= f.sent && u.arrivedBy > since + this.guardMs) covered += u.units;
    const cap = Math.max(0, Math.max(f.count, this.limit - f.left) - covered);
    if (cap >= this.others) return;
    this.others = cap;
    // Those the figure took as gone are not counted twice any more: it counts none of them now.
    this.othersLoggedLength = 0;
  }

  /** Another client's spend, as a figure read at `now` showed it: `count` units, the oldest leaving at `firstAt`, all by `until`. */
  private setOthers(count: number, until: number, firstAt: number, now: number | undefined, logged: number[]): void {
    this.others = count;
    // Whole entries (as `slice` took them): a spend of 1.5 units keeps 1, and none for NaN.
    const n = Math.min(READS_KEPT, logged.length, Math.floor(Math.max(0, count)) || 0);
    for (let i = 0; i < n; i++) this.othersLogged[i] = logged[i] as number;
    this.othersLoggedLength = n;
    this.othersUntil = until;
    this.othersFirstAt = firstAt;
    const oldest = this.head < this.log.length ? this.log[this.head] : undefined;
    this.ownFirstGoneAt =
      oldest === undefined || now === undefined ? Infinity : oldest + this.ownWindow(this.guardMs, this.tight);
  }

  /**
   * Units of our log that the server may have let go at `now`: a window after their send has
   * passed (the earliest they can have reached it), whenever they ended.
   */
  private leftServerBy(now: number): number[] {
    const edge = now - (this.windowMs ?? this.span);
    const ends: number[] = [];
    // Sorted by end: past the edge by more than the longest trip, none was sent before it.
    for (let i = this.head; i < this.log.length && (this.log[i] ?? Infinity) <= edge + this.longestTrip; i++)
      if ((this.logSent[i] ?? Infinity) <= edge) ends.push(this.log[i] as number);
    return ends;
  }

  /**
   * Units of our log that `others` counts as well (`othersLogged` still in the log), at most
   * what `others` holds at `now`.
   */
  private doubled(now: number): number {
    if (this.othersLoggedLength === 0) return 0;
    const horizon = now - this.ownWindow(this.guardMs, this.tight);
    let n = 0;
    for (let i = 0; i < this.othersLoggedLength; i++) if ((this.othersLogged[i] as number) > horizon) n++;
    return Math.min(n, Math.max(0, this.othersAt(now) - this.unreadUnits));
  }

  /** Units of our calls admitted after call `index` (calls, if it ended before its figure). */
  private unitsAfter(index: number): number {
    const through = this.pending.get(index)?.through;
    return Math.max(0, through === undefined ? this.admitted - index - 1 : this.admittedUnits - through);
  }

  /**
   * Drops the calls that have left the window: a window after each ended, plus the margin of
   * `ownGuard` (a call let go without an answer is logged that much later: `release`).
   */
  private trim(now: number, guardMs: number, tight: boolean): void {
    this.guardMs = guardMs;
    this.tight = tight;
    const horizon = now - this.ownWindow(guardMs, tight);
    while (this.head < this.log.length && (this.log[this.head] ?? Infinity) <= horizon) this.head++;
    if (this.head >= this.log.length) this.longestTrip = 0;
    if (this.head > 1024 && this.head * 2 > this.log.length) {
      this.log.splice(0, this.head);
      this.logSent.splice(0, this.head);
      this.head = 0;
    }
  }

  /**
   * When `need` requests will have left the window: ours one by one, others' at their reset.
   * Others' calls after their oldest leave by `othersUntil`, but may leave as soon as the oldest
   * (the reset told is when it leaves; the rest are no older): a time that rests on them is an
   * upper bound, not a known wait. Then this returns the soonest they can free enough, if it is
   * still to come (a known "not before": past a request's deadline, it fails now); once it has
   * passed, the bound, with `boundOnly` set: the wait ends at the deadline, at the bound, or when
   * an answer (the head's, sent at the reset) tells the next reset.
   */
  private nextFreeAt(now: number, need: number, guardMs: number, tight: boolean): number {
    const window = this.ownWindow(guardMs, tight);
    // Calls in flight leave no sooner than a window after they end: not before a release.
    const own = this.log.length - this.head;
    const ownLeaves = (k: number) =>
      k <= 0 ? now : k <= own ? (this.log[this.head + k - 1] ?? now) + window : Infinity;
    let at = ownLeaves(need);
    let soonest = at;
    const others = this.othersAt(now);
    // The oldest of others' units leaves first (if it has not yet), the rest at the latest; but
    // only until our oldest call leaves our log (the reset may have been that call's).
    if (others > 0 && this.othersFirstAt > now && this.othersFirstAt < this.othersUntil) {
      const first = Math.max(this.othersFirstAt, ownLeaves(need - 1));
      if (first < this.ownFirstGoneAt) at = Math.min(at, first);
    }
    if (others > 0) {
      const rest = ownLeaves(need - others);
      at = Math.min(at, Math.max(this.othersUntil, rest));
      soonest = Math.min(soonest, Math.max(now, Math.min(this.othersFirstAt, this.othersUntil), rest));
    }
    if (soonest < at) {
      if (soonest > now) return soonest;
      this.boundOnly = true;
    }
    return Number.isFinite(at) ? at : now + window;
  }

  /**
   * The margin after a window from an answered call: the server logged the call by then, so
   * {@link ownEndGuard}'s when `tight`, not the one after a reset it told. Not with a shared
   * store, whose log holds other processes' times, read through their clocks.
   */
  private ownGuard(guardMs: number, tight: boolean): number {
    return tight && !this.shared ? ownEndGuard(guardMs, this.windowMs ?? this.span) : guardMs;
  }

  /** How long after its end a call of ours counts: the window and {@link ownGuard}'s margin. */
  private ownWindow(guardMs: number, tight: boolean): number {
    return (this.windowMs ?? this.span) + this.ownGuard(guardMs, tight);
  }

  private used(now: number): number {
    return this.own() + this.othersAt(now) - this.doubled(now);
  }

  /**
   * Our earlier calls the figure of call `index`, sent at `sentAt`, may have missed: those that
   * had not reached the server by then for sure (in flight unanswered, answered after it, or
   * ended without a figure since). They count beside `others` until a figure counts them.
   */
  private missedBy(index: number, sentAt: number, seen: boolean): void {
    // Cleared only when it holds something: clearing a map makes it a new table.
    if (this.unread.size > 0) this.unread.clear();
    this.unreadUnits = 0;
    if (!seen) return;
    const add = (k: number, u: Unread) => {
      if (k >= index || u.arrivedBy <= sentAt || this.unread.has(k)) return;
      this.unread.set(k, { units: u.units, arrivedBy: u.arrivedBy });
      this.unreadUnits += u.units;
    };
    for (const [k, call] of this.pending)
      if (!this.wasRead(call)) add(k, { units: call.cost, arrivedBy: call.answeredAt ?? Infinity });
    for (const u of this.silent) add(u.index, u);
  }

  /** Whether the figure of a call in flight is among the last read (`reads`). */
  private wasRead(call: InFlight): boolean {
    return call.readSeq >= 0 && call.readSeq >= this.readCount - READS_KEPT;
  }

  /** What others spent, as far as we know at `now`, and our calls the figure may have missed. */
  private othersAt(now: number): number {
    if (this.othersUntil <= now) return 0;
    // After the reset the server told, its oldest call has left: a unit of theirs, unless it was
    // our oldest, which leaves our log later.
    const left = this.othersFirstAt <= now && now < this.ownFirstGoneAt && this.others > 0 ? 1 : 0;
    return this.others - left + this.unreadUnits;
  }

  /** Units of our calls the server may still count: in flight, or ended less than a window ago. */
  private own(): number {
    return this.log.length - this.head + this.pendingUnits;
  }

  override release(index?: number, at?: number, cost?: number): void {
    // Without an index (a caller that does not say which call ended), the oldest in flight.
    const key = index ?? this.pending.keys().next().value;
    const call = key === undefined ? undefined : this.pending.get(key);
    const units = cost ?? call?.cost ?? 1;
    super.release(undefined, undefined, units);
    if (key === undefined || call === undefined) return;
    const sent = call.sentAt;
    const held = call.cost;
    // Ended when answered (as the Redis store logs it, at OBSERVE), else when let go. A call let
    // go without an answer may still reach the server later: nothing bounds its count by our
    // end, so it keeps the whole guard (logged later by what `ownGuard` takes off).
    const answered = call.answeredAt;
    const end = answered ?? (at ?? sent) + this.guardMs - this.ownGuard(this.guardMs, this.tight);
    if (!this.wasRead(call)) {
      // Ended without a figure: it reached the server by its answer, or, let go, by the guard
      // after (as its log entry takes it).
      const arrivedBy = answered ?? (at ?? sent) + this.guardMs;
      const missed = this.unread.get(key);
      if (missed) missed.arrivedBy = arrivedBy;
      if (this.silent.push({ index: key, units: held, arrivedBy }) > READS_KEPT)
        this.forgottenAt = Math.max(this.forgottenAt, this.silent.shift()?.arrivedBy ?? -Infinity);
    }
    this.pending.delete(key);
    this.pendingUnits = Math.max(0, this.pendingUnits - held);
    if (this.pending.size === 0) this.othersAwait = false;
    // One entry per unit: the window frees them one by one as they age out.
    for (let i = 0; i < units; i++) this.insert(end, sent);
    this.lastCallAt = Math.max(this.lastCallAt, end);
  }

  /**
   * The answer of call `index` came back at `now`: the server logged the call by then (on its
   * arrival), so its time in the window runs from here, whenever the caller releases the permit
   * (after reading a long body, say). It still counts as in flight until then.
   */
  override confirm(index: number | undefined, now?: number, silent = false, blind = false): void {
    super.confirm(index, now, silent, blind);
    const call = index === undefined || now === undefined ? undefined : this.pending.get(index);
    if (call) call.answeredAt = now;
  }

  override reconcile(index: number, from: number, to: number): number {
    super.reconcile(index, from, to);
    const call = this.pending.get(index);
    if (!call) return to;
    const held = call.cost;
    this.pendingUnits = Math.max(0, this.pendingUnits + to - held);
    // Calls admitted before it count its new units after them (`unitsAfter`); those admitted
    // after it are not moved, which counts them as later by that much more (never fewer: as
    // the Redis store, which keeps no record of each). A call that cost less moves nothing.
    if (to > held) {
      this.admittedUnits += to - held;
      call.through += to - held;
    }
    call.cost = to;
    return to;
  }

  /** Logs a call's end, keeping the log in order (ends come in clock order, so almost always last). */
  private insert(t: number, sent: number): void {
    this.longestTrip = Math.max(this.longestTrip, t - sent);
    let i = this.log.length;
    while (i > this.head && (this.log[i - 1] ?? -Infinity) > t) i--;
    if (i === this.log.length) {
      this.log.push(t);
      this.logSent.push(sent);
    } else {
      this.log.splice(i, 0, t);
      this.logSent.splice(i, 0, sent);
    }
  }

  /**
   * Takes a shared store's figures: its count covers every process's sends, not only the ones
   * in this process's log, so `refill` keeps them until the store answers again.
   */
  override adopt(state: Parameters<Bucket['adopt']>[0], now: number): void {
    super.adopt(state, now);
    this.shared = true;
    if (state.resetInMs === undefined) {
      this.resetAt = undefined;
      this.resetKind = undefined;
    }
  }

  override forget(): void {
    super.forget();
    this.heldUntil = 0;
    this.othersUntil = 0;
    this.othersFirstAt = 0;
    this.ownFirstGoneAt = Infinity;
    this.others = 0;
    this.othersLoggedLength = 0;
    this.othersSetBy = undefined;
    this.othersAwait = false;
    this.unread.clear();
    this.unreadUnits = 0;
    this.silent.length = 0;
    this.forgottenAt = -Infinity;
    this.othersSeenUntil = -Infinity;
  }

  override exhaust(until: number): void {
    this.heldUntil = Math.max(this.heldUntil, until);
    this.remaining = 0;
    this.resetAt = this.heldUntil;
  }

  /** Smooth pacing on a sliding window is the even rate: never more than `limit` in any window. */
  protected override spacing(): number {
    return this.windowMs !== undefined && this.limit !== undefined && this.limit > 0 ? this.windowMs / this.limit : 0;
  }
}

/**
 * The sliding-window bucket kind, for {@link Provider.bucketKinds}: buckets of specs with
 * `rolling: true` and a `windowMs`.
 */
export const rollingWindows: BucketKind = {
  name: 'rolling',
  make: (spec) => new RollingBucket(spec, spec.windowMs as number),
};
