/**
 * The limiter's engine: its parts wired together (see docs/architecture.md), the queue, and the
 * drain that runs admission. The {@link Limiter} facade forwards to it. Each part owns one
 * concept: the bucket registry (`buckets.ts`), admission behind one interface for the memory
 * and shared stores (`admission.ts`), permits and responses (`permits.ts`), pauses and blocks
 * (`pauses.ts`), the one timer (`timer.ts`), and what is published (`publisher.ts`).
 */
import { asyncScheduler, type SchedulerLike } from 'rxjs';
import type { Admission } from './admission.js';
import { BucketRegistry } from './buckets.js';
import { limiterClock, SkewEstimator } from './clock.js';
import {
  BlockedError,
  CostExceedsLimitError,
  QueueFullError,
  QuotaExhaustedError,
  type RateLimitError,
} from './errors.js';
import type { RequestSummary } from './events.js';
import { requestSummary } from './summary.js';
import { CapacityInference } from './inference.js';
import { joinCredential, type CredentialJoin, type CredentialState } from './credential.js';
import { leakyWithSharedStore } from './leakyBucket.js';
import { LocalAdmission, overLimit } from './localAdmission.js';
import { jitterOf, RESET_GUARD_MS, type ParsedLimiterOptions } from './options.js';
import { PausePolicy } from './pauses.js';
import { Permits } from './permits.js';
import type { Provider, ResponseReading } from './provider.js';
import { Publisher } from './publisher.js';
import { GroupedQueue } from './queue.js';
import { moveRegrouped } from './regroup.js';
import { checkRequestInfo, type RequestInfo } from './request.js';
import type { LimiterSnapshot } from './state.js';
import type { StoreAdmission, StoreSession } from './store.js';
import { DrainTimer } from './timer.js';
import type { Bucket } from './bucket.js';
import { reportUnhandledError, type BucketGroup, type Permit, type Waiter } from './waiter.js';

/** Waiters of one priority, in the order they were queued (one function for every limiter's queue). */
const waiterOrder = (w: Waiter): number => w.id;

/** @internal Validated options, without the key: only its label is kept. */
export type EngineOptions = Omit<ParsedLimiterOptions, 'key' | 'labelSecret'>;

/** @internal The limiter's parts, wired; see the file's comment. */
export class Engine {
  readonly provider: Provider;
  readonly scheduler: SchedulerLike;
  readonly now: () => number;
  /** When the limiter was made: waiters keep their queue time relative to it. */
  readonly epoch: number;
  readonly maxWaitMs: number;
  readonly maxConcurrent: number;
  readonly maxServerWaitMs: number;
  readonly resetGuardMs: number;
  /** `resetGuardMs` left to its default with the memory store: see `Bucket.refill`. */
  readonly tightGuard: boolean;
  readonly coldStartConcurrency: number;
  readonly permitTimeoutMs: number;
  readonly blockCooldownMs: number;
  readonly backoff: { readonly baseMs: number; readonly maxMs: number; readonly random: () => number };
  readonly skew: SkewEstimator;
  readonly seen = new WeakMap<object, ResponseReading | null>();
  readonly out: Publisher;
  readonly timer: DrainTimer;
  readonly registry: BucketRegistry;
  readonly queue: GroupedQueue<Waiter, BucketGroup>;
  private learnt: CapacityInference | undefined = undefined;
  readonly permits: Permits;
  readonly pauses: PausePolicy;
  readonly admission: Admission;
  inFlight = 0;
  private seq = 0;
  private readonly maxQueue: number;
  /** The shared store's kind (`undefined`: the memory store). */
  private readonly storeKind: string | undefined;
  private draining = false;
  private redrain = false;
  /** A response taught the provider other buckets for queued requests (`regroup`). */
  private regroupPending = false;

  constructor(
    opts: EngineOptions,
    readonly key: string,
    session: StoreSession | undefined,
    /** The credential and its provider's rules: limiters with the same ones share their state. */
    credential: CredentialJoin,
  ) {
    this.provider = opts.provider;
    this.scheduler = opts.scheduler ?? asyncScheduler;
    const clock = limiterClock(this.scheduler);
    const provider = this.provider;
    const resetGuardMs = opts.resetGuardMs ?? RESET_GUARD_MS;
    // Made for the credential: it captures no part of this limiter (credential.ts holds members weakly).
    const registryOf = (evicted: () => void) => new BucketRegistry(provider, clock, resetGuardMs, evicted);
    // With the memory store, one state per credential in the process (credential.ts); a shared
    // store shares it through the store.
    let local: LocalAdmission | undefined;
    const shared = session
      ? undefined
      : joinCredential(this.scheduler, credential, (local = new LocalAdmission(this)), clock, registryOf);
    this.now = shared?.now ?? clock;
    this.epoch = this.now();
    this.maxWaitMs = opts.maxWaitMs;
    this.maxConcurrent = opts.maxConcurrent;
    this.maxQueue = opts.maxQueue;
    // A shared store that holds no leaky bucket (the Redis store holds them): its kind, to refuse them by.
    this.storeKind = session && opts.store?.leaky !== true ? (opts.store?.kind ?? 'shared') : undefined;
    this.maxServerWaitMs = opts.maxServerWaitMs;
    this.resetGuardMs = resetGuardMs;
    // Resets are read no earlier than the clock offset allows, less the guard kept after them.
    this.skew = new SkewEstimator(32, resetGuardMs);
    // Left to its default with the memory store, an end we bound ourselves takes a smaller
    // guard (`ownEndGuard`): a shared store reads other processes' times through their clocks.
    this.tightGuard = opts.resetGuardMs === undefined && session === undefined;
    this.coldStartConcurrency = opts.coldStartConcurrency;
    this.permitTimeoutMs = opts.permitTimeoutMs;
    this.blockCooldownMs = opts.blockCooldownMs;
    const random = opts.random ?? Math.random;
    this.backoff = {
      baseMs: opts.backoffBaseMs,
      maxMs: opts.backoffMaxMs,
      // Clamped into [0, 1] at each use: `NaN` from a user's source would make the pause `NaN`, which drops it.
      random: () => jitterOf(random),
    };
    // The engine is the publisher's and the timer's host, and the registry the queue's hooks:
    // no closures of their own on each of 10,000 tenants' limiters.
    this.out = new Publisher(this, this.provider.name, key);
    this.timer = new DrainTimer(this.scheduler, this);
    this.registry = shared?.registry ?? registryOf(() => this.out.touch());
    this.queue = new GroupedQueue<Waiter, BucketGroup>(waiterOrder, this.registry);
    this.permits = new Permits(this);
    // The store brings the shared admission (limiter.ts checked it has one): a bundle whose
    // limiters keep the memory store does not carry it.
    this.admission = session
      ? ((opts.store?.admission as StoreAdmission).admit(this as never, session) as Admission)
      : (local as LocalAdmission).join(shared as CredentialState);
    this.pauses = new PausePolicy(this, this.admission);
  }

  bucket(name: string) {
    return this.registry.get(name);
  }

  buckets() {
    return this.registry.all();
  }

  /** Admits what can go now, then publishes the state: the end of every entry point. */
  settle(): void {
    this.drain();
    this.out.flush();
  }

  flush(): void {
    this.out.flush();
  }

  /**
   * Capacity of windows no header describes, learned from their 429s (see inference.ts). Made
   * at its first use: most limiters' buckets are all described by their headers, and it is an
   * object and five closures on each of 10,000 tenants' limiters.
   */
  get inference(): CapacityInference {
    return (this.learnt ??= new CapacityInference(
      (b, from, to) => this.out.emit({ type: 'limit-changed', bucket: b.name, from, to }),
      (ms) => this.skew.toLocal(ms),
      (ms) => (Number.isFinite(this.skew.upperMs) ? ms - this.skew.upperMs : this.skew.toLocal(ms)),
      () => this.skew.lateByMs,
      () => this.skew.heldBackMs,
      () => this.maxServerWaitMs,
    ));
  }

  schedule(at: number): void {
    this.timer.schedule(at);
  }

  /** Queues `w` (not queued now): `w.granted` or `w.rejected` is called, maybe synchronously. */
  enqueue(w: Waiter): void {
    const info = w.info;
    checkRequestInfo(info);
    const now = this.now();
    w.id = ++this.seq;
    w.priority = info.priority ?? 0;
    w.summary = undefined;
    w.group = undefined;
    this.pauses.checkUnblock(now);
    this.registry.sweep(now);
    if (this.admission.refused?.(w)) return;
    if (this.pauses.blocked) {
      this.reject(w, this.blockedError());
      return;
    }
    // At the cap, a request is still tried: one that can go at once (another endpoint's bucket
    // has room, or `maxQueue: 0` for "never wait") is not refused for the others' wait. Where
    // admission is asynchronous, asking for it would spend a unit for a request about to be
    // refused: there, the cap refuses at once, unless the request outranks one waiting, which
    // it pushes out (`pushOut`) once it is sure to be queued.
    const full = this.queue.size >= this.maxQueue;
    const atOnce = full && this.admission.refusesAtCap;
    if (atOnce && this.queue.lowest(w.priority) === undefined) {
      this.refuseFull(w);
      return;
    }
    const group = this.registry.groupFor(info, this.provider, this.queue);
    // A shared store that holds no leaky bucket (createLimiter refuses the providers it sees use one).
    if (this.storeKind !== undefined) {
      const leaky = group.buckets.find((b) => b.leaky);
      if (leaky) throw leakyWithSharedStore(this.provider.name, leaky.name, this.storeKind);
    }
    w.group = group;
    // A cost no window of a bucket can hold fails now, not after a wait.
    const over = group.costs && overLimit(group.buckets, group.costs);
    if (over) {
      this.rejectCost(w, over.bucket, over.cost);
      this.out.flush();
      return;
    }
    // Where the cap refuses at once, the request it outranks is pushed out only now that this one
    // is sure to be queued (the queue is read again: a provider's `buckets` may have changed it).
    if (atOnce && this.queue.size >= this.maxQueue && !this.pushOut(w)) return;
    const sinceEpoch = now - this.epoch;
    // `| 0` makes a whole number a small integer (V8 keeps it unboxed); others stay as they are.
    w.queuedAt = sinceEpoch === (sinceEpoch | 0) ? sinceEpoch | 0 : sinceEpoch;
    // Nothing waits and nothing holds requests back: a request that can go now is admitted as
    // the drain would admit it alone, without being queued first.
    if (
      this.queue.size === 0 &&
      !this.draining &&
      this.pauses.pausedUntil <= now &&
      !this.pauses.resumePending &&
      this.drainAlone(w, now)
    ) {
      this.out.flush();
      return;
    }
    this.admission.queued(group.key, !this.queue.has(group.key));
    this.queue.link(group.key, w, group);
    this.out.touch();
    this.drain();
    // It waits, past the cap: it pushes out one it outranks, or leaves.
    if (full && w.level !== undefined && this.queue.size > this.maxQueue && !this.pushOut(w)) return;
    if (w.level !== undefined && this.out.listened)
      this.out.emit({ type: 'queued', request: this.summaryOf(w), queued: this.queue.size });
    this.out.flush();
  }

  /**
   * Makes room in the full queue for `w` (bottleneck's `OVERFLOW_PRIORITY`): the request that
   * comes last, of the lowest priority and among those the latest queued, fails with
   * `QueueFullError` if `w`'s priority is higher; else `w` does, and is taken out of the queue if
   * it is in. True: `w` keeps its place or may take one.
   */
  private pushOut(w: Waiter): boolean {
    const lowest = this.queue.lowest(w.priority);
    const out = lowest ? lowest.node.value : w;
    if (out.level !== undefined) {
      this.queue.remove(lowest ?? { node: w, group: (w.group as BucketGroup).key });
      this.admission.left(out);
      this.out.touch();
      if (this.queue.size === 0) this.timer.cancel();
    }
    this.refuseFull(out);
    return out !== w;
  }

  private refuseFull(w: Waiter): void {
    if (this.out.listened) this.out.emit({ type: 'queue-full', request: this.summaryOf(w), maxQueue: this.maxQueue });
    this.reject(w, new QueueFullError({ ...this.ctx(), maxQueue: this.maxQueue }));
    this.out.flush();
  }

  /** Removes a waiter from the queue, if it is still there (its ticket's `cancel`). */
  cancel(w: Waiter): void {
    const group = w.group;
    if (w.level === undefined || !group || !this.queue.remove({ node: w, group: group.key })) return;
    this.admission.left(w);
    if (this.out.listened) this.out.emit({ type: 'cancelled', request: this.summaryOf(w) });
    this.out.touch();
    // The timer may have been set for this request alone.
    if (this.queue.size === 0) this.timer.cancel();
    this.out.flush();
  }

  /**
   * Admits every waiting request that can go now, in priority order, and sets the one timer
   * for the earliest moment another could. A request that cannot go holds back later requests
   * that need the same empty bucket, so priorities and order are kept per bucket, while
   * requests on other buckets (other endpoints) are not held up.
   */
  drain(): void {
    if (this.draining) {
      this.redrain = true;
      return;
    }
    this.draining = true;
    try {
      do {
        this.redrain = false;
        this.drainOnce();
      } while (this.redrain);
    } finally {
      this.draining = false;
    }
  }

  /**
   * `drain` of a queue that would hold `w` alone: admits it now (true), or does nothing (false:
   * it must wait, and is queued). Requests its handler queues are drained after it returns, as
   * in `drain`.
   */
  private drainAlone(w: Waiter, now: number): boolean {
    this.draining = true;
    try {
      if (!this.admission.admitAlone(w, now)) return false;
      while (this.redrain) {
        this.redrain = false;
        this.drainOnce();
      }
      return true;
    } finally {
      this.draining = false;
    }
  }

  /** The provider may now count queued requests against other buckets: looked at before the next admission. */
  regroup(): void {
    this.regroupPending = true;
  }

  private drainOnce(): void {
    if (this.regroupPending) {
      this.regroupPending = false;
      moveRegrouped(this);
    }
    const pauses = this.pauses;
    if (pauses.blocked) {
      pauses.checkUnblock(this.now());
      if (pauses.blocked) {
        const error = this.blockedError();
        // The queue is emptied before any handler runs (handlers may queue more).
        for (const w of this.queue.drain()) this.reject(w, error);
        this.timer.cancel();
        return;
      }
    }
    // Drained after every response and release, mostly with nothing queued: no clock read then.
    if (this.queue.size === 0) {
      this.timer.cancel();
      return;
    }
    const now = this.now();
    if (pauses.pausedUntil > now) {
      const until = pauses.pausedUntil;
      if (until - now > this.maxWaitMs) {
        for (const w of this.queue.drain()) this.rejectQuota(w, 'pause', until, now);
        this.timer.cancel();
      } else {
        // Nothing goes before the pause ends: a request whose deadline comes first fails now.
        // Once swept for a pause's end, the rest have later deadlines, and so has a request
        // queued since (queued now, its deadline is `maxWaitMs` on, past `until`): the queue
        // is read again only when a pause ends later than the last one swept for.
        if (until > this.sweptUntil && this.maxWaitMs < Infinity) this.sweepPause(now, until);
        if (this.queue.size === 0) this.timer.cancel();
        else this.timer.schedule(until);
      }
      return;
    }
    if (pauses.takeResumed()) this.out.emit({ type: 'resumed' });
    this.admission.drain(now);
  }

  /** The end of the last pause the queue was swept for (`sweepPause`). */
  private sweptUntil = -Infinity;

  /** Fails the requests whose deadline comes before `until`, the end of a pause. */
  private sweepPause(now: number, until: number): void {
    this.sweptUntil = until;
    const expired: Waiter[] = [];
    // A copy: a group emptied is closed (out of the map) as it is read.
    for (const g of [...this.queue.allGroups()]) this.queue.expire(g, this.deadlineOf, now, until, expired, false);
    this.rejectExpired(expired, 'pause', until, now);
  }

  /** When `w`'s wait ends at the latest: `maxWaitMs` after it was queued. */
  readonly deadlineOf = (w: Waiter): number => this.epoch + w.queuedAt + this.maxWaitMs;

  rejectExpired(expired: Waiter[], bucket: string | undefined, resumeAt: number, now: number): void {
    if (expired.length === 0) return;
    for (const w of expired.splice(0)) {
      this.admission.left(w);
      this.rejectQuota(w, bucket ?? w.buckets[0]?.name ?? 'shared', resumeAt, now);
    }
  }

  reject(w: Waiter, error: RateLimitError): void {
    this.out.rejected++;
    this.out.touch();
    try {
      w.rejected(error);
    } catch (thrown) {
      reportUnhandledError(thrown);
    }
  }

  /**
   * Hands `permit` to `w`. A handler that throws (a user's `acquire` handler) must not stop the
   * others admitted in the same batch, nor surface in whichever caller triggered the drain: its
   * permit comes back, and the error is reported as RxJS reports an unhandled one.
   */
  grant(w: Waiter, permit: Permit): void {
    try {
      w.granted(permit);
    } catch (thrown) {
      permit.release();
      reportUnhandledError(thrown);
    }
  }

  rejectQuota(w: Waiter, bucket: string, resumeAt: number, now: number): void {
    if (this.out.listened) this.out.emit({ type: 'quota-exhausted', request: this.summaryOf(w), bucket, resumeAt });
    // The wait it would have had in all, from when it was queued: what `maxWaitMs` bounds.
    const waitMs = resumeAt - Math.min(now, this.epoch + w.queuedAt);
    this.reject(
      w,
      new QuotaExhaustedError({ ...this.ctx(), bucket, resumeAt, waitMs, maxWaitMs: this.maxWaitMs, now }),
    );
  }

  rejectCost(w: Waiter, bucket: Bucket, cost: number): void {
    this.reject(
      w,
      new CostExceedsLimitError({ ...this.ctx(), bucket: bucket.name, cost, limit: bucket.limit ?? Infinity }),
    );
  }

  /** The error for a request refused because the credential is blocked. */
  blockedError(cause?: unknown): BlockedError {
    const b = this.pauses.blocked ?? { status: 403, until: null };
    return new BlockedError(
      { ...this.ctx(), status: b.status, until: b.until, now: this.now() },
      cause === undefined ? undefined : { cause },
    );
  }

  /** Error context: provider and key label. */
  ctx(): { provider: string; key: string } {
    return { provider: this.provider.name, key: this.key };
  }

  /** A summary for a request that is not queued (a new `id`). */
  summarize(info: RequestInfo): RequestSummary {
    return requestSummary(++this.seq, info, info.priority ?? 0);
  }

  /** The summary of a queued (or admitted) request, made on first use. */
  summaryOf(w: Waiter): RequestSummary {
    w.summary ??= requestSummary(w.id, w.info, w.priority);
    return w.summary;
  }

  /** The drain timer's clock (`TimerHost`). */
  timerNow(): number {
    return this.now();
  }

  /** The drain timer fired (`TimerHost`). */
  timerFired(): void {
    this.settle();
  }

  /** @internal The snapshot at `now` (`PublisherHost`). */
  snapshotAt(now: number): LimiterSnapshot {
    const { pausedUntil, pauseReason, blocked } = this.pauses;
    return {
      provider: this.provider.name,
      key: this.key,
      buckets: [...this.registry.all()].map((b) => {
        b.refill(now, this.resetGuardMs, this.tightGuard);
        return b.snapshot();
      }),
      queued: this.queue.size,
      inFlight: this.inFlight,
      pausedUntil: pausedUntil > now ? pausedUntil : null,
      pauseReason: pausedUntil > now ? pauseReason : null,
      // A block whose cool-down is over is lifted at the next request: shown as over now, as a pause.
      blocked: blocked && (blocked.until ?? Infinity) > now ? { ...blocked } : null,
      totals: this.out.totals(),
      updatedAt: now,
    };
  }
}
