/** What the limiter needs to know about one request. Every field is optional. */
export interface RequestInfo {
  /** HTTP method; decides idempotency and, for some providers, which buckets count. @default 'GET' */
  readonly method?: string;
  /** URL or path; providers use it for per-endpoint buckets. Query strings are kept. */
  readonly url?: string;
  /** Higher goes first among waiting requests; equal priorities keep their order. @default 0 */
  readonly priority?: number;
  /**
   * An idempotency key the request carries (e.g. an `Idempotency-Key` header). With one, a 429
   * on a POST or PATCH is retried, since the server will not apply it twice.
   */
  readonly idempotencyKey?: string;
  /** Force (`true`) or forbid (`false`) retrying this request after a 429, whatever its method. */
  readonly retry?: boolean;
  /**
   * Key that makes two GET/HEAD requests "identical" for sharing and caching; `false` opts this
   * request out of both. @default method and full URL
   */
  readonly shareKey?: string | false;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Upper-cased method, GET when absent. */
export function methodOf(info: RequestInfo | undefined): string {
  return (info?.method ?? 'GET').toUpperCase();
}

/**
 * May this request be sent again after a 429? Idempotent methods (RFC 9110 §9.2.2) yes; POST
 * and PATCH only with an idempotency key; `retry` overrides both ways.
 */
export function isRetrySafe(info: RequestInfo | undefined, retryNonIdempotent = false): boolean {
  if (info?.retry !== undefined) return info.retry;
  if (IDEMPOTENT.has(methodOf(info))) return true;
  return retryNonIdempotent || (info?.idempotencyKey !== undefined && info.idempotencyKey !== '');
}

/** The sharing/caching key of a request, or `undefined` when it must not be shared. */
export function shareKeyOf(info: RequestInfo): string | undefined {
  if (info.shareKey === false) return undefined;
  const method = methodOf(info);
  if (method !== 'GET' && method !== 'HEAD') return undefined;
  if (info.shareKey !== undefined) return info.shareKey;
  return info.url === undefined ? undefined : `${method} ${info.url}`;
}
