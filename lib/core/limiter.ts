/**
 * The limit state of one credential at one provider: the public facade. The work is done by
 * the engine and its parts (lib/core/engine.ts); this class checks options, keeps the public
 * API, and forwards.
 */
import type { Observable, SchedulerLike } from 'rxjs';
import { costFor, createBucket } from './buckets.js';
import { rulesOf } from './credential.js';
import { Engine } from './engine.js';
import { QuotaExhaustedError, RetryLimitError, type BlockedError } from './errors.js';
import type { LimiterEvent, RequestSummary } from './events.js';
import { showAllAs, showView } from './inspect.js';
import { keyLabel } from './keyLabel.js';
import { leakyWithSharedStore } from './leakyBucket.js';
import { parseLimiterOptions, type LimiterOptions } from './options.js';
import type { BucketSpec, Provider, ResponseReading, RetrySource } from './provider.js';
import type { EventPayload } from './publisher.js';
import type { RequestInfo } from './request.js';
import { extractResponse, type ResponseExtractor, type ResponseLike } from './response.js';
import { sha256Hex } from './sha256.js';
import { RequestSharing } from './sharing.js';
import type { LimiterSnapshot } from './state.js';
import type { LimiterStore, StoreReading } from './store.js';
import { MAX_TIMER_MS } from './timer.js';
import { HandlerWaiter, type AcquireHandlers, type Ticket, type Waiter } from './waiter.js';

export { Waiter, type AcquireHandlers, type Permit, type Ticket } from './waiter.js';

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

/**
 * What `inspect` shows of a limiter. Made here, not in the constructor: a function made there
 * holds the constructor's scope, and with it the first limiter, for as long as the prototype.
 */
const inspectLimiter = /* @__PURE__ */ showView('Limiter', (l: Limiter) => l.snapshot);

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
  /** @internal */ readonly backoff: { readonly baseMs: number; readonly maxMs: number; readonly random: () => number };
  /** @internal In-flight sharing and the GET cache, used by `rateLimit`. */
  readonly sharing: RequestSharing;
  private readonly engine: Engine;

  /** Prefer {@link createLimiter}; the options are checked here (a `TypeError` names each bad one). */
  constructor(options: LimiterOptions) {
    const { key, labelSecret, ...opts } = parseLimiterOptions(options);
    showAllAs(this, inspectLimiter);
    this.provider = opts.provider;
    this.key = opts.label ?? keyLabel(key, labelSecret);
    this.extractResponse = opts.extractResponse ?? extractResponse;
    this.maxWaitMs = opts.maxWaitMs;
    this.sharing = new RequestSharing(opts.dedupe, opts.cache);
    const probed = probeBuckets(this.provider);
    // A spec of a kind the provider does not bring (`bucketKinds`): refused now, by name.
    for (const spec of probed) createBucket(spec, this.provider);
    // A shared store that does not hold leaky buckets (a store of the user's own): refused by name.
    if (opts.store && opts.store.kind !== 'memory' && opts.store.leaky !== true) {
      const leaky = probed.find((b) => b.restorePerSecond !== undefined);
      if (leaky) throw leakyWithSharedStore(this.provider.name, leaky.name, opts.store.kind);
    }
    const session = opts.store?.open({
      key,
      provider: this.provider.name,
      // A store may report before the engine exists (while it opens): `?.` drops that.
      emit: (event) => (this.engine as Engine | undefined)?.out.emit(event),
    });
    if (session && typeof opts.store?.admission?.admit !== 'function') {
      void session.close().catch(() => {});
      throw new TypeError(
        `createLimiter: option \`store\` (${(opts.store as LimiterStore).kind.slice(0, 40)}) opened a session but has no \`admission\`; give it \`admission: sharedAdmission()\` from rx-ratelimit`,
      );
    }
    const credential = {
      // The name's length first: no provider name and key run together as another pair's.
      id: sha256Hex(`${this.provider.name.length}:${this.provider.name}\n${key}`),
      rules: rulesOf(this.provider),
      name: `${this.provider.name} (label ${this.key})`,
    };
    const engine = (this.engine = new Engine(opts, this.key, session, credential));
    this.scheduler = engine.scheduler;
    this.backoff = engine.backoff;
  }

  /** The current limit state; replays the latest snapshot to each new subscriber. */
  get state$(): Observable<LimiterSnapshot> {
    return this.engine.out.state$;
  }

  /** What the limiter does, and why. Hot: subscribe before the requests you want to see. */
  get events$(): Observable<LimiterEvent> {
    return this.engine.out.events$;
  }

  /**
   * Completes `state$` and `events$` (a NestJS shutdown: subscribers such as a UI's see the
   * end), and closes what a shared store opened for this limiter. With the memory store the
   * limiter still answers calls afterwards, without publishing: it holds nothing to close. With
   * a shared store (Redis) it takes no more requests: those waiting in its queue, and any asked
   * for later, fail with `LimiterClosedError`, nothing sent; those already sent end as
   * they would have, their answers still written to the store. Resolves once a store call in
   * flight has returned (its grants given back), so the store's client may be closed then.
   */
  close(): Promise<void> {
    this.engine.out.close();
    return this.engine.admission.close(true);
  }

  /**
   * @internal As `close()`, for a pool that evicts the limiter while idle: it goes on answering
   * a request still made through it (a retry after a pause longer than `idleMs`), without
   * publishing.
   */
  retire(): Promise<void> {
    this.engine.out.close();
    return this.engine.admission.close();
  }

  /**
   * `JSON.stringify(limiter)`, `util.inspect(limiter)`, `console.log(limiter)`: its snapshot,
   * not its internals, which hold the URLs of queued and in-flight requests (a query string may
   * carry a token, e.g. Pipedrive's `api_token`). (`util.inspect` is set in the constructor:
   * `inspect.ts`.)
   */
  toJSON(): LimiterSnapshot {
    return this.snapshot;
  }

  /** The current limit state, computed now. */
  get snapshot(): LimiterSnapshot {
    return this.engine.out.snapshot();
  }

  /**
   * Current time on the limiter's clock (epoch ms; virtual under `TestScheduler`). With the
   * default scheduler it is monotonic: the wall clock when the limiter was made plus the time
   * since, so it keeps counting evenly when the wall clock is stepped. Every time the limiter
   * shows (`pausedUntil`, `resetAt`, `resumeAt`, event `at`) is on this clock.
   */
  now(): number {
    return this.engine.now();
  }

  /**
   * Asks to send one request. `handlers.granted` is called (maybe synchronously) when every
   * bucket the request counts against has room; `handlers.rejected` when it never will in
   * time. Low level: the operators are the usual way in.
   */
  acquire(info: RequestInfo, handlers: AcquireHandlers): Ticket {
    const waiter = new HandlerWaiter(this.engine, info, handlers);
    this.engine.enqueue(waiter);
    return waiter;
  }

  /**
   * @internal Queues `w` (not queued now) for its request: `w.granted` or `w.rejected` is
   * called, maybe synchronously. `acquire` without a handlers object: the operators' own
   * subscriber is the waiter.
   */
  enqueue(w: Waiter): void {
    this.engine.enqueue(w);
  }

  /** @internal Removes a waiter from the queue, if it is still there (its ticket's `cancel`). */
  cancel(w: Waiter): void {
    this.engine.cancel(w);
  }

  /**
   * Reads the response to this request (once; later calls are ignored) and returns what the
   * provider made of it.
   */
  observe(response: ResponseLike, info: RequestInfo = {}, raw?: object): ResponseReading | undefined {
    const engine = this.engine;
    if (raw) {
      if (engine.seen.has(raw)) return undefined;
      engine.seen.set(raw, null);
    }
    const readings: StoreReading[] = [];
    const reading = engine.permits.read(response, { info, summary: null }, readings);
    if (raw) engine.seen.set(raw, reading);
    engine.admission.observed(undefined, readings, []);
    engine.settle();
    return reading;
  }

  /** Has this raw value or error already been read by the limiter? */
  hasSeen(raw: unknown): boolean {
    return typeof raw === 'object' && raw !== null && this.engine.seen.has(raw);
  }

  /**
   * What the provider made of this raw value or error (a response, an `AxiosError`…) when the
   * limiter read it; `undefined` when it has not. `retryOn429` asks it whether a 200 that
   * `throttleByHeaders` read was a rate limit (Shopify's `THROTTLED`).
   */
  readingOf(raw: unknown): ResponseReading | undefined {
    return typeof raw === 'object' && raw !== null ? (this.engine.seen.get(raw) ?? undefined) : undefined;
  }

  /**
   * When the request could next be sent: the end of a pause, or the reset of the first of its
   * buckets that is empty. `now` when it could go at once.
   */
  resumeAt(info: RequestInfo = {}): number {
    return this.resumeAtFrom(info, this.engine.now());
  }

  /** {@link resumeAt} as at `now`: one reading of the clock, so "at once" is exactly `now`. */
  private resumeAtFrom(info: RequestInfo, now: number): number {
    const engine = this.engine;
    const guard = engine.resetGuardMs;
    let at = Math.max(now, engine.pauses.pausedUntil);
    for (const b of engine.registry.bucketsFor(info, engine.provider)) {
      b.refill(now, guard, engine.tightGuard);
      const when = b.availableAt(now, guard, Infinity, 0, 1, engine.tightGuard);
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
    if (attempts > maxRetries) throw new RetryLimitError({ ...this.engine.ctx(), attempts, status }, { cause });
    // One reading of the clock: read twice, a real clock's fraction of a millisecond between
    // the two made every wait positive, and a listed 503 went again at once with no backoff.
    const now = this.now();
    const resumeAt = this.resumeAtFrom(info, now);
    let waitMs = Math.max(0, resumeAt - now);
    // A status the server did not give as a rate limit (a 503 listed in `statuses`) set no wait
    // of its own: it backs off, however soon pacing alone would let it go (a smooth bucket's
    // next slot, 50 ms away, sent three 503s again within 150 ms).
    const rateLimited = status === 429 || this.readingOf(cause)?.outcome === 'limited';
    if (waitMs === 0 || (!rateLimited && this.engine.pauses.pausedUntil <= now)) {
      const exp = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** (attempts - 1));
      waitMs = Math.max(waitMs, exp * (0.5 + 0.5 * this.backoff.random()));
    }
    if (waitMs > this.maxWaitMs) {
      throw new QuotaExhaustedError(
        { ...this.engine.ctx(), bucket: 'pause', resumeAt: now + waitMs, waitMs, maxWaitMs: this.maxWaitMs, now },
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
    // Only a number at or below 0 ends a pause: `NaN` (a `Number()` of garbage) lifted a 429's
    // pause, and a string was added to the clock and did nothing.
    if (typeof ms !== 'number' || Number.isNaN(ms))
      throw new TypeError(
        `rx-ratelimit: pause(ms) needs a number of milliseconds, got ${typeof ms === 'number' ? 'NaN' : typeof ms}`,
      );
    this.engine.pauses.pause(ms, reason);
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
    this.engine.pauses.resume();
  }

  /**
   * Lifts a block (Pipedrive's 403) before its cool-down ends: the next request is sent. With a
   * shared store, on every process.
   */
  unblock(): void {
    this.engine.pauses.lift(true);
  }

  /** @internal Emits an event on behalf of an operator. */
  emit(event: EventPayload<LimiterEvent>): void {
    this.engine.out.emit(event);
  }

  /**
   * Fails now if the request counts against a quota bucket (a daily budget) with no more than
   * `reserve` left: returns the error to raise, or `undefined` when the request may go on.
   */
  checkQuota(info: RequestInfo, reserve = 0): QuotaExhaustedError | undefined {
    const engine = this.engine;
    const now = engine.now();
    const guard = engine.resetGuardMs;
    const specs = new Map<string, BucketSpec>();
    for (const b of engine.registry.bucketsFor(info, engine.provider, specs)) {
      if (!b.quota) continue;
      b.refill(now, guard, engine.tightGuard);
      // A request of `cost` units needs that many left, beyond the reserve.
      const cost = costFor(info, engine.provider, b.name, specs.get(b.name));
      if (b.remaining === undefined || b.remaining - cost >= reserve) continue;
      const reset = b.resetAt === undefined ? Infinity : b.resetAt + guard;
      const kept = b.remaining > cost - 1; // room, but kept for requests of higher priority
      // An empty quota bucket is a bucket like any other: when its next slot frees within
      // maxWaitMs (the daily reset is minutes away, the oldest call of a rolling day ages out),
      // the request waits in the queue for it. Only a wait past maxWaitMs fails now, and not
      // while answers in flight may give room back (`awaitsAnswers`: `remaining` took units of
      // ours off a figure that may count them already); the queue fails the request once they
      // are in, if they show none.
      const resumeAt = kept ? reset : (b.availableAt(now, guard, Infinity, 0, cost, engine.tightGuard) ?? reset);
      if (!kept && (resumeAt - now <= this.maxWaitMs || b.awaitsAnswers)) continue;
      engine.out.emit({ type: 'quota-exhausted', request: engine.summarize(info), bucket: b.name, resumeAt });
      engine.out.rejected++;
      engine.out.touch();
      engine.out.flush();
      return new QuotaExhaustedError({
        ...engine.ctx(),
        bucket: b.name,
        resumeAt,
        waitMs: resumeAt - now,
        maxWaitMs: this.maxWaitMs,
        now,
        ...(kept ? { reserve } : {}),
      });
    }
    return undefined;
  }
  /** @internal Counts a request served without sending it (shared or cached). */
  noteSaved(info: RequestInfo, from: 'in-flight' | 'cache'): void {
    const engine = this.engine;
    engine.out.saved++;
    engine.out.emit({ type: 'shared', request: engine.summarize(info), from });
    engine.out.touch();
    engine.out.flush();
  }

  /** @internal The error for a request refused because the credential is blocked. */
  blockedError(cause?: unknown): BlockedError {
    return this.engine.blockedError(cause);
  }

  /**
   * @internal The `QuotaExhaustedError` of a request that waited `waitMs` for a permit, past a
   * bound of its caller's (`maxWaitMs`: an Angular server render's `serverMaxWaitMs`): `pause`
   * while a pause is in force, else `queue`, with the time `info` could go if the limiter can
   * tell it (a window spent until its reset), else none.
   */
  waitedTooLong(waitMs: number, maxWaitMs: number, info: RequestInfo = {}): QuotaExhaustedError {
    const now = this.engine.now();
    const pausedUntil = this.engine.pauses.pausedUntil;
    const at = this.resumeAtFrom(info, now);
    const resumeAt = pausedUntil > now ? pausedUntil : at > now ? at : Infinity;
    const bucket = pausedUntil > now ? 'pause' : 'queue';
    return new QuotaExhaustedError({ ...this.engine.ctx(), bucket, resumeAt, waitMs, maxWaitMs, now });
  }

  /** Is the credential blocked now? */
  get isBlocked(): boolean {
    this.engine.pauses.checkUnblock(this.engine.now());
    return this.engine.pauses.blocked !== null;
  }

  /** @internal Error context: provider and key label. */
  ctx(): { provider: string; key: string } {
    return this.engine.ctx();
  }

  /** @internal Is a timer pending? (For tests that prove nothing is left behind.) */
  get hasTimer(): boolean {
    return this.engine.timer.pending;
  }
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

/** The buckets a provider names for a plain GET and POST (none when it throws). */
function probeBuckets(provider: Provider): readonly BucketSpec[] {
  try {
    return [...provider.buckets({ method: 'GET', url: '/' }), ...provider.buckets({ method: 'POST', url: '/' })];
  } catch {
    return [];
  }
}
