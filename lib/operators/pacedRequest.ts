/**
 * Internal to the library. `throttleByHeaders` and `rateLimit` as one `Observable` each, whose
 * single subscriber object (`PacedSubscription`, pacedSubscription.ts) runs the daily-quota
 * guard, the wait for a permit, the request and the retry loop, instead of a chain of composed
 * operators (each an `Observable`, a `Subscriber` and closures per request). The subscriber is
 * also the limiter's queue entry (a `Waiter`), so a waiting request costs one object. The
 * decisions themselves are in `policies.ts`, shared with the composable operators; the behaviour
 * is that of `dailyQuotaGuard(retryOn429(throttleByHeaders(source)))`, and, for GETs that may be
 * shared, of `share()` around it with a copy per subscriber (built only when a second subscriber
 * joins).
 */
import { Observable, type Subscriber, type TeardownLogic } from 'rxjs';
import type { Limiter } from '../core/limiter.js';
import type { RequestInfo } from '../core/request.js';
import type { RateLimitConfig } from './config.js';
import { PacedSubscription, SHARE, type PacedOwner } from './pacedSubscription.js';

/** A request gated by the limiter: subscribing runs a `PacedSubscription`. */
export class PacedRequest<T> extends Observable<T> implements PacedOwner<T> {
  constructor(
    readonly limiter: Limiter,
    readonly info: RequestInfo,
    readonly config: RateLimitConfig,
    /** The request (not `source`: RxJS reads that name on an `Observable`). */
    readonly request: Observable<T>,
    /** Which layers run: `GUARD`, `NOTE`, `RETRY`, `SHARE` (pacedSubscription.ts). */
    readonly mode: number,
    /** The share key (`RequestSharing.keyOf`), with {@link SHARE}. */
    readonly key: string | undefined = undefined,
    /**
     * The key of the request in flight it may join: `key` and everything that decides what its
     * subscriber gets or how it ends (retries, reserve, priority, cost, extractor: `rateLimit`'s
     * `joinKeyOf`). A joiner gets the answer the first one ends with, so two that would end
     * differently (one retries a 429, the other may not) are never joined.
     */
    readonly joinKey: string | undefined = key,
  ) {
    super(subscribePaced);
  }
}

function subscribePaced(this: Observable<unknown>, subscriber: Subscriber<unknown>): TeardownLogic {
  const self = this as PacedRequest<unknown>;
  const key = self.key;
  if (!(self.mode & SHARE) || key === undefined) return new PacedSubscription(self, subscriber).start();
  const { limiter, info } = self;
  const sharing = limiter.sharing;
  const hit = sharing.caching ? sharing.cached(key, limiter.now()) : undefined;
  if (hit) {
    limiter.noteSaved(info, 'cache');
    // A copy of the cache's (`cached` makes it): this subscriber may change it.
    subscriber.next(hit.value);
    subscriber.complete();
    return undefined;
  }
  const joinKey = self.joinKey ?? key;
  const pending = sharing.dedupe ? (sharing.pending(joinKey) as PacedSubscription<unknown> | undefined) : undefined;
  // (`join` counts what it saves: a request that ended meanwhile is sent anew.)
  if (pending) return pending.join(subscriber, self);
  const attempt = new PacedSubscription(self, subscriber);
  if (sharing.dedupe) sharing.track(joinKey, attempt);
  return attempt.start();
}
