import {
  asyncScheduler,
  BehaviorSubject,
  config as rxConfig,
  defer,
  type Observable,
  Subject,
  type SchedulerLike,
  type Subscription,
} from 'rxjs';
import type { BucketReading, Provider, ResponseReading, RetrySource } from './provider.js';
import { createBucket, type Bucket } from './bucket.js';
import { backgroundTimer, limiterClock, SkewEstimator } from './clock.js';
import { CapacityInference } from './inference.js';
import { RequestSharing } from './sharing.js';
import { BlockedError, QueueFullError, QuotaExhaustedError, RetryLimitError, type RateLimitError } from './errors.js';
import { safePath, type LimiterEvent, type RequestSummary } from './events.js';
import { keyLabel } from './keyLabel.js';
import { jitterOf, parseLimiterOptions, type LimiterOptions } from './options.js';
import { GroupedQueue, type Level, type Lot, type QueueNode } from './queue.js';
import { methodOf, type RequestInfo } from './request.js';
import { extractResponse, type ResponseExtractor, type ResponseLike } from './response.js';
import type { LimiterSnapshot } from './state.js';
import type { StoreBlock, StoreBucketSpec, StoreGrant, StoreReading, StoreSession } from './store.js';

/** The longest delay `setTimeout` keeps (about 24.8 days); longer ones fire after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Most admissions asked of a shared store in one call. */
const SHARED_BATCH = 64;
/** With a shared store, how soon to ask again when only a response can tell (a change notice usually comes first). */
const SHARED_POLL_MS = 250;
/**
 * How long a bucket nothing uses is kept before it may be evicted (when it also holds no
 * window in force): per-endpoint buckets are named by URLs, and a server may name any number.
 * An evicted bucket starts again cold, so a credential idle for less keeps what it learned.
 */
const IDLE_MS = 600_000;
/**
 * Most buckets a server may name that the provider did not declare (IETF policy names, TEOS
 * periods). Each counts for every request; a reading naming one more is ignored until one of
 * them is evicted.
 */
const MAX_DISCOVERED = 32;

/** Distributes a limited payload across the event type union. */
type EventPayload<E> = E extends LimiterEvent ? Omit<E, 'at' | 'provider' | 'key'> : never;

/** Permission to send one request, returned to the limiter when the request settles. */
export interface Permit {
  readonly request: RequestSummary;
  /**
   * Reads the response to this request (once; later calls are ignored) and returns what the
   * provider made of it.
   */
  observe(response: ResponseLike, raw?: unknown): ResponseReading;
  /** Returns the permit: the request is over (response read, failed, or unsubscribed). */
  release(): void;
}

/** Callbacks of {@link Limiter.acquire}. Exactly one of them is called, at most once. */
export interface AcquireHandlers {
  /** The request may go: send it, then `permit.observe(response)` and `permit.release()`. */
  granted(permit: Permit): void;
  /** The request will not go (quota, full queue, block): fail it with `error`. */
  rejected(error: RateLimitError): void;
}

/** What {@link Limiter.retryDelay} needs to know of the request that is to be retried. */
export interface RetryContext {
  /** Attempts made so far (1 after the first answer). */
  readonly attempts: number;
  /** Retries allowed: past them, `RetryLimitError`. */
  readonly maxRetries: number;
  /** The status the request was answered with. */
  readonly status: number;
  /** What the request ended with: the `cause` of the error thrown, if one is. */
  readonly cause: unknown;
  /** The request's summary, for the `retry-scheduled` event (`null` when there is none). */
  readonly request?: RequestSummary | null;
}

/** The handle of a waiting request; `cancel()` removes it from the queue. */
export interface Ticket {
  /** Removes the request from the queue (no handler is called); does nothing once it was granted or rejected. */
  cancel(): void;
}

/** The buckets a request counts against, and their key: one per set of buckets, shared by its waiters. */
interface BucketGroup {
  readonly key: string;
  readonly buckets: readonly Bucket[];
}

/**
 * @internal A request waiting for a permit. One object per waiting request: it is its own
 * queue node and its own {@link Ticket}, and it receives the outcome (`granted` or
 * `rejected`, exactly one, at most once per {@link Limiter.enqueue}). The request summary is
 * made only when something reads it (an observed event, a permit). An operator's subscriber
 * can be its waiter, and enqueue itself again for a retry.
 */
export abstract class Waiter implements QueueNode<Waiter>, Ticket {
  /** @internal */ prev: QueueNode<Waiter> | undefined = undefined;
  /** @internal */ next: QueueNode<Waiter> | undefined = undefined;
  /** @internal */ level: Level<Waiter> | undefined = undefined;
  /** @internal */ priority = 0;
  /** @internal Sequence number (the summary's `id`). */ id = 0;
  /**
   * @internal When it was queued, in ms after the limiter's `epoch`: a small integer, which V8
   * keeps in the object (an epoch time would be a boxed double, 16 bytes more per waiter).
   */
  queuedAt = 0;
  /** @internal */ group: BucketGroup | undefined = undefined;
  /** @internal */ summary: RequestSummary | undefined = undefined;

  /** @internal This node's value (the queue's view of it). */
  get value(): Waiter {
    return this;
  }

  /** @internal The buckets it counts against. */
  get buckets(): readonly Bucket[] {
    return this.group?.buckets ?? NO_BUCKETS;
  }

  /** The request. */
  abstract readonly info: RequestInfo;
  /** Admitted: send the request now, and release the permit when it settles. */
  abstract granted(permit: Permit): void;
  /** It will never be admitted in time (blocked, queue full, wait too long, …). */
  abstract rejected(error: RateLimitError): void;
  /** Removes it from the queue, if it is still there. */
  abstract cancel(): void;
}

const NO_BUCKETS: readonly Bucket[] = [];

/** The waiter of {@link Limiter.acquire}: calls the handlers it was given. */
class HandlerWaiter extends Waiter {
  constructor(
    private readonly limiter: Limiter,
    readonly info: RequestInfo,
    private readonly handlers: AcquireHandlers,
  ) {
    super();
  }

  granted(permit: Permit): void {
    this.handlers.granted(permit);
  }

  rejected(error: RateLimitError): void {
    this.handlers.rejected(error);
  }

  cancel(): void {
    this.limiter.cancel(this);
  }
}

/** The outcome of checking whether a request could go now. */
type Verdict = { go: true } | { go: false; at: number | undefined; bucket: Bucket };

/**
 * The limit state of one credential at one provider, shared by every request that goes
 * through it. Create with {@link createLimiter}; use through the operators.
 */
export class Limiter {
  /** The provider profile in use. */
  readonly provider: Provider;
  /** The key label: a hash of the credential, safe to show. */
  readonly key: string;
  /** Reads responses out of whatever requests emit or throw. */
  readonly extractResponse: ResponseExtractor;
  /** Longest a request may wait before failing with `QuotaExhaustedError`. */
  readonly maxWaitMs: number;
  /** Time source for every wait; a `TestScheduler` makes them virtual. */
  readonly scheduler: SchedulerLike;
  /** The scheduler's time, monotonic where it is the wall clock (`limiterClock`). */
  private readonly clock: () => number;
  /** @internal */ readonly backoff: { readonly baseMs: number; readonly maxMs: number; readonly random: () => number };

  /** Validated options, without the key: only its label is kept. */
  private readonly opts: Omit<ReturnType<typeof parseLimiterOptions>, 'key' | 'labelSecret'>;
  private readonly buckets = new Map<string, Bucket>();
  /** Buckets a response revealed that the provider did not declare: they count for every request. */
  private readonly discovered: Bucket[] = [];
  private readonly queue = new GroupedQueue<Waiter, BucketGroup>((w) => w.id, {
    opened: (g) => this.pin(g.buckets, 1),
    closed: (g) => this.pin(g.buckets, -1),
  });
  /** Per bucket, the requests parked on it (see `drainLocal`). */
  private readonly lots = new Map<Bucket, Lot<Waiter, BucketGroup>>();
  /** Per bucket, how many groups of waiting requests count against it (it is kept while any do). */
  private readonly pins = new Map<Bucket, number>();
  /**
   * Buckets that may have fallen idle, by when they did, oldest first: each is looked at once
   * `IDLE_MS` has passed, and evicted if nothing needs it (see `sweep`).
   */
  private readonly idle: Array<{ readonly bucket: Bucket; readonly since: number }> = [];
  /** Where `idle` starts (entries before it were looked at). */
  private idleHead = 0;
  /** Per bucket, its latest entry in `idle` (older ones are stale and skipped). */
  private readonly idleSince = new Map<Bucket, number>();
  private readonly skew = new SkewEstimator();
  /** Capacity of windows no header describes, learned from their 429s (see inference.ts). */
  private readonly inference = new CapacityInference(
    (b, from, to) => this.emit({ type: 'limit-changed', bucket: b.name, from, to }),
    (ms) => this.skew.toLocal(ms),
  );
  private readonly seen = new WeakSet<object>();
  private readonly state = new BehaviorSubject<LimiterSnapshot>(undefined as unknown as LimiterSnapshot);
  private readonly events = new Subject<LimiterEvent>();
  private inFlight = 0;
  private seq = 0;
  private pausedUntil = 0;
  private pauseReason: RetrySource | 'manual' | null = null;
  private consecutive429 = 0;
  /** When the last 429 was read: 429s to requests sent before it are the same burst. */
  private lastLimitedAt = -Infinity;
  private blocked: { status: number; since: number; until: number | null } | null = null;
  private totals = { sent: 0, responses: 0, rateLimited: 0, rejected: 0, saved: 0 };
  /** @internal In-flight sharing and the GET cache, used by `rateLimit`. */
  readonly sharing: RequestSharing;
  private timer: Subscription | undefined;
  private timerAt = Infinity;
  private draining = false;
  private redrain = false;
  private dirty = true;
  private updatedAt: number;
  /** When the limiter was made: waiters keep their queue time relative to it. */
  private readonly epoch: number;
  private readonly emptyNotified = new WeakSet<Bucket>();
  private wasPaused = false;
  /** A shared store's session (`undefined` with the memory store: buckets are local). */
  private readonly session: StoreSession | undefined;
  /** A shared-store call is in flight (at most one per limiter). */
  private storeBusy = false;
  /**
   * Per group of waiting requests (same set of buckets): do not ask the shared store again
   * before this time, unless something changed (`storeDirty`: a response, a release, a notice
   * from another process, a new group). A group that must wait does not hold up the others.
   */
  private readonly groupWait = new Map<string, number>();
  private storeDirty = true;
  private readonly specs = new WeakMap<Bucket, StoreBucketSpec>();
  /** The provider's documented figures per bucket, for a shared store's first use of it. */
  private readonly hints = new Map<string, { limit: number | undefined; windowMs: number | undefined }>();

  /** The current limit state; replays the latest snapshot to each new subscriber. */
  readonly state$: Observable<LimiterSnapshot>;
  /** What the limiter does, and why. Hot: subscribe before the requests you want to see. */
  readonly events$: Observable<LimiterEvent>;

  /** Prefer {@link createLimiter}; the options are checked here (a `TypeError` names each bad one). */
  constructor(options: LimiterOptions) {
    const { key, labelSecret, ...opts } = parseLimiterOptions(options);
    this.opts = opts;
    this.provider = opts.provider;
    this.key = opts.label ?? keyLabel(key, labelSecret);
    this.scheduler = this.opts.scheduler ?? asyncScheduler;
    this.clock = limiterClock(this.scheduler);
    this.extractResponse = this.opts.extractResponse ?? extractResponse;
    this.maxWaitMs = this.opts.maxWaitMs;
    this.sharing = new RequestSharing(opts.dedupe, opts.cache);
    const random = this.opts.random ?? Math.random;
    this.backoff = {
      baseMs: this.opts.backoffBaseMs,
      maxMs: this.opts.backoffMaxMs,
      // Clamped into [0, 1] at each use: `NaN` from a user's source would make the pause `NaN`, which drops it.
      random: () => jitterOf(random),
    };
    this.updatedAt = this.now();
    this.epoch = this.updatedAt;
    this.state$ = defer(() => {
      this.flushState(true);
      return this.state;
    });
    this.events$ = this.events.asObservable();
    this.session = opts.store?.open({
      key,
      provider: this.provider.name,
      emit: (event) => this.emit(event),
    });
    this.session?.onChange(() => {
      this.storeDirty = true;
      this.drain();
      this.flushState();
    });
    this.session?.onBlock?.((block) => this.adoptBlock(block));
    this.session?.onResume?.(({ buckets }) => {
      if (buckets) {
        this.forget();
        return;
      }
      this.endPause();
      this.drain();
      this.flushState();
    });
  }

  /**
   * Closes what a shared store opened for this limiter, and completes `state$` and `events$`
   * (a pool's eviction, a NestJS shutdown: subscribers such as a UI's see the end). The limiter
   * still answers calls afterwards, without publishing.
   */
  async close(): Promise<void> {
    this.state.complete();
    this.events.complete();
    await this.session?.close();
  }

  /**
   * `JSON.stringify(limiter)`, `util.inspect(limiter)`, `console.log(limiter)`: its snapshot,
   * not its internals, which hold the URLs of queued and in-flight requests (a query string may
   * carry a token, e.g. Pipedrive's `api_token`).
   */
  toJSON(): LimiterSnapshot {
    return this.snapshot;
  }

  /** @internal See {@link Limiter.toJSON}. */
  [Symbol.for('nodejs.util.inspect.custom')](
    _depth: number,
    options: object,
    inspect?: (v: unknown, o: object) => string,
  ): string {
    return `Limiter ${inspect ? inspect(this.snapshot, options) : JSON.stringify(this.snapshot)}`;
  }

  /** The current limit state, computed now. */
  get snapshot(): LimiterSnapshot {
    this.flushState(true);
    return this.state.value;
  }

  /**
   * Current time on the limiter's clock (epoch ms; virtual under `TestScheduler`). With the
   * default scheduler it is monotonic: the wall clock when the limiter was made plus the time
   * since, so it keeps counting evenly when the wall clock is stepped. Every time the limiter
   * shows (`pausedUntil`, `resetAt`, `resumeAt`, event `at`) is on this clock.
   */
  now(): number {
    return this.clock();
  }

  /**
   * Asks to send one request. `handlers.granted` is called (maybe synchronously) when every
   * bucket the request counts against has room; `handlers.rejected` when it never will in
   * time. Low level: the operators are the usual way in.
   */
  acquire(info: RequestInfo, handlers: AcquireHandlers): Ticket {
    const waiter = new HandlerWaiter(this, info, handlers);
    this.enqueue(waiter);
    return waiter;
  }

  /**
   * @internal Queues `w` (not queued now) for its request: `w.granted` or `w.rejected` is
   * called, maybe synchronously. `acquire` without a handlers object: the operators' own
   * subscriber is the waiter.
   */
  enqueue(w: Waiter): void {
    const now = this.now();
    const info = w.info;
    w.id = ++this.seq;
    w.priority = info.priority ?? 0;
    w.summary = undefined;
    w.group = undefined;
    this.checkUnblock(now);
    this.sweep(now);
    if (this.blocked) {
      this.reject(w, this.blockedError());
      return;
    }
    // At the cap, a request is still tried: one that can go at once (another endpoint's bucket
    // has room, or `maxQueue: 0` for "never wait") is not refused for the others' wait. With a
    // shared store admission is asynchronous, so asking for it would spend a unit for a request
    // about to be refused: there, the cap refuses at once.
    const full = this.queue.size >= this.opts.maxQueue;
    if (full && this.session) {
      this.refuseFull(w);
      return;
    }
    const group = this.groupFor(info);
    w.group = group;
    const sinceEpoch = now - this.epoch;
    // `| 0` makes a whole number a small integer (V8 keeps it unboxed); others stay as they are.
    w.queuedAt = sinceEpoch === (sinceEpoch | 0) ? sinceEpoch | 0 : sinceEpoch;
    if (this.session && !this.queue.has(group.key)) this.groupWait.delete(group.key);
    this.queue.link(group.key, w, group);
    this.touch();
    this.drain();
    if (full && w.level !== undefined && this.queue.size > this.opts.maxQueue) {
      this.queue.remove({ node: w, group: group.key });
      if (this.queue.size === 0) this.cancelTimer();
      this.refuseFull(w);
      return;
    }
    if (w.level !== undefined && this.events.observed)
      this.emit({ type: 'queued', request: this.summaryOf(w), queued: this.queue.size });
    this.flushState();
  }

  private refuseFull(w: Waiter): void {
    if (this.events.observed)
      this.emit({ type: 'queue-full', request: this.summaryOf(w), maxQueue: this.opts.maxQueue });
    this.reject(w, new QueueFullError({ ...this.ctx(), maxQueue: this.opts.maxQueue }));
    this.flushState();
  }

  /** @internal Removes a waiter from the queue, if it is still there (its ticket's `cancel`). */
  cancel(w: Waiter): void {
    const group = w.group;
    if (w.level === undefined || !group || !this.queue.remove({ node: w, group: group.key })) return;
    if (this.events.observed) this.emit({ type: 'cancelled', request: this.summaryOf(w) });
    this.touch();
    // The timer may have been set for this request alone.
    if (this.queue.size === 0) this.cancelTimer();
    this.flushState();
  }

  /**
   * Reads a response that did not come through `acquire` (a request sent around the limiter,
   * or by `retryOn429` used alone). A response object already read is ignored.
   */
  observe(response: ResponseLike, info: RequestInfo = {}, raw?: object): ResponseReading | undefined {
    if (raw) {
      if (this.seen.has(raw)) return undefined;
      this.seen.add(raw);
    }
    const out: StoreReading[] = [];
    const reading = this.read(response, info, undefined, null, undefined, out);
    if (this.session) {
      this.session.observe(undefined, out, this.specsOf(out.map((r) => r.name)));
      this.storeDirty = true;
    }
    this.drain();
    this.flushState();
    return reading;
  }

  /** Has this raw value or error already been read by the limiter? */
  hasSeen(raw: unknown): boolean {
    return typeof raw === 'object' && raw !== null && this.seen.has(raw);
  }

  /**
   * When the request could next be sent: the end of a pause, or the reset of the first of its
   * buckets that is empty. `now` when it could go at once.
   */
  resumeAt(info: RequestInfo = {}): number {
    const now = this.now();
    let at = Math.max(now, this.pausedUntil);
    for (const b of this.bucketsFor(info)) {
      b.refill(now, this.opts.resetGuardMs);
      const when = b.availableAt(now, this.opts.resetGuardMs, Infinity);
      if (when !== undefined) at = Math.max(at, when);
    }
    return at;
  }

  /**
   * How long a request that was answered with a retryable status waits before it is sent
   * again: until the limiter may send (`resumeAt`), or, when the provider did not treat the
   * status as a rate limit and set no wait (a 503 listed in `statuses`, say), a capped backoff
   * with jitter. Throws `RetryLimitError` past `maxRetries` and `QuotaExhaustedError` when the
   * wait exceeds `maxWaitMs`, each with `cause` set to what the request ended with. Emits
   * `retry-scheduled`. Used by `retryOn429` and the axios and fetch adapters.
   *
   * ```ts
   * import { createLimiter, providers } from 'rx-ratelimit';
   * const limiter = createLimiter({ provider: providers.generic(), key: 'my-token' });
   * const waitMs = limiter.retryDelay(
   *   { method: 'GET', url: '/items' },
   *   { attempts: 1, maxRetries: 5, status: 429, cause: new Error('429') },
   * );
   * ```
   */
  retryDelay(info: RequestInfo, retry: RetryContext): number {
    const { attempts, maxRetries, status, cause, request = null } = retry;
    if (attempts > maxRetries) throw new RetryLimitError({ ...this.ctx(), attempts, status }, { cause });
    const now = this.now();
    const resumeAt = this.resumeAt(info);
    let waitMs = Math.max(0, resumeAt - now);
    if (waitMs === 0) {
      const exp = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** (attempts - 1));
      waitMs = exp * (0.5 + 0.5 * this.backoff.random());
    }
    if (waitMs > this.maxWaitMs) {
      throw new QuotaExhaustedError(
        { ...this.ctx(), bucket: 'pause', resumeAt: now + waitMs, waitMs, maxWaitMs: this.maxWaitMs },
        { cause },
      );
    }
    this.emit({ type: 'retry-scheduled', request, attempt: attempts + 1, delayMs: waitMs });
    // A longer timer would fire at once. A wait that long comes from a pause (a server's reset
    // or Retry-After), which holds the retry in the queue for the rest; a backoff or `maxWaitMs`
    // set past 24.8 days is cut to it.
    return Math.min(waitMs, MAX_TIMER_MS);
  }

  /**
   * Stops sending for `ms` (for instance after an error the provider does not mark as 429). A
   * pause only ever lengthens one already running; `pause(0)` (or any `ms <= 0`) ends the pause
   * instead, here and, with a shared store, on every process. To also lift a block and forget
   * the resets the buckets remember, use {@link Limiter.resume}.
   *
   * ```ts
   * import { createLimiter, providers } from 'rx-ratelimit';
   * const limiter = createLimiter({ provider: providers.generic(), key: 'my-token' });
   * limiter.pause(5_000); // nothing is sent for 5 s
   * limiter.pause(0); // … unless the pause is ended early
   * ```
   */
  pause(ms: number, reason: RetrySource | 'manual' = 'manual'): void {
    if (!(ms > 0)) {
      this.session?.resume?.({ buckets: false });
      this.endPause();
    } else {
      this.setPause(this.now() + ms, reason, null, true);
    }
    this.drain();
    this.flushState();
  }

  /**
   * Starts again now, whatever a server said: lifts any pause and block, and makes every bucket
   * forget the reset it remembers, so each is refreshed from the next response (an empty bucket
   * sends one request to learn its figures). With a shared store, the pause, the block and the
   * remembered resets are cleared in the store too, and every other process of the credential
   * does the same. For the rare time a server's word was wrong (a `Retry-After` far beyond what
   * it meant, within `maxServerWaitMs`), or an operator knows the limit is back.
   *
   * ```ts
   * import { createLimiter, providers } from 'rx-ratelimit';
   * const limiter = createLimiter({ provider: providers.procore(), key: 'my-token' });
   * // an operator's "try again now" button:
   * limiter.resume();
   * ```
   */
  resume(): void {
    this.session?.resume?.({ buckets: true });
    this.forget();
  }

  /** Lifts the pause and the block and forgets every bucket's reset, in this process only. */
  private forget(): void {
    this.endPause();
    this.consecutive429 = 0;
    this.lastLimitedAt = -Infinity;
    for (const b of this.buckets.values()) b.forget();
    if (this.blocked) {
      this.blocked = null;
      this.emit({ type: 'unblocked' });
    }
    this.storeDirty = true;
    this.touch();
    this.drain();
    this.flushState();
  }

  /** Ends the pause in this process (a drain then emits `resumed`). */
  private endPause(): void {
    if (this.pausedUntil === 0) return;
    this.pausedUntil = 0;
    this.pauseReason = null;
    this.storeDirty = true;
    this.touch();
  }

  /**
   * Lifts a block (Pipedrive's 403) before its cool-down ends: the next request is sent. With a
   * shared store, on every process.
   */
  unblock(): void {
    this.lift(true);
  }

  /** Lifts the block: `share`, on every process of a shared store too (not when a cool-down ends). */
  private lift(share: boolean): void {
    if (share) this.session?.unblock?.();
    if (!this.blocked) return;
    this.blocked = null;
    this.emit({ type: 'unblocked' });
    this.touch();
    this.drain();
    this.flushState();
  }

  /** @internal Emits an event on behalf of an operator. */
  emit(event: EventPayload<LimiterEvent>): void {
    if (!this.events.observed) return;
    this.events.next({ ...event, at: this.now(), provider: this.provider.name, key: this.key } as LimiterEvent);
  }

  /**
   * Fails now if the request counts against a quota bucket (a daily budget) with no more than
   * `reserve` left: returns the error to raise, or `undefined` when the request may go on.
   */
  checkQuota(info: RequestInfo, reserve = 0): QuotaExhaustedError | undefined {
    const now = this.now();
    for (const b of this.bucketsFor(info)) {
      if (!b.quota) continue;
      b.refill(now, this.opts.resetGuardMs);
      if (b.remaining === undefined || b.remaining > reserve) continue;
      const reset = b.resetAt === undefined ? Infinity : b.resetAt + this.opts.resetGuardMs;
      const kept = b.remaining > 0; // room, but kept for requests of higher priority
      // An empty quota bucket is a bucket like any other: when its next slot frees within
      // maxWaitMs (the daily reset is minutes away, the oldest call of a rolling day ages out),
      // the request waits in the queue for it. Only a wait past maxWaitMs fails now.
      const resumeAt = kept ? reset : (b.availableAt(now, this.opts.resetGuardMs, Infinity) ?? reset);
      if (!kept && resumeAt - now <= this.maxWaitMs) continue;
      this.emit({ type: 'quota-exhausted', request: this.summarize(info), bucket: b.name, resumeAt });
      this.totals.rejected++;
      this.touch();
      this.flushState();
      return new QuotaExhaustedError({
        ...this.ctx(),
        bucket: b.name,
        resumeAt,
        waitMs: resumeAt - now,
        maxWaitMs: this.maxWaitMs,
        ...(kept ? { reserve } : {}),
      });
    }
    return undefined;
  }

  /** @internal Counts a request served without sending it (shared or cached). */
  noteSaved(info: RequestInfo, from: 'in-flight' | 'cache'): void {
    this.totals.saved++;
    this.emit({ type: 'shared', request: this.summarize(info), from });
    this.touch();
    this.flushState();
  }

  /** @internal The error for a request refused because the credential is blocked. */
  blockedError(cause?: unknown): BlockedError {
    const b = this.blocked ?? { status: 403, until: null };
    return new BlockedError(
      { ...this.ctx(), status: b.status, until: b.until },
      cause === undefined ? undefined : { cause },
    );
  }

  /** Is the credential blocked now? */
  get isBlocked(): boolean {
    this.checkUnblock(this.now());
    return this.blocked !== null;
  }

  /** @internal Error context: provider and key label. */
  ctx(): { provider: string; key: string } {
    return { provider: this.provider.name, key: this.key };
  }

  private bucketsFor(info: RequestInfo): Bucket[] {
    const out: Bucket[] = [...this.discovered];
    for (const spec of this.provider.buckets(info)) {
      let b = this.buckets.get(spec.name);
      if (!b) {
        b = createBucket(spec);
        this.buckets.set(spec.name, b);
        this.hints.set(spec.name, { limit: spec.limit, windowMs: spec.windowMs });
        this.markIdle(b, this.now());
      }
      if (!out.includes(b)) out.push(b);
    }
    return out;
  }

  private summarize(info: RequestInfo): RequestSummary {
    return { id: ++this.seq, method: methodOf(info), path: safePath(info.url), priority: info.priority ?? 0 };
  }

  /** The summary of a queued (or admitted) request, made on first use. */
  private summaryOf(w: Waiter): RequestSummary {
    w.summary ??= { id: w.id, method: methodOf(w.info), path: safePath(w.info.url), priority: w.priority };
    return w.summary;
  }

  /**
   * The buckets of a request, as a group: the waiters queued with the same buckets share one
   * (one key string and one array for all of them).
   */
  private groupFor(info: RequestInfo): BucketGroup {
    const buckets = this.bucketsFor(info);
    const key = buckets.map((b) => b.name).join('\n');
    return this.queue.group(key)?.meta ?? { key, buckets };
  }

  /** A bucket a response named that the provider did not declare; none past `MAX_DISCOVERED`. */
  private discover(name: string, now: number): Bucket | undefined {
    if (this.discovered.length >= MAX_DISCOVERED) return undefined;
    const b = createBucket({ name });
    this.buckets.set(name, b);
    this.discovered.push(b);
    this.markIdle(b, now);
    return b;
  }

  /** Counts groups of waiting requests on `buckets` (`delta` 1: a group opened; -1: closed). */
  private pin(buckets: readonly Bucket[], delta: 1 | -1): void {
    const now = this.now();
    for (const b of buckets) {
      const n = (this.pins.get(b) ?? 0) + delta;
      if (n > 0) this.pins.set(b, n);
      else {
        this.pins.delete(b);
        this.markIdle(b, now);
      }
    }
  }

  /** `b` may be unused from `now` on: it is looked at again `IDLE_MS` later. */
  private markIdle(b: Bucket, now: number): void {
    if (b.inFlight > 0 || this.pins.has(b)) return;
    // One entry per bucket: a later use only moves its time (the sweep reads it), so the queue
    // holds at most one entry per bucket, whatever the request rate.
    const queued = this.idleSince.has(b);
    this.idleSince.set(b, now);
    if (!queued) this.idle.push({ bucket: b, since: now });
  }

  /**
   * Evicts the buckets idle for `IDLE_MS` that nothing needs: none in flight, no request waiting
   * on them, and no state in force (a window with a reset to come, a pacing slot, units spent).
   * One that still holds state is looked at again `IDLE_MS` later. A new request on an evicted
   * bucket starts it again from the provider's hints, with a cold start. Amortized O(1) per
   * bucket use.
   */
  private sweep(now: number): void {
    const guard = this.opts.resetGuardMs;
    // A queue in an array, not a Map re-set on each use: a Map iterated from its start walks
    // every deleted entry before the first live one.
    const idle = this.idle;
    while (this.idleHead < idle.length) {
      const { bucket: b, since } = idle[this.idleHead] as (typeof idle)[number];
      if (since + IDLE_MS > now) break;
      this.idleHead++;
      const last = this.idleSince.get(b);
      if (last === undefined) continue;
      if (last + IDLE_MS > now) {
        // Used again since: looked at again `IDLE_MS` after that use (maybe a little later).
        idle.push({ bucket: b, since: last });
        continue;
      }
      this.idleSince.delete(b);
      if (b.inFlight > 0 || this.pins.has(b) || this.buckets.get(b.name) !== b) continue;
      b.refill(now, guard);
      if (b.resetAt !== undefined || b.availableAt(now, guard, Infinity) !== now) this.markIdle(b, now);
      else this.evict(b);
    }
    if (this.idleHead > 1024 && this.idleHead * 2 > idle.length) {
      idle.splice(0, this.idleHead);
      this.idleHead = 0;
    }
  }

  private evict(b: Bucket): void {
    this.buckets.delete(b.name);
    this.hints.delete(b.name);
    this.lots.delete(b);
    this.idleSince.delete(b);
    const i = this.discovered.indexOf(b);
    if (i >= 0) this.discovered.splice(i, 1);
    this.touch();
  }

  private verdict(w: Waiter, now: number): Verdict {
    let at: number | undefined = now;
    let blocking: Bucket | undefined;
    for (const b of w.buckets) {
      b.refill(now, this.opts.resetGuardMs);
      const when = b.availableAt(now, this.opts.resetGuardMs, this.opts.coldStartConcurrency);
      if (when === now) continue;
      if (when === undefined || (at !== undefined && when > at)) {
        blocking = b;
        if (when === undefined) return { go: false, at: undefined, bucket: b };
        at = when;
      }
    }
    return blocking ? { go: false, at, bucket: blocking } : { go: true };
  }

  /**
   * Admits every waiting request that can go now, in priority order, and sets the one timer
   * for the earliest moment another could. A request that cannot go holds back later requests
   * that need the same empty bucket, so priorities and order are kept per bucket, while
   * requests on other buckets (other endpoints) are not held up.
   */
  private drain(): void {
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

  private drainOnce(): void {
    const now = this.now();
    this.checkUnblock(now);
    if (this.blocked) {
      const error = this.blockedError();
      for (const w of this.takeAll()) this.reject(w, error);
      this.cancelTimer();
      return;
    }
    if (this.queue.size === 0) {
      this.cancelTimer();
      return;
    }
    if (this.pausedUntil > now) {
      if (this.pausedUntil - now > this.maxWaitMs) {
        for (const w of this.takeAll()) this.rejectQuota(w, 'pause', this.pausedUntil, now);
        this.cancelTimer();
      } else {
        this.schedule(this.pausedUntil);
      }
      return;
    }
    if (this.wasPaused) {
      this.wasPaused = false;
      this.emit({ type: 'resumed' });
    }
    if (this.session) {
      this.drainShared(now, this.session);
      return;
    }
    this.drainLocal(now);
  }

  /**
   * Drain with the memory store. Ready groups are looked at in global order; a group whose head
   * must wait is parked on the bucket that holds it (its lot), and looked at again only when
   * that bucket may have room (its time came, or a response or release changed it) or its
   * head's wait with no known end runs out. Each admission costs O(log groups).
   */
  private drainLocal(now: number): void {
    const queue = this.queue;
    for (let lot = queue.dueLot(now); lot; lot = queue.dueLot(now)) queue.wake(lot);
    while (queue.wakeDue(now));
    const grant: Array<[Waiter, Permit]> = [];
    let next = Infinity;
    for (let g = queue.nextReady(); g; g = queue.nextReady()) {
      const node = g.head;
      if (!node) break;
      const w = node.value;
      const entry = { node, group: g.key };
      // A wait with no known end (a response that never comes, maxConcurrent) still ends:
      // `maxWaitMs` after the request was queued, with QuotaExhaustedError.
      const deadline = this.epoch + w.queuedAt + this.maxWaitMs;
      if (this.inFlight >= this.opts.maxConcurrent) {
        if (now < deadline) {
          next = Math.min(next, deadline);
          break;
        }
        queue.remove(entry);
        this.rejectQuota(w, 'concurrency', Infinity, now);
        continue;
      }
      const v = this.verdict(w, now);
      if (v.go) {
        queue.remove(entry);
        grant.push([w, this.admit(w, now)]);
        queue.settled(g);
        continue;
      }
      const bucket = v.bucket;
      // Quota buckets too: a daily budget that resets, or a rolling day whose oldest call ages
      // out, within maxWaitMs is waited for like any window.
      if ((v.at !== undefined && v.at - now > this.maxWaitMs) || (v.at === undefined && now >= deadline)) {
        queue.remove(entry);
        this.rejectQuota(w, bucket.name, v.at ?? Infinity, now);
        queue.settled(g);
        continue;
      }
      const lot = this.lotOf(bucket);
      // Past its deadline, a head waiting on a known time still goes then (as before parking).
      queue.park(g, lot, now < deadline ? deadline : Infinity);
      if (v.at !== undefined) {
        queue.wakeLotAt(lot, v.at);
        if (!this.emptyNotified.has(bucket) && bucket.remaining === 0) {
          this.emptyNotified.add(bucket);
          this.emit({ type: 'paused', until: v.at, reason: 'bucket-empty', bucket: bucket.name });
        }
      }
    }
    next = Math.min(next, queue.nextWake());
    if (queue.size === 0 || next === Infinity) this.cancelTimer();
    else this.schedule(next);
    this.touch();
    for (const [w, permit] of grant) this.grant(w, permit);
  }

  /** The lot of requests parked on `b` (made on first use). */
  private lotOf(b: Bucket): Lot<Waiter, BucketGroup> {
    let lot = this.lots.get(b);
    if (!lot) {
      lot = this.queue.lot();
      this.lots.set(b, lot);
    }
    return lot;
  }

  /**
   * `b` changed (a response, a release, a 429 that named it): the groups parked on it are
   * woken if it has room now, or when it will.
   */
  private recheck(b: Bucket, now: number): void {
    const lot = this.lots.get(b);
    if (!lot || lot.size === 0) return;
    b.refill(now, this.opts.resetGuardMs);
    const at = b.availableAt(now, this.opts.resetGuardMs, this.opts.coldStartConcurrency);
    // Undefined: only a response can tell; the parked heads' deadlines still end their wait.
    if (at === undefined) return;
    if (at <= now) this.queue.wake(lot);
    else this.queue.wakeLotAt(lot, at);
  }

  /**
   * Drain with a shared store: the store decides admission atomically across processes. The
   * head request's group (requests needing the same buckets) asks for a batch of admissions;
   * at most one store call is in flight; its answer admits what was granted, in queue order,
   * or sets the timer for the wait the store reported.
   */
  private drainShared(now: number, session: StoreSession): void {
    if (this.storeBusy) return; // the answer drains again
    if (this.storeDirty) {
      this.storeDirty = false;
      this.groupWait.clear();
    }
    let head: Waiter | undefined;
    let group = '';
    let next = Infinity;
    this.queue.visit((w, entry) => {
      const deadline = this.epoch + w.queuedAt + this.maxWaitMs;
      if (now >= deadline) {
        this.queue.remove(entry);
        this.rejectQuota(w, w.buckets[0]?.name ?? 'shared', Infinity, now);
        return 'removed';
      }
      next = Math.min(next, deadline);
      const until = this.groupWait.get(entry.group) ?? 0;
      if (until > now) {
        next = Math.min(next, until);
        return 'skip-group';
      }
      head = w;
      group = entry.group;
      return 'stop';
    });
    const room = this.opts.maxConcurrent - this.inFlight;
    if (!head || room <= 0) {
      if (this.queue.size === 0) this.groupWait.clear();
      if (this.queue.size === 0 || next === Infinity) this.cancelTimer();
      else this.schedule(next);
      return;
    }
    const buckets = head.buckets;
    const count = Math.min(SHARED_BATCH, room, this.queue.head(group, SHARED_BATCH).length);
    this.storeBusy = true;
    session
      .acquire(
        buckets.map((b) => this.specOf(b)),
        count,
        { coldStartConcurrency: this.opts.coldStartConcurrency, resetGuardMs: this.opts.resetGuardMs },
      )
      .then(
        (grant) => this.onGrant(session, buckets, group, grant),
        () => this.onGrant(session, buckets, group, undefined),
      );
  }

  private onGrant(
    session: StoreSession,
    buckets: readonly Bucket[],
    group: string,
    grant: StoreGrant | undefined,
  ): void {
    this.storeBusy = false;
    const now = this.now();
    if (!grant) {
      // A store must not fail its promise; if one does, ask again shortly.
      this.groupWait.set(group, now + SHARED_POLL_MS);
      this.drain();
      this.flushState();
      return;
    }
    if (grant.blocked) {
      // Another process met the provider's block: nothing goes; what waits fails with BlockedError.
      for (const lease of grant.leases)
        session.release(
          lease,
          buckets.map((b) => this.specOf(b)),
        );
      this.adoptBlock(grant.blocked);
      return;
    }
    const index = new Map<string, number>();
    const cap = this.opts.maxServerWaitMs;
    for (const state of grant.buckets) {
      const sane = state.resetInMs === undefined || state.resetInMs <= cap ? state : { ...state, resetInMs: undefined };
      this.buckets.get(state.name)?.adopt(sane, now);
      index.set(state.name, state.admitted);
    }
    if (grant.pause && grant.pause.ms > 0 && grant.pause.ms <= cap) {
      const reason = (['retry-after', 'reset', 'body', 'backoff'] as const).find((r) => r === grant.pause?.reason);
      this.setPause(now + grant.pause.ms, reason ?? 'manual', null, false);
    } else if (grant.pause && grant.pause.ms > cap) {
      // A pause in the store past the cap (written by an earlier version) is garbage: lifted for
      // every process, as the store grants nothing while it holds; asked again shortly.
      session.resume?.({ buckets: false });
      this.groupWait.set(group, now + SHARED_POLL_MS);
    }
    const granted: Array<[Waiter, Permit]> = [];
    const leases = [...grant.leases];
    if (leases.length > 0) {
      this.groupWait.delete(group);
      for (const { value: w, entry } of this.queue.head(group, leases.length)) {
        const lease = leases.shift();
        if (lease === undefined) break;
        this.queue.remove(entry);
        const mine = new Map<string, number>();
        for (const [name, i] of index) mine.set(name, i + granted.length);
        granted.push([w, this.admit(w, now, { lease, index: mine })]);
      }
      // Granted to requests cancelled meanwhile: no longer in flight (the units stay spent).
      for (const lease of leases)
        session.release(
          lease,
          buckets.map((b) => this.specOf(b)),
        );
    } else if (!grant.pause) {
      const bucket = grant.blockedBy === undefined ? undefined : this.buckets.get(grant.blockedBy);
      if (grant.waitMs === undefined) {
        this.groupWait.set(group, now + SHARED_POLL_MS);
      } else {
        const at = now + grant.waitMs;
        if (grant.waitMs > this.maxWaitMs) {
          for (const { value: w, entry } of this.queue.head(group, Infinity)) {
            this.queue.remove(entry);
            this.rejectQuota(w, bucket?.name ?? grant.blockedBy ?? 'shared', at, now);
          }
        } else {
          this.groupWait.set(group, at);
          if (bucket && !this.emptyNotified.has(bucket)) {
            this.emptyNotified.add(bucket);
            this.emit({ type: 'paused', until: at, reason: 'bucket-empty', bucket: bucket.name });
          }
        }
      }
    }
    for (const [w] of granted) for (const b of w.buckets) this.emptyNotified.delete(b);
    this.touch();
    for (const [w, permit] of granted) this.grant(w, permit);
    this.drain();
    this.flushState();
  }

  private specOf(b: Bucket): StoreBucketSpec {
    let spec = this.specs.get(b);
    if (!spec) {
      const hinted = this.hints.get(b.name);
      spec = {
        name: b.name,
        limit: hinted?.limit,
        windowMs: hinted?.windowMs,
        quota: b.quota,
        pacing: b.pacing,
        ...(b.rolling ? { rolling: true } : {}),
      };
      this.specs.set(b, spec);
    }
    return spec;
  }

  private specsOf(names: readonly string[]): StoreBucketSpec[] {
    const out: StoreBucketSpec[] = [];
    for (const name of names) {
      const b = this.buckets.get(name);
      if (b) out.push(this.specOf(b));
    }
    return out;
  }

  /** Empties the queue, detaching every waiter before any handler runs (handlers may queue more). */
  private takeAll(): Waiter[] {
    return this.queue.drain();
  }

  private admit(w: Waiter, now: number, shared?: { lease: string; index: ReadonlyMap<string, number> }): Permit {
    // Read now: a waiter may be queued again (a retry) while this permit is still held.
    const { info, buckets } = w;
    const summary = this.summaryOf(w);
    const taken = buckets.map((b) => [b, b.take(now)] as const);
    for (const b of buckets) this.emptyNotified.delete(b);
    this.inFlight++;
    this.totals.sent++;
    this.emit({
      type: 'admitted',
      request: summary,
      waitedMs: now - (this.epoch + w.queuedAt),
      buckets: buckets.map((b) => b.name),
    });
    let observed = false;
    let released = false;
    // The lease: a permit never given back (a request that never settles) would hold its slot
    // (a cold start's only one, a `maxConcurrent` one) forever.
    const leaseMs = this.opts.permitTimeoutMs;
    const lease =
      leaseMs > 0 && leaseMs < Infinity
        ? backgroundTimer(
            this.scheduler,
            () => {
              if (released) return;
              this.emit({ type: 'permit-expired', request: summary, heldMs: this.now() - now });
              permit.release();
            },
            Math.min(MAX_TIMER_MS, leaseMs),
          )
        : undefined;
    const permit: Permit = {
      request: summary,
      observe: (response, raw) => {
        if (observed) return { outcome: 'ok', buckets: [] };
        observed = true;
        if (typeof raw === 'object' && raw !== null) this.seen.add(raw);
        const out: StoreReading[] = [];
        const reading = this.read(response, info, taken, summary, now, out);
        if (this.session && shared) {
          const names = new Set([...buckets.map((b) => b.name), ...out.map((r) => r.name)]);
          const readings = [...names].map((name): StoreReading => ({
            ...(out.find((r) => r.name === name) ?? {
              name,
              limit: undefined,
              remaining: undefined,
              resetInMs: undefined,
              windowMs: undefined,
            }),
            index: shared.index.get(name),
          }));
          this.session.observe(shared.lease, readings, this.specsOf([...names]));
          this.storeDirty = true;
        }
        this.drain();
        this.flushState();
        return reading;
      },
      release: () => {
        if (released) return;
        released = true;
        lease?.unsubscribe();
        const at = this.now();
        for (const [b, index] of taken) {
          b.release(index, at);
          this.markIdle(b, at);
          this.recheck(b, at);
        }
        this.sweep(at);
        if (this.session && shared) {
          if (!observed) this.session.release(shared.lease, this.specsOf(buckets.map((b) => b.name)));
          this.storeDirty = true;
        }
        this.inFlight--;
        this.touch();
        // A permit given back with no answer (unsubscribed, failed, timed out) frees room for
        // the next request on the limiter's timer, right after the caller's current job: when
        // an application unsubscribes everything at once, the in-flight ones going first must
        // not hand their room to queued requests that are being unsubscribed in the same loop.
        if (observed) this.drain();
        else this.schedule(this.now());
        this.flushState();
      },
    };
    return permit;
  }

  private read(
    response: ResponseLike,
    info: RequestInfo,
    taken: ReadonlyArray<readonly [Bucket, number]> | undefined,
    summary: RequestSummary | null,
    sentAt?: number,
    out?: StoreReading[],
  ): ResponseReading {
    const now = this.now();
    let reading: ResponseReading;
    try {
      reading = this.provider.read(response, info);
    } catch {
      // A provider must not throw; if a user-defined one does, the response teaches nothing.
      reading = { outcome: response.status === 429 ? 'limited' : 'ok', buckets: [] };
    }
    this.skew.observe(response.header('date'), now, sentAt);
    this.totals.responses++;
    this.emit({ type: 'response', request: summary, status: response.status });
    const mine = taken ?? this.bucketsFor(info).map((b) => [b, undefined] as const);
    const cap = this.opts.maxServerWaitMs;
    for (const told of reading.buckets) {
      // A window longer than the cap is garbage, as a reset further away than it: not obeyed.
      const r = told.windowMs !== undefined && !(told.windowMs <= cap) ? withoutWindow(told) : told;
      const b = this.buckets.get(r.name) ?? this.discover(r.name, now);
      if (!b) continue;
      const index = mine.find(([x]) => x === b)?.[1];
      const toldAt =
        r.reset === undefined ? undefined : 'at' in r.reset ? this.skew.toLocal(r.reset.at) : now + r.reset.inMs;
      const resetAt = toldAt !== undefined && toldAt - now <= cap ? toldAt : undefined;
      out?.push({
        name: b.name,
        limit: r.limit,
        remaining: r.remaining,
        resetInMs: resetAt === undefined ? undefined : resetAt - now,
        windowMs: r.windowMs,
        index: undefined,
      });
      const from = b.apply(
        r,
        index,
        resetAt,
        now,
        taken ? sentAt : undefined,
        resetAt !== undefined && r.reset !== undefined && 'at' in r.reset,
        // A reset in whole seconds, read through a clock offset known only to its interval.
        r.reset !== undefined && 'at' in r.reset ? 1000 + Math.min(1000, this.skew.uncertaintyMs) : 1000,
      );
      if (from !== undefined && b.limit !== undefined)
        this.emit({ type: 'limit-changed', bucket: b.name, from, to: b.limit });
    }
    // A response with no reading for a bucket still ends that bucket's cold start: hints rule.
    for (const [b, index] of mine) b.confirm(index);
    if (reading.outcome === 'limited')
      this.onLimited(
        reading,
        response,
        mine.map(([b]) => b),
        summary,
        now,
        sentAt,
      );
    else if (reading.outcome === 'blocked') this.onBlocked(response.status, now);
    else {
      this.consecutive429 = 0;
      if (taken && sentAt !== undefined) for (const [b] of taken) this.inference.succeeded(b, sentAt);
    }
    // What the response changed may let parked requests go (or sets when they will).
    for (const [b] of mine) this.recheck(b, now);
    for (const r of reading.buckets) {
      const b = this.buckets.get(r.name);
      if (b) this.recheck(b, now);
    }
    this.touch();
    return reading;
  }

  private onLimited(
    reading: ResponseReading,
    response: ResponseLike,
    mine: Bucket[],
    summary: RequestSummary | null,
    now: number,
    sentAt?: number,
  ): void {
    this.totals.rateLimited++;
    // A 429 in a row is one to a request sent after the last 429 was read. Requests already on
    // their way then (a burst of concurrent streams) are answered 429 together; counting each
    // would double the backoff per stream and stall every stream for minutes.
    if (sentAt === undefined || sentAt > this.lastLimitedAt) this.consecutive429++;
    else this.consecutive429 = Math.max(1, this.consecutive429);
    this.lastLimitedAt = now;
    let at: number | undefined;
    let source: RetrySource = 'backoff';
    const told = !reading.retryAfter
      ? undefined
      : 'at' in reading.retryAfter
        ? this.skew.toLocal(reading.retryAfter.at)
        : now + reading.retryAfter.delayMs;
    // A wait past `maxServerWaitMs` is garbage, not obeyed: the backoff below applies instead.
    if (told !== undefined && told - now <= this.opts.maxServerWaitMs) {
      at = Math.max(now, told);
      source = reading.retrySource ?? 'retry-after';
    } else {
      const named = reading.limitedBy ? this.buckets.get(reading.limitedBy) : undefined;
      const candidates = named ? [named] : mine.filter((b) => b.remaining === 0);
      const resets = candidates.map((b) => b.resetAt).filter((x): x is number => x !== undefined && x > now);
      if (resets.length) {
        at = Math.max(...resets);
        source = 'reset';
      }
    }
    // Past the first 429 in a row, back off further, but never wait less than the server said.
    if (at === undefined || this.consecutive429 > 1) {
      const exp = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** (this.consecutive429 - 1));
      const backoffAt = now + exp * (0.5 + 0.5 * this.backoff.random());
      if (at === undefined || backoffAt > at) {
        at = backoffAt;
        source = 'backoff';
      }
    }
    const bucket = reading.limitedBy ? (this.buckets.get(reading.limitedBy) ?? null) : null;
    this.emit({
      type: 'rate-limited',
      request: summary,
      status: response.status,
      retryAt: at,
      source,
      bucket: bucket?.name ?? null,
    });
    if (bucket) {
      // The server said which window it throttled by: only requests on that bucket wait.
      bucket.exhaust(at);
      if (told !== undefined && told <= at && sentAt !== undefined)
        this.inference.limited(
          bucket,
          sentAt,
          told,
          reading.retryAfter && 'at' in reading.retryAfter ? reading.retryAfter.at : undefined,
        );
      this.session?.exhaust(this.specOf(bucket), at - now);
      this.emit({ type: 'paused', until: at, reason: source, bucket: bucket.name });
    } else {
      this.setPause(at, source, null, true);
    }
  }

  private setPause(until: number, reason: RetrySource | 'manual', bucket: string | null, share: boolean): void {
    // A pause already over (a Retry-After date in the past) is no pause: nothing is written.
    if (until <= this.pausedUntil || until <= this.now()) return;
    if (share) this.session?.pause(until - this.now(), reason);
    this.pausedUntil = until;
    this.pauseReason = reason;
    this.wasPaused = true;
    this.emit({ type: 'paused', until, reason, bucket });
    this.touch();
  }

  private onBlocked(status: number, now: number): void {
    this.totals.rateLimited++;
    const until = this.opts.blockCooldownMs === Infinity ? null : now + this.opts.blockCooldownMs;
    this.blocked = { status, since: now, until };
    this.session?.block?.(until === null ? null : until - now, status);
    this.emit({ type: 'blocked', status, until });
    this.touch();
  }

  /** A block another process met (told by the shared store), or its lifting (`null`). */
  private adoptBlock(block: StoreBlock | null): void {
    if (block === null) {
      this.lift(false);
      return;
    }
    if (!this.blocked) {
      const now = this.now();
      const until = block.ms === null ? null : now + block.ms;
      this.blocked = { status: block.status, since: now, until };
      this.emit({ type: 'blocked', status: block.status, until });
      this.touch();
    }
    this.drain();
    this.flushState();
  }

  private checkUnblock(now: number): void {
    if (this.blocked?.until != null && now >= this.blocked.until) this.lift(false);
  }

  private reject(w: Waiter, error: RateLimitError): void {
    this.totals.rejected++;
    this.touch();
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
  private grant(w: Waiter, permit: Permit): void {
    try {
      w.granted(permit);
    } catch (thrown) {
      permit.release();
      reportUnhandledError(thrown);
    }
  }

  private rejectQuota(w: Waiter, bucket: string, resumeAt: number, now: number): void {
    if (this.events.observed) this.emit({ type: 'quota-exhausted', request: this.summaryOf(w), bucket, resumeAt });
    this.reject(
      w,
      new QuotaExhaustedError({ ...this.ctx(), bucket, resumeAt, waitMs: resumeAt - now, maxWaitMs: this.maxWaitMs }),
    );
  }

  private schedule(at: number): void {
    if (this.timer && !this.timer.closed && this.timerAt <= at) return;
    this.cancelTimer();
    this.timerAt = at;
    this.timer = this.scheduler.schedule(
      () => {
        this.timer = undefined;
        this.timerAt = Infinity;
        this.drain();
        this.flushState();
      },
      // Node fires a timeout past 2^31 - 1 ms after 1 ms: a wait that long (a reset in year
      // 9999) is slept in pieces; the drain sets the timer again.
      Math.min(MAX_TIMER_MS, Math.max(0, at - this.now())),
    );
  }

  private cancelTimer(): void {
    this.timer?.unsubscribe();
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  /** @internal Is a timer pending? (For tests that prove nothing is left behind.) */
  get hasTimer(): boolean {
    return this.timer !== undefined && !this.timer.closed;
  }

  private touch(): void {
    this.dirty = true;
  }

  /** Pushes a fresh snapshot if anything changed and someone listens (or `force`). */
  private flushState(force = false): void {
    if (!force && (!this.dirty || !this.state.observed)) return;
    this.dirty = false;
    const now = this.now();
    this.updatedAt = now;
    this.state.next({
      provider: this.provider.name,
      key: this.key,
      buckets: [...this.buckets.values()].map((b) => {
        b.refill(now, this.opts.resetGuardMs);
        return b.snapshot();
      }),
      queued: this.queue.size,
      inFlight: this.inFlight,
      pausedUntil: this.pausedUntil > now ? this.pausedUntil : null,
      pauseReason: this.pausedUntil > now ? this.pauseReason : null,
      blocked: this.blocked ? { ...this.blocked } : null,
      totals: { ...this.totals },
      updatedAt: this.updatedAt,
    });
  }
}

/** A bucket reading without its window length (one past `maxServerWaitMs` is garbage). */
function withoutWindow(r: BucketReading): BucketReading {
  const { windowMs: _dropped, ...rest } = r;
  return rest;
}

/**
 * Reports an error no caller can receive (a handler threw) as RxJS does: to
 * `config.onUnhandledError` when set, else thrown on a later task, where the host's
 * uncaught-exception handling sees it.
 */
function reportUnhandledError(error: unknown): void {
  // A real timer, not the limiter's scheduler: a throw inside a scheduled action would cancel
  // the other actions of its flush.
  setTimeout(() => {
    const report = rxConfig.onUnhandledError;
    if (report) report(error);
    else throw error;
  });
}

/**
 * Creates the limiter of one credential at one provider. Options are checked now; a bad one
 * throws a `TypeError` naming it.
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.generic(), key: process.env.API_TOKEN ?? 'anonymous' });
 * limiter.state$.subscribe((s) => console.log(s.buckets));
 * ```
 */
export function createLimiter(options: LimiterOptions): Limiter {
  return new Limiter(options);
}
