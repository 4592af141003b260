/**
 * One subscription to a paced request (pacedRequest.ts), through every attempt: the daily-quota
 * guard, the limiter's waiter while queued, the request, the retry loop, and the outcome to
 * every subscriber of a shared request. Internal to the library.
 */
import type { Observable, Subscriber, Subscription, TeardownLogic } from 'rxjs';
import type { RateLimitError } from '../core/errors.js';
import { Waiter, type Limiter, type Permit } from '../core/limiter.js';
import type { ResponseReading } from '../core/provider.js';
import type { RequestInfo } from '../core/request.js';
import type { ResponseExtractor } from '../core/response.js';
import { discardBody, withRetryCost } from '../core/resend.js';
import { copyOf, copyOfError } from '../core/sharing.js';
import {
  extractorOf,
  RetryableAnswer,
  retryableResponse,
  maxRetriesOf,
  observeUnseen,
  readAnswer,
  responseIn,
  reserveFor,
  retryDecision,
} from './policies.js';
import type { RateLimitConfig } from './config.js';

/** Checks the daily quota first (`dailyQuotaGuard`). */
export const GUARD = 1;
/** Reads 429s the limiter has not seen, retries none (`retryOn429` on a request unsafe to repeat). */
export const NOTE = 2;
/** Retries 429s (`retryOn429`). */
export const RETRY = 4;
/** Shares the request with identical ones in flight, and caches it (`rateLimit` on a GET with a key). */
export const SHARE = 8;

/** The request a {@link PacedSubscription} runs (a `PacedRequest`). */
export interface PacedOwner<T> {
  readonly limiter: Limiter;
  readonly info: RequestInfo;
  readonly config: RateLimitConfig;
  /** The request. */
  readonly request: Observable<T>;
  /** Which layers run: {@link GUARD}, {@link NOTE}, {@link RETRY}, {@link SHARE}. */
  readonly mode: number;
  /** The share key (`RequestSharing.keyOf`), with {@link SHARE}. */
  readonly key: string | undefined;
  /** The key of the request in flight it may join (the share key and all that decides how it ends). */
  readonly joinKey: string | undefined;
}

/** Subscribers of a shared request, made when a second one joins. */
class Hub<T> {
  /** A request started for those who joined after this one ended (as `share()` reconnects). */
  again: PacedSubscription<T> | undefined = undefined;
  /** The request each joiner made itself, to send it on its own when the answer is not to share. */
  readonly owners = new Map<Subscriber<T>, PacedOwner<T>>();

  constructor(
    /** The first subscriber (the one the attempt was made for). */
    readonly first: Subscriber<T>,
    readonly subscribers: Array<Subscriber<T>>,
  ) {}
}

const RUNNING = 0;
/** Completed or failed: the outcome is being, or has been, delivered. */
const ENDED = 1;
/** Nothing left to cancel. */
const CLOSED = 2;
/** `flags`: the low two bits are the state, the rest count the attempts that went to the retry rules. */
const STATE = 3;
const ONE_ATTEMPT = 4;

/**
 * One subscription to a paced request, through every attempt (retries included):
 * the limiter's waiter while queued, then the holder of the permit and of the request's
 * subscription, then (after a 429) the holder of the timer until the next attempt.
 */
export class PacedSubscription<T> extends Waiter {
  // Fields are few on purpose: this object is what a waiting request costs (see the bench).
  private permit: Permit | undefined = undefined;
  /**
   * The request's subscription while an attempt is in flight, or the timer before the next
   * attempt after a retryable error: never both at once.
   */
  private inner: Subscription | undefined = undefined;
  /** The state (`RUNNING`, `ENDED`, `CLOSED`) plus `ONE_ATTEMPT` per error that went to the retry rules. */
  private flags = RUNNING;
  /** The subscriber, or once a second one joins a shared request, the {@link Hub} of all of them. */
  private target: Subscriber<T> | Hub<T>;
  /** The request as it is sent again, when a rate limit told its cost (`ResponseReading.retryCost`). */
  private retryInfo: RequestInfo | undefined = undefined;

  constructor(
    private readonly owner: PacedOwner<T>,
    /** The first subscriber (the only one unless the request is shared). */
    subscriber: Subscriber<T>,
  ) {
    super();
    this.target = subscriber;
  }

  get info(): RequestInfo {
    return this.retryInfo ?? this.owner.info;
  }

  private get state(): number {
    return this.flags & STATE;
  }

  private set state(state: number) {
    this.flags = (this.flags & ~STATE) | state;
  }

  /** Errors so far that went to the retry rules (`retry`'s count). */
  private get attempts(): number {
    return this.flags >>> 2;
  }

  private get hub(): Hub<T> | undefined {
    return this.target instanceof Hub ? this.target : undefined;
  }

  /** The first subscriber. */
  private get subscriber(): Subscriber<T> {
    return this.target instanceof Hub ? this.target.first : this.target;
  }

  /** The hub of this request's subscribers, made when a second one joins. */
  private hubOf(): Hub<T> {
    const target = this.target;
    if (target instanceof Hub) return target;
    const hub = new Hub(target, this.state === RUNNING ? [target] : []);
    this.target = hub;
    return hub;
  }

  /** Starts it; returns the first subscriber's teardown. */
  start(): TeardownLogic {
    const { limiter, info, config, mode } = this.owner;
    if (mode & GUARD) {
      let error;
      try {
        error = limiter.checkQuota(info, reserveFor(info, config));
      } catch (e) {
        error = e;
      }
      if (error) {
        this.fail(error);
        return this;
      }
    }
    this.enqueue();
    return this;
  }

  /**
   * Queues this request on the limiter. What queueing throws (a provider's hook, a bad cost)
   * ends the request with it, as any failure does: it must not be left tracked for identical
   * GETs to join, nor escape a retry's timer, where no one could receive it.
   */
  private enqueue(): void {
    try {
      this.owner.limiter.enqueue(this);
    } catch (e) {
      this.fail(e);
    }
  }

  /**
   * A subscriber joins this shared request (`owner`: the request it made, alike by its join
   * key); returns its teardown.
   */
  join(subscriber: Subscriber<T>, owner: PacedOwner<T>): TeardownLogic {
    if (this.state !== RUNNING) {
      // Ended (its outcome is being handed out): identical requests joining now start it again,
      // together, as the first of them made it: its own observable (its callbacks, its abort
      // signal), not the ended one's. Nothing is saved by the first.
      const hub = this.hubOf();
      const again = hub.again;
      if (again) return again.join(subscriber, owner);
      const fresh = new PacedSubscription(owner, subscriber);
      hub.again = fresh;
      return fresh.start();
    }
    owner.limiter.noteSaved(owner.info, 'in-flight');
    const hub = this.hubOf();
    hub.subscribers.push(subscriber);
    hub.owners.set(subscriber, owner);
    return () => this.leave(subscriber);
  }

  /** The first subscriber's teardown. */
  unsubscribe(): void {
    if (this.owner.mode & SHARE) this.leave(this.subscriber);
    else this.close();
  }

  cancel(): void {
    this.owner.limiter.cancel(this);
  }

  granted(permit: Permit): void {
    // Unsubscribed while the grant was on its way (same drain): send nothing.
    if (this.state !== RUNNING) {
      permit.release();
      return;
    }
    this.permit = permit;
    const inner = this.owner.request.subscribe({
      next: (value) => this.onValue(permit, value),
      error: (error: unknown) => this.onError(permit, error),
      complete: () => {
        permit.release();
        if (this.permit === permit) this.end(true, undefined);
      },
    });
    // The attempt may be over already (the request answered synchronously).
    if (this.permit === permit) this.inner = inner;
    else inner.unsubscribe();
  }

  rejected(error: RateLimitError): void {
    if (this.state === RUNNING) this.afterThrottle(error);
  }

  // ---- throttleByHeaders: the request's values and error ------------------------------------

  private onValue(permit: Permit, value: T): void {
    const { limiter, config, mode } = this.owner;
    const info = this.info;
    const reading = readAnswer(extractorOf(limiter, config), permit, value);
    // A value after this attempt ended (a retry is on its way, or it is over) goes nowhere.
    if (this.permit !== permit) return;
    if (reading?.outcome === 'blocked') {
      permit.release();
      this.afterThrottle(limiter.blockedError(value));
      return;
    }
    if (mode & (RETRY | NOTE)) {
      let res;
      try {
        res = retryableResponse(limiter, info, config, value, (mode & RETRY) !== 0, reading);
        if (!res && mode & NOTE) observeUnseen(limiter, info, config, value);
      } catch (e) {
        if (mode & RETRY) this.retry(e);
        else this.fail(e);
        return;
      }
      if (res) {
        this.costAgain(reading);
        this.retry(new RetryableAnswer(value, res));
        return;
      }
    }
    this.emit(value);
  }

  private onError(permit: Permit, error: unknown): void {
    const { limiter, config } = this.owner;
    const reading = readAnswer(extractorOf(limiter, config), permit, error);
    permit.release();
    if (this.permit !== permit) return;
    if (reading?.outcome !== 'blocked') this.costAgain(reading);
    this.afterThrottle(reading?.outcome === 'blocked' ? limiter.blockedError(error) : error);
  }

  /** A rate limit told what the request costs: it is sent again with that cost. */
  private costAgain(reading: ResponseReading | undefined): void {
    if (reading?.retryCost === undefined) return;
    const { limiter } = this.owner;
    const info = this.info;
    this.retryInfo = withRetryCost(info, reading, () => limiter.provider.buckets(info));
  }

  // ---- retryOn429 -----------------------------------------------------------------------------

  /** An error out of the throttle (the request's, or the limiter's refusal). */
  private afterThrottle(error: unknown): void {
    const { limiter, config, mode } = this.owner;
    const info = this.info;
    if (mode & RETRY) {
      this.retry(error);
      return;
    }
    if (mode & NOTE) {
      try {
        observeUnseen(limiter, info, config, error);
        // Not safe to repeat, but the provider says the server did not act on it.
        if (retryableResponse(limiter, info, config, error, false)) {
          this.retry(error);
          return;
        }
      } catch (e) {
        this.fail(e);
        return;
      }
    }
    this.fail(error);
  }

  private retry(error: unknown): void {
    const { limiter, config } = this.owner;
    const info = this.info;
    // This attempt is over: detached now, unsubscribed and released once the next is planned
    // (as `retry` does), so that a timer that fires at once starts the next one cleanly.
    const { inner, permit } = this;
    this.inner = this.permit = undefined;
    this.flags += ONE_ATTEMPT;
    try {
      const safe = (this.owner.mode & RETRY) !== 0;
      const next = retryDecision(limiter, info, config, maxRetriesOf(config), error, this.attempts, safe);
      if ('ms' in next) {
        // The answer given up: its streamed body would hold its connection (discardBody).
        discardBody(error instanceof RetryableAnswer ? error.value : error);
        // The timer is kept in `inner` (no attempt is in flight until it fires). A scheduler
        // that runs it at once (before `schedule` returns) must not have it stored afterwards.
        let fired = false;
        let timer: Subscription | undefined = undefined;
        timer = limiter.scheduler.schedule(() => {
          fired = true;
          if (timer !== undefined && this.inner === timer) this.inner = undefined;
          if (this.state === RUNNING) this.enqueue();
        }, next.ms);
        if (!fired) this.inner = timer;
      } else {
        this.fail(next.fail);
      }
    } catch (e) {
      this.fail(e);
    }
    endBoth(inner, permit);
  }

  // ---- the outcome, to every subscriber -----------------------------------------------------

  private fail(error: unknown): void {
    this.end(false, error);
  }

  private emit(value: T): void {
    const { limiter, config, mode, info, key } = this.owner;
    if (!(mode & SHARE) || key === undefined) {
      this.subscriber.next(value);
      return;
    }
    const sharing = limiter.sharing;
    const extract = extractorOf(limiter, config);
    const res = responseIn(extract, value);
    let setsCookie = false;
    try {
      setsCookie = res?.header('set-cookie') !== undefined;
      // The cache keeps a copy of its own, made before any subscriber has the value.
      if (sharing.caching && res !== undefined && res.status >= 200 && res.status < 300)
        sharing.store(key, value, limiter.now(), res, info.headers !== undefined, limiter.scheduler);
    } catch (e) {
      if (sharing.caching) {
        this.fail(e);
        return;
      }
    }
    // The answer is out: an identical request made from now on (from a subscriber's handler, or
    // before the request observable completes) would join only to get the completion, without
    // it. It is sent anew (or served from the cache) instead. The answer is any value read as a
    // response, or any other but one the extractor calls an event before it (Angular's `Sent`
    // and progress events: a request joined after them still gets its response).
    if (sharing.dedupe && (res !== undefined || !beforeAnswer(extract, value)))
      sharing.untrack(this.owner.joinKey ?? key, this);
    const hub = this.hub;
    if (!hub) {
      this.subscriber.next(value);
      return;
    }
    if (setsCookie) {
      this.keepAlone(hub, value);
      return;
    }
    // Each subscriber its own copy, the last the value itself; all made before any is handed
    // out (a fetch `Response` cannot be cloned once read). A value that cannot be copied is
    // handed to all as it is.
    const targets = hub.subscribers.filter((s) => !s.closed);
    const values = targets.map((_, i) => (i === targets.length - 1 ? value : (copyOf(value) ?? value)));
    targets.forEach((s, i) => {
      if (!s.closed) s.next(values[i] as T);
    });
  }

  /**
   * An answer that sets a cookie (a session, a token the server gave this one request) goes to
   * one subscriber only, the first still there; each other one has its request sent on its own,
   * as if it had never joined.
   */
  private keepAlone(hub: Hub<T>, value: T): void {
    this.sendOthersAlone(hub)?.next(value);
  }

  /**
   * Leaves in `hub` only its first subscriber still there, which it returns; each other one has
   * its request sent on its own, as if it had never joined.
   */
  private sendOthersAlone(hub: Hub<T>): Subscriber<T> | undefined {
    const live = hub.subscribers.filter((s) => !s.closed);
    const own = live.includes(hub.first) ? hub.first : live[0];
    hub.subscribers.splice(0, hub.subscribers.length, ...(own ? [own] : []));
    for (const s of live) {
      if (s === own) continue;
      const owner = hub.owners.get(s) ?? this.owner;
      hub.owners.delete(s);
      const alone = new PacedSubscription<T>(
        {
          limiter: owner.limiter,
          info: owner.info,
          config: owner.config,
          request: owner.request,
          mode: owner.mode & ~SHARE,
          key: undefined,
          joinKey: undefined,
        },
        s,
      );
      // Unsubscribing `s` now cancels its own request (its teardown here finds it gone).
      s.add(alone);
      alone.start();
    }
    return own;
  }

  /** Does the response in this error set a cookie? (Then it is not handed to the others.) */
  private setsCookie(error: unknown): boolean {
    try {
      return responseIn(extractorOf(this.owner.limiter, this.owner.config), error)?.header('set-cookie') !== undefined;
    } catch {
      return false;
    }
  }

  /**
   * Completes (`ok`) or fails every subscriber, then lets go of everything. A shared request's
   * error goes as it is to the first subscriber (the one it was sent for; else the first still
   * there) and as a copy of its own to each other one (see {@link copyOfError}), all made before
   * any is handed out: a caller that changes its error (axios-retry marks its `config`, an app
   * annotates it) changes no other caller's. An error whose response sets a cookie goes to the
   * first only, as such an answer does (`keepAlone`): each other one is sent on its own.
   */
  private end(ok: boolean, error: unknown): void {
    if (this.state !== RUNNING) return;
    const hub = this.hub;
    if (!ok && hub && hub.subscribers.length > 1 && this.setsCookie(error)) this.sendOthersAlone(hub);
    this.state = ENDED;
    const targets = hub ? [...hub.subscribers] : [this.subscriber];
    const own = hub && targets.includes(hub.first) ? hub.first : targets[0];
    const errors = ok ? [] : targets.map((s) => (s === own ? error : copyOfError(error)));
    targets.forEach((s, i) => {
      if (ok) s.complete();
      else s.error(errors[i]);
    });
    this.close();
  }

  private leave(subscriber: Subscriber<T>): void {
    if (this.state !== RUNNING) return;
    const hub = this.hub;
    if (hub) {
      const i = hub.subscribers.indexOf(subscriber);
      if (i >= 0) hub.subscribers.splice(i, 1);
      hub.owners.delete(subscriber);
      if (hub.subscribers.length > 0) return;
    }
    this.close();
  }

  /** The current attempt is over (retry's resubscription, or the end): cancel, unsubscribe, release. */
  private endAttempt(): void {
    this.owner.limiter.cancel(this);
    const { inner, permit } = this;
    this.inner = this.permit = undefined;
    endBoth(inner, permit);
  }

  private close(): void {
    if (this.state === CLOSED) return;
    this.state = CLOSED;
    try {
      // (`inner` is the request's subscription or the retry timer: endAttempt ends either.)
      this.endAttempt();
    } finally {
      const { mode, key, limiter } = this.owner;
      if (mode & SHARE && key !== undefined && limiter.sharing.dedupe)
        limiter.sharing.untrack(this.owner.joinKey ?? key, this);
    }
  }
}

/**
 * Ends an attempt: its subscription (the request's, or the retry timer), then its permit, which
 * is released even when the request's teardown throws (RxJS runs every teardown, then throws
 * them together): held, the slot stayed taken until the lease ran out, minutes later.
 */
function endBoth(inner: Subscription | undefined, permit: Permit | undefined): void {
  try {
    inner?.unsubscribe();
  } finally {
    permit?.release();
  }
}

/**
 * Is `value` an event before the request's answer, as `extract` tells (`beforeAnswer`)? An
 * extractor that does not tell, or throws, takes every value for the answer.
 */
function beforeAnswer(extract: ResponseExtractor, value: unknown): boolean {
  try {
    return extract.beforeAnswer?.(value) === true;
  } catch {
    return false;
  }
}
