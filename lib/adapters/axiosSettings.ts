/**
 * The per-request settings of `rx-ratelimit/axios` (`config.rateLimit`), and the augmentation that
 * adds them to axios's `AxiosRequestConfig`. Every file that reads `config.rateLimit` imports
 * this one, so the field is typed wherever it is read.
 */
/**
 * Per-request settings, given as `rateLimit` in an axios request config and read by the
 * interceptors of {@link attachRateLimiter}. All optional. Importing `rx-ratelimit/axios` adds
 * the field to axios's `AxiosRequestConfig` type. A name it does not take (`skp`), or a `skip` or
 * `shareKey` of another type, fails the request with a `TypeError` naming it; nothing is sent.
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

/** Every name {@link AxiosRequestRateLimit} takes. */
const SETTINGS: ReadonlySet<string> = new Set<keyof AxiosRequestRateLimit>([
  'priority',
  'idempotencyKey',
  'retry',
  'skip',
  'cost',
  'shareKey',
]);

/**
 * @internal What is wrong with a request's `config.rateLimit` (`where`: the API that read it), as
 * a `TypeError` naming it, or `undefined`. A misspelled name (`skp`, `sharekey: false`) is not
 * ignored: it would send the request as if the setting were not there. The values the limiter
 * reads itself (`priority`, `cost`, `retry`, `idempotencyKey`) are checked when it queues the
 * request; `skip` and `shareKey`, which decide before that, here.
 */
export function rateLimitSettingsError(where: string, settings: unknown): TypeError | undefined {
  if (settings === undefined) return undefined;
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings))
    return new TypeError(`${where}: \`config.rateLimit\` must be an object, got ${kindOf(settings)}`);
  const unknown = Object.keys(settings).filter((name) => !SETTINGS.has(name));
  if (unknown.length > 0) {
    const names = unknown.slice(0, 5).map((name) => `\`${name.slice(0, 40)}\``);
    return new TypeError(`${where}: \`config.rateLimit\` has unknown option ${names.join(', ')}`);
  }
  const { skip, shareKey } = settings as { readonly skip?: unknown; readonly shareKey?: unknown };
  if (skip !== undefined && typeof skip !== 'boolean')
    return new TypeError(`${where}: \`config.rateLimit.skip\` must be a boolean, got ${kindOf(skip)}`);
  if (shareKey !== undefined && shareKey !== false && typeof shareKey !== 'string')
    return new TypeError(`${where}: \`config.rateLimit.shareKey\` must be a string or false, got ${kindOf(shareKey)}`);
  return undefined;
}

/** @internal What `value` is, for an error's "got …": `null`, `an array` or its `typeof`. */
export function kindOf(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

declare module 'axios' {
  interface AxiosRequestConfig {
    /** rx-ratelimit settings of this request, read by `attachRateLimiter` from `rx-ratelimit/axios`. */
    rateLimit?: AxiosRequestRateLimit;
  }
}
