/**
 * A request's headers in any common container: a plain object (values strings, numbers or
 * arrays), axios `AxiosHeaders`, a WHATWG `Headers`, a `Map`, a list of `[name, value]` pairs,
 * or Angular's `HttpHeaders` (anything with `keys()` and `getAll(name)`).
 */
export type RequestHeaders =
  | Readonly<Record<string, unknown>>
  | Iterable<readonly [string, unknown]>
  | {
      /** Every header name. */
      keys(): Iterable<string>;
      /** Every value of a header, or `null` when absent. */
      getAll(name: string): readonly string[] | null;
    };

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
   * The request's headers, all of them (the adapters fill this in). Only used to tell whether
   * two GET/HEAD requests are identical for sharing and caching: two requests whose headers
   * differ in any way (`Authorization`, `Cookie`, an API-key header, `Accept`,
   * `Accept-Language`…) never share a response. Kept in memory only, never in events, state,
   * logs or errors. Without `headers` (and without `shareKey`) a request is not shared:
   * `rateLimit` cannot tell who it is sent as.
   */
  readonly headers?: RequestHeaders;
  /**
   * What makes two GET/HEAD requests "identical" for sharing and caching, in place of the method
   * and URL; the `headers` still separate them (a response is never shared across credentials).
   * With a `shareKey` and no `headers`, the caller vouches that every request with this key is
   * sent with the same credentials. `false` opts this request out of sharing and the cache.
   * @default method and full URL, with `headers`
   */
  readonly shareKey?: string | false;
  /**
   * How many units of its buckets this request takes: a number for every bucket, or one per
   * bucket name (a bucket not named takes 1). Known before the request is sent (GitHub's
   * secondary points: 5 for a write), or an estimate that the response corrects
   * (`permit.reconcile`, or a provider's `ResponseReading.cost`, as Shopify's
   * `requestedQueryCost` then `actualQueryCost`). Overrides the provider's `cost`. Each must be
   * a finite number above 0 and at most {@link MAX_COST}; a request costing more than a
   * bucket's known limit fails at once with `CostExceedsLimitError`.
   * @default 1, or what the provider's `cost` says
   */
  readonly cost?: number | Readonly<Record<string, number>>;
  /**
   * With a profile that learns costs (`Provider.learnCost`): which requests cost alike, in place
   * of the profile's key (by default the route, ids as `:id`). A request without its own `cost`
   * takes what the last requests of its key were seen to cost; the first of a key goes alone,
   * so that the drop in `remaining` is its own. Capped at 256 characters; keep it low in
   * cardinality (at most `maxKeys` are remembered).
   * @default the profile's key
   */
  readonly costKey?: string;
}

/** The largest cost a request may take of one bucket (hostile input is capped). */
export const MAX_COST = 1_000_000;

/** Is `value` a cost a request may take (finite, above 0, at most {@link MAX_COST})? */
export function isCost(value: unknown): value is number {
  return typeof value === 'number' && value > 0 && value <= MAX_COST;
}

/**
 * The units `info` takes of bucket `name`: its own `cost` first, then `fallback` (the
 * provider's), else 1. A bad value is a `TypeError` naming the field (`what`); never echoes
 * more than a short number.
 */
export function costOf(info: RequestInfo, name: string, fallback?: () => unknown): number {
  const own = info.cost;
  if (own !== undefined) {
    if (typeof own === 'number') return checkCost(own, 'cost');
    if (typeof own !== 'object' || own === null || Array.isArray(own))
      throw new TypeError(
        `rx-ratelimit: \`cost\` must be a number or an object of numbers per bucket, got ${typeof own}`,
      );
    if (Object.prototype.hasOwnProperty.call(own, name)) return checkCost(own[name], `cost["${name.slice(0, 80)}"]`);
  }
  const told = fallback?.();
  return told === undefined ? 1 : checkCost(told, 'provider cost');
}

function checkCost(value: unknown, field: string): number {
  if (isCost(value)) return value;
  const got = typeof value === 'number' ? String(value) : typeof value;
  throw new TypeError(
    `rx-ratelimit: \`${field}\` must be a finite number above 0 and at most ${MAX_COST}, got ${got.slice(0, 30)}`,
  );
}

/**
 * Checks the fields of a request the limiter reads before it queues it: a `TypeError` naming
 * the field, never its value past a type. A `NaN` priority broke the queue's order for every
 * other request; a method that is no string threw far from its cause; a `retry` of `'yes'` was
 * read as "do not retry".
 */
export function checkRequestInfo(info: RequestInfo): void {
  const { method, url, priority, retry } = info;
  if (method !== undefined && typeof method !== 'string') badField('method', 'a string', method);
  if (url !== undefined && typeof url !== 'string') badField('url', 'a string', url);
  if (priority !== undefined && (typeof priority !== 'number' || !Number.isFinite(priority)))
    badField('priority', 'a finite number', priority);
  if (retry !== undefined && typeof retry !== 'boolean') badField('retry', 'a boolean', retry);
}

function badField(field: string, what: string, value: unknown): never {
  throw new TypeError(
    `rx-ratelimit: request \`${field}\` must be ${what}, got ${typeof value === 'number' ? String(value) : typeof value}`,
  );
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Upper-cased method, GET when absent. */
export function methodOf(info: RequestInfo | undefined): string {
  return (info?.method ?? 'GET').toUpperCase();
}

/**
 * Checks a `retryNonIdempotent` option (`where`: the function it was given to) and returns it: a
 * string read from the environment (`'false'`) is not taken for true, which resent POSTs after
 * a 429. Throws a `TypeError` naming it.
 */
export function checkRetryNonIdempotent(where: string, value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') {
    const got = typeof value === 'string' ? JSON.stringify(value) : typeof value;
    throw new TypeError(`${where}: option \`retryNonIdempotent\` must be a boolean, got ${got}`);
  }
  return value;
}

/**
 * May this request be sent again after a 429? Idempotent methods (RFC 9110 §9.2.2) yes; POST
 * and PATCH only with an idempotency key; `retry` overrides both ways.
 */
export function isRetrySafe(info: RequestInfo | undefined, retryNonIdempotent = false): boolean {
  if (info?.retry !== undefined) return info.retry === true;
  if (IDEMPOTENT.has(methodOf(info))) return true;
  return retryNonIdempotent === true || (info?.idempotencyKey !== undefined && info.idempotencyKey !== '');
}

/**
 * Whether a request body can be read once only: a stream or an iterator (a WHATWG
 * `ReadableStream`, a Node `Readable` such as `fs.createReadStream(…)`, an async generator, a
 * `form-data` object). Such a request is not sent again after a 429, whatever `retry` says: its
 * body is spent, and a second send would carry nothing (or fail). Strings, buffers, `Blob`,
 * `FormData`, `URLSearchParams` and plain data are sent again whole.
 */
export function isOneShotBody(body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  if (ArrayBuffer.isView(body) || body instanceof ArrayBuffer) return false;
  if (typeof Blob !== 'undefined' && body instanceof Blob) return false;
  if (typeof FormData !== 'undefined' && body instanceof FormData) return false;
  if (typeof URLSearchParams !== 'undefined' && body instanceof URLSearchParams) return false;
  const b = body as {
    getReader?: unknown;
    pipe?: unknown;
    [Symbol.asyncIterator]?: unknown;
    [Symbol.iterator]?: unknown;
  };
  return (
    typeof b.getReader === 'function' ||
    typeof b.pipe === 'function' ||
    typeof b[Symbol.asyncIterator] === 'function' ||
    typeof b[Symbol.iterator] === 'function'
  );
}

/**
 * What identifies a request for sharing and caching, or `undefined` when it must not be
 * shared: GET/HEAD only, not `shareKey: false`, and either its headers known or a `shareKey`
 * given. Two requests are identical when these strings are equal: same method, same URL (query
 * tokens such as `api_token` included) or `shareKey`, and the same headers, every one of them
 * (names compared case-insensitively, values as sent). Holds secrets in clear:
 * `RequestSharing` keeps only a salted SHA-256 of it.
 */
export function shareIdentity(info: RequestInfo): string | undefined {
  const custom = info.shareKey;
  if (custom === false) return undefined;
  const method = methodOf(info);
  if (method !== 'GET' && method !== 'HEAD') return undefined;
  const headers = info.headers === undefined ? null : headerEntries(info.headers);
  if (custom !== undefined) return JSON.stringify([method, 'key', custom, headers]);
  if (info.url === undefined || headers === null) return undefined;
  return JSON.stringify([method, 'url', info.url, headers]);
}

/**
 * The headers as `[lower-case name, values]`, sorted by name; repeated names keep their values
 * in order. `null`, `undefined` and `false` values are left out (axios's "not sent").
 */
export function headerEntries(headers: RequestHeaders): Array<[string, string[]]> {
  const byName = new Map<string, string[]>();
  const add = (name: unknown, value: unknown): void => {
    if (typeof name !== 'string' || value === undefined || value === null || value === false) return;
    if (typeof value === 'function') return;
    const key = name.toLowerCase();
    const values = byName.get(key) ?? [];
    if (Array.isArray(value)) for (const v of value as unknown[]) values.push(String(v));
    else values.push(String(value));
    byName.set(key, values);
  };
  const h = headers as Partial<{ keys: unknown; getAll: unknown; [Symbol.iterator]: unknown }>;
  if (typeof h.getAll === 'function' && typeof h.keys === 'function') {
    // Angular's HttpHeaders (its `keys()` are the names, `getAll` their values).
    const angular = headers as { keys(): Iterable<string>; getAll(name: string): readonly string[] | null };
    for (const name of angular.keys()) add(name, angular.getAll(name) ?? []);
  } else if (headers instanceof Map || typeof h[Symbol.iterator] === 'function') {
    // Headers, Map, AxiosHeaders (iterable too) and lists of pairs.
    for (const pair of headers as Iterable<unknown>) {
      if (Array.isArray(pair)) add(pair[0], pair[1]);
    }
  } else {
    for (const [name, value] of Object.entries(headers)) add(name, value);
  }
  return [...byName].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
