/**
 * Issuing permits and reading responses: an admitted request takes a unit of each of its
 * buckets and holds a permit; its response (or any response the limiter is shown) is read by
 * the provider, and what it tells is applied to the buckets, the pause policy and the admission.
 */
import type { SchedulerLike } from 'rxjs';
import { servedFromCache } from '../headers/cacheStatus.js';
import type { Admission, Lease } from './admission.js';
import type { Bucket } from './bucket.js';
import type { BucketRegistry } from './buckets.js';
import type { SkewEstimator } from './clock.js';
import type { CostLearner, Learning, LearnStart } from './costLearning.js';
import type { RequestSummary } from './events.js';
import { requestSummary } from './summary.js';
import type { CapacityInference } from './inference.js';
import { leaseList, type LeaseList, type Leased } from './leases.js';
import type { PausePolicy } from './pauses.js';
import type { BucketReading, Provider, ResponseReading } from './provider.js';
import type { Publisher } from './publisher.js';
import { costOf, isCost, type RequestInfo } from './request.js';
import type { ResponseLike } from './response.js';
import type { StoreReading } from './store.js';
import type { Permit, Waiter } from './waiter.js';
import { RELATIVE_SLACK_MS, takenRestoreRate } from './window.js';

/** What the permits need of their limiter. */
export interface PermitHost {
  now(): number;
  readonly scheduler: SchedulerLike;
  readonly provider: Provider;
  readonly epoch: number;
  readonly permitTimeoutMs: number;
  readonly maxServerWaitMs: number;
  readonly skew: SkewEstimator;
  readonly inference: CapacityInference;
  readonly out: Publisher;
  readonly registry: BucketRegistry;
  readonly pauses: PausePolicy;
  readonly admission: Admission;
  /**
   * Response objects (and errors) already read, with what the provider made of them (`null`
   * while being read).
   */
  readonly seen: WeakMap<object, ResponseReading | null>;
  /** Requests admitted and not given back. */
  inFlight: number;
  summaryOf(w: Waiter): RequestSummary;
  drain(): void;
  /** Drains on the limiter's timer, at `at`. */
  schedule(at: number): void;
  flush(): void;
  /**
   * A response taught the provider other buckets for requests like its own: the queued ones
   * are looked at again before the next admission.
   */
  regroup(): void;
}

/** What one response is read for. */
export interface ResponseContext {
  readonly info: RequestInfo;
  /**
   * The buckets the request took units of, with its admission index on each and the units it
   * holds (absent: not admitted here).
   */
  readonly taken?: Taken;
  /**
   * The cost a response tells (`ResponseReading.cost`) is applied to `taken`: the permit was
   * admitted here (not by a shared store) and is not released.
   */
  readonly reconcile?: boolean;
  /** The permit is not released: it holds units of each bucket of `taken`. */
  readonly holding?: boolean;
  readonly summary: RequestSummary | null;
  /** When the request was sent (admitted here). */
  readonly sentAt?: number;
  /**
   * The request learns its cost (costLearning.ts): its key, and per bucket of `taken` the
   * reading the drop is counted from (`undefined`: not attributable there).
   */
  readonly learn?: { readonly key: string; readonly starts: ReadonlyArray<LearnStart | undefined> } | undefined;
}

/**
 * The buckets a permit holds units of, and on the `k`th of them its admission index and the
 * units it holds (its cost). The permit itself: no array or tuple per bucket (see
 * {@link HeldPermit}).
 */
interface Taken {
  readonly buckets: readonly Bucket[];
  indexAt(k: number): number;
  unitsAt(k: number): number;
  hold(k: number, index: number, units: number): void;
  /** Its answer told a figure (`remaining`) of its `k`th bucket. */
  readAt(k: number): void;
}

export class Permits {
  /**
   * Buckets already announced empty (`paused`, `bucket-empty`) since their last admission; made
   * at the first such announcement. Until then an admission has nothing to forget there.
   */
  private emptyNotified: WeakSet<Bucket> | undefined = undefined;
  /**
   * The lease list of the last admission (leases.ts), and when that was on the limiter's clock.
   * Looked up again only when the clock has not run on from there by less than a second: an
   * admission in the other clock (`TestScheduler.run` drives `asyncScheduler` too) is that far
   * from the last one of this clock, and a lookup (two maps and a read of the wall clock) at
   * every admission was a cost of each request.
   */
  private leases: LeaseList | undefined = undefined;
  private leasesAt = Number.NaN;

  constructor(readonly host: PermitHost) {}

  /** Admits `w` now: takes its cost in units of each of its buckets and returns its permit. */
  admit(w: Waiter, now: number, lease?: Lease): Permit {
    const host = this.host;
    // Read now: a waiter may be queued again (a retry) while this permit is still held.
    const { info, buckets } = w;
    // The summary (`permit.request`) is made when first read: most permits' never are, and a
    // permit held while thousands of others are admitted is copied by the garbage collector
    // with all it holds. One already made (events watched) is the one kept.
    const summary = w.summary ?? (host.out.listened ? host.summaryOf(w) : undefined);
    // Learning its cost (costLearning.ts): the reading each bucket starts from, and a request of
    // a key not learnt yet holds its buckets alone until it ends.
    const learn = lease === undefined ? w.group?.learn : undefined;
    const learner = learn && host.registry.learner;
    const starts = learn && learner?.admit(learn, buckets);
    const permit = new HeldPermit(
      this,
      info,
      w.id,
      w.priority,
      buckets,
      summary,
      now,
      lease === undefined && learn === undefined
        ? undefined
        : { waiter: w, lease, learn, learner, starts, told: undefined },
    );
    for (let i = 0; i < buckets.length; i++) {
      const units = w.costAt(i);
      permit.hold(i, (buckets[i] as Bucket).take(now, units), units);
    }
    this.forgetEmpty(buckets);
    host.inFlight++;
    host.out.sent++;
    // Built only for a listener: the bucket names are an array per request.
    if (host.out.listened)
      host.out.emit({
        type: 'admitted',
        request: summary as RequestSummary,
        waitedMs: now - (host.epoch + w.queuedAt),
        buckets: buckets.map((b) => b.name),
      });
    // The lease: a permit never given back (a request that never settles) would hold its slot
    // (a cold start's only one, a `maxConcurrent` one) forever.
    const leaseMs = host.permitTimeoutMs;
    if (leaseMs > 0 && leaseMs < Infinity) this.leaseListAt(now, leaseMs).add(permit);
    return permit;
  }

  /** The lease list for leases of `ms` given at `now` (see {@link leases}). */
  private leaseListAt(now: number, ms: number): LeaseList {
    const since = now - this.leasesAt;
    if (this.leases === undefined || !(since >= 0 && since < 1000)) this.leases = leaseList(this.host.scheduler, ms);
    this.leasesAt = now;
    return this.leases;
  }

  /**
   * Makes the units `taken` holds what the request really cost. `lenient`: a provider's figure
   * (a value that is not a cost is ignored); otherwise a caller's (a bad value throws).
   */
  reconcile(taken: Taken, actual: number | Readonly<Record<string, number>>, lenient: boolean): void {
    const now = this.host.now();
    const next = this.costsOf(taken, actual, lenient);
    taken.buckets.forEach((b, i) => {
      const units = taken.unitsAt(i);
      const to = next[i] ?? units;
      if (to === units) return;
      const index = taken.indexAt(i);
      taken.hold(i, index, b.reconcile(index, units, to));
      this.host.admission.recheck(b, now);
    });
    this.host.out.touch();
  }

  /** What each bucket of `taken` really cost, by `actual` (`lenient`: see {@link reconcile}). */
  costsOf(taken: Taken, actual: number | Readonly<Record<string, number>>, lenient: boolean): number[] {
    return taken.buckets.map((b, i) => {
      const units = taken.unitsAt(i);
      if (!lenient) return costOf({ cost: actual }, b.name, () => units);
      const v = typeof actual === 'number' ? actual : (actual as Record<string, unknown>)[b.name];
      return isCost(v) ? v : units;
    });
  }

  /**
   * Is this the first time `b` is found empty since its last admission? (Then the caller
   * announces it: `paused`, `bucket-empty`.)
   */
  firstEmpty(b: Bucket): boolean {
    const notified = (this.emptyNotified ??= new WeakSet());
    if (notified.has(b)) return false;
    notified.add(b);
    return true;
  }

  /** `buckets` were admitted from: the next time one is empty is announced again. */
  forgetEmpty(buckets: readonly Bucket[]): void {
    const notified = this.emptyNotified;
    if (notified) for (const b of buckets) notified.delete(b);
  }

  /**
   * Reads `response` and applies what it tells: to the buckets, the pause policy, and the
   * requests parked on the buckets. Pushes the bucket figures it read, as durations, to `readings`
   * (none made when it is `undefined`: see `Admission.readsFigures`).
   */
  read(response: ResponseLike, request: ResponseContext, readings: StoreReading[] | undefined): ResponseReading {
    const host = this.host;
    const { info, taken, summary, sentAt } = request;
    const now = host.now();
    let reading: ResponseReading;
    try {
      // The calendar (the scheduler's time: the wall clock, or virtual), not the limiter's clock,
      // which is monotonic and may be hours from it after a machine slept: a reset at midnight
      // is found on the calendar, and its delay counted on the limiter's clock.
      reading = sane(host.provider.read(response, info, host.scheduler.now()));
    } catch {
      // A provider must not throw; if a user-defined one does, the response teaches nothing.
      reading = { outcome: response.status === 429 ? 'limited' : 'ok', buckets: [] };
    }
    // What the request really cost (Shopify's actualQueryCost), before the figures are read:
    // the answer's `remaining` already counts it, and it is no longer among the others in flight.
    if (reading.cost !== undefined && taken && request.reconcile) this.reconcile(taken, reading.cost, true);
    const date = response.header('date');
    // A copy a cache served carries the `Date` of when it was stored (a cached 429 of 20 hours
    // ago): no reading of the server's clock now.
    if (date !== undefined && !servedFromCache(response)) host.skew.observe(date, now, sentAt);
    host.out.responses++;
    // Built only for a listener, as every event of a request (one object per response otherwise).
    if (host.out.listened) host.out.emit({ type: 'response', request: summary, status: response.status });
    const mine: readonly Bucket[] = taken ? taken.buckets : host.registry.bucketsFor(info, host.provider);
    // The request's buckets are the registry's (none of them can have been evicted: the request
    // holds units of them, or they were just looked up): a reading's bucket is found among them
    // by name first, without a visit to the registry's map (a table of its own, one more read
    // out of the CPU's caches at 10,000 tenants).
    const own = !taken || request.holding === true;
    const cap = host.maxServerWaitMs;
    let moved = false;
    for (const told of reading.buckets) {
      // A window longer than the cap is garbage, as a reset further away than it: not obeyed.
      const r = told.windowMs !== undefined && !(told.windowMs <= cap) ? withoutWindow(told) : told;
      // The position in `mine` of the bucket the reading is applied to (-1: not among them).
      let k = own ? named(mine, r.name) : -1;
      let b = (k >= 0 ? mine[k] : undefined) ?? host.registry.get(r.name);
      if (k < 0 && b) k = mine.indexOf(b);
      if (k < 0) {
        // A bucket the request did not count against, which the provider now counts it against
        // (the response named its resource): requests like it that wait move there.
        const declared = host.registry.declaredFor(info, r.name, host.provider);
        if (declared) {
          b = declared;
          moved = true;
        }
      }
      b ??= host.registry.discover(r.name, now, r, host.provider);
      if (!b) continue;
      if (k < 0) k = mine.indexOf(b);
      const index = taken && k >= 0 ? taken.indexAt(k) : undefined;
      const toldAt =
        r.reset === undefined ? undefined : 'at' in r.reset ? host.skew.toLocal(r.reset.at) : now + r.reset.inMs;
      // A reset in whole seconds, read through a clock offset known only to its interval.
      const slackMs =
        r.reset !== undefined && 'at' in r.reset ? 1000 + Math.min(1000, host.skew.uncertaintyMs) : RELATIVE_SLACK_MS;
      // A reset before this request was even sent (less that slack) names no window that
      // counted it: a reset of 1970 or 2001, or one read through a `Date` far off. Taken, the
      // bucket read as refilled, and every waiting request went into the window the server had
      // just said was spent. It is dropped, as a wait told that late is (pauses.ts).
      const stale = toldAt !== undefined && taken !== undefined && sentAt !== undefined && toldAt < sentAt - slackMs;
      const resetAt = toldAt !== undefined && !stale && toldAt - now <= cap ? toldAt : undefined;
      const serverAt = resetAt !== undefined && r.reset !== undefined && 'at' in r.reset ? r.reset.at : undefined;
      // That instant read through the least offset the `Date` headers allow: the latest it may be
      // on our clock (the estimate reads it with no offset while the interval contains 0).
      const latestAt =
        serverAt !== undefined && Number.isFinite(host.skew.lowerMs) ? serverAt - host.skew.lowerMs : undefined;
      const rate = takenRestoreRate(r.restorePerSecond, r.limit ?? b.limit);
      readings?.push({
        name: b.name,
        limit: r.limit,
        remaining: r.remaining,
        resetInMs: resetAt === undefined ? undefined : resetAt - now,
        ...(serverAt === undefined ? NONE : { resetServerAt: serverAt }),
        ...(latestAt === undefined ? NONE : { resetLatestInMs: latestAt - now }),
        windowMs: r.windowMs,
        index: undefined,
        // The store obeys a rate as the bucket here would: not one that fills it in more than an hour.
        ...(rate === undefined ? NONE : { restorePerSecond: rate }),
        ...(reading.outcome === 'ok' ? COUNTED : NONE),
      });
      const learner = host.registry.learner;
      if (learner && taken && index !== undefined) {
        // A drop attributed to this request alone is its cost: the permit holds it from now
        // on (as an actual cost told after), before the reading below is recounted with it.
        const learn = request.learn;
        const learning =
          learn && request.reconcile && reading.outcome === 'ok' && reading.cost === undefined
            ? { key: learn.key, start: learn.starts[k] }
            : undefined;
        const units = taken.unitsAt(k);
        const cost = learner.answered(b, index, units, learning, r, resetAt, () => host.regroup());
        if (cost !== undefined && cost !== units) taken.hold(k, index, b.reconcile(index, units, cost));
      }
      const from = b.apply(
        r,
        index,
        resetAt,
        now,
        taken ? sentAt : undefined,
        serverAt,
        slackMs,
        taken && k >= 0 ? taken.unitsAt(k) : 1,
        latestAt,
        reading.outcome === 'ok',
      );
      // Its figure read, unless dropped as a window's we refilled past: then its release counts
      // the call as ended without one (a permit released before this answer counted it so).
      if (index !== undefined && r.remaining !== undefined && !b.staleFigure) (taken as Taken).readAt(k);
      b.planTickProbes(now, host.skew);
      if (from !== undefined && b.limit !== undefined)
        host.out.emit({ type: 'limit-changed', bucket: b.name, from, to: b.limit });
    }
    if (moved) host.regroup();
    // A response with no reading for a bucket is an answer all the same (it ends a wait for the
    // new window's first answer). One with no reading at all ends the cold start: that server
    // tells nothing of its limits here, and the hints rule. A success that described other
    // buckets of the request, not this one (Planning Center's high-offset bucket, not the
    // default), says nothing of its limit, which its own answers may tell: in its cold start it
    // only lets more go (`Bucket.confirm`'s `silent`); a refusal ends it (the pause, and what
    // the 429 teaches, take it from there). So does a server error that tells nothing (a
    // gateway's 502 page): it says nothing of whether the server reports its limits.
    const silent = silentAnswer(reading, response.status);
    for (let i = 0; i < mine.length; i++) {
      const b = mine[i] as Bucket;
      // (A bucket past its cold start, and not probing a refilled window, needs no look at the
      // names: `silent` and `blind` change nothing there.)
      const unnamed = (silent && !b.observed) || b.probing ? !described(reading.buckets, b.name) : false;
      // Blind: no figure of the bucket in an answer that described none of the server's limits
      // (a gateway's 502 page, headers stripped, a refusal). A success that described other
      // buckets of its request is the server's own answer from an endpoint that reports those
      // (Planning Center's high-offset bucket): its next answer would say no more, and holding
      // the window to a probe a second for it cost the default bucket 3 s of each window.
      b.confirm(taken?.indexAt(i), now, silent && !b.observed && unnamed, unnamed && !answeredOthers(reading));
    }
    if (reading.outcome === 'limited')
      host.pauses.limited(
        reading,
        response.status,
        [...mine],
        summary,
        now,
        sentAt,
        taken && request.holding === true ? taken : undefined,
      );
    else if (reading.outcome === 'blocked') host.pauses.blockedBy(response.status, now);
    else {
      host.pauses.succeeded();
      // Inference learns only windows no header describes (checked here too, so that a bucket
      // the headers describe costs no visit to it).
      if (taken && sentAt !== undefined)
        for (let k = 0; k < taken.buckets.length; k++) {
          const b = taken.buckets[k] as Bucket;
          if (b.source !== 'headers')
            host.inference.succeeded(b, sentAt, now, request.holding === true ? taken.unitsAt(k) : 0);
        }
    }
    // What the response changed may let parked requests go (or sets when they will).
    for (const b of mine) host.admission.recheck(b, now);
    for (const r of reading.buckets) {
      const b = (own ? mine[named(mine, r.name)] : undefined) ?? host.registry.get(r.name);
      if (b) host.admission.recheck(b, now);
    }
    host.out.touch();
    return reading;
  }
}

/** What a permit holds for a shared store's lease or a cost being learnt: most permits, nothing. */
interface PermitExtra {
  /** Its waiter: with a shared store, the group it is in when the answer comes is read then. */
  readonly waiter: Waiter;
  readonly lease: Lease | undefined;
  readonly learn: Learning | undefined;
  readonly learner: CostLearner | undefined;
  readonly starts: ReadonlyArray<LearnStart | undefined> | undefined;
  /** With a shared store: what the caller said the request really cost, sent with its answer. */
  told: number[] | undefined;
}

/**
 * A permit held: one object with its state in fields. It was a literal of three closures over
 * their shared context (five objects, about 250 bytes more), then an object of eighteen fields
 * with an array of `[bucket, index, units]` tuples; a permit held while thousands of others are
 * admitted (10,000 tenants, each with requests queued) outlives the young generation, and the
 * garbage collector copies each of its bytes twice. So it keeps its first bucket's admission
 * index and units in fields (an array only for the buckets after it), and what only a shared store or a cost being learnt needs in one object made for
 * those alone. Its methods still work detached (`const { release } = permit`): each is read as
 * a function bound to the permit, made when read and dropped at once.
 */
class HeldPermit implements Permit, Taken, Leased {
  /** {@link OBSERVED}, {@link RELEASED} and the {@link READ} bits: one field on every permit in flight. */
  private done = 0;
  /** Its lease (leases.ts): its neighbours and list. */
  leasePrev: Leased | undefined = undefined;
  leaseNext: Leased | undefined = undefined;
  leaseList: LeaseList | undefined = undefined;
  /** Admission index and units held on the first bucket. */
  private index0 = 0;
  private units0 = 0;
  /** The same for the buckets after the first, in pairs (most requests count against one). */
  private rest: number[] | undefined = undefined;

  constructor(
    private readonly permits: Permits,
    private readonly info: RequestInfo,
    private readonly id: number,
    private readonly priority: number,
    readonly buckets: readonly Bucket[],
    private summary: RequestSummary | undefined,
    private readonly sentAt: number,
    private readonly extra: PermitExtra | undefined,
  ) {}

  get leasedAt(): number {
    return this.sentAt;
  }

  /** Its response was read. */
  private get observed(): boolean {
    return (this.done & OBSERVED) !== 0;
  }

  /** It was given back (or its lease ended). */
  private get released(): boolean {
    return (this.done & RELEASED) !== 0;
  }

  /** Holds `units` of its `k`th bucket, admission `index` there (first called for each bucket in order). */
  hold(k: number, index: number, units: number): void {
    if (k === 0) {
      this.index0 = index;
      this.units0 = units;
    } else {
      const rest = (this.rest ??= []);
      rest[2 * k - 2] = index;
      rest[2 * k - 1] = units;
    }
  }

  indexAt(k: number): number {
    return k === 0 ? this.index0 : ((this.rest as number[])[2 * k - 2] as number);
  }

  unitsAt(k: number): number {
    return k === 0 ? this.units0 : ((this.rest as number[])[2 * k - 1] as number);
  }

  readAt(k: number): void {
    if (k < MAX_READ_BITS) this.done |= READ << k;
  }

  /** Did its answer tell a figure of its `k`th bucket? (Past the bits kept: taken as told.) */
  private wasRead(k: number): boolean {
    return k >= MAX_READ_BITS || (this.done & (READ << k)) !== 0;
  }

  leaseNow(): number {
    return this.permits.host.now();
  }

  expire(now: number): void {
    if (this.released) return;
    this.permits.host.out.emit({ type: 'permit-expired', request: this.request, heldMs: now - this.sentAt });
    this.release();
  }

  get request(): RequestSummary {
    return (this.summary ??= requestSummary(this.id, this.info, this.priority));
  }

  // `observe` and `release` are bound methods, not arrow functions: an arrow made at each read
  // is a closure and a context for `this`, about 100 bytes more of garbage per call.
  get observe(): Permit['observe'] {
    return this.observeNow.bind(this);
  }

  private observeNow(response: ResponseLike, raw?: unknown): ResponseReading {
    if (this.observed) return { outcome: 'ok', buckets: [] };
    const released = this.released;
    this.done |= OBSERVED;
    const { permits, extra } = this;
    const host = permits.host;
    const lease = extra?.lease;
    const key = typeof raw === 'object' && raw !== null ? raw : undefined;
    if (key) host.seen.set(key, null);
    const readings: StoreReading[] | undefined = host.admission.readsFigures === false ? undefined : [];
    const reading = permits.read(
      response,
      {
        info: this.info,
        taken: this,
        // Only events show it: not made for a limiter nobody watches.
        summary: host.out.listened ? this.request : null,
        sentAt: this.sentAt,
        reconcile: !released && lease === undefined,
        learn: extra?.learn && extra.starts ? { key: extra.learn.key, starts: extra.starts } : undefined,
        holding: !released,
      },
      readings,
    );
    if (key) host.seen.set(key, reading);
    // A shared store keeps what it admitted: what the request really cost goes there with
    // the figures (a leaky bucket gives the difference back; the headers correct the rest).
    host.admission.observed(
      lease,
      // None made only for an admission that said it reads none (`readsFigures`).
      readings as StoreReading[],
      this.buckets,
      !lease || released
        ? undefined
        : reading.cost !== undefined
          ? permits.costsOf(this, reading.cost, true)
          : extra?.told,
      // A request learning its cost, as in memory (`read`) from an answer not refused that
      // told no cost of its own: with a shared store, the store attributes the drop (nothing
      // to a lease already ended). Only a provider that learns costs has a learner, and only
      // then is the waiter read (admitted long ago, out of the CPU's caches at 10,000 tenants);
      // a shared store's permits all have a lease, so their waiter is kept with it.
      reading.outcome === 'ok' && reading.cost === undefined && host.registry.learner !== undefined
        ? extra?.waiter.group?.learn
        : undefined,
      silentAnswer(reading, response.status),
    );
    host.drain();
    host.flush();
    return reading;
  }

  get reconcile(): Permit['reconcile'] {
    return (actual) => {
      if (this.released) return;
      const { permits, extra } = this;
      // A shared store keeps what it admitted until the answer: the cost goes there with it.
      if (extra?.lease === undefined) permits.reconcile(this, actual, false);
      else extra.told = permits.costsOf(this, actual, false);
      permits.host.drain();
      permits.host.flush();
    };
  }

  get release(): Permit['release'] {
    return this.releaseNow.bind(this);
  }

  private releaseNow(): void {
    if (this.released) return;
    this.done |= RELEASED;
    const { permits, extra, buckets } = this;
    this.leaseList?.remove(this);
    const host = permits.host;
    const at = host.now();
    if (extra?.learn) extra.learner?.ended(extra.learn, buckets);
    for (let k = 0; k < buckets.length; k++) {
      const b = buckets[k] as Bucket;
      // Let go unanswered, it may still be on its way to the server (an answer shows it arrived).
      b.release(this.indexAt(k), at, this.unitsAt(k), this.wasRead(k), this.observed ? undefined : this.sentAt);
      host.registry.markIdle(b, at);
      host.admission.recheck(b, at);
    }
    host.registry.sweep(at);
    host.admission.released(extra?.lease, this.observed, buckets);
    host.inFlight--;
    host.out.touch();
    // A permit given back with no answer (unsubscribed, failed, timed out) frees room for
    // the next request on the limiter's timer, right after the caller's current job: when
    // an application unsubscribes everything at once, the in-flight ones going first must
    // not hand their room to queued requests that are being unsubscribed in the same loop.
    if (this.observed) host.drain();
    else host.schedule(host.now());
    host.flush();
  }
}

/** {@link HeldPermit}'s `done` bits; from {@link READ} on, one per bucket whose figure its answer told. */
const OBSERVED = 1;
const RELEASED = 2;
const READ = 4;
const MAX_READ_BITS = 28;

/** Nothing to spread: an object literal `{}` in its place is made at each response. */
const NONE = {};
/** A reading of a request the server counted (`StoreReading.counted`), made once. */
const COUNTED = { counted: true } as const;

/**
 * Does the answer leave the cold starts of the buckets it does not describe open (only widening
 * them)? A success that described other buckets of the request, or a server error (5xx) that
 * described none: a gateway's error page, or a server that failed before it counted, tells
 * nothing of whether the server reports its limits, and ending the cold start on it sent the
 * next requests at the hints (Planning Center, whose endpoint limits may be lower: a burst of
 * 100 into 61).
 */
function silentAnswer(reading: ResponseReading, status: number): boolean {
  return reading.outcome === 'ok' && (reading.buckets.length > 0 || status >= 500);
}

/** A success that described some of the server's limits (of other buckets than one it does not name). */
function answeredOthers(reading: ResponseReading): boolean {
  return reading.outcome === 'ok' && reading.buckets.length > 0;
}

/**
 * Does a reading of the response name the bucket? (Not `named`: its property reads see the
 * bucket classes only, and stay fast on the per-response path.)
 */
function described(readings: readonly BucketReading[], name: string): boolean {
  for (let i = 0; i < readings.length; i++) if ((readings[i] as BucketReading).name === name) return true;
  return false;
}

/** The position of the bucket named `name` in `buckets` (-1: none); no closure made, as `findIndex` would. */
function named(buckets: readonly Bucket[], name: string): number {
  for (let i = 0; i < buckets.length; i++) if ((buckets[i] as Bucket).name === name) return i;
  return -1;
}

/** A bucket reading without its window length (one past `maxServerWaitMs` is garbage). */
function withoutWindow(r: BucketReading): BucketReading {
  const { windowMs: _dropped, ...rest } = r;
  return rest;
}

/** A number a reading may carry: a finite one, or it is not there. */
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Whether `v` is absent or a finite number. */
const absentOrFinite = (v: unknown): boolean => v === undefined || finite(v);

/** Whether `v` is absent, or `{ at }` / `{ inMs }` / `{ delayMs }` (`key`) with a finite number. */
function absentOrTime(v: unknown, key: 'inMs' | 'delayMs'): boolean {
  if (v === undefined) return true;
  if (typeof v !== 'object' || v === null) return false;
  const t = v as Record<string, unknown>;
  return 'at' in t ? finite(t['at']) : finite(t[key]);
}

/**
 * `reading` without what breaks its types, for a provider of plain JavaScript (a reset's `inMs`
 * of `'1000'`, added to the clock as text, read as a reset years away; a bucket named `42`): a
 * bucket with no name is left out, a field that is not a finite number (or a time of one) is not
 * there, an unknown outcome is `ok`. The same object when nothing breaks them (every response).
 */
function sane(reading: ResponseReading): ResponseReading {
  if (typeof reading !== 'object' || reading === null) return { outcome: 'ok', buckets: [] };
  const told: unknown = reading.buckets;
  const buckets = Array.isArray(told) ? (told as readonly unknown[]) : [];
  let kept: BucketReading[] | undefined = told === buckets ? undefined : [];
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i];
    const ok = saneBucket(b);
    if (ok !== b && kept === undefined) kept = buckets.slice(0, i) as BucketReading[];
    if (kept !== undefined && ok !== undefined) kept.push(ok);
  }
  const outcome = reading.outcome === 'limited' || reading.outcome === 'blocked' ? reading.outcome : 'ok';
  const retryOk = absentOrTime(reading.retryAfter, 'delayMs');
  if (kept === undefined && outcome === reading.outcome && retryOk) return reading;
  const out: { -readonly [K in keyof ResponseReading]: ResponseReading[K] } = {
    ...reading,
    outcome,
    buckets: kept ?? (buckets as BucketReading[]),
  };
  if (!retryOk) delete out.retryAfter;
  return out;
}

/** The fields of a bucket's reading that are numbers. */
const NUMBER_FIELDS = ['limit', 'remaining', 'windowMs', 'restorePerSecond'] as const;
type NumberField = (typeof NUMBER_FIELDS)[number];

/** A bucket's reading as {@link sane} keeps it: `b` itself when whole, `undefined` without a name. */
function saneBucket(b: unknown): BucketReading | undefined {
  if (typeof b !== 'object' || b === null) return undefined;
  const r = b as BucketReading;
  if (typeof r.name !== 'string' || r.name === '') return undefined;
  const resetOk = absentOrTime(r.reset, 'inMs');
  let whole = resetOk;
  for (let i = 0; i < NUMBER_FIELDS.length; i++) if (!absentOrFinite(r[NUMBER_FIELDS[i] as NumberField])) whole = false;
  if (whole) return r;
  const out: { -readonly [K in keyof BucketReading]: BucketReading[K] } = { name: r.name };
  for (const [k, v] of Object.entries(r) as Array<[keyof BucketReading, unknown]>) {
    const ok = k === 'reset' ? resetOk : (NUMBER_FIELDS as readonly string[]).includes(k) ? absentOrFinite(v) : true;
    if (ok) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}
