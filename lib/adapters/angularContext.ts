/**
 * The per-request settings of `rx-ratelimit/angular`: `HttpContextToken`s a request sets in its
 * `context` (priority, retry, cost, skip, share key), read by the interceptor.
 */
import { HttpContextToken } from '@angular/common/http';

/**
 * Priority of one request among those waiting on its limiter; higher goes first, equal
 * priorities keep their order. Unset: the interceptor's `priority` option (default 0).
 *
 * ```ts
 * import { HttpContext } from '@angular/common/http';
 * import { RATE_LIMIT_PRIORITY } from 'rx-ratelimit/angular';
 * const context = new HttpContext().set(RATE_LIMIT_PRIORITY, 10);
 * // http.get(url, { context })
 * ```
 */
export const RATE_LIMIT_PRIORITY = new HttpContextToken<number | undefined>(() => undefined);

/**
 * Force (`true`) or forbid (`false`) retrying this request after a 429, whatever its method.
 * Unset, idempotent methods (GET, HEAD, PUT, DELETE…) and requests with an `Idempotency-Key`
 * header are retried, POST and PATCH are not (unless the option `retryNonIdempotent`).
 *
 * ```ts
 * import { HttpContext } from '@angular/common/http';
 * import { RATE_LIMIT_RETRY } from 'rx-ratelimit/angular';
 * // This POST is safe to repeat: the API ignores duplicates.
 * const context = new HttpContext().set(RATE_LIMIT_RETRY, true);
 * ```
 */
export const RATE_LIMIT_RETRY = new HttpContextToken<boolean | undefined>(() => undefined);

/**
 * Units of its buckets this request takes: a number, or per bucket name (see
 * `RequestInfo.cost`). Unset: what the provider says, else 1.
 *
 * ```ts
 * import { HttpContext } from '@angular/common/http';
 * import { RATE_LIMIT_COST } from 'rx-ratelimit/angular';
 * // A GraphQL mutation: 5 of GitHub's secondary points.
 * const context = new HttpContext().set(RATE_LIMIT_COST, { 'points:graphql': 5 });
 * ```
 */
export const RATE_LIMIT_COST = new HttpContextToken<number | Readonly<Record<string, number>> | undefined>(
  () => undefined,
);

/**
 * `true` sends the request around the limiter, untouched: not queued, not counted, its
 * response not read. @default false
 *
 * ```ts
 * import { HttpContext } from '@angular/common/http';
 * import { RATE_LIMIT_SKIP } from 'rx-ratelimit/angular';
 * const context = new HttpContext().set(RATE_LIMIT_SKIP, true);
 * ```
 */
export const RATE_LIMIT_SKIP = new HttpContextToken<boolean>(() => false);

/**
 * What makes this GET/HEAD "identical" to others for in-flight sharing and the limiter's cache,
 * in place of its URL (its headers still count: requests sent as different users never
 * share); `false` never shares it. Unset: the URL with params.
 *
 * ```ts
 * import { HttpContext } from '@angular/common/http';
 * import { RATE_LIMIT_SHARE_KEY } from 'rx-ratelimit/angular';
 * // Always fetch this one afresh.
 * const context = new HttpContext().set(RATE_LIMIT_SHARE_KEY, false);
 * ```
 */
export const RATE_LIMIT_SHARE_KEY = new HttpContextToken<string | false | undefined>(() => undefined);
