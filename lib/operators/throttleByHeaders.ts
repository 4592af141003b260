import type { MonoTypeOperatorFunction } from 'rxjs';
import type { Limiter } from '../core/limiter.js';
import type { RequestInfo } from '../core/request.js';
import { PacedRequest } from './pacedRequest.js';
import { checkOperator } from './policies.js';
import type { ThrottleByHeadersConfig } from './config.js';

export type { ThrottleByHeadersConfig } from './config.js';

/** The default settings, one object for every call (each request keeps a reference to it). */
const DEFAULTS: ThrottleByHeadersConfig = Object.freeze({});

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
  config: ThrottleByHeadersConfig = DEFAULTS,
): MonoTypeOperatorFunction<T> {
  checkOperator('throttleByHeaders', info, config);
  return (source) => new PacedRequest(limiter, info, config, source, 0);
}
