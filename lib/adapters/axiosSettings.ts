/**
 * The per-request settings of `rx-ratelimit/axios` (`config.rateLimit`), and the augmentation that
 * adds them to axios's `AxiosRequestConfig`. Every file that reads `config.rateLimit` imports
 * this one, so the field is typed wherever it is read.
 */
/**
 * Per-request settings, given as `rateLimit` in an axios request config and read by the
 * interceptors of {@link attachRateLimiter}. All optional. Importing `rx-ratelimit/axios` adds
 * the field to axios's `AxiosRequestConfig` type.
 *
 * ```ts
 * import type { AxiosInstance } from 'axios';
 * import type { AxiosRequestRateLimit } from 'rx-ratelimit/axios';
 * declare const api: AxiosInstance; // with attachRateLimiter(api, limiter)
 * declare const deal: { id: string; title: string };
 * const urgent: AxiosRequestRateLimit = { priority: 10 };
 * await api.post('/v1/deals', deal, { rateLimit: { ...urgent, idempotencyKey: deal.id } });
 * await api.get('/health', { rateLimit: { skip: true } });
 * ```
 */
export interface AxiosRequestRateLimit {
  /** Higher goes first among waiting requests. @default the interceptor's `priority`, else 0 */
  readonly priority?: number;
  /** Marks a POST or PATCH safe to retry after a 429. @default the `Idempotency-Key` request header */
  readonly idempotencyKey?: string;
  /** Force (`true`) or forbid (`false`) retrying this request after a 429, whatever its method. */
  readonly retry?: boolean;
  /** Send this request around the limiter (not gated, not read). @default false */
  readonly skip?: boolean;
  /**
   * Units of its buckets this request takes: a number, or per bucket name (see
   * `RequestInfo.cost`). @default what the provider says, else 1
   */
  readonly cost?: number | Readonly<Record<string, number>>;
  /**
   * What makes this GET "identical" to others for sharing and the cache, in place of its URL
   * (its headers still count); `false` never shares it. Read by `rateLimitedRequest` and
   * NestJS's `rateLimitedHttp` (the interceptors never share). @default the full URL;
   * `false` for `responseType: 'stream'` and for a request with `data`
   */
  readonly shareKey?: string | false;
}

declare module 'axios' {
  interface AxiosRequestConfig {
    /** rx-ratelimit settings of this request, read by `attachRateLimiter` from `rx-ratelimit/axios`. */
    rateLimit?: AxiosRequestRateLimit;
  }
}
