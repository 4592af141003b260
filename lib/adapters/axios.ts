/**
 * `rx-ratelimit/axios`: paces axios calls by the limiter, either as cold observables for RxJS
 * code ({@link rateLimitedRequest}) or as interceptors for code that only uses promises
 * ({@link attachRateLimiter}). Only types are imported from axios: this module adds nothing to
 * a bundle that does not already contain axios, and works with whichever copy the app uses.
 */
import type {
  AxiosAdapter,
  AxiosError,
  AxiosInstance,
  AxiosRequestConfig,
  AxiosResponse,
  InternalAxiosRequestConfig,
} from 'axios';
import { Observable } from 'rxjs';
import type { Limiter, Permit } from '../core/limiter.js';
import { isRetrySafe, type RequestInfo } from '../core/request.js';
import { responseLike, type ResponseLike } from '../core/response.js';
import { rateLimit, type RateLimitConfig } from '../operators/rateLimit.js';
import {
  acquirePermit,
  checkMaxRetries,
  checkPriority,
  checkStatuses,
  decodeBytes,
  axiosRequestHeaders,
  idempotencyKeyOf,
  listenAbort,
  markOwnInterceptor,
  parseText,
  requestInfo,
  resolveUrl,
  sleep,
} from './shared.js';

/**
 * Per-request settings, given as `rateLimit` in an axios request config and read by the
 * interceptors of {@link attachRateLimiter}. All optional. Importing `rx-ratelimit/axios` adds
 * the field to axios's `AxiosRequestConfig` type.
 *
 * ```ts
 * import type { AxiosRequestRateLimit } from 'rx-ratelimit/axios';
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
 * (arrays) are joined with `", "`. The body is `response.data` when axios parsed it; a JSON
 * string (a `responseType: 'text'` call, a failed parse) is parsed when the content type says
 * JSON; small `ArrayBuffer`/`Buffer` bodies are decoded the same way; streams and blobs are left
 * out (the adapter never consumes a body the caller will read).
 *
 * ```ts
 * import { toResponseLike } from 'rx-ratelimit/axios';
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
  const body = bodyOf(r.data, res.header('content-type'));
  return body === undefined ? res : responseLike(r.status, r.headers as Parameters<typeof responseLike>[1], body);
}

function bodyOf(data: unknown, contentType: string | undefined): unknown {
  if (data === undefined || data === null) return undefined;
  if (typeof data === 'string') return parseText(data, contentType);
  if (typeof data !== 'object') return data;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
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

/**
 * Settings of {@link rateLimitedRequest}: what the limiter should know of the request, and
 * the settings of the `rateLimit` operator (`maxRetries`, `retryNonIdempotent`, `reserve`…).
 *
 * ```ts
 * import { rateLimitedRequest, type RateLimitedRequestOptions } from 'rx-ratelimit/axios';
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
    headers: axiosRequestHeaders(axiosInstance, method, config),
    // A stream can be read once: never hand the same one to two subscribers.
    shareKey: shareKey ?? config.rateLimit?.shareKey ?? (config.responseType === 'stream' ? false : undefined),
  });
  const signal = config.signal;
  const send$ = new Observable<AxiosResponse<T, D>>((subscriber) => {
    const controller = new AbortController();
    // Already aborted: axios rejects with its CanceledError before sending anything.
    if (signal?.aborted) controller.abort();
    axiosInstance
      .request<T, AxiosResponse<T, D>, D>({
        ...config,
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
  const gated$ = send$.pipe(
    rateLimit<AxiosResponse<T, D>>(limiter, info, { extractResponse: toResponseLike, ...rest }),
  );
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
 * import { attachRateLimiter, type RateLimitInterceptorOptions } from 'rx-ratelimit/axios';
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
   * The instance the interceptors are installed on; a retry is re-issued through it, so it
   * waits for a new permit. Without it 429s are read (every request slows down) but not retried.
   * {@link attachRateLimiter} sets it.
   */
  readonly instance?: AxiosInstance;
}

/**
 * The three interceptor functions of {@link rateLimitInterceptor}, and a clean-up.
 *
 * ```ts
 * import { rateLimitInterceptor, type RateLimitInterceptor } from 'rx-ratelimit/axios';
 * const i: RateLimitInterceptor = rateLimitInterceptor(limiter, { instance: api });
 * const id = api.interceptors.request.use(i.request);
 * ```
 */
export interface RateLimitInterceptor {
  /** Request interceptor: waits for a permit (`interceptors.request.use(i.request)`). */
  readonly request: (config: InternalAxiosRequestConfig) => Promise<InternalAxiosRequestConfig>;
  /** Response interceptor, fulfilled side (`interceptors.response.use(i.response, i.error)`). */
  readonly response: (response: AxiosResponse) => Promise<AxiosResponse>;
  /** Response interceptor, rejected side. */
  readonly error: (error: unknown) => Promise<AxiosResponse>;
  /**
   * Returns the permits of requests still in flight; requests still queued go when admitted
   * but are no longer read. Call it after ejecting the interceptors (`detach()` does both).
   */
  readonly dispose: () => void;
}

/** One request between the request and the response interceptor. */
interface InFlight {
  readonly permit: Permit;
  readonly info: RequestInfo;
  readonly attempt: number;
}

/** Attempt number of a retried request; a string key, since axios's config merge drops symbols. */
const ATTEMPT = '__rxRateLimitAttempt';
type WithAttempt = { [ATTEMPT]?: number };

/**
 * Interceptor functions that pace every request of an axios instance by the limiter, for code
 * that does not use RxJS. Most apps call {@link attachRateLimiter} instead.
 *
 * The request interceptor waits for a permit (a `signal` aborted while waiting removes the
 * request from the queue; axios then rejects with its own `CanceledError`, so `axios.isCancel`
 * works, and nothing is sent). The response interceptors feed the response, or the error's
 * response, to the limiter and return the permit. A response that shows the credential
 * blocked rejects with `BlockedError` (`cause`: the response or `AxiosError`). A 429 on a
 * request safe to repeat is sent again through `instance` once the limiter may send, up to
 * `maxRetries` (then `RetryLimitError`, `cause`: the last `AxiosError`); a wait longer than
 * the limiter's `maxWaitMs` rejects with `QuotaExhaustedError`. Other 429s reject with the
 * `AxiosError` as axios raised it. Per-request settings go in `config.rateLimit`.
 *
 * Install it so that it runs right before the request is sent (with axios's default ordering,
 * request interceptors added later run earlier: add this one first). A request interceptor
 * that runs after it and throws, or a response interceptor before it that replaces the
 * `AxiosError` with an error that has no `config`, would keep the request's permit until
 * `dispose()`. A custom adapter (a function) is wrapped so that its errors and responses are
 * always traced back to their request.
 *
 * ```ts
 * import axios from 'axios';
 * import { createLimiter, providers } from 'rx-ratelimit';
 * import { rateLimitInterceptor } from 'rx-ratelimit/axios';
 *
 * const api = axios.create({ baseURL: 'https://api.example.com' });
 * const limiter = createLimiter({ provider: providers.generic(), key: token });
 * const i = rateLimitInterceptor(limiter, { instance: api, maxRetries: 3 });
 * api.interceptors.request.use(i.request);
 * api.interceptors.response.use(i.response, i.error);
 * ```
 */
export function rateLimitInterceptor(limiter: Limiter, opts: RateLimitInterceptorOptions = {}): RateLimitInterceptor {
  const maxRetries = checkMaxRetries('rateLimitInterceptor', opts.maxRetries);
  const statuses = checkStatuses('rateLimitInterceptor', opts.statuses);
  const defaultPriority = checkPriority('rateLimitInterceptor', opts.priority);
  const retryNonIdempotent = opts.retryNonIdempotent ?? false;
  const instance = opts.instance;
  // Per request: keyed by the config object axios hands from the request interceptor to the
  // adapter and on to `response.config` / `error.config`.
  const inFlight = new WeakMap<object, InFlight>();
  const live = new Set<InFlight>();
  /** Custom adapters we wrapped, to their originals (a retried config must not wrap twice). */
  const originals = new WeakMap<AxiosAdapter, AxiosAdapter>();
  let disposed = false;

  const infoOf = (config: InternalAxiosRequestConfig): RequestInfo =>
    requestInfo({
      method: config.method ?? 'get',
      url: fullUrl(instance, config),
      priority: config.rateLimit?.priority ?? defaultPriority,
      idempotencyKey: config.rateLimit?.idempotencyKey ?? idempotencyKeyOf(config.headers),
      retry: config.rateLimit?.retry,
    });

  /** Reads the response, returns the permit; the request's state, if the limiter gated it. */
  const settle = (
    config: unknown,
    raw: unknown,
    known?: InFlight,
  ): { state: InFlight; res: ResponseLike | undefined; blocked: boolean } | undefined => {
    if (typeof config !== 'object' || config === null) return undefined;
    const state = known ?? inFlight.get(config);
    if (!state) return undefined;
    inFlight.delete(config);
    live.delete(state);
    const res = toResponseLike(raw);
    const blocked = res !== undefined && state.permit.observe(res, raw).outcome === 'blocked';
    state.permit.release();
    return { state, res, blocked };
  };

  /**
   * A custom adapter may answer or fail with another `config` object than the one it was
   * given, or none (a plain `Error`): the response interceptors could not find the request,
   * and its permit would never return. Follow the answer's config, or settle here.
   */
  const trace = (config: object, raw: unknown): void => {
    const state = inFlight.get(config);
    const other = typeof raw === 'object' && raw !== null ? (raw as { config?: unknown }).config : undefined;
    if (!state || other === config) return;
    inFlight.delete(config);
    if (typeof other === 'object' && other !== null) inFlight.set(other, state);
    else settle(config, raw, state);
  };

  const wrapAdapter = (config: InternalAxiosRequestConfig): void => {
    const adapter = config.adapter;
    if (typeof adapter !== 'function') return;
    const original = originals.get(adapter) ?? adapter;
    const wrapped: AxiosAdapter = async (c) => {
      try {
        const response = await original(c);
        trace(c, response);
        return response;
      } catch (error) {
        trace(c, error);
        throw error;
      }
    };
    originals.set(wrapped, original);
    config.adapter = wrapped;
  };

  /** Sends a 429'd request again after the limiter's wait, or says why not. */
  const retryOrFail = async (
    config: InternalAxiosRequestConfig,
    state: InFlight,
    status: number,
    raw: unknown,
  ): Promise<AxiosResponse | undefined> => {
    if (!instance || !statuses.has(status) || !isRetrySafe(state.info, retryNonIdempotent)) return undefined;
    const waitMs = limiter.retryDelay(state.info, state.attempt, maxRetries, status, raw, state.permit.request);
    // An abort during the wait sends the retry at once: the request interceptor sees the
    // aborted signal and axios rejects with its CanceledError without sending.
    await sleep(limiter, waitMs, config.signal);
    const next: InternalAxiosRequestConfig & WithAttempt = { ...config, [ATTEMPT]: state.attempt + 1 };
    return instance.request(next);
  };

  return {
    request: async (config) => {
      if (disposed || config.rateLimit?.skip) return config;
      const info = infoOf(config);
      const got = await acquirePermit(limiter, info, config.signal);
      // Aborted while queued: let axios reject with its own CanceledError (nothing is sent).
      if (got.aborted) return config;
      if (disposed) {
        got.permit.release();
        return config;
      }
      const state: InFlight = { permit: got.permit, info, attempt: (config as WithAttempt)[ATTEMPT] ?? 1 };
      inFlight.set(config, state);
      live.add(state);
      wrapAdapter(config);
      return config;
    },

    response: async (response) => {
      const done = settle(response.config, response);
      if (!done) return response;
      if (done.blocked) throw limiter.blockedError(response);
      // A 429 that `validateStatus` let through.
      const retried = await retryOrFail(response.config, done.state, response.status, response);
      return retried ?? response;
    },

    error: async (error) => {
      const config = (error as Partial<AxiosError> | null)?.config;
      const done = settle(config, error);
      if (!done || !config) throw error;
      if (done.blocked) throw limiter.blockedError(error);
      if (done.res) {
        const retried = await retryOrFail(config, done.state, done.res.status, error);
        if (retried) return retried;
      }
      throw error;
    },

    dispose: () => {
      disposed = true;
      for (const state of live) state.permit.release();
      live.clear();
    },
  };
}

/**
 * Paces every request of an axios instance by the limiter: installs the interceptors of
 * {@link rateLimitInterceptor} (with `instance` set, so 429s on requests safe to repeat are
 * retried) and returns `detach()`, which ejects them and returns the permits of requests
 * still in flight.
 *
 * Attach it before adding other request interceptors that may be slow or throw (token
 * refresh, signing): with axios's default ordering, request interceptors added later run
 * earlier, so the limiter then runs last, right before the request is sent.
 * Per-request settings go in `config.rateLimit` (`priority`, `idempotencyKey`, `retry`, `skip`).
 *
 * ```ts
 * import axios from 'axios';
 * import { createLimiter, providers } from 'rx-ratelimit';
 * import { attachRateLimiter } from 'rx-ratelimit/axios';
 *
 * const api = axios.create({ baseURL: 'https://api.example.com', headers: { Authorization: `Bearer ${token}` } });
 * const limiter = createLimiter({ provider: providers.generic(), key: token });
 * const detach = attachRateLimiter(api, limiter, { maxRetries: 3 });
 * const { data } = await api.get('/v1/deals', { rateLimit: { priority: 1 } });
 * detach();
 * ```
 */
export function attachRateLimiter(
  axiosInstance: AxiosInstance,
  limiter: Limiter,
  opts: Omit<RateLimitInterceptorOptions, 'instance'> = {},
): () => void {
  const i = rateLimitInterceptor(limiter, { ...opts, instance: axiosInstance });
  markOwnInterceptor(i.request);
  const requestId = axiosInstance.interceptors.request.use(i.request);
  const responseId = axiosInstance.interceptors.response.use(i.response, i.error);
  let attached = true;
  return () => {
    if (!attached) return;
    attached = false;
    axiosInstance.interceptors.request.eject(requestId);
    axiosInstance.interceptors.response.eject(responseId);
    i.dispose();
  };
}
