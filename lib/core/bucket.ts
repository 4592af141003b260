import type { BucketReading, BucketSpec } from './provider.js';
import type { BucketSnapshot, BucketSource } from './state.js';
import {
  BLIND_PROBES,
  ceilSecond,
  coldLimit,
  coldRampOver,
  countedAfresh,
  ENDED_LOG_MAX,
  LOWS_KEPT,
  ownEndGuard,
  PROBE_MS,
  PROBE_TRIP_MARGIN_MS,
  PROBE_TRIPS,
  probeWaitMs,
  projectReset,
  recount,
  RELATIVE_SLACK_MS,
  resetTolerance,
  rolledOver,
  sharpenReset,
  unconfirmedBudget,
  type LowTest,
} from './window.js';
import {
  planTickProbes,
  PROBE_MAX_LEAD_MS,
  probeAt,
  probeSlots,
  type ClockOffsetBounds,
  type TickProbes,
} from './windowEnd.js';

export { PROBE_MS } from './window.js';

/** An instant kept as a number, NaN for none, as the value it stands for. */
function known(at: number): number | undefined {
  return Number.isNaN(at) ? undefined : at;
}

/**
 * One window's budget, as this process knows it. All times are on the limiter's clock.
 *
 * Accounting: a request takes its cost in units when admitted (`take`; one unless the request
 * or its provider says more), and `inFlight` and `remaining` count units. A response's
 * `remaining` is an upper bound: our other requests in flight are subtracted from it, and
 * within a window it can only lower what is left (`apply`).
 */
export class Bucket {
  readonly name: string;
  readonly quota: boolean;
  readonly pacing: 'burst' | 'smooth';
  readonly rolling: boolean = false;
  /** A leaky (token) bucket (`LeakyBucket`): units come back continuously, there is no window. */
  readonly leaky: boolean = false;
  limit: number | undefined;
  remaining: number | undefined;
  /**
   * When the window resets, if known. Kept as a number (NaN for none), so that setting it
   * allocates nothing: a field that may hold `undefined` boxes each instant it is given, and with
   * many tenants each box lived until the tenant's next answer, past the young generation.
   */
  private resetAtMs = Number.NaN;
  get resetAt(): number | undefined {
    return known(this.resetAtMs);
  }
  set resetAt(at: number | undefined) {
    this.resetAtMs = at ?? Number.NaN;
  }
  /** `server`: the reset came from a response; `inferred`: we started the window at a send. */
  resetKind: 'server' | 'inferred' | undefined;
  windowMs: number | undefined;
  source: BucketSource = 'hint';
  /** Where `limit` and `windowMs` came from (see `BucketSnapshot.sources`). */
  limitSource: BucketSource | undefined;
  windowSource: BucketSource | undefined;
  /**
   * Is the cold start over? Once an answer described this bucket, or answers that said nothing
   * of it (`confirm`'s `silent`) let it ramp up to where the cold start no longer holds it.
   */
  observed = false;
  /**
   * Successes that came back during the cold start describing other buckets of their request,
   * not this one: each lets one more be in flight (`coldLimit`: doubling per round trip). An
   * answer about another bucket (Planning Center's stricter bucket for a high offset) says
   * nothing of this one's limit, which its own answers may still tell (a lower one): the ramp
   * ends the cold start only after as many as its limit (`coldRampOver`), for a bucket no answer
   * describes (GitHub's secondary points).
   */
  silentAnswers = 0;
  inFlight = 0;
  /**
   * The last `apply` dropped its figure as a window's we refilled past, though the server may
   * have counted its call in the new one: the permit does not mark it read, so its release
   * counts the call as ended without a figure (`endedWithout`), once.
   */
  staleFigure = false;
  /** Monotonic count of admissions: the index a permit holds to judge its response's age. */
  admitted = 0;
  /**
   * After a local refill, until a response from the new window confirms the numbers, what may
   * still be sent (`unconfirmedBudget`: one request after a told reset, which may have freed one
   * request of a sliding window or come with a cut limit; nothing while requests are in flight
   * after an inferred one).
   */
  private unconfirmedLeft: number | undefined;
  /**
   * The admission index of the send that opened the current inferred window (`take`, no reset
   * told): until an answer from it comes, its end is only a guess from our send time.
   */
  private openedBy: number | undefined;
  /**
   * When a refill at an inferred reset began waiting for the answers in flight (budget 0), or
   * the probe after a refill went: not for ever, a hung request or a long-held permit must not
   * hold the bucket; one request goes {@link PROBE_MS} after the refill or the probe.
   */
  private awaitingSince: number | undefined;
  /**
   * The longest round trip of the bucket's recent answers, whole ms, and the answers read since
   * it was (`noteTrip`): two small integers, no list kept per bucket.
   */
  private probeTripMs = 0;
  private probeTripAge = 0;
  /**
   * An answer the server counted told a figure of this bucket: its answers describe it, and one
   * that does not (a gateway's error page) leaves a refilled window's probe unanswered. An
   * inferred window's answers never describe it.
   */
  private figured = false;
  /**
   * Probes in a row that ended with no figure of the window (`release`): past
   * {@link BLIND_PROBES}, an answer with no figure confirms the window again, as a bucket that
   * stopped being described (a proxy that strips the headers for good) must not be held to a
   * probe a second.
   */
  private blindProbes = 0;
  /** When the next probe may go, the last one having ended with no figure of the window (`release`); else NaN. */
  private reprobeAt = Number.NaN;
  /** The current reset is a projection of one the server told (its phase is the server's). */
  private projected = false;
  /**
   * A projected window nothing has been sent in yet: the first send in it bounds its end as
   * an inferred window's (`take`), for a server whose window opens at the first request after
   * it ended, or whose told end we read a little early, outlasts the projection.
   */
  private projectedOpen = false;
  /**
   * The reset we bounded ourselves, a window after an answer from the window (NaN: none). While
   * `resetAt` is still that value, the margin after it is {@link ownEndGuard}'s; any other
   * reset (told, projected, held) takes the full guard.
   */
  private ownEndAt = Number.NaN;
  /** The last reset a response reported (never a projection of ours; NaN: none, as `resetAtMs`). */
  private serverResetAtMs = Number.NaN;
  private get serverResetAt(): number | undefined {
    return known(this.serverResetAtMs);
  }
  private set serverResetAt(at: number | undefined) {
    this.serverResetAtMs = at ?? Number.NaN;
  }
  /**
   * The window's lowest figures as they were read, oldest first (value, admission index, admissions
   * made then; the last {@link LOWS_KEPT}), in the first `lowsLength` entries: a call sent after
   * one of them was read, whose figure reads more than it less its cost, was counted in another
   * window (`countedAfresh`), even when a lower figure read after that call was sent is the
   * window's lowest now. The last is the lowest `remaining` the server reported in this window
   * (`lowestValue`): with no reset from the server, a later request that sees clearly more left
   * shows the server's window has rolled over (`apply`). Made on the first figure and then
   * reused, never replaced: a new object per figure, held until the tenant's next answer,
   * outlived the young generation under many tenants and was copied by every collection.
   */
  private lows: number[] | undefined = undefined;
  /** Entries of `lows` in use (3 per figure). */
  private lowsLength = 0;
  /**
   * For each figure of `lows` (same order, one entry per figure), the earliest its window may
   * end, from a reset told as time left (`sentAt` plus the time left, less its rounding);
   * -Infinity when it told none.
   */
  private lowEnds: number[] | undefined = undefined;
  /**
   * The server's window slides: readings proved it (`provesSliding`), for the bucket's life. Each
   * reset it tells is then when one request leaves its window, not when the window ends.
   */
  private slidesProved = false;
  /**
   * Admissions made when the current window opened (a reading that opened it, or a refill): a
   * request admitted earlier may have been counted in the window before, however its answer
   * reads. Its figure is not the window's `lowest`, which proves a rollover by a rise above it
   * (a rise above the old window's last count is only the rollover we know of): it is `floor`.
   */
  private windowFrom = 0;
  /**
   * The lowest figure of this window's requests admitted before it opened (`windowFrom`): the
   * previous window's count, or this one's. What is left is recounted from it as from `lowest`
   * (never more than it allows), but no rise above it proves a new window.
   */
  private floor: number | undefined;
  /** Admissions made when `floor` was read: a request admitted earlier may have been counted before it. */
  private floorAfter = 0;
  /**
   * Units of ours in flight that the lowest figure may count already: admitted before it was
   * read, its own request aside. `remaining` took them off that figure all the same, so their
   * answers may give room back (`awaitsAnswers`).
   */
  private doubted = 0;
  /**
   * Units of our calls that ended without a figure of this bucket (a HubSpot search's answer
   * tells no daily count; an error, a call let go): a figure read later, from a call sent before
   * one of them ended, may not count it, as the server counted in another order than we sent.
   * Each is taken off every figure (as calls in flight are) until one from a call admitted once
   * it had ended (so the server counted it before) is read: `unreadLog` keeps them one by one. A
   * count of them all, kept until a call sent after the last of them was read, took those that
   * figure counted off it again, and left up to a quarter of each window unused.
   */
  private endedUnread = 0;
  /**
   * The calls `endedUnread` counts, oldest end first, as triples (admissions made when it ended,
   * its units, the time by which it reached the server: its send plus the longest recent round
   * trip, when that is after its end, else 0); at most {@link ENDED_LOG_MAX}, the oldest folded
   * into the next (held as long as it, never too few).
   */
  private unreadLog: number[] | undefined = undefined;
  /**
   * The calls of this window whose figures of this bucket were read while other calls were in
   * flight, as quadruples (admissions made when it was read, its units, its figure, 1 if it
   * told a reset later than the window's end, else 0), and those that ended without a figure
   * (figure -1, and 1: either window may have counted them), at most {@link ENDED_LOG_MAX}. A
   * window whose start nobody told (a rise), or a later one a told reset could not show at
   * once, began while calls were in flight. The calls the server counted after the one whose figure shows it, in the
   * new window, are in flight or were answered after it was sent, with less left than it read;
   * their figures were read as the old window's, and the figure that opens the new window does
   * not count them (`apply`). The oldest entries, past the cap, fold into `endedOver` units,
   * counted for a call admitted before the last of them was read (`endedOverAfter`).
   */
  private endedLog: number[] | undefined = undefined;
  private endedOver = 0;
  private endedOverAfter = 0;
  /** A shared store's word on the same (`adopt`), over every process's requests in flight. */
  private storeDoubts = false;
  private refillIndex = 0;
  /** The reset the server told for the current window, before `sharpenReset` (NaN: none, as `resetAtMs`). */
  private toldMs = Number.NaN;
  private get told(): number | undefined {
    return known(this.toldMs);
  }
  private set told(at: number | undefined) {
    this.toldMs = at ?? Number.NaN;
  }
  /** That reset as the server's instant, when it told one (not a time left): it names the window. */
  private toldServerAt: number | undefined;
  private toldSlack = 0;
  /** A 429 emptied this window: no answer from it raises what is left. */
  private held = false;
  /**
   * When the last slots of this window may go, if its end is known only to an interval (a
   * reset read through a clock offset known to the second): see `planTickProbes` (windowEnd.ts).
   */
  private probes: TickProbes | undefined;
  /** The earliest this window may end, while its tick probes are due or held; else NaN. */
  private earliestEnd = Number.NaN;
  /**
   * @internal Set by capacity inference (inference.ts): an instant before `resetAt` at which one
   * request may go while the bucket is empty and none is in flight, to learn whether the reset
   * was read too late (NaN: none).
   */
  earlyAt = Number.NaN;
  /** Whether the first plan of this window's tick probes is due (`planTickProbes`). */
  private probesDue = false;
  /** The clock offset's interval when the probes were last planned, ms. */
  private probedLower = -Infinity;
  private probedWidth = Infinity;
  protected nextSmoothAt = 0;
  /**
   * @internal The registry's bookkeeping (buckets.ts), kept on the bucket rather than in maps
   * keyed by it: groups of waiting requests that count against it (it is kept while any do).
   */
  pins = 0;
  /**
   * @internal Admission's bookkeeping (localAdmission.ts): has a limiter ever parked requests on
   * it? Until one has, a recheck (three per response) looks up no lot in its weak map, whose
   * table is one more read out of the CPU's caches at 10,000 tenants.
   */
  lotted = false;
  /**
   * @internal The provider's spec it was made from, for a shared store's first use of it
   * (`specOf` in sharedAdmission.ts); none for a bucket a response named. On the bucket, not in
   * a map by name: one table less on each of 10,000 tenants' limiters.
   */
  hint: BucketSpec | undefined = undefined;
  /**
   * @internal The registry's bookkeeping: since when nothing may use it (NaN: not in the
   * registry's idle queue). A double from the start, so V8 updates it in place: a time kept in
   * a map (or a field that held `undefined`) is a new heap number at every use, which outlives
   * the young generation when the limiter is used once per many requests (10,000 tenants).
   */
  idleSince = Number.NaN;

  constructor(spec: BucketSpec) {
    this.name = spec.name;
    this.quota = spec.quota ?? false;
    this.pacing = spec.pacing ?? 'burst';
    this.limit = spec.limit;
    this.remaining = spec.limit;
    this.windowMs = spec.windowMs;
    if (spec.limit !== undefined) this.limitSource = 'hint';
    if (spec.windowMs !== undefined) this.windowSource = 'hint';
  }

  /**
   * A window proved sliding, with calls in flight: one of them may have taken the request its
   * reset frees, and its answer tells a later reset. The refill waits for it (PROBE_MS at most).
   */
  private get awaitsSlide(): boolean {
    return this.slidesProved && this.inFlight > 0;
  }

  /**
   * Starts a new window locally once the known reset has passed (plus the guard). `tight`: the
   * limiter left `resetGuardMs` to its default and keeps its buckets in memory, so an end we
   * bounded ourselves takes {@link ownEndGuard} (a guard the user set applies to every reset).
   */
  refill(now: number, guardMs: number, tight = false): void {
    if (this.resetAt === undefined || now < this.resetAt + this.guardOf(guardMs, tight)) return;
    if (this.awaitsSlide && now < this.resetAt + this.guardOf(guardMs, tight) + PROBE_MS) return;
    this.earlyAt = Number.NaN;
    this.reprobeAt = Number.NaN;
    this.probes = undefined;
    this.earliestEnd = Number.NaN;
    this.probesDue = false;
    this.lowsLength = 0;
    this.floor = undefined;
    this.windowFrom = this.admitted;
    this.doubted = 0;
    // Ended before the reset: counted in the window that ended.
    this.clearUnread();
    this.forgetEnded();
    this.held = false;
    this.told = undefined;
    this.toldServerAt = undefined;
    this.openedBy = undefined;
    // A reset the server told, or projected from one, keeps the server's phase: one request
    // goes at once. One we inferred may be off by however long our requests waited to be counted.
    const told = this.resetKind === 'server' || this.projected;
    // Requests still in flight may land in the new window on the server: count them there too.
    this.remaining = this.limit === undefined ? undefined : Math.max(0, this.limit - this.inFlight);
    // Emptied once with its limit never told: probe with one request, as on a cold start.
    if (this.limit === undefined) {
      this.observed = false;
      this.silentAnswers = 0;
    }
    if (this.limit !== undefined && this.observed) {
      this.unconfirmedLeft = unconfirmedBudget(told);
      this.refillIndex = this.admitted;
      this.awaitingSince = told ? undefined : now;
    }
    if (this.resetKind === 'server' && this.windowMs !== undefined && this.windowMs > 0) {
      // Projected, not told: the next response's reset replaces it whatever its value.
      this.resetAt = projectReset(this.resetAt, now, this.windowMs);
      this.resetKind = 'inferred';
      this.projected = true;
      this.projectedOpen = true;
    } else {
      this.resetAt = undefined;
      this.resetKind = undefined;
      this.projected = false;
      this.projectedOpen = false;
    }
  }

  /**
   * Earliest time this bucket could admit one more request of `cost` units: `now` if it has
   * room, a time if it will have room then, `undefined` if only a response can tell (cold
   * start, or not enough left with requests in flight whose responses will report the reset).
   * `waiting`: how many requests want a slot now; only when they and those in flight outnumber
   * what the window has left are its last slots kept back to pin the clock offset
   * (`planTickProbes`).
   */
  availableAt(
    now: number,
    guardMs: number,
    coldStart: number,
    waiting = 0,
    cost = 1,
    tight = false,
  ): number | undefined {
    if (this.coldHeld(coldStart)) return undefined;
    // `> cost - 1`: for one unit, any room at all (as ever); for more, the whole cost.
    if (this.unconfirmedLeft !== undefined && !(this.unconfirmedLeft > cost - 1) && this.inFlight > 0) {
      // Waiting for an answer from the new window: after an inferred reset, for the answers in
      // flight; once the probe went, for its answer. At most PROBE_MS: then one request goes
      // (the checks below still apply).
      if (this.awaitingSince === undefined) return undefined;
      const until = this.awaitingSince + probeWaitMs(this.probeTripMs, this.windowMs);
      if (now < until) return until;
    } else if (this.unconfirmedLeft !== undefined && now < this.reprobeAt) {
      // The last probe ended with no figure of the window (`release`): the next waits a while.
      return this.reprobeAt;
    }
    if (this.remaining === undefined || this.remaining > cost - 1) {
      // Demand beyond what is left: requests waiting, and the streams of those in flight, which
      // ask again when answered (a pool of streams shows only a few waiting at a time).
      const probe =
        waiting > 0 && waiting + this.inFlight > (this.remaining ?? Infinity)
          ? probeAt(this.probes?.at, this.remaining)
          : undefined;
      const at = this.pacing === 'smooth' ? Math.max(now, this.nextSmoothAt) : now;
      return probe === undefined ? at : Math.max(at, probe);
    }
    if (this.resetAt !== undefined) {
      const at = this.resetAt + this.guardOf(guardMs, tight);
      if (this.awaitsSlide && now >= at) return at + PROBE_MS;
      return this.earlyAt + guardMs < at && this.inFlight === 0 ? Math.max(now, this.earlyAt + guardMs) : at;
    }
    return this.inFlight > 0 ? undefined : now;
  }

  /**
   * Notes an answered call's round trip: `probeTripMs` is the longest since it was seen, for
   * {@link PROBE_TRIPS} answers; then it is the latest trip's (and rises again with a longer one).
   */
  private noteTrip(ms: number): void {
    const trip = ms > 0 ? Math.ceil(ms) : 0;
    if (trip >= this.probeTripMs || ++this.probeTripAge >= PROBE_TRIPS) {
      this.probeTripMs = trip;
      this.probeTripAge = 0;
    }
  }

  /** The margin after `resetAt`: {@link ownEndGuard} for an end we bounded ourselves (`ownEndAt`), when `tight`. */
  private guardOf(guardMs: number, tight: boolean): number {
    return tight && this.resetAt === this.ownEndAt ? ownEndGuard(guardMs, this.windowMs) : guardMs;
  }

  /** Takes `cost` units for one request admitted now; returns its admission index. */
  take(now: number, cost = 1): number {
    const index = this.admitted++;
    // The one request an early instant lets go (or any after it): the next is the window's.
    if (now >= this.earlyAt) this.earlyAt = Number.NaN;
    this.inFlight += cost;
    this.awaitingSince = undefined;
    if (this.remaining !== undefined) this.remaining = Math.max(0, this.remaining - cost);
    if (this.unconfirmedLeft !== undefined) {
      this.unconfirmedLeft = Math.max(0, this.unconfirmedLeft - cost);
      // The probe is out: its answer is awaited at most PROBE_MS, then one more request goes. A
      // probe that hangs, or fails unanswered while older requests are still out, must not hold
      // the bucket until its permit lapses.
      if (this.unconfirmedLeft === 0) this.awaitingSince = now;
    }
    if (this.resetAt === undefined && this.windowMs !== undefined && this.limit !== undefined) {
      // No reset from the server: the window is taken to start at our first send in it, until
      // an answer from it bounds when the server counted it (`confirm`).
      this.resetAt = now + this.windowMs;
      this.resetKind = 'inferred';
      this.projected = false;
      this.openedBy = index;
      if (this.source === 'hint' && this.observed) this.source = 'inferred';
    } else if (this.projectedOpen) {
      // The first send in a projected window: the projection keeps the phase of a window the
      // server told, but the server's window may open only at this request (Planning Center's
      // periods open at the first request after one ended) or end a little after the told end
      // we projected (read a millisecond early): a burst spent up to the projection and again
      // after it lands in one window of the server's. So the window ends no earlier than a
      // window after this send, and its first answer bounds it as an inferred window's
      // (`confirm`); a reset the server tells replaces either.
      this.projectedOpen = false;
      if (this.projected && this.resetKind === 'inferred' && this.windowMs !== undefined && this.windowMs > 0) {
        this.resetAt = Math.max(this.resetAt ?? 0, now + this.windowMs);
        this.openedBy = index;
      }
    }
    // A request of `cost` units uses that many evenly spaced slots.
    if (this.pacing === 'smooth') this.nextSmoothAt = this.nextSlot(now, this.spacing(now) * cost);
    return index;
  }

  /**
   * Gives back the `cost` units of admission `index`, whose request ended at `at` (answered,
   * failed or cancelled); `read`: its answer told a figure of this bucket; `sentAt`: when it went,
   * for a request let go unanswered (it may still be on its way to the server). A fixed window only
   * counts what is in flight, and the calls ended unread (`endedUnread`); a sliding one starts the
   * call's time in the window from here.
   */
  release(index?: number, at?: number, cost = 1, read = true, sentAt?: number): void {
    // A probe of a refilled window that ended with no figure of it (unanswered, or answered
    // blind: `confirm`): one more request probes, the rest wait for a figure. Not at once: the
    // server may have counted the probe in the one slot a sliding window freed, so the next
    // goes {@link PROBE_MS} later (`availableAt`), when another may have left it.
    if (
      !read &&
      this.unconfirmedLeft !== undefined &&
      this.probing &&
      index !== undefined &&
      index >= this.refillIndex
    ) {
      this.blindProbes++;
      this.unconfirmedLeft = Math.max(this.unconfirmedLeft, unconfirmedBudget());
      // From here, as after the probe went: a request the one unit does not cover (of 2 units,
      // with older calls still out) waits for an answer at most a probe's wait, as in Redis
      // (`aw`). Unset, it waited for the slowest call in flight, however long that took.
      this.awaitingSince = at;
      if (at !== undefined) this.reprobeAt = at + PROBE_MS;
    }
    const n = this.lowsLength;
    if (n > 0 && (index ?? Infinity) < (this.lows?.[n - 1] as number) && index !== this.lows?.[n - 2])
      this.doubted -= cost;
    if (!read && index !== undefined) this.endedWithout(cost, this.arrivedBy(sentAt, at));
    this.inFlight = Math.max(0, this.inFlight - cost);
    if (this.inFlight === 0) {
      this.doubted = 0;
      // No call admitted before the logged answers is left to show a rise.
      this.endedLog = undefined;
      this.endedOver = 0;
    }
  }

  /** Is a refilled window of a bucket whose answers describe it waiting for a figure of it (its probe out, or due)? */
  get probing(): boolean {
    return this.unconfirmedLeft !== undefined && this.figured && this.blindProbes < BLIND_PROBES;
  }

  /**
   * Could answers still to come give room back? Some of our units in flight were admitted
   * before the lowest figure of the window was read, which may count them already, and
   * `remaining` took them off it. Until they are in, an empty bucket is not known to be spent.
   * With a shared store, also when the store says so of every process's requests (`adopt`).
   */
  get awaitsAnswers(): boolean {
    return this.storeDoubts || (this.inFlight > 0 && this.doubted > 0);
  }

  /**
   * Admission `index`, in flight with `from` units, really costs `to` (a cost estimated before
   * and told after, as Shopify's `requestedQueryCost` and `actualQueryCost`): the difference is
   * taken from, or given back to, what is left and what is in flight. Returns the units now
   * held. A response's `remaining` corrects it anyway.
   */
  reconcile(_index: number, from: number, to: number): number {
    const delta = to - from;
    this.inFlight = Math.max(0, this.inFlight + delta);
    if (this.remaining !== undefined) {
      const room = this.limit === undefined ? Infinity : Math.max(0, this.limit - this.inFlight);
      this.remaining = Math.min(room, Math.max(0, this.remaining - delta));
    }
    if (this.unconfirmedLeft !== undefined && delta > 0)
      this.unconfirmedLeft = Math.max(0, this.unconfirmedLeft - delta);
    return to;
  }

  /**
   * Applies one response's reading. `index` is the admission index of the request it answers
   * (undefined for a response we did not admit). Returns the previous limit when it changed.
   *
   * Responses arrive in any order, and the server counted them in an order we do not know. So
   * the server's `remaining` is trusted only as an upper bound: every other request of ours in
   * flight may not be counted in it yet, and within one window a reading may lower what is
   * left but never raise it (a late response carries an older, higher figure). A reading whose
   * reset is clearly later starts a new window and is taken as it is.
   */
  apply(
    reading: BucketReading,
    index: number | undefined,
    resetAt: number | undefined,
    now: number,
    sentAt?: number,
    /** The reset as an instant on the server's clock, when it is one (not a time left): it names the window. */
    serverAt?: number,
    /** How much later than the window's end the reset may read (rounding, clock offset). */
    slackMs = RELATIVE_SLACK_MS,
    /** Units the answered request holds (its cost). */
    cost = 1,
    /** `serverAt` read through the least clock offset the `Date` headers allow: the latest it may be here. */
    latestAt?: number,
    /** The server counted the request (it was not refused): its figure counts it. */
    counted = false,
  ): number | null | undefined {
    const absolute = serverAt !== undefined;
    this.staleFigure = false;
    if (counted && reading.remaining !== undefined) {
      this.figured = true;
      this.blindProbes = 0;
    }
    if (sentAt !== undefined) this.noteTrip(now - sentAt);
    this.confirm(index, now);
    this.readWindow(reading);
    const current =
      this.resetKind === 'server' && this.resetAt !== undefined ? Math.max(this.resetAt, this.told ?? 0) : undefined;
    const tol = this.tolerance();
    if (resetAt !== undefined && resetAt <= now) return this.pastWindow(reading, index, cost);
    // Two readings of one window differ by up to the rounding plus the first one's trip back
    // (seconds left) or the change in the clock offset (an instant): only a reset earlier than
    // that names an older window.
    // The same instant of the server's clock names the same window, whatever the offset: never older, never new.
    const sameInstant = absolute && current !== undefined && serverAt === this.toldServerAt;
    // Two instants of the server's clock are compared on that clock: read through an offset the
    // `Date` headers pinned closer since, the next window's end could read less than the
    // tolerance after our reading of this one's (taken at the latest the offset then allowed),
    // and was taken for the same window, refilled at its old end in the middle of the next.
    const instants = absolute && current !== undefined && this.toldServerAt !== undefined;
    const older =
      !sameInstant &&
      current !== undefined &&
      resetAt !== undefined &&
      (instants
        ? (serverAt as number) < (this.toldServerAt as number) - tol
        : resetAt < current - tol - this.toldSlack);
    if (older) return undefined; // an older window
    // It told a reset clearly later than this window's end (`endedLog`).
    const laterReset =
      current !== undefined &&
      resetAt !== undefined &&
      (instants ? (serverAt as number) > (this.toldServerAt as number) + tol : resetAt > current + tol);
    // A request sent before the last reset the server told us belongs to that window (or an
    // older one), however late its response and however its relative reset reads: it may
    // lower what is left, never open a new window. An absolute reset is no such guess: it is
    // the end of the window that counted the request, which may be the next one when the
    // request reached the server after the reset (sent just before it, on a slow path).
    // That reset is itself an upper bound (rounded up to the second), so a request sent before
    // it may have been counted in the next window, which ended our estimate early; its answer
    // shows that when its reset is longer than the old window could have had left at the send
    // (plus the rounding), or when it reports more left than that window did.
    const sentBefore =
      !absolute &&
      sentAt !== undefined &&
      this.serverResetAt !== undefined &&
      sentAt < this.serverResetAt &&
      !(resetAt !== undefined && resetAt - now > ceilSecond(this.serverResetAt - sentAt)) &&
      !this.rolledOver(reading, index) &&
      !(
        resetAt !== undefined &&
        current !== undefined &&
        resetAt > current + tol &&
        this.countedAfresh(reading.remaining, index, cost)
      );
    if (sentBefore && current === undefined) {
      // We have refilled past it already: its figure is the old window's, or the new one's
      // when the request reached the server after the old window ended (sent just before it,
      // on a slow path); which, nothing tells. Unread, the call counts beside the new window's
      // figures until one from a call sent after it ended is read (`endedUnread`). Dropped, it
      // left the calls in flight uncounted: the new window's lowest figure, read before the
      // server counted it, gave its unit back (Planning Center: a period's count 6, or counts 2
      // to 4, from calls sent before it began, dropped; 8 went into a period of 7, 14 into 13).
      // The permit's release counts it so (`staleFigure`: its figure is not marked read).
      this.staleFigure = true;
      return undefined;
    }
    // With no reset told, a new window shows as a figure the old window could not give a call
    // sent after one of its lowest figures was read: a rise, or (counted afresh) no lower than
    // that figure less the call's cost. Only a rise was taken: a call sent after "2 left" was
    // read and reading 2 again (Fieldwire's minute, whose reset reads 0 until it is spent) was
    // taken for the old window's, whose end we had bounded later than the server's, and the
    // refill at that end sent two calls into the new window, which had counted 3 of its 4.
    const rolled =
      !sentBefore &&
      current === undefined &&
      resetAt === undefined &&
      (this.rolledOver(reading, index) || this.countedAfresh(reading.remaining, index, cost));
    // A reset told while the window's end is only ours (inferred) opens a new window, unless
    // the reading is an older one of this window: sent before its lowest figure came back, it
    // reads more left and its reset is no later than our end of the window (Planning Center
    // tells a reset only with a count of 1, which may come back after the counts that
    // followed it). Its reset still ends the window.
    // A reset told as time left ran from when the server answered, which was no sooner than the
    // send: the window it names may end that much earlier than read from the answer's arrival.
    // A count-1 answer 1.9 s on its way back read a reset 1.9 s past our end of the window it
    // began, was taken for a new window, and the refill sent calls into the full one.
    const earliestRead =
      resetAt !== undefined && !absolute && sentAt !== undefined ? resetAt - Math.max(0, now - sentAt) : resetAt;
    const olderReading =
      current === undefined &&
      earliestRead !== undefined &&
      this.resetAt !== undefined &&
      earliestRead <= this.resetAt + tol &&
      index !== undefined &&
      this.lowsLength > 0 &&
      index < (this.lows?.[this.lowsLength - 1] as number) &&
      reading.remaining !== undefined &&
      reading.remaining > (this.lowestValue as number);
    // The same of the figure of a request admitted before the window opened (`floor`): it may
    // be this window's count too, and a count-1 answer back after it is then no new window.
    const olderThanFloor =
      current === undefined &&
      earliestRead !== undefined &&
      this.resetAt !== undefined &&
      earliestRead <= this.resetAt + tol &&
      index !== undefined &&
      this.floor !== undefined &&
      index < this.floorAfter &&
      reading.remaining !== undefined &&
      reading.remaining > this.floor;
    // A figure no call sent after one of the window's lowest could read in that window (counted
    // afresh) shows a window that began after it, though its reset reads within the tolerance of
    // ours (a first answer back late told our end early: Pipedrive's "2" after 1.95 s on the
    // way back): a new window, ending at this reset. Taken as ours, the refill at our end sent
    // calls into the server's window that had only its last slots left.
    const afreshWithin =
      current !== undefined &&
      resetAt !== undefined &&
      !sameInstant &&
      resetAt > current &&
      this.countedAfresh(reading.remaining, index, cost);
    const newWindow =
      rolled ||
      afreshWithin ||
      (!sentBefore &&
        !sameInstant &&
        resetAt !== undefined &&
        (current === undefined
          ? !olderReading && !olderThanFloor
          : instants
            ? (serverAt as number) > (this.toldServerAt as number) + tol
            : resetAt > current + tol));
    // A window whose start nobody told (a rise, or a reset told while its end was only our
    // guess) began while calls were in flight. The server counted after this request, in the
    // new window, only calls still in flight or answered after it was sent with less left than
    // it reads; those answered had their figures read as the old window's, and this figure does
    // not count them. They count beside it, as calls ended unread, until a figure from a call
    // sent after they ended is read.
    // A window opened by a reset told later than ours began while calls were in flight too:
    // those answered since this one went that told a reset later than the window's end, though
    // taken as the old window's (sent before its end, their relative reset could not show
    // otherwise after a long trip back), may have been counted in it after this one.
    // A reset within the tolerance of the window's end (counted afresh) tells nothing of which
    // window each answer's reset named: then every figure read since this call went, below it.
    const since =
      !newWindow || index === undefined || this.lowsLength === 0
        ? 0
        : rolled || (current === undefined && !this.projected)
          ? this.endedSince(index, reading.remaining)
          : current !== undefined
            ? // (On a sliding window a later reset names no other window: every figure below it.)
              this.endedSince(index, reading.remaining, !afreshWithin && !this.slidesProved)
            : 0;
    // The earliest the window this reading names may end: a reset told as time left, rounded up
    // to the second, ran from when the server counted the request, no sooner than the send.
    const endFrom =
      resetAt !== undefined && !absolute && sentAt !== undefined ? sentAt + (resetAt - now) - slackMs : -Infinity;
    if (counted && endFrom > -Infinity && index !== undefined && reading.remaining !== undefined)
      this.slidesProved ||= this.provesSliding(reading.remaining, index, cost, resetAt as number);
    if (newWindow) {
      this.forgetEnded();
      this.lowsLength = 0;
      this.floor = undefined;
      this.windowFrom = this.admitted;
      this.held = false;
      this.probes = undefined;
      this.earliestEnd = Number.NaN;
      this.probesDue = false;
    }
    if (newWindow) this.doubted = 0;
    // The calls that ended unread before this one was sent: the server counted them before it.
    if (reading.remaining !== undefined && index !== undefined) {
      this.countedUnread(index, sentAt);
    }
    // The calls ended unread since this one went are among them (logged as such): the units
    // ended unread before it went were counted before it, in the window before.
    if (since > 0) this.unreadSince(since);
    if (reading.remaining !== undefined && index !== undefined) {
      if (!newWindow && index < this.windowFrom) {
        // Sent before this window opened: it may be the last window's count (answers come back
        // out of order). It lowers what is left, but a later rise above it proves nothing: a
        // request of this window read as counted after it took this window's higher figure for
        // a window after it, took it as the count, and lost the lower ones read since.
        if (reading.remaining < (this.floor ?? Infinity)) {
          this.floor = reading.remaining;
          this.floorAfter = this.admitted;
        }
      } else if (reading.remaining < (this.lowestValue ?? Infinity)) {
        this.keepLow(reading.remaining, index, endFrom);
        this.doubted = Math.max(0, this.inFlight - cost);
      }
      // A call still in flight, admitted before this one's figure was read, may show a rise
      // that this call was counted after.
      if (!newWindow && this.inFlight > cost) this.logEnded(reading.remaining, cost, laterReset);
    }
    const before = this.limit;
    this.readLimit(reading);
    if (reading.remaining !== undefined) {
      const others = Math.max(0, this.inFlight - (index === undefined ? 0 : cost)) + this.endedUnread;
      // The lowest figure of the window is the server's latest count; every request of ours it
      // may not include is still in flight. Recomputed at each answer, not only lowered: a
      // request counted before it, answered after it, was subtracted twice until now (with
      // jittered latency that lost a few requests per window, and so sometimes a window).
      this.remaining = recount(
        this.remaining,
        reading.remaining,
        others,
        this.floor === undefined ? this.lowestValue : Math.min(this.floor, this.lowestValue ?? Infinity),
        newWindow,
        this.held,
        index !== undefined,
      );
      // A server that reports remaining but not limit still bounds the limit from below.
      if (this.limit === undefined && reading.remaining > 0) {
        this.limit = reading.remaining;
        this.limitSource = 'inferred';
      }
    }
    if (resetAt !== undefined) {
      // Within a window keep the first reading: resets given as whole seconds left are rounded
      // up (Pipedrive shows "2" right after the first request of its 2-second window), so the
      // first is the tightest, and later ones only add rounding.
      if (newWindow || current === undefined) {
        this.told = resetAt;
        // How much a later reading of this window may read earlier: for seconds left, this
        // reading's trip back; for an instant, what the clock offset was unsure of by then.
        this.toldSlack = absolute ? Math.max(0, slackMs - 1000) : 1 + Math.max(0, now - (sentAt ?? now));
        this.toldServerAt = serverAt;
        this.resetAt = sharpenReset(resetAt, now, this.windowMs, slackMs);
        if (this.resetAt !== resetAt) this.ownEndAt = this.resetAt;
        // The earliest the window may end stays the told reset less its slack, however sharp
        // the latest became. An end a window after this answer needs no clock offset, and
        // pinning it would hold the window's last slots for nothing: no tick probes then.
        this.probesDue = absolute && !this.quota && this.resetAt === resetAt;
        this.earliestEnd = this.probesDue ? resetAt - slackMs : Number.NaN;
      } else if (
        sameInstant &&
        latestAt !== undefined &&
        this.resetAt !== undefined &&
        Math.max(resetAt, latestAt) < this.resetAt
      ) {
        // The same instant of the server's clock read through a clock offset the `Date`
        // headers have pinned closer since (tick probes), at the latest that offset allows
        // (not through the estimate, which reads it with no offset while the interval holds 0):
        // still the latest the window may end, and sooner. Without it each window kept the
        // first reading's second of doubt.
        const latest = Math.max(resetAt, latestAt);
        this.told = Math.min(this.told ?? latest, latest);
        this.resetAt = latest;
      } else if (
        this.slidesProved &&
        !absolute &&
        reading.remaining === 0 &&
        this.resetAt !== undefined &&
        resetAt > this.resetAt
      ) {
        // A sliding window: the first reading's reset freed one request of the window, which a
        // call counted since may have taken; a later reading's reset frees one after its count.
        this.resetAt = resetAt;
      }
      this.resetKind = 'server';
      this.serverResetAt = this.resetAt;
    } else if (rolled && this.windowMs !== undefined) {
      // The server's window began somewhere between our send and this answer: by when the
      // server counted this request, which may have waited seconds on a busy machine or a
      // queued connection before reaching it. So it ends no later than a window after the
      // answer; a window after the send could be early by that wait, and a refill then would
      // spend a window the server still counts.
      this.resetAt = now + this.windowMs;
      this.ownEndAt = this.resetAt;
      this.resetKind = 'inferred';
    } else if (this.remaining === 0 && this.resetAt === undefined) {
      this.resetAt = now + (this.windowMs ?? PROBE_MS);
      this.resetKind = 'inferred';
    }
    if (resetAt !== undefined || rolled) {
      this.openedBy = undefined;
      this.projected = false;
      this.projectedOpen = false;
    }
    if (reading.limit !== undefined || reading.remaining !== undefined || resetAt !== undefined)
      this.source = 'headers';
    return before !== this.limit && this.limit !== undefined ? (before ?? null) : undefined;
  }

  /** Takes a limit the server reported. */
  protected readLimit(reading: BucketReading): void {
    if (reading.limit === undefined) return;
    this.limit = reading.limit;
    this.limitSource = 'headers';
  }

  /** Takes a window length the server reported. */
  protected readWindow(reading: BucketReading): void {
    if (reading.windowMs === undefined) return;
    this.windowMs = reading.windowMs;
    this.windowSource = 'headers';
  }

  /**
   * Plans the tick probes of a window whose end `apply` read through the clock offset (see
   * `planTickProbes` in windowEnd.ts); `offset` is the interval of the server clock minus ours
   * that the `Date` headers allow.
   */
  planTickProbes(now: number, offset: ClockOffsetBounds): void {
    const end = this.resetAt;
    if (Number.isNaN(this.earliestEnd) || end === undefined) return;
    // An end far away is planned for at a later answer, nearer to it.
    if (end - now > PROBE_MAX_LEAD_MS) return;
    const width = offset.upperMs - offset.lowerMs;
    // What the answers since the last look taught: the lower bound rose (one read a newer second
    // of the server's: a tick seen), or the interval narrowed.
    const rose = offset.lowerMs > this.probedLower;
    const narrowed = width < this.probedWidth;
    this.probedLower = offset.lowerMs;
    this.probedWidth = width;
    const left = this.remaining;
    const planned = this.probes;
    let slots: number;
    let pass: number | undefined;
    let keep = 0;
    if (this.probesDue) {
      this.probesDue = false;
      // As many as the window has left, if fewer: each goes across the first tick it can.
      slots = Math.min(probeSlots(this.limit), left ?? Infinity);
    } else if (planned === undefined || left === undefined || left < 1) return;
    else if (left >= planned.at.length || now < (planned.at[planned.at.length - 1] ?? Infinity)) {
      // None of the plan has gone (none can before its first time: what is left dips while
      // answers come back out of order). A tick seen (an answer from before the plan's span, or
      // one that overtook it): planned afresh over the narrower interval, in two passes. Only
      // the upper bound lowered: the tick is still ahead in the plan's span, which stays.
      if (!rose) return;
      slots = keep = planned.at.length;
    } else if (rose || (left <= planned.later && now >= (planned.at[planned.later] ?? Infinity) && narrowed)) {
      // A probe saw the tick (the ones still held would land past it, teaching nothing), or the
      // first pass has gone (its count and its last time) and its answers narrowed the
      // interval: what is held goes across the next tick over the narrower interval, in one
      // pass (dividing it by the probes it has, down to about a round trip). Answers that read
      // the old second only lower the upper bound: while some of the first pass are still to
      // go, the tick lies ahead of them, and they stay (moving them a second on lost that
      // second, and left the last pass a probe or two).
      slots = pass = left;
      keep = planned.at.length;
    } else return;
    const plan =
      slots >= 1 ? planTickProbes(now, end - this.earliestEnd, end, this.limit, offset, slots, pass) : undefined;
    // Slots of the plan already gone keep a time (the earliest of the new plan): what is left
    // moves with answers (each tells the server's count, our requests in flight aside), and a
    // slot it gives back is still a probe, not one sent at once.
    this.probes =
      plan === undefined || plan.at.length >= keep
        ? plan
        : {
            at: [...plan.at, ...Array<number>(keep - plan.at.length).fill(plan.at[plan.at.length - 1] ?? now)],
            later: plan.later,
          };
  }

  /**
   * A reading of a window that was over by the time it was read (a slow answer, a stalled
   * event loop). Its counts say nothing of the current window, but its limit still holds: what
   * is left is at most that limit, and one request goes until a response from the current
   * window confirms, as after a refill. Ignoring it instead left a bucket observed but
   * without a limit, which admits everything at once.
   */
  private pastWindow(reading: BucketReading, index: number | undefined, cost: number): number | null | undefined {
    if (reading.limit === undefined || this.resetKind === 'server') return undefined;
    const before = this.limit;
    const limit = reading.limit;
    this.readLimit(reading);
    // What is left now is at most the limit less our other requests in flight (a hint may have
    // promised more); until the current window confirms, one request goes.
    const others = Math.max(0, this.inFlight - (index === undefined ? 0 : cost));
    const room = Math.max(0, limit - others);
    this.remaining = this.remaining === undefined ? room : Math.min(this.remaining, room);
    if (this.unconfirmedLeft === undefined) {
      this.unconfirmedLeft = unconfirmedBudget();
      this.refillIndex = this.admitted;
    }
    this.source = 'headers';
    return before !== this.limit ? (before ?? null) : undefined;
  }

  /** `countedAfresh` against any of the window's lowest figures read before admission `index` was made. */
  private countedAfresh(remaining: number | undefined, index: number | undefined, cost: number): boolean {
    return this.anyLow(countedAfresh, remaining, index, cost);
  }

  /** Whether `test` holds of the window's lowest figure or of any of the last ones (`lows`), lowest first. */
  private anyLow(test: LowTest, remaining: number | undefined, index: number | undefined, cost: number): boolean {
    const lows = this.lows;
    if (lows === undefined || remaining === undefined || index === undefined) return false;
    for (let i = this.lowsLength - 3; i >= 0; i -= 3)
      if (test(lows[i] as number, lows[i + 1] as number, lows[i + 2] as number, remaining, index, cost)) return true;
    return false;
  }

  /** The lowest `remaining` the server reported in this window (the last of `lows`), if any. */
  private get lowestValue(): number | undefined {
    return this.lowsLength > 0 ? this.lows?.[this.lowsLength - 3] : undefined;
  }

  /**
   * Keeps a new lowest figure of the window, read from the call of admission `index`. A lower
   * figure read before anything more was admitted supersedes the last one kept: both judge the
   * same calls, and it proves more (not a 0, which proves no count afresh). So the last
   * LOWS_KEPT keep the older figures, read before the calls in flight went.
   */
  private keepLow(value: number, index: number, endFrom: number): void {
    const lows = (this.lows ??= new Array<number>(3 * LOWS_KEPT).fill(0));
    const ends = (this.lowEnds ??= new Array<number>(LOWS_KEPT).fill(-Infinity));
    let n = this.lowsLength;
    if (value > 0 && n > 0 && lows[n - 1] === this.admitted) n -= 3;
    else if (n === 3 * LOWS_KEPT) {
      lows.copyWithin(0, 3, n);
      ends.copyWithin(0, 1, n / 3);
      n -= 3;
    }
    lows[n] = value;
    lows[n + 1] = index;
    lows[n + 2] = this.admitted;
    ends[n / 3] = endFrom;
    this.lowsLength = n + 3;
  }

  /**
   * A call of `cost` units, still in flight, ends without a figure of this bucket taken
   * (`unreadLog`). A figure read later may show a window that began before this call arrived:
   * unread, it may be counted there whatever window the figures read since took it for
   * (`endedLog`).
   */
  private endedWithout(cost: number, arrivedBy = 0): void {
    this.endUnread(cost, arrivedBy);
    if (this.inFlight > cost) this.logEnded(-1, cost, true);
  }

  /**
   * Does a figure prove that the server's window slides (counts each request for a window after
   * the server let it through), not a fixed one? Within a fixed window the server's count only
   * grows, so a call it counted after a figure was read (sent once that figure came back) reads at
   * most that figure less its own cost (`countedAfresh`). Here such a call (admission `index`,
   * counted, of `cost` units) reads `remaining`, more than one of the window's lowest figures
   * kept allows, and the window its reset names ends by `endBy`: less than a window after the
   * earliest end of that figure's window (`lowEnds`), so a fixed window ending then began before
   * that one ended, and is the same window. Only a window that lets requests leave one at a time
   * reads so. (Resets told as time left, rounded up to the second; the Redis store's scripts
   * keep the same proof: `provesSliding` in the Lua of lib/core/window.ts.)
   */
  private provesSliding(remaining: number, index: number, cost: number, endBy: number): boolean {
    const lows = this.lows as number[];
    for (let i = this.lowsLength - 3; i >= 0; i -= 3)
      if (
        endBy < (this.lowEnds?.[i / 3] as number) + (this.windowMs as number) &&
        countedAfresh(lows[i] as number, lows[i + 1] as number, lows[i + 2] as number, remaining, index, cost)
      )
        return true;
    return false;
  }

  /**
   * By when a call sent at `sentAt` and ended unread at `at` reached the server, if it may not
   * have by its end: a call cancelled on its way still arrives, as late as its send plus the
   * longest of the bucket's recent round trips (its uplink took at most that). 0: by its end.
   */
  private arrivedBy(sentAt: number | undefined, at: number | undefined): number {
    if (sentAt === undefined || at === undefined || this.probeTripMs === 0) return 0;
    const by = sentAt + this.probeTripMs + PROBE_TRIP_MARGIN_MS;
    return by > at ? by : 0;
  }

  /**
   * A call of `cost` units ended without a figure of this bucket (`unreadLog`), having reached
   * the server by `arrivedBy` (0: by now).
   */
  private endUnread(cost: number, arrivedBy = 0): void {
    const log = (this.unreadLog ??= []);
    this.endedUnread += cost;
    if (log.push(this.admitted, cost, arrivedBy) <= 3 * ENDED_LOG_MAX) return;
    // The oldest folds into the next: counted as late as it.
    log[4] = (log[1] as number) + (log[4] as number);
    log[5] = Math.max(log[2] as number, log[5] as number);
    log.copyWithin(0, 3);
    log.length -= 3;
  }

  /**
   * A figure of admission `index`, sent at `sentAt`, was read: the calls that ended unread before
   * it was admitted (sent after they had ended), and had reached the server by the time it went,
   * reached the server before it, which counted them in it.
   */
  private countedUnread(index: number, sentAt: number | undefined): void {
    const log = this.unreadLog;
    if (log === undefined || log.length === 0) return;
    let k = 0;
    // Ended in order, so the calls it counts come first.
    while (
      k < log.length &&
      (log[k] as number) <= index &&
      (log[k + 2] === 0 || (sentAt !== undefined && sentAt >= (log[k + 2] as number)))
    ) {
      this.endedUnread -= log[k + 1] as number;
      k += 3;
    }
    if (k === 0) return;
    log.copyWithin(0, k);
    log.length -= k;
    if (log.length === 0) this.endedUnread = 0;
  }

  /**
   * A figure that opened a new window may not count `since` units of calls answered since its
   * call went (`endedSince`), among them those ended unread: until a figure from a call sent
   * after now is read, at least that many are taken off, the ones ended unread among them.
   */
  private unreadSince(since: number): void {
    if (since > this.endedUnread) this.endUnread(since - this.endedUnread);
    const log = this.unreadLog ?? [];
    for (let i = 0; i < log.length; i += 3) log[i] = this.admitted;
  }

  private clearUnread(): void {
    this.endedUnread = 0;
    if (this.unreadLog !== undefined) this.unreadLog.length = 0;
  }

  /** A call of `cost` units answered with a figure of `remaining` (`endedLog`). */
  private logEnded(remaining: number, cost: number, later: boolean): void {
    const log = (this.endedLog ??= []);
    if (log.push(this.admitted, cost, remaining, later ? 1 : 0) <= 4 * ENDED_LOG_MAX) return;
    // The oldest half folds at once (one splice per half a log, not one per answer).
    const old = log.splice(0, 4 * (ENDED_LOG_MAX >> 1));
    for (let i = 0; i < old.length; i += 4) {
      this.endedOver += old[i + 1] as number;
      this.endedOverAfter = Math.max(this.endedOverAfter, old[i] as number);
    }
  }

  /**
   * Units of the calls whose figures were read (`endedLog`) since admission `index` was made
   * that read less than `remaining`: those the server may have counted after that admission's
   * request in a window where it read `remaining` (a call counted after it reads less).
   */
  private endedSince(index: number, remaining: number | undefined, laterOnly = false): number {
    return (index < this.endedOverAfter ? this.endedOver : 0) + this.endedIn(index, remaining ?? Infinity, laterOnly);
  }

  /**
   * Units of the logged calls read after admission `index` was made, with a figure below
   * `below` (`laterOnly`: of those that told a reset later than the window's end).
   */
  private endedIn(index: number, below: number, laterOnly: boolean): number {
    const log = this.endedLog;
    let n = 0;
    if (log)
      for (let i = 0; i < log.length; i += 4)
        if ((log[i] as number) > index && (log[i + 2] as number) < below && (!laterOnly || log[i + 3] === 1))
          n += log[i + 1] as number;
    return n;
  }

  private forgetEnded(): void {
    this.endedLog = undefined;
    this.endedOver = 0;
    this.endedOverAfter = 0;
  }

  /**
   * Has the server started a new window that it did not announce with a reset? (`rolledOver`,
   * against any of the window's lowest figures read before admission `index` was made: a lower
   * one read after that call went proves nothing of it.)
   */
  private rolledOver(reading: BucketReading, index: number | undefined): boolean {
    return this.anyLow(rolledOver, reading.remaining, index, 1);
  }

  /** Is the cold start holding the next request back (as many in flight as it lets go)? */
  protected coldHeld(coldStart: number): boolean {
    return !this.observed && this.inFlight >= coldLimit(coldStart, this.silentAnswers);
  }

  /**
   * A response to a request counting against this bucket came back: with a reading of it, or
   * (`silent`) with none. A silent one during the cold start only widens it (`silentAnswers`).
   */
  confirm(index: number | undefined, now?: number, silent = false, blind = false): void {
    if (!silent || this.observed) this.observed = true;
    else if (coldRampOver(++this.silentAnswers, this.limit)) this.observed = true;
    // An answer with no figure of this bucket that described none of the server's limits (a
    // gateway's 502 page: `blind`, permits.ts) tells nothing of the window a refill opened: the probe is not answered, and
    // the next request probes again (`release`). Taken as the answer, it let every waiting
    // request go into a sliding window that had freed one slot.
    if ((index === undefined || index >= this.refillIndex) && !(blind && index !== undefined)) {
      this.unconfirmedLeft = undefined;
      this.awaitingSince = undefined;
    }
    if (now !== undefined && this.openedBy !== undefined && index !== undefined && index >= this.openedBy) {
      // A window that began when the server counted our first send in it began by the time
      // any answer from it came back, not at the send: the request may have waited to be
      // counted (a queued connection, a busy machine), and a window after the send would end
      // early by that wait. The first answer back is the earliest such bound; it holds for a
      // bucket the answer reports nothing of too.
      if (this.windowMs !== undefined && this.resetAt !== undefined && this.resetKind === 'inferred') {
        this.resetAt = Math.max(this.resetAt, now + this.windowMs);
        // (A projected window keeps the full guard: its end stays the server's phase's.)
        if (this.resetAt === now + this.windowMs && !this.projected) this.ownEndAt = this.resetAt;
      }
      this.openedBy = undefined;
    }
  }

  /**
   * Takes the figures a shared store reported (the store admits; this copy serves `state$`,
   * `resumeAt` and quota checks).
   */
  adopt(
    state: {
      readonly limit: number | undefined;
      readonly remaining: number | undefined;
      readonly resetInMs: number | undefined;
      readonly windowMs: number | undefined;
      readonly awaitsAnswers?: boolean;
    },
    now: number,
  ): void {
    this.storeDoubts = state.awaitsAnswers === true;
    if (state.limit !== undefined && state.limit !== this.limit) {
      // Another process of the store read it, or learned it.
      this.limit = state.limit;
      this.limitSource = 'headers';
    }
    if (state.windowMs !== undefined) this.windowMs = state.windowMs;
    this.remaining = state.remaining;
    this.told = undefined;
    this.toldServerAt = undefined;
    if (state.resetInMs !== undefined) {
      this.resetAt = now + state.resetInMs;
      this.resetKind = 'server';
      this.openedBy = undefined;
      this.projected = false;
      this.projectedOpen = false;
    }
  }

  /**
   * Forgets every reset this bucket remembers (told, projected or held): the next response
   * that reports one is taken as it is, as on a new window. What is left stays as it was; an
   * empty bucket with no reset sends one request to learn the figures (`availableAt`).
   */
  forget(): void {
    this.reprobeAt = Number.NaN;
    this.blindProbes = 0;
    this.probes = undefined;
    this.earliestEnd = Number.NaN;
    this.probesDue = false;
    this.resetAt = undefined;
    this.resetKind = undefined;
    this.serverResetAt = undefined;
    this.lowsLength = 0;
    this.floor = undefined;
    this.forgetEnded();
    this.doubted = 0;
    this.unconfirmedLeft = undefined;
    this.openedBy = undefined;
    this.awaitingSince = undefined;
    this.projected = false;
    this.projectedOpen = false;
    this.nextSmoothAt = 0;
  }

  /** Holds the bucket empty until `until` (a 429 that named this bucket). */
  exhaust(until: number): void {
    this.remaining = 0;
    this.held = true;
    // Our own guess of the reset yields to the server's word; a server reset is only extended.
    this.resetAt = this.resetKind === 'inferred' ? until : Math.max(this.resetAt ?? 0, until);
    // A hold the server asked for is not brought forward by a later reading of the reset.
    this.toldServerAt = undefined;
    this.resetKind = 'server';
    this.openedBy = undefined;
    this.projectedOpen = false;
  }

  snapshot(): BucketSnapshot {
    return {
      name: this.name,
      limit: this.limit ?? null,
      remaining: this.remaining ?? null,
      resetAt: this.resetAt ?? null,
      windowMs: this.windowMs ?? null,
      source: this.source,
      sources: {
        limit: this.limit === undefined ? null : (this.limitSource ?? this.source),
        windowMs: this.windowMs === undefined ? null : (this.windowSource ?? this.source),
        resetAt: this.resetAt === undefined ? null : this.resetKind === 'server' ? 'headers' : 'inferred',
      },
      quota: this.quota,
      inFlight: this.inFlight,
    };
  }

  /** How far apart two readings of this window's reset may be (`resetTolerance`). */
  private tolerance(): number {
    return resetTolerance(this.windowMs);
  }

  /**
   * The slot after this send. Slots follow the ideal grid while we keep up with it, so timer
   * lateness does not add up over a run; after an idle spell the grid restarts from now.
   */
  protected nextSlot(now: number, spacing: number): number {
    const base = this.nextSmoothAt > now - spacing ? Math.min(this.nextSmoothAt, now) : now;
    return base + spacing;
  }

  /**
   * Smooth pacing: one request every `window / limit`, the even rate; slower when the budget
   * left would not last until the reset at that rate (requests were sent faster before).
   */
  protected spacing(now: number): number {
    const even =
      this.windowMs !== undefined && this.limit !== undefined && this.limit > 0 ? this.windowMs / this.limit : 0;
    const catchUp =
      this.resetAt !== undefined && this.resetAt > now ? (this.resetAt - now) / Math.max(1, this.remaining ?? 0) : 0;
    return Math.max(even, catchUp);
  }
}
