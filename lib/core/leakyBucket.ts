/**
 * A leaky (token) bucket: a capacity of units and a restore rate, no window and no reset
 * (Shopify's REST and GraphQL Admin APIs). Separate from bucket.ts, whose windows it shares
 * nothing of but the interface the limiter drives.
 */
import { Bucket, PROBE_MS } from './bucket.js';
import { takenRestoreRate } from './window.js';
import type { BucketKind, BucketReading, BucketSpec } from './provider.js';
import type { BucketSnapshot } from './state.js';

/**
 * Units short by less than this count as there: floating-point dust must not cost a timer tick.
 * (The Redis store's Lua uses the same: lib/stores/redis/scriptCommon.ts.)
 */
export const LEAKY_EPSILON = 1e-9;
/** Round trips remembered to bound the next one (as many in the Redis store). */
export const LEAKY_TRIPS = 16;
const EPSILON = LEAKY_EPSILON;
const TRIPS = LEAKY_TRIPS;

/**
 * A leaky (token) bucket as this process knows it. `limit` is its capacity; what is available
 * refills continuously at `restorePerSecond` up to the capacity. A request takes its cost when
 * admitted and nothing comes back when it ends: units come back only with time. Admission
 * waits exactly until enough units have come back for the request's cost.
 *
 * Readings (what the server says is available, `remaining`, and its capacity and rate) correct
 * the estimate, taken as at the moment the answer arrived (the server counted earlier, and has
 * restored since: so the estimate errs low, never high), less the units of our other requests
 * in flight (the server may not have counted them yet). Answers arrive in any order:
 *
 * - A reading that answers a request admitted after the newest reading we took came back is
 *   newer than it, and is taken as it is: it may raise what is available (the server restored
 *   faster than we thought, or someone else stopped spending).
 * - Any other reading (a request sent before the newest reading came back, which the server
 *   may have counted before or after it; a response we did not admit) may only lower what is
 *   available, never raise it: a late answer carries an older, higher figure.
 */
export class LeakyBucket extends Bucket {
  override readonly leaky = true;
  /** Units that come back per second. */
  restorePerSecond: number;
  /** Units available at `levelAt` (a fraction; below 0 when more was spent than there was). */
  private level = 0;
  /** When `level` was true; `undefined`: the bucket has not been used, and is full. */
  private levelAt: number | undefined;
  /** Has a reading been taken as it is? Until then any reading is. */
  private accepted = false;
  /** Admissions made when the newest reading taken as it is came back. */
  private acceptedAfter = 0;
  /** A throttled answer holds the bucket until then. */
  private heldUntil = 0;
  /** The latest time this bucket was told (its methods without a `now` use it). */
  private lastNow = 0;
  /** When the last reading with a figure of what is available was applied. */
  private readAt = Number.NaN;
  /**
   * The longest of the last round trips (`TRIPS`): a bound on how long a request takes to
   * reach the server.
   */
  private tripMs = 0;
  private readonly trips: number[] = [];
  /** Admissions in flight sent from a full bucket: the estimate before, and the restore taken as lost. */
  private readonly fromFull = new Map<number, { readonly level: number; readonly lost: number }>();
  /**
   * Admissions not answered yet, and their units: each may not have reached the server, whose
   * bucket then stays full (restoring nothing) until it does. Ours restores no higher than the
   * capacity less them, however long they take to get there.
   */
  private readonly unanswered = new Map<number, number>();
  private unansweredUnits = 0;
  /** Units of the requests that ended (answered or given back), all told. */
  private ended = 0;
  /**
   * Admissions in flight: `ended` when each was admitted. What ended since a request was sent
   * may have reached the server after it, so its answer's figure may not count it.
   */
  private readonly endedBefore = new Map<number, number>();
  /** The limiter's reset guard: the least a trip is taken to last (a new connection's is longer than the last). */
  private guardMs = 0;
  /**
   * Figures come from a shared store (`adopt`), which admits across processes and counts each
   * grant in what it reports: this copy serves `state$` and `resumeAt`, and takes nothing again.
   */
  private shared = false;

  constructor(spec: BucketSpec) {
    super({ ...spec, pacing: 'burst' });
    this.restorePerSecond = spec.restorePerSecond ?? 1;
    this.windowMs = undefined;
    this.windowSource = undefined;
  }

  /** Units restored per ms. */
  private perMs(): number {
    return this.restorePerSecond / 1000;
  }

  /** Units available at `now` (the capacity when none is known, or the bucket unused). */
  available(now: number): number {
    const cap = this.limit ?? Infinity;
    if (this.levelAt === undefined) return cap;
    const restored = Math.max(0, now - this.levelAt) * this.perMs();
    // A bucket above its capacity (the capacity was cut) comes down to it, and restores no more;
    // nor past the capacity less the units not answered yet (the server's bucket, full, waits
    // for them to arrive: a send held up after its admission must not find them restored).
    return Math.min(Math.max(cap - this.unansweredUnits, this.level), this.level + restored);
  }

  /** Brings `level` to `now`. */
  private settle(now: number): void {
    if (now < this.lastNow) now = this.lastNow;
    this.lastNow = now;
    const cap = this.limit ?? Infinity;
    this.level = Math.min(cap, this.available(now));
    this.levelAt = now;
    this.show(now);
  }

  /** `remaining` (whole units available) and `resetAt` (when full) for the snapshot and the checks that read them. */
  private show(now: number): void {
    const cap = this.limit;
    if (cap === undefined) {
      this.remaining = undefined;
      this.resetAt = undefined;
      this.resetKind = undefined;
      return;
    }
    this.remaining = Math.max(0, Math.floor(this.level + EPSILON));
    const missing = cap - this.level;
    this.resetAt = missing > EPSILON ? now + (missing / this.restorePerSecond) * 1000 : undefined;
    this.resetKind = this.resetAt === undefined ? undefined : 'inferred';
  }

  override refill(now: number, guardMs = 0): void {
    this.guardMs = guardMs;
    this.settle(now);
  }

  /** Notes a round trip; `tripMs` is the longest of the last `TRIPS`. */
  private trip(ms: number): void {
    this.trips.push(Math.max(0, ms));
    if (this.trips.length > TRIPS) this.trips.shift();
    this.tripMs = Math.max(...this.trips);
  }

  override availableAt(now: number, _guardMs: number, coldStart: number, _waiting = 0, cost = 1): number | undefined {
    if (this.coldHeld(coldStart)) return undefined;
    if (this.heldUntil > now) return this.heldUntil;
    const cap = this.limit;
    if (cap === undefined) return now;
    const avail = this.available(now);
    if (avail + EPSILON >= cost) return now;
    // Nothing fits however long we wait (a capacity of 0): one request goes a while after the
    // others ended, and its answer tells the rest, as an empty window nobody told the reset of.
    if (cap < cost || !(this.restorePerSecond > 0)) return this.inFlight > 0 ? undefined : now + PROBE_MS;
    return now + ((cost - avail) / this.restorePerSecond) * 1000;
  }

  override take(now: number, cost = 1): number {
    this.settle(now);
    const index = this.admitted++;
    this.inFlight += cost;
    if (this.shared) return index;
    // A bucket (nearly) full on the server stays full until this request gets there, while
    // ours restores from the send: what it would restore beyond the capacity in one trip is
    // lost on the server. (No capacity known: nothing is lost, and nothing counted.)
    const cap = this.limit ?? Infinity;
    const trip = Math.max(this.guardMs, this.tripMs) * this.perMs();
    const lost = cap === Infinity ? 0 : Math.min(trip, Math.max(0, this.level + trip - cap));
    if (lost > 0) this.fromFull.set(index, { level: this.level, lost });
    this.endedBefore.set(index, this.ended);
    this.unanswered.set(index, cost);
    this.unansweredUnits += cost;
    this.level -= cost + lost;
    this.show(now);
    return index;
  }

  /** Units spent stay spent: they come back with time, not when the request ends. */
  override release(index?: number, at?: number, cost = 1): void {
    if (index !== undefined) this.answered(index, at ?? this.lastNow);
    this.inFlight = Math.max(0, this.inFlight - cost);
    this.ended += cost;
    if (index === undefined) return;
    this.fromFull.delete(index);
    this.endedBefore.delete(index);
  }

  /** A request's answer came (or it was given back): restored up to now, its units no longer held out. */
  private answered(index: number, now: number): void {
    const units = this.unanswered.get(index);
    if (units === undefined) return;
    this.settle(now);
    this.unanswered.delete(index);
    this.unansweredUnits = this.unanswered.size === 0 ? 0 : Math.max(0, this.unansweredUnits - units);
  }

  /** The request held `from` units and really cost `to`: the difference is given back (up to the capacity) or taken. */
  override reconcile(index: number, from: number, to: number): number {
    this.settle(this.lastNow);
    const held = this.unanswered.get(index);
    if (held !== undefined) {
      this.unanswered.set(index, to);
      this.unansweredUnits = Math.max(0, this.unansweredUnits + to - held);
    }
    this.inFlight = Math.max(0, this.inFlight + to - from);
    this.level = Math.min(this.limit ?? Infinity, this.level + from - to);
    this.show(this.lastNow);
    return to;
  }

  override apply(
    reading: BucketReading,
    index: number | undefined,
    _resetAt: number | undefined,
    now: number,
    sentAt?: number,
    _serverAt?: number,
    _slackMs = 1000,
    cost = 1,
  ): number | null | undefined {
    this.confirm(index);
    this.settle(now);
    if (index !== undefined) this.answered(index, now);
    const before = this.limit;
    this.readLimit(reading);
    const rate = takenRestoreRate(reading.restorePerSecond, this.limit);
    const cap = this.limit ?? Infinity;
    if (rate !== undefined) this.restorePerSecond = rate;
    if (reading.remaining !== undefined) {
      const told = reading.remaining;
      // The least there can be: the figure as if counted now, less our other requests in
      // flight (the server may not have counted them yet).
      const others = Math.max(0, this.inFlight - (index === undefined ? 0 : cost));
      const low = Math.min(cap, told - others);
      const newer = index !== undefined && (!this.accepted || index >= this.acceptedAfter);
      // Raised no further than the least less what ended since this request was sent: a request
      // that reached the server after it, and whose answer came back first, is in neither the
      // figure nor the others in flight (with several processes on one bucket, or answers read
      // out of order, a unit too many, and a 429).
      const since = index === undefined ? 0 : this.ended - (this.endedBefore.get(index) ?? this.ended);
      const least = low - since;
      // A request sent from a full bucket whose trip was longer than allowed for: the server's
      // bucket stayed full that much longer (its round trip bounds it), restoring nothing.
      const full = index === undefined ? undefined : this.fromFull.get(index);
      if (full && sentAt !== undefined) {
        const trip = Math.max(0, now - sentAt) * this.perMs();
        this.level -= Math.max(0, Math.min(trip, full.level + trip - cap) - full.lost);
      }
      // The most there can be, near enough: the figure is whole units rounded down, so up to
      // one more. An estimate above it is wrong (a request reached a full bucket later than we
      // allowed for, someone else spent, the rate is lower): it comes down to the figure less
      // our other requests in flight. One within it is kept: it is sharper than the figure,
      // which is low by its rounding and by what came back on the trip; taking the figure as it
      // is at each answer would lose both, a fifth of the rate at 40 a second over loopback.
      // A newer figure below the estimate still lowers it no further than the least; above it,
      // it raises it to the least (the server restored more than we thought).
      if (newer && !this.accepted) this.level = least;
      else if (this.level > told + 1 + EPSILON) this.level = Math.min(this.level, low);
      else if (newer && this.level < least) this.level = least;
      if (newer) {
        this.accepted = true;
        this.acceptedAfter = this.admitted;
        if (sentAt !== undefined) this.trip(now - sentAt);
      }
      this.readAt = now;
    } else {
      this.level = Math.min(this.level, cap);
    }
    if (reading.limit !== undefined || reading.remaining !== undefined || rate !== undefined) this.source = 'headers';
    this.show(now);
    return before !== this.limit && this.limit !== undefined ? (before ?? null) : undefined;
  }

  /**
   * Holds the bucket until `until` (a 429 or a throttled answer that named it). With no figure
   * in that answer, nothing is taken to be available from now on: units come back from here.
   */
  override exhaust(until: number): void {
    this.heldUntil = Math.max(this.heldUntil, until);
    if (this.readAt === this.lastNow) return;
    this.settle(this.lastNow);
    this.level = Math.min(this.level, 0);
    this.show(this.lastNow);
  }

  override forget(): void {
    super.forget();
    this.heldUntil = 0;
    this.accepted = false;
  }

  /**
   * Takes a shared store's figures (the Redis store holds the bucket: `scriptAcquire.ts`): its
   * capacity, rate and what is available now, counted over every process; from here this copy
   * restores at the rate until the store answers again.
   */
  override adopt(
    state: Parameters<Bucket['adopt']>[0] & { readonly restorePerSecond?: number; readonly level?: number },
    now: number,
  ): void {
    super.adopt(state, now);
    this.shared = true;
    const rate = state.restorePerSecond ?? 0;
    if (rate > 0) this.restorePerSecond = rate;
    this.level = state.level ?? 0;
    this.levelAt = state.level === undefined ? undefined : now;
    this.settle(now);
  }

  override snapshot(): BucketSnapshot {
    return { ...super.snapshot(), windowMs: null, restorePerSecond: this.restorePerSecond };
  }
}

/**
 * The error for a leaky bucket with a shared store, which does not hold one yet: named at
 * `createLimiter`, so that nothing is admitted on a budget no other process would see.
 */
export function leakyWithSharedStore(provider: string, bucket: string, store: string): TypeError {
  return new TypeError(
    `createLimiter: provider "${provider}" uses a leaky (token) bucket ("${bucket.slice(0, 100)}"), ` +
      `which the ${store.slice(0, 40)} store does not support; use the memory store (leave \`store\` out) for this provider`,
  );
}

/**
 * The leaky (token) bucket kind, for {@link Provider.bucketKinds}: buckets of specs with
 * `restorePerSecond`.
 */
export const leakyBuckets: BucketKind = { name: 'leaky', make: (spec) => new LeakyBucket(spec) };
