import { Observable, type MonoTypeOperatorFunction, type Subscription } from 'rxjs';
import type { Limiter, Permit } from '../core/limiter.js';
import type { RequestInfo } from '../core/request.js';
import type { ResponseExtractor } from '../core/response.js';

/** Settings of {@link throttleByHeaders}. */
export interface ThrottleByHeadersConfig {
  /** Finds the response in what the request emits or throws. @default the limiter's */
  readonly extractResponse?: ResponseExtractor;
}

/**
 * Holds the subscription to a request until the limiter admits it (every bucket it counts
 * against has room, no pause, not blocked), then sends it and feeds its response headers back
 * to the limiter, so that every stream on the limiter paces by what the server reports.
 *
 * Unsubscribing while queued removes the request; nothing is sent. A response that shows the
 * credential blocked ends the request with `BlockedError` (its `cause` is the response).
 *
 * ```ts
 * import { from } from 'rxjs';
 * import axios from 'axios';
 * import { createLimiter, providers, throttleByHeaders } from 'rx-ratelimit';
 *
 * const limiter = createLimiter({ provider: providers.generic(), key: 'my-token' });
 * const user$ = from(Promise.resolve()).pipe(throttleByHeaders(limiter, { method: 'GET', url: '/users/1' }));
 * ```
 */
export function throttleByHeaders<T>(
  limiter: Limiter,
  info: RequestInfo = {},
  config: ThrottleByHeadersConfig = {},
): MonoTypeOperatorFunction<T> {
  const extract = config.extractResponse ?? limiter.extractResponse;
  return (source) =>
    new Observable<T>((subscriber) => {
      let permit: Permit | undefined;
      let inner: Subscription | undefined;
      const ticket = limiter.acquire(info, {
        granted: (p) => {
          // Unsubscribed while the grant was on its way (same drain): send nothing.
          if (subscriber.closed) {
            p.release();
            return;
          }
          permit = p;
          // Reads the response, if any. A user extractor that throws must not lose the
          // request's own outcome, nor the permit.
          const blocked = (raw: unknown): boolean => {
            try {
              const res = extract(raw);
              return res !== undefined && p.observe(res, raw).outcome === 'blocked';
            } catch {
              return false;
            }
          };
          inner = source.subscribe({
            next: (value) => {
              if (blocked(value)) {
                p.release();
                subscriber.error(limiter.blockedError(value));
                return;
              }
              subscriber.next(value);
            },
            error: (error: unknown) => {
              const isBlocked = blocked(error);
              p.release();
              subscriber.error(isBlocked ? limiter.blockedError(error) : error);
            },
            complete: () => {
              p.release();
              subscriber.complete();
            },
          });
        },
        rejected: (error) => subscriber.error(error),
      });
      return () => {
        ticket.cancel();
        inner?.unsubscribe();
        permit?.release();
      };
    });
}
