/**
 * `rx-ratelimit/axios`: paces axios calls by the limiter, either as cold observables for RxJS
 * code ({@link rateLimitedRequest}) or at the instance's transport for code that only uses
 * promises ({@link attachRateLimiter}). Only types are imported from axios statically: the one
 * runtime use, axios's `getAdapter` to turn an instance's adapter setting (`['xhr', 'http',
 * 'fetch']`) into a function, loads `axios` on the first request that needs it (the default
 * `axios` instance brings its own). The module adds nothing to a bundle that does not already
 * contain axios, and works with whichever copy the app or an SDK uses.
 */
import type {
  AxiosAdapter,
  AxiosError,
  AxiosInstance,
  AxiosRequestConfig,
  AxiosResponse,
  InternalAxiosRequestConfig,
} from 'axios';
import { defer, Observable } from 'rxjs';
import type { Limiter, Permit } from '../core/limiter.js';
import { isRetrySafe, type RequestInfo } from '../core/request.js';
import { responseLike, type ResponseExtractor, type ResponseLike } from '../core/response.js';
import { rateLimit, type RateLimitConfig } from '../operators/rateLimit.js';
import {
  abortReason,
  acquirePermit,
  BODY_STATUSES,
  checkMaxRetries,
  checkPriority,
  checkStatuses,
  decodeBytes,
  axiosRequestHeaders,
  idempotencyKeyOf,
  listenAbort,
  markOwnInterceptor,
  MAX_BODY_BYTES,
  parseText,
  requestInfo,
  resolveUrl,
  sleep,
} from './common.js';

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
   * NestJS's `rateLimitedHttp` (the interceptors never share). @default the full URL
   */
  readonly shareKey?: string | false;
}

declare module 'axios' {
  interface AxiosRequestConfig {
    /** rx-ratelimit settings of this request, read by `attachRateLimiter` from `rx-ratelimit/axios`. */
    rateLimit?: AxiosRequestRateLimit;
  }
}

/**
 * Reads an axios response, or the response inside an `AxiosError`, as the limiter's
 * `ResponseLike`. Returns `undefined` for an error without a response (network error, timeout,
 * cancel) and for anything that is not an axios value.
 *
 * Headers are read case-insensitively from `AxiosHeaders` or a plain object; repeated values
 * (arrays) are joined with `", "`. The body is `response.data` when axios parsed it. Text and
 * bytes are decoded only where a provider reads them, on a 429 or 403 and up to 256 KiB: a JSON
 * string (a `responseType: 'text'` call, a failed parse, or the raw answer of the transport) is
 * then parsed when the content type says JSON, and small `ArrayBuffer`/`Buffer` bodies are
 * decoded the same way; other statuses keep a string as it is and leave bytes out. Streams and
 * blobs are always left out (the adapter never consumes a body the caller will read).
 *
 * ```ts
 * import type { AxiosInstance } from 'axios';
 * import { toResponseLike } from 'rx-ratelimit/axios';
 * declare const api: AxiosInstance;
 * try {
 *   await api.get('/deals');
 * } catch (e) {
 *   const res = toResponseLike(e); // ResponseLike | undefined
 *   console.log(res?.status, res?.header('retry-after'));
 * }
 * ```
 */
export function toResponseLike(responseOrError: AxiosResponse | AxiosError | unknown): ResponseLike | undefined {
  if (typeof responseOrError !== 'object' || responseOrError === null) return undefined;
  const o = responseOrError as Partial<AxiosError> & Partial<AxiosResponse>;
  if (o.isAxiosError === true) return o.response ? fromResponse(o.response) : undefined;
  return fromResponse(o);
}

function fromResponse(r: Partial<AxiosResponse>): ResponseLike | undefined {
  if (typeof r.status !== 'number' || r.status <= 0) return undefined;
  if (typeof r.headers !== 'object' || r.headers === null) return undefined;
  const res = responseLike(r.status, r.headers as Parameters<typeof responseLike>[1]);
  const body = bodyOf(r.data, res.header('content-type'), BODY_STATUSES.has(r.status));
  return body === undefined ? res : responseLike(r.status, r.headers as Parameters<typeof responseLike>[1], body);
}

/** The body as a provider reads it; text and bytes are decoded only when `decode` (a 429/403). */
function bodyOf(data: unknown, contentType: string | undefined, decode: boolean): unknown {
  if (data === undefined || data === null) return undefined;
  if (typeof data === 'string') {
    if (!decode) return data;
    // A string is at least as many UTF-8 bytes as it has characters.
    return data.length > MAX_BODY_BYTES ? undefined : parseText(data, contentType);
  }
  if (typeof data !== 'object') return data;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    if (!decode) return undefined;
    const text = decodeBytes(data);
    return text === undefined ? undefined : parseText(text, contentType);
  }
  // A Node stream, a web stream or a Blob: reading it would take it from the caller.
  const d = data as { pipe?: unknown; getReader?: unknown; arrayBuffer?: unknown };
  if (typeof d.pipe === 'function' || typeof d.getReader === 'function' || typeof d.arrayBuffer === 'function') {
    return undefined;
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// The transport: where the limiter reads the raw answer

/** axios's `getAdapter`: turns an adapter setting (`'http'`, `['xhr', 'http', 'fetch']`…) into a function. */
type GetAdapter = (adapters: unknown, config?: unknown) => AxiosAdapter;

/** What axios uses when neither the request nor the instance names an adapter. */
const DEFAULT_ADAPTERS: readonly string[] = ['xhr', 'http', 'fetch'];

let importedGetAdapter: Promise<GetAdapter | undefined> | undefined;

/**
 * axios's own `getAdapter`, loaded on first need: an instance from `axios.create()` carries
 * its adapter setting by name only. The default `axios` export has it itself.
 */
function axiosGetAdapter(instance: unknown): GetAdapter | Promise<GetAdapter | undefined> {
  const own = (instance as { getAdapter?: unknown } | undefined)?.getAdapter;
  if (typeof own === 'function') return own as GetAdapter;
  importedGetAdapter ??= import('axios').then(
    (m: unknown) => {
      const mod = m as { getAdapter?: unknown; default?: { getAdapter?: unknown } };
      const found = mod.getAdapter ?? mod.default?.getAdapter;
      return typeof found === 'function' ? (found as GetAdapter) : undefined;
    },
    () => undefined,
  );
  return importedGetAdapter;
}

/** The adapter function an adapter setting stands for, resolved as axios resolves it. */
async function resolveAdapter(
  setting: unknown,
  config: InternalAxiosRequestConfig,
  instance: unknown,
): Promise<AxiosAdapter> {
  if (typeof setting === 'function') return setting as AxiosAdapter;
  const getAdapter = await axiosGetAdapter(instance);
  if (!getAdapter) {
    throw new Error(
      'rx-ratelimit/axios: cannot load axios to resolve the adapter; give the instance an adapter function',
    );
  }
  return getAdapter(setting ?? DEFAULT_ADAPTERS, config);
}

/** Adapters made by {@link captureAdapter} and by `rateLimitInterceptor`, which never wrap each other twice. */
const OUR_ADAPTERS = new WeakSet<AxiosAdapter>();

/**
 * @internal A per-subscription recorder of the raw answer of the transport, for the RxJS
 * adapters (`rateLimitedRequest`, NestJS `rateLimitedHttp`): the config to send, with an
 * adapter that notes the response or error before any response interceptor can replace it
 * (an SDK that resolves with the body and rejects with the error's body), and the extractor
 * that reads what it noted, else the value itself. Call `begin()` as each attempt is sent.
 */
export function captureRaw(
  instance: AxiosInstance | undefined,
  config: AxiosRequestConfig,
): { readonly config: AxiosRequestConfig; readonly extract: ResponseExtractor; readonly begin: () => void } {
  // No instance (a mocked HttpService): nothing to wrap; the value is all there is.
  if (!instance || typeof instance.request !== 'function') {
    return { config, extract: toResponseLike, begin: () => undefined };
  }
  const noted: { raw?: unknown } = {};
  const setting: unknown = config.adapter ?? instance.defaults?.adapter;
  const adapter: AxiosAdapter = async (c) => {
    const send = await resolveAdapter(setting, c, instance);
    try {
      const response = await send(c);
      noted.raw = response;
      return response;
    } catch (error) {
      noted.raw = error;
      throw error;
    }
  };
  OUR_ADAPTERS.add(adapter);
  const extract: ResponseExtractor = (x) =>
    ('raw' in noted ? toResponseLike(noted.raw) : undefined) ?? toResponseLike(x);
  const begin = (): void => {
    delete noted.raw;
  };
  return { config: { ...config, adapter }, extract, begin };
}

/**
 * @internal Headers with `Idempotency-Key: key` added, unless they (or the instance's defaults
 * for the method) already carry one: the caller's header wins. A new object; the caller's
 * headers are not changed.
 */
export function withIdempotencyKey(
  headers: AxiosRequestConfig['headers'],
  key: string | undefined,
  ...defaults: unknown[]
): AxiosRequestConfig['headers'] {
  if (key === undefined || key === '' || idempotencyKeyOf(headers, ...defaults) !== undefined) return headers;
  const h = headers as { toJSON?: () => Record<string, unknown> } | undefined;
  const plain = typeof h?.toJSON === 'function' ? h.toJSON() : (headers as Record<string, unknown> | undefined);
  return { ...plain, 'Idempotency-Key': key } as AxiosRequestConfig['headers'];
}

/**
 * Settings of {@link rateLimitedRequest}: what the limiter should know of the request, and
 * the settings of the `rateLimit` operator (`maxRetries`, `retryNonIdempotent`, `reserve`…).
 *
 * ```ts
 * import type { AxiosInstance } from 'axios';
 * import type { Limiter } from 'rx-ratelimit';
 * import { rateLimitedRequest, type RateLimitedRequestOptions } from 'rx-ratelimit/axios';
 * declare const api: AxiosInstance;
 * declare const limiter: Limiter;
 * declare const deal: { id: string; title: string };
 * const opts: RateLimitedRequestOptions = { priority: 1, maxRetries: 3 };
 * rateLimitedRequest(limiter, api, { method: 'PUT', url: '/v1/deals/1', data: deal }, opts).subscribe();
 * ```
 */
export interface RateLimitedRequestOptions extends RateLimitConfig {
  /** Higher goes first among waiting requests. @default config.rateLimit.priority, else 0 */
  readonly priority?: number;
  /** Marks a POST or PATCH safe to retry after a 429. @default the `Idempotency-Key` request header */
  readonly idempotencyKey?: string;
  /** Force (`true`) or forbid (`false`) retrying after a 429, whatever the method. */
  readonly retry?: boolean;
  /**
   * What makes this GET/HEAD "identical" to others for sharing and the cache, in place of its
   * URL (its headers still count, see `rateLimit`); `false` sends this one on its own.
   * @default config.rateLimit.shareKey, else the full URL with params; `false` for `responseType: 'stream'`
   */
  readonly shareKey?: RequestInfo['shareKey'];
}

/**
 * One axios request as a cold observable paced by the limiter: each subscription waits for a
 * permit, then sends the request (`rateLimit`: quota guard, throttle, retry on 429).
 *
 * Unsubscribing while queued sends nothing; unsubscribing in flight aborts the axios call
 * through an `AbortController`. A `signal` in `config` works the same way (queued, waiting to
 * retry or in flight) and ends the observable with axios's `CanceledError`. A 429 on a request
 * safe to repeat (GET, PUT, DELETE…, or one with an `Idempotency-Key`) is retried after the
 * limiter's resume time, up to `maxRetries` (then `RetryLimitError`, `cause`: the last
 * `AxiosError`); other 429s end with the `AxiosError` as axios raised it. The request skips
 * any interceptor installed by {@link attachRateLimiter} on the same instance, so it is not
 * gated twice. Identical GETs in flight on the limiter share one response (`rateLimit`'s
 * dedupe; and with the limiter's `cache`, a fresh one is served from memory): identical means
 * same full URL with params and the same headers (the instance's defaults and the config's,
 * `auth`, `withCredentials`, `responseType`), so requests sent as different users never
 * share. On an instance with request interceptors of the app's (they may add an
 * `Authorization`), nothing is shared unless `shareKey` says so.
 *
 * ```ts
 * import axios from 'axios';
 * import { createLimiter, providers } from 'rx-ratelimit';
 * import { rateLimitedRequest } from 'rx-ratelimit/axios';
 *
 * const token = process.env['API_TOKEN'] ?? '';
 * const api = axios.create({ baseURL: 'https://api.example.com', headers: { Authorization: `Bearer ${token}` } });
 * const limiter = createLimiter({ provider: providers.generic(), key: token });
 * rateLimitedRequest<{ id: number }>(limiter, api, { url: '/v1/deals/1' }).subscribe((res) => console.log(res.data.id));
 * ```
 */
export function rateLimitedRequest<T = unknown, D = unknown>(
  limiter: Limiter,
  axiosInstance: AxiosInstance,
  config: AxiosRequestConfig<D>,
  opts: RateLimitedRequestOptions = {},
): Observable<AxiosResponse<T, D>> {
  const { priority, idempotencyKey, retry, shareKey, ...rest } = opts;
  checkPriority('rateLimitedRequest', priority);
  const defaults = axiosInstance.defaults;
  const method = (config.method ?? defaults.method ?? 'get').toLowerCase();
  const defaultHeaders = defaults.headers as unknown as Record<string, unknown> | undefined;
  const info = requestInfo({
    method,
    url: fullUrl(axiosInstance, config),
    priority: priority ?? config.rateLimit?.priority,
    idempotencyKey:
      idempotencyKey ??
      config.rateLimit?.idempotencyKey ??
      idempotencyKeyOf(config.headers, defaultHeaders?.[method], defaultHeaders?.['common'], defaultHeaders),
    retry: retry ?? config.rateLimit?.retry,
    cost: config.rateLimit?.cost,
    headers: axiosRequestHeaders(axiosInstance, method, config),
    // A stream can be read once: never hand the same one to two subscribers.
    shareKey: shareKey ?? config.rateLimit?.shareKey ?? (config.responseType === 'stream' ? false : undefined),
  });
  const signal = config.signal;
  // The key given in the options goes out as the header too, unless the caller set one.
  const headers = withIdempotencyKey(
    config.headers,
    idempotencyKey ?? config.rateLimit?.idempotencyKey,
    defaultHeaders?.[method],
    defaultHeaders?.['common'],
    defaultHeaders,
  );
  const sendOf = (capture?: ReturnType<typeof captureRaw>) =>
    new Observable<AxiosResponse<T, D>>((subscriber) => {
      capture?.begin();
      const controller = new AbortController();
      // Already aborted: axios rejects with its CanceledError before sending anything.
      if (signal?.aborted) controller.abort();
      axiosInstance
        .request<T, AxiosResponse<T, D>, D>({
          ...(capture?.config ?? config),
          ...(headers === undefined ? {} : { headers }),
          signal: controller.signal,
          rateLimit: { ...config.rateLimit, skip: true },
        })
        .then(
          (response) => {
            subscriber.next(response);
            subscriber.complete();
          },
          (error: unknown) => subscriber.error(error),
        );
      return () => controller.abort();
    });
  const send$ = sendOf();
  // The limiter reads the raw answer of the transport: response interceptors on the instance
  // (an SDK's that resolve with the body) cannot hide its status and headers.
  const gated$ = defer(() => {
    const capture = captureRaw(axiosInstance, config);
    return sendOf(capture).pipe(
      rateLimit<AxiosResponse<T, D>>(limiter, info, { extractResponse: capture.extract, ...rest }),
    );
  });
  if (!signal) return gated$;
  return new Observable<AxiosResponse<T, D>>((subscriber) => {
    // A plain observer: subscribing `subscriber` itself would make `inner` that very
    // subscriber, and unsubscribing it would close ours.
    const forward = {
      next: (value: AxiosResponse<T, D>) => subscriber.next(value),
      error: (error: unknown) => subscriber.error(error),
      complete: () => subscriber.complete(),
    };
    if (signal.aborted) return send$.subscribe(forward);
    let inner = gated$.subscribe(forward);
    // Queued, waiting to retry or in flight: stop all of it, and end as axios ends an aborted
    // request (CanceledError, `axios.isCancel` true) without sending again.
    const stopListening = listenAbort(signal, () => {
      inner.unsubscribe();
      inner = send$.subscribe(forward);
    });
    return () => {
      stopListening();
      inner.unsubscribe();
    };
  });
}

/**
 * The URL the request goes to, params included (providers key per-endpoint buckets on it,
 * `rateLimit` shares identical GETs by it; events show only its path).
 */
function fullUrl(instance: AxiosInstance | undefined, config: AxiosRequestConfig): string | undefined {
  if (instance) {
    try {
      return instance.getUri(config) || undefined;
    } catch {
      // A params serializer that throws: axios fails the same way when it sends; the URL
      // without params is still right for the limiter.
    }
  }
  return resolveUrl(config.baseURL ?? instance?.defaults.baseURL, config.url);
}

/**
 * Settings of {@link rateLimitInterceptor} and {@link attachRateLimiter}. All optional.
 *
 * ```ts
 * import type { AxiosInstance } from 'axios';
 * import type { Limiter } from 'rx-ratelimit';
 * import { attachRateLimiter, type RateLimitInterceptorOptions } from 'rx-ratelimit/axios';
 * declare const api: AxiosInstance;
 * declare const limiter: Limiter;
 * const opts: RateLimitInterceptorOptions = { maxRetries: 2, priority: 1 };
 * attachRateLimiter(api, limiter, opts);
 * ```
 */
export interface RateLimitInterceptorOptions {
  /** Retries after the first attempt; past them the request fails with `RetryLimitError`. @default 5 */
  readonly maxRetries?: number;
  /**
   * Retry POST and PATCH after a 429 even without an idempotency key. Only if the API does not
   * apply a request it answered with 429. @default false
   */
  readonly retryNonIdempotent?: boolean;
  /** Statuses to retry. @default [429] */
  readonly statuses?: readonly number[];
  /** Priority of requests that do not set `config.rateLimit.priority`. @default 0 */
  readonly priority?: number;
  /**
   * The instance the interceptors are installed on: the limiter sees its `baseURL` and params,
   * its adapter setting is the one wrapped, and a 429 on a request safe to repeat is sent again.
   * Without it 429s are read (every request slows down) but not retried.
   * {@link attachRateLimiter} sets it.
   */
  readonly instance?: AxiosInstance;
}

/**
 * The interceptor functions of {@link rateLimitInterceptor}, and a clean-up.
 *
 * ```ts
 * import type { AxiosInstance } from 'axios';
 * import type { Limiter } from 'rx-ratelimit';
 * import { rateLimitInterceptor, type RateLimitInterceptor } from 'rx-ratelimit/axios';
 * declare const api: AxiosInstance;
 * declare const limiter: Limiter;
 * const i: RateLimitInterceptor = rateLimitInterceptor(limiter, { instance: api });
 * const id = api.interceptors.request.use(i.request);
 * ```
 */
export interface RateLimitInterceptor {
  /**
   * Request interceptor: wraps the request's adapter, where the permit is taken and the raw
   * answer read (`interceptors.request.use(i.request)`).
   */
  readonly request: (config: InternalAxiosRequestConfig) => Promise<InternalAxiosRequestConfig>;
  /** Response interceptor, fulfilled side: returns the response as is (the adapter has read it). */
  readonly response: (response: AxiosResponse) => Promise<AxiosResponse>;
  /** Response interceptor, rejected side: rejects with the error as is. */
  readonly error: (error: unknown) => Promise<AxiosResponse>;
  /**
   * Returns the permits of requests still in flight; requests still queued go when admitted
   * but are no longer read. Call it after ejecting the interceptors (`detach()` does both).
   */
  readonly dispose: () => void;
  /** @internal The adapter setting `setting` wrapped to go through the limiter. */
  readonly wrap: (setting: unknown) => AxiosAdapter;
}

/**
 * Paces every request of an axios instance by the limiter, for code that does not use RxJS.
 * Most apps call {@link attachRateLimiter} instead.
 *
 * The work happens at the transport: the request interceptor replaces the request's adapter
 * (a function, or axios's by name: `'http'`, `'xhr'`, `'fetch'`) with one that waits for a
 * permit, calls the original adapter, feeds the raw response or error to the limiter and
 * returns the permit, whatever happens next. No other interceptor can hide a response from
 * the limiter (one that resolves with the body only, as SDKs do), nor keep a permit: a request
 * interceptor that throws before the request is sent has taken none. A `signal` aborted while
 * waiting removes the request from the queue (axios rejects with its own `CanceledError`, so
 * `axios.isCancel` works, and nothing is sent). A response that shows the credential blocked
 * rejects with `BlockedError` (`cause`: the response or `AxiosError`). A 429 on a request safe
 * to repeat is sent again by the adapter once the limiter may send, up to `maxRetries` (then
 * `RetryLimitError`, `cause`: the last `AxiosError`), so the other interceptors run once and see
 * the final answer; a wait longer than the limiter's `maxWaitMs` rejects with
 * `QuotaExhaustedError`. Other 429s reject with the `AxiosError` as axios raised it.
 * Per-request settings go in `config.rateLimit`; a `config.rateLimit.idempotencyKey` is sent
 * as the `Idempotency-Key` header unless the request has one.
 *
 * A request interceptor that runs after this one and sets another `config.adapter` takes the
 * request around the limiter: install this one last among those that choose adapters.
 * `response` and `error` pass answers through unchanged; installing them is optional.
 *
 * ```ts
 * import axios from 'axios';
 * import { createLimiter, providers } from 'rx-ratelimit';
 * import { rateLimitInterceptor } from 'rx-ratelimit/axios';
 *
 * const token = process.env['API_TOKEN'] ?? '';
 * const api = axios.create({ baseURL: 'https://api.example.com' });
 * const limiter = createLimiter({ provider: providers.generic(), key: token });
 * const i = rateLimitInterceptor(limiter, { instance: api, maxRetries: 3 });
 * api.interceptors.request.use(i.request);
 * ```
 */
export function rateLimitInterceptor(limiter: Limiter, opts: RateLimitInterceptorOptions = {}): RateLimitInterceptor {
  const maxRetries = checkMaxRetries('rateLimitInterceptor', opts.maxRetries);
  const statuses = checkStatuses('rateLimitInterceptor', opts.statuses);
  const defaultPriority = checkPriority('rateLimitInterceptor', opts.priority);
  const retryNonIdempotent = opts.retryNonIdempotent ?? false;
  const instance = opts.instance;
  /** Permits of requests in flight, for `dispose()`. */
  const live = new Set<Permit>();
  let disposed = false;

  const infoOf = (config: InternalAxiosRequestConfig): RequestInfo =>
    requestInfo({
      method: config.method ?? 'get',
      url: fullUrl(instance, config),
      priority: config.rateLimit?.priority ?? defaultPriority,
      idempotencyKey: config.rateLimit?.idempotencyKey ?? idempotencyKeyOf(config.headers),
      retry: config.rateLimit?.retry,
      cost: config.rateLimit?.cost,
    });

  /** Sends `config` through `send` under permits, retrying 429s; the raw answer is read here. */
  const gated = async (send: AxiosAdapter, config: InternalAxiosRequestConfig): Promise<AxiosResponse> => {
    const info = infoOf(config);
    const key = config.rateLimit?.idempotencyKey;
    if (key && idempotencyKeyOf(config.headers) === undefined) setHeader(config, 'Idempotency-Key', key);
    const retrying = instance !== undefined && isRetrySafe(info, retryNonIdempotent);
    for (let attempt = 1; ; attempt++) {
      const got = await acquirePermit(limiter, info, config.signal);
      // Aborted while queued: axios turns any failure of an aborted request into its own
      // CanceledError (nothing is sent).
      if (got.aborted) throw abortReason(config.signal);
      const { permit } = got;
      live.add(permit);
      let raw: unknown;
      let failed = false;
      try {
        raw = await send(config);
      } catch (error) {
        raw = error;
        failed = true;
      }
      let res: ResponseLike | undefined;
      let blocked = false;
      try {
        if (!disposed) {
          res = toResponseLike(raw);
          blocked = res !== undefined && permit.observe(res, raw).outcome === 'blocked';
        }
      } finally {
        live.delete(permit);
        permit.release();
      }
      if (blocked) throw limiter.blockedError(raw);
      if (retrying && !disposed && res !== undefined && statuses.has(res.status)) {
        const waitMs = limiter.retryDelay(info, {
          attempts: attempt,
          maxRetries,
          status: res.status,
          cause: raw,
          request: permit.request,
        });
        if (!(await sleep(limiter, waitMs, config.signal))) throw abortReason(config.signal);
        continue;
      }
      if (failed) throw raw;
      return raw as AxiosResponse;
    }
  };

  const wrap = (setting: unknown): AxiosAdapter => {
    const adapter: AxiosAdapter = async (config) => {
      const send = await resolveAdapter(setting, config, instance);
      if (disposed || config.rateLimit?.skip) return send(config);
      return gated(send, config);
    };
    OUR_ADAPTERS.add(adapter);
    return adapter;
  };

  return {
    request: async (config) => {
      if (disposed) return config;
      const current: unknown = config.adapter;
      if (!(typeof current === 'function' && OUR_ADAPTERS.has(current as AxiosAdapter))) {
        config.adapter = wrap(current ?? instance?.defaults.adapter);
      }
      return config;
    },
    response: async (response) => response,
    error: async (error) => {
      throw error;
    },
    dispose: () => {
      disposed = true;
      for (const permit of live) permit.release();
      live.clear();
    },
    wrap,
  };
}

/** Sets a request header on axios's `AxiosHeaders`, or on a plain object. */
function setHeader(config: InternalAxiosRequestConfig, name: string, value: string): void {
  const headers = config.headers as unknown as { set?: (n: string, v: string) => unknown } | undefined;
  if (typeof headers?.set === 'function') headers.set(name, value);
  else config.headers = { ...(headers as object | undefined), [name]: value } as InternalAxiosRequestConfig['headers'];
}

/**
 * What {@link attachRateLimiter} needs of an axios instance. Any axios 1.x instance fits, also
 * one whose types come from another copy or module format of axios than yours (an SDK's own
 * instance, typed from its `require`d axios).
 *
 * ```ts
 * import axios from 'axios';
 * import type { AxiosInstanceLike } from 'rx-ratelimit/axios';
 * const api: AxiosInstanceLike = axios.create();
 * ```
 */
export interface AxiosInstanceLike {
  readonly defaults: { adapter?: unknown };
  readonly interceptors: {
    readonly request: {
      /** Installs a request interceptor; returns its id. */
      use(onFulfilled: never, ...rest: never[]): number;
      /** Removes the interceptor with that id. */
      eject(id: number): void;
    };
  };
  /** The full URL of a request config (`baseURL`, `url`, `params`). */
  getUri(config?: never): string;
}

/**
 * Paces every request of an axios instance by the limiter: wraps the instance's adapter (the
 * transport, where no interceptor can hide a response or strand a permit) and installs the
 * request interceptor of {@link rateLimitInterceptor} for requests that name their own adapter,
 * with `instance` set, so 429s on requests safe to repeat are retried. Returns `detach()`,
 * which restores the adapter, ejects the interceptor and returns the permits of requests still
 * in flight.
 *
 * It works whatever interceptors the instance already has or gets later, in any order: an
 * SDK's (Pipedrive's `pipedrive` replaces each response with its body and each error with its
 * response body) or your own token refresh and signing.
 * Per-request settings go in `config.rateLimit` (`priority`, `idempotencyKey`, `retry`, `skip`).
 *
 * ```ts
 * import axios from 'axios';
 * import { createLimiter, providers } from 'rx-ratelimit';
 * import { attachRateLimiter } from 'rx-ratelimit/axios';
 *
 * const token = process.env['API_TOKEN'] ?? '';
 * const api = axios.create({ baseURL: 'https://api.example.com', headers: { Authorization: `Bearer ${token}` } });
 * const limiter = createLimiter({ provider: providers.generic(), key: token });
 * const detach = attachRateLimiter(api, limiter, { maxRetries: 3 });
 * const { data } = await api.get('/v1/deals', { rateLimit: { priority: 1 } });
 * detach();
 * ```
 */
export function attachRateLimiter(
  instance: AxiosInstance | AxiosInstanceLike,
  limiter: Limiter,
  opts: Omit<RateLimitInterceptorOptions, 'instance'> = {},
): () => void {
  const axiosInstance = instance as AxiosInstance;
  const i = rateLimitInterceptor(limiter, { ...opts, instance: axiosInstance });
  markOwnInterceptor(i.request);
  const original: unknown = axiosInstance.defaults.adapter;
  const wrapped = i.wrap(original);
  axiosInstance.defaults.adapter = wrapped;
  const requestId = axiosInstance.interceptors.request.use(i.request);
  let attached = true;
  return () => {
    if (!attached) return;
    attached = false;
    if (axiosInstance.defaults.adapter === wrapped) {
      if (original === undefined) delete axiosInstance.defaults.adapter;
      else axiosInstance.defaults.adapter = original as NonNullable<AxiosRequestConfig['adapter']>;
    }
    axiosInstance.interceptors.request.eject(requestId);
    i.dispose();
  };
}
