/**
 * Pieces the HTTP-client adapters share: waiting for a permit with abort support, sleeping on
 * the limiter's scheduler, reading headers from any container, and decoding small bodies.
 * Internal: not a public entry point.
 */
import type { Limiter, Permit } from '../core/limiter.js';
import type { RequestHeaders, RequestInfo } from '../core/request.js';
import { responseLike } from '../core/response.js';

/**
 * The part of an abort signal the adapters use. A WHATWG `AbortSignal` and axios's
 * `GenericAbortSignal` both fit.
 */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener?: (type: 'abort', listener: () => void, options?: { once?: boolean }) => void;
  removeEventListener?: (type: 'abort', listener: () => void) => void;
}

/** Calls `onAbort` once when `signal` aborts; returns a function that stops listening. */
export function listenAbort(signal: AbortSignalLike | undefined, onAbort: () => void): () => void {
  if (!signal || typeof signal.addEventListener !== 'function') return () => undefined;
  const listener = () => onAbort();
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener?.('abort', listener);
}

/** The part of an axios `CancelToken` (deprecated by axios, still honoured by it) read here. */
interface CancelTokenLike {
  /** The `CanceledError` once cancelled. */
  readonly reason?: unknown;
  subscribe?: (listener: () => void) => void;
  unsubscribe?: (listener: () => void) => void;
}

/**
 * What cancels an axios request, as one signal: its `signal`, its `cancelToken`, or either
 * (axios honours both). A token cancelled reads as aborted with its `CanceledError` as the
 * reason. Listeners are added to, and removed from, the signal and the token themselves, so a
 * token shared by many requests keeps none of them once they end.
 */
export function axiosCancelSignal(config: {
  readonly signal?: unknown;
  readonly cancelToken?: unknown;
}): AbortSignalLike | undefined {
  const signal = config.signal as AbortSignalLike | undefined;
  const token = config.cancelToken as CancelTokenLike | undefined;
  const subscribe = token?.subscribe;
  if (typeof subscribe !== 'function') return signal;
  const stops = new Map<() => void, () => void>();
  return {
    get aborted() {
      return signal?.aborted === true || token?.reason != null;
    },
    get reason() {
      return signal?.aborted === true ? signal.reason : token?.reason;
    },
    addEventListener: (_type, listener) => {
      let stopSignal = (): void => undefined;
      const stop = () => {
        stops.delete(listener);
        stopSignal();
        token?.unsubscribe?.(once);
      };
      const once = () => {
        stop();
        listener();
      };
      stopSignal = listenAbort(signal, once);
      subscribe.call(token, once);
      stops.set(listener, stop);
    },
    removeEventListener: (_type, listener) => stops.get(listener)?.(),
  };
}

/** What a fetch-style abort rejects with: the signal's reason, or an `AbortError`. */
export function abortReason(signal: AbortSignalLike | undefined): unknown {
  if (signal?.reason !== undefined) return signal.reason;
  const error = new Error('This operation was aborted');
  error.name = 'AbortError';
  return error;
}

/**
 * Waits for a permit from `limiter` as a promise. When `signal` aborts first, the queued
 * request is removed from the limiter's queue and the promise settles with
 * `{ aborted: true }` (the caller decides what to raise), never holding a permit: one granted
 * after the abort is released at once.
 */
export function acquirePermit(
  limiter: Limiter,
  info: RequestInfo,
  signal: AbortSignalLike | undefined,
): Promise<{ aborted: false; permit: Permit } | { aborted: true }> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      resolve({ aborted: true });
      return;
    }
    let settled = false;
    let stopListening: () => void = () => undefined;
    const ticket = limiter.acquire(info, {
      granted: (permit) => {
        // Aborted while the limiter was granting a batch, by the handler of a request granted
        // before this one: this request had left the queue, so `ticket.cancel()` could not stop
        // its grant, and the caller has gone with `{ aborted: true }`. The permit is no one's:
        // give it back now rather than leave it in flight until `permitTimeoutMs`.
        if (settled) {
          permit.release();
          return;
        }
        settled = true;
        stopListening();
        resolve({ aborted: false, permit });
      },
      rejected: (error) => {
        // Aborted first, as above: the caller has its answer already.
        if (settled) return;
        settled = true;
        stopListening();
        reject(error);
      },
    });
    // `granted` may have run synchronously inside `acquire`.
    if (settled) return;
    const onAbort = () => {
      if (settled) return;
      settled = true;
      stopListening();
      ticket.cancel();
      resolve({ aborted: true });
    };
    stopListening = listenAbort(signal, onAbort);
    // Aborted inside `acquire` (by a listener of the limiter's events or state): no event is
    // coming for an abort that happened before the listener was added.
    if (signal?.aborted) onAbort();
  });
}

/**
 * Waits `ms` on the limiter's scheduler (virtual under `TestScheduler`). Resolves `true` when
 * the time is up, `false` as soon as `signal` aborts.
 */
export function sleep(limiter: Limiter, ms: number, signal?: AbortSignalLike): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve(false);
      return;
    }
    let stopListening: () => void = () => undefined;
    const timer = limiter.scheduler.schedule(
      () => {
        stopListening();
        resolve(true);
      },
      Math.max(0, ms),
    );
    stopListening = listenAbort(signal, () => {
      timer.unsubscribe();
      resolve(false);
    });
  });
}

type HeaderSource = Parameters<typeof responseLike>[1];

/** One header from any container `responseLike` accepts, by case-insensitive name. */
export function headerOf(headers: unknown, name: string): string | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  return responseLike(0, headers as HeaderSource).header(name);
}

/** `Idempotency-Key` of a request's headers, when present and not empty. */
export function idempotencyKeyOf(...sources: unknown[]): string | undefined {
  for (const headers of sources) {
    const key = headerOf(headers, 'idempotency-key');
    if (key !== undefined && key !== '') return key;
  }
  return undefined;
}

/** Statuses whose body the adapters read even when the client has not: limit and block pages. */
export const BODY_STATUSES: ReadonlySet<number> = new Set([403, 429]);

/**
 * Does the limiter's provider read the body of an answer with `status` (`Provider.readsBody`)?
 * A hook that throws counts as no.
 */
export function readsBody(limiter: Limiter, status: number, info: RequestInfo): boolean {
  const hook = limiter.provider.readsBody;
  if (hook === undefined) return false;
  try {
    return hook.call(limiter.provider, status, info) === true;
  } catch {
    return false;
  }
}

/** Largest body (bytes) the adapters decode for a provider; bigger ones are not read. */
export const MAX_BODY_BYTES = 256 * 1024;

/** Is this content type JSON (`application/json`, `application/problem+json`, …)? */
export function isJsonType(contentType: string | undefined): boolean {
  return contentType !== undefined && /[/+]json\b/i.test(contentType);
}

/** A text body as a provider reads it: parsed JSON when the content type says so, else the text. */
export function parseText(text: string, contentType: string | undefined): unknown {
  if (!isJsonType(contentType) || text.trim() === '') return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // A JSON content type with a body that is not JSON: the text is still worth reading.
    return text;
  }
}

/** Decodes bytes as UTF-8, or `undefined` past {@link MAX_BODY_BYTES}. */
export function decodeBytes(bytes: ArrayBuffer | ArrayBufferView): string | undefined {
  if (bytes.byteLength > MAX_BODY_BYTES) return undefined;
  return new TextDecoder().decode(bytes);
}

/** Joins an axios-style `baseURL` and `url` (an absolute `url` wins). */
export function resolveUrl(baseURL: string | undefined, url: string | undefined): string | undefined {
  if (!url) return baseURL || undefined;
  if (!baseURL || /^([a-z][a-z\d+\-.]*:)?\/\//i.test(url)) return url;
  return `${withoutTrailingSlashes(baseURL)}/${url.replace(/^\/+/, '')}`;
}

/**
 * `text` less its trailing slashes. A loop, not `/\/+$/`: that regex restarts at every slash of
 * a run and scans it to the end, quadratic on a long run followed by anything else.
 */
function withoutTrailingSlashes(text: string): string {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x2f) end--;
  return text.slice(0, end);
}

/** Checks a `maxRetries` option like `retryOn429` does; returns it or the default 5. */
export function checkMaxRetries(where: string, value: unknown): number {
  if (value === undefined) return 5;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new TypeError(`${where}: option \`maxRetries\` must be a whole number >= 0, got ${describe(value)}`);
  }
  return value;
}

/** Checks a `statuses` option; returns the set, default `{429}`. */
export function checkStatuses(where: string, value: unknown): ReadonlySet<number> {
  if (value === undefined) return new Set([429]);
  if (!Array.isArray(value) || !value.every((s) => Number.isInteger(s) && s >= 100 && s <= 599)) {
    throw new TypeError(
      `${where}: option \`statuses\` must be an array of HTTP statuses (100-599), got ${describe(value)}`,
    );
  }
  return new Set(value as number[]);
}

/** Checks an optional `priority` option. */
export function checkPriority(where: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new TypeError(`${where}: option \`priority\` must be a finite number, got ${describe(value)}`);
  }
  return value;
}

/**
 * Throws a `TypeError` naming every key of `options` that is not in `names` (`where`: the call
 * that was given them): a misspelt option (`maxRetry`) would leave its setting at the default
 * without a word.
 */
export function checkOptionNames(where: string, options: object, names: ReadonlySet<string>): void {
  const unknown = Object.keys(options).filter((key) => !names.has(key));
  if (unknown.length > 0) {
    const listed = unknown.slice(0, 5).map((key) => `\`${key.slice(0, 40)}\``);
    throw new TypeError(`${where}: unknown option ${listed.join(', ')}`);
  }
}

/**
 * Runs every check of one call's options and returns what each returned, or throws one
 * `TypeError` naming every bad option (`where`: the call, each check's message less that prefix)
 * rather than the first only; a single failure is thrown as it is. Anything but a `TypeError`
 * goes on at once.
 */
export function checkAll<const T extends ReadonlyArray<() => unknown>>(where: string, checks: T): Checked<T> {
  const errors: TypeError[] = [];
  const results = checks.map((check) => {
    try {
      return check();
    } catch (error) {
      if (!(error instanceof TypeError)) throw error;
      errors.push(error);
      return undefined;
    }
  });
  const [first] = errors;
  if (first === undefined) return results as Checked<T>;
  if (errors.length === 1) throw first;
  const prefix = `${where}: `;
  const each = errors.map((e) => (e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message));
  throw new TypeError(`${where}: ${each.join('; ')}`, { cause: first });
}

/** What each check of {@link checkAll} returned, in order. */
type Checked<T extends ReadonlyArray<() => unknown>> = {
  -readonly [K in keyof T]: T[K] extends () => infer R ? R : never;
};

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'an array with other values';
  if (typeof v === 'function') return 'a function';
  return typeof v === 'object' && v !== null ? 'an object' : String(v);
}

/**
 * Is `x` a limiter? Duck-typed: a limiter from another copy of the package (CJS next to ESM)
 * is still one.
 */
export function isLimiter(x: unknown): x is Limiter {
  const d = x as Partial<Limiter> | null;
  return typeof d === 'object' && d !== null && typeof d.acquire === 'function' && typeof d.observe === 'function';
}

/** Builds a `RequestInfo` without `undefined` fields (exactOptionalPropertyTypes); method upper-cased. */
export function requestInfo(fields: { readonly [K in keyof RequestInfo]?: RequestInfo[K] | undefined }): RequestInfo {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || (k === 'idempotencyKey' && v === '')) continue;
    // A URL object (axios takes `api.get(new URL(…))`, and its `getUri` hands it back) is its
    // text: the limiter refuses a request `url` that is no string.
    out[k] =
      k === 'method' && typeof v === 'string'
        ? v.toUpperCase()
        : k === 'url' && typeof v === 'object' && v !== null && (v as object) instanceof URL
          ? (v as unknown as URL).href
          : v;
  }
  return out as RequestInfo;
}

// ---------------------------------------------------------------------------------------------
// What makes two axios GETs identical (axios `rateLimitedRequest`, NestJS `rateLimitedHttp`)

/** Request interceptors of ours (`attachRateLimiter`): they add no header. */
const ownInterceptors = new WeakSet<object>();

/** Notes a request interceptor as ours, so that it does not stop sharing (see {@link axiosRequestHeaders}). */
export function markOwnInterceptor(fn: object): void {
  ownInterceptors.add(fn);
}

/** The parts of an axios instance (or its config defaults) read here. */
interface AxiosLike {
  readonly defaults?: AxiosConfigLike | undefined;
  readonly interceptors?: { readonly request?: { readonly handlers?: unknown } } | undefined;
}

interface AxiosConfigLike {
  readonly headers?: unknown;
}

/**
 * Options of an axios config that change neither who a request is sent as nor what comes back:
 * the URL's parts (the share identity has the full URL, params included), the headers (read on
 * their own), the body (a GET with one is not shared, see {@link axiosShareKey}), cancellation,
 * progress callbacks and our settings. Every other option, set on the config or the instance,
 * is part of the identity (agents with a client certificate, a proxy, an adapter, transforms,
 * `validateStatus`, `auth`, `responseType`…), options of future axios versions included.
 */
const SAME_ANSWER_OPTIONS: ReadonlySet<string> = new Set([
  'url',
  'method',
  'baseURL',
  'params',
  'paramsSerializer',
  'allowAbsoluteUrls',
  'headers',
  'data',
  'signal',
  'cancelToken',
  'onUploadProgress',
  'onDownloadProgress',
  'rateLimit',
]);

/** Ids of the objects and functions met in axios options, for their pseudo-headers. */
const optionIds = new WeakMap<object, number>();
let lastOptionId = 0;

/**
 * An option's value as a pseudo-header: plain data (numbers, strings, plain objects and arrays of
 * them, as `auth` or `proxy`) as JSON, so that equal values written anew for each call still
 * share; anything else (an agent, a function, an array of transforms) by its identity, so that
 * requests share it only when they use the very same object.
 */
function optionValue(value: unknown): string {
  if (isPlainData(value, 0)) {
    try {
      return JSON.stringify(value) ?? String(value);
    } catch {
      // Not serializable after all: the identity below.
    }
  }
  const object = value as object;
  let id = optionIds.get(object);
  if (id === undefined) optionIds.set(object, (id = ++lastOptionId));
  return `#${id}`;
}

function isPlainData(value: unknown, depth: number): boolean {
  if (value === null || typeof value !== 'object') return typeof value !== 'function' && typeof value !== 'symbol';
  if (depth > 8) return false;
  if (Array.isArray(value)) return value.every((v) => isPlainData(v, depth + 1));
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(value).every((v) => isPlainData(v, depth + 1));
}

/**
 * The `shareKey` of an axios GET the caller gave none for: `false` (sent on its own) when its
 * response cannot be handed to another request: a stream (read once), or a request with a body
 * (axios sends a GET's `data`; a search with another body is another request).
 */
export function axiosShareKey(config: { readonly data?: unknown; readonly responseType?: unknown }): false | undefined {
  return config.responseType === 'stream' || (config.data !== undefined && config.data !== null) ? false : undefined;
}

/** A plain object: `{}` or `Object.create(null)`. */
function isPlainObject(x: object): boolean {
  const proto = Object.getPrototypeOf(x) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * What an iterable of headers (`Headers`, `Map`, `[name, value][]`) holds, as axios reads it
 * (a name repeated: its values as a list), or `undefined` when it is not one: not iterable, an
 * entry not a pair with a string name, or more than 1,000 entries (a hostile one is not walked).
 */
function iterablePairs(headers: object): Array<[string, unknown]> | undefined {
  const iterate = (headers as { [Symbol.iterator]?: unknown })[Symbol.iterator];
  if (typeof iterate !== 'function') return undefined;
  const byName = new Map<string, unknown>();
  try {
    let n = 0;
    for (const entry of headers as Iterable<unknown>) {
      if (++n > 1000 || !Array.isArray(entry) || typeof entry[0] !== 'string') return undefined;
      const [name, value] = entry as [string, unknown];
      const before = byName.get(name);
      byName.set(name, byName.has(name) ? [...(Array.isArray(before) ? before : [before]), value] : value);
    }
  } catch {
    return undefined;
  }
  return [...byName];
}

/**
 * Names under which axios reads a bucket of default headers rather than a header: `common` and
 * each method of axios's `methodList` (axios 1.x; older versions know a subset). axios matches
 * them by exact name.
 */
const AXIOS_HEADER_BUCKETS: ReadonlySet<string> = new Set([
  'common',
  'get',
  'delete',
  'head',
  'options',
  'post',
  'put',
  'patch',
  'purge',
  'link',
  'unlink',
  'query',
]);

/**
 * Is `value`, under `name`, one of axios's buckets of default headers: a bucket's name, holding
 * a plain object or an `AxiosHeaders`, as axios checks. A bucket's name holding anything else
 * is a header named so (recent axios versions send it).
 */
function isHeaderBucket(name: string, value: unknown): boolean {
  if (!AXIOS_HEADER_BUCKETS.has(name) || typeof value !== 'object' || value === null || Array.isArray(value))
    return false;
  return isPlainObject(value) || typeof (value as { normalize?: unknown }).normalize === 'function';
}

/**
 * Is a header value sent as it is written here: a string, a number, a boolean, a bigint, or a
 * list of them. Anything else goes out as its `String(…)` at send time, unknown now.
 */
function isSentAsWritten(value: unknown): boolean {
  const primitive = (v: unknown) =>
    typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint';
  return primitive(value) || (Array.isArray(value) && value.every(primitive));
}

/**
 * The headers an axios request will be sent with, as far as they can be known before it is
 * sent: the instance's default headers (common, this method's, the others), the config's, and
 * as pseudo-headers every other option of the config or the instance's defaults that may change
 * who it is sent as or what comes back (see {@link SAME_ANSWER_OPTIONS}). `undefined` for
 * methods never shared (not GET or HEAD), and when the instance has a request interceptor that
 * is not ours: it may add a header (an `Authorization` per user, say), so nothing proves two
 * requests identical and they are not shared (unless a `shareKey` says so).
 */
export function axiosRequestHeaders(
  instance: AxiosLike | undefined,
  method: string,
  config: AxiosConfigLike,
): RequestHeaders | undefined {
  const m = method.toLowerCase();
  if (m !== 'get' && m !== 'head') return undefined;
  const handlers = instance?.interceptors?.request?.handlers;
  if (instance?.interceptors !== undefined) {
    if (!Array.isArray(handlers)) return undefined;
    for (const h of handlers as unknown[]) {
      const fulfilled = (h as { fulfilled?: unknown } | null)?.fulfilled;
      if (h !== null && h !== undefined && !(typeof fulfilled === 'function' && ownInterceptors.has(fulfilled)))
        return undefined;
    }
  }
  // As axios merges them: names without regard to case, the later source winning; common
  // defaults, then this method's, then the rest, each the instance's then the config's. A
  // `null` or `false` one is not sent (it unsets a default). An `undefined` one over a default
  // leaves it or unsets it, as the axios version has it: such a request is not shared.
  const merged = new Map<string, [string, unknown]>();
  let unsure = false;
  const put = (name: string, value: unknown): void => {
    const lower = name.toLowerCase();
    if (value === undefined) unsure ||= merged.has(lower);
    else if (value === null || value === false) merged.delete(lower);
    else merged.set(lower, [name, value]);
  };
  const layer = (headers: unknown, bucket: 'common' | 'method' | 'rest'): void => {
    // A string is raw headers (`'Authorization: Bearer …'`), which axios parses and sends: not
    // read here, so not shared.
    if (typeof headers === 'string') unsure ||= headers.trim() !== '';
    if (typeof headers !== 'object' || headers === null) return;
    // An AxiosHeaders holds its headers as its own fields, a `null` or `false` one (unset)
    // too, which its `toJSON` leaves out; another object with a `toJSON` is read through it.
    const h = headers as { toJSON?: unknown; normalize?: unknown };
    let source: object = headers;
    if (typeof h.toJSON === 'function' && typeof h.normalize !== 'function') {
      source = (headers as { toJSON(): unknown }).toJSON() as object;
      if (typeof source !== 'object' || source === null) return;
    } else if (typeof h.normalize !== 'function' && !isPlainObject(headers)) {
      // A fetch `Headers`, a `Map`, a list of pairs: axios sends what they iterate, which is not
      // among their own fields (read so, an `Authorization` in one was missed, and every user's
      // GET shared the first one's answer). Anything else is not known: not shared.
      const pairs = iterablePairs(headers);
      if (pairs === undefined) unsure = true;
      else if (bucket === 'rest') for (const [name, value] of pairs) put(name, value);
      return;
    }
    for (const [name, value] of Object.entries(source)) {
      // axios's buckets of defaults: `common` and each method's, by their exact names, holding
      // headers. Any other object is a header's value, which axios sends (see below).
      if (isHeaderBucket(name, value)) {
        if ((bucket === 'common' && name === 'common') || (bucket === 'method' && name === m)) layer(value, 'rest');
        continue;
      }
      if (bucket === 'rest') put(name, value);
    }
  };
  const defaults = instance?.defaults;
  for (const bucket of ['common', 'method', 'rest'] as const) {
    layer(defaults?.headers, bucket);
    layer(config.headers, bucket);
  }
  if (unsure) return undefined;
  const pairs: Array<[string, unknown]> = [...merged.values()];
  // A header whose value is an object (a `String`, a `Buffer`, a token with a `toString`) goes
  // out as what its `toString` returns when axios sends it, which may not be what it returns
  // now (a token object that refreshes itself, or one reused for another user): nothing here
  // proves two such requests identical, so they are not shared. Counting `String(value)`
  // instead would hand one user's answer to another as soon as the object changed before the
  // send; not sharing costs only the dedupe of these rare requests.
  if (!pairs.every(([, value]) => isSentAsWritten(value))) return undefined;
  // The config's own options win over the instance's, as axios merges them (an `undefined`
  // one leaves the instance's).
  const options = new Map<string, unknown>();
  for (const source of [defaults, config]) {
    if (typeof source !== 'object' || source === null) continue;
    for (const [name, value] of Object.entries(source)) {
      if (value !== undefined && !SAME_ANSWER_OPTIONS.has(name)) options.set(name, value);
    }
  }
  for (const [name, value] of options) pairs.push([`:${name}`, optionValue(value)]);
  return pairs;
}
