/**
 * `HttpService` of `@nestjs/axios` paced by a limiter (`rateLimitedHttp`) or by a pool's limiter
 * of each call's credential (`tenantHttp`). Part of `rx-ratelimit/nestjs` (`nestjs.ts`, which
 * re-exports it); `@nestjs/axios` is used through its `HttpService` type only.
 */
import type { HttpService } from '@nestjs/axios';
import type { AxiosRequestConfig, AxiosResponse } from 'axios';
import { defer, Observable } from 'rxjs';
import type { Limiter } from '../core/limiter.js';
import { safePath } from '../core/events.js';
import { LimiterPool } from '../core/pool.js';
import { isOneShotBody, type RequestInfo } from '../core/request.js';
import { rateLimit, type RateLimitConfig } from '../operators/rateLimit.js';
import { withIdempotencyKey } from './axiosRequest.js';
import type {} from './axiosSettings.js';
import { captureRaw } from './axiosTransport.js';
import {
  axiosCancelSignal,
  axiosRequestHeaders,
  axiosShareKey,
  checkPriority,
  idempotencyKeyOf,
  listenAbort,
  requestInfo,
  resolveUrl,
} from './common.js';

/** The `HttpService` class of `@nestjs/axios` (or a subclass), as {@link RateLimitFeatureOptions.http} takes it. */
export type HttpServiceClass = abstract new (...args: never[]) => HttpService;

/**
 * Settings of {@link rateLimitedHttp}: those of the `rateLimit` operator (`maxRetries`,
 * `retryNonIdempotent`, `reserve`…) and a default priority. Per-request settings go in the
 * axios config's `rateLimit` field (`priority`, `idempotencyKey`, `retry`, `skip`), as with
 * `rx-ratelimit/axios`.
 */
export interface RateLimitedHttpOptions extends RateLimitConfig {
  /** Priority of requests that do not set `config.rateLimit.priority`. @default 0 */
  readonly priority?: number;
}

/**
 * The methods of `HttpService`, each returning `HttpService`'s own observable passed through
 * `rateLimit`. Cold like `HttpService`'s: each subscription waits for a permit, then sends.
 */
export interface RateLimitedHttp {
  /** The limiter every call goes through. */
  readonly limiter: Limiter;
  /** The wrapped service. */
  readonly httpService: HttpService;
  /** `HttpService.request`, paced (the method comes from `config.method`). */
  request<T = unknown>(config: AxiosRequestConfig): Observable<AxiosResponse<T>>;
  /** `HttpService.get`, paced; identical GETs in flight at once may share one request (`dedupe`). */
  get<T = unknown>(url: string, config?: AxiosRequestConfig): Observable<AxiosResponse<T>>;
  /** `HttpService.delete`, paced. */
  delete<T = unknown>(url: string, config?: AxiosRequestConfig): Observable<AxiosResponse<T>>;
  /** `HttpService.head`, paced. */
  head<T = unknown>(url: string, config?: AxiosRequestConfig): Observable<AxiosResponse<T>>;
  /** `HttpService.post`, paced; retried after a 429 only with an idempotency key or `retryNonIdempotent`. */
  post<T = unknown, D = unknown>(url: string, data?: D, config?: AxiosRequestConfig<D>): Observable<AxiosResponse<T>>;
  /** `HttpService.put`, paced. */
  put<T = unknown, D = unknown>(url: string, data?: D, config?: AxiosRequestConfig<D>): Observable<AxiosResponse<T>>;
  /** `HttpService.patch`, paced; retried after a 429 only with an idempotency key or `retryNonIdempotent`. */
  patch<T = unknown, D = unknown>(url: string, data?: D, config?: AxiosRequestConfig<D>): Observable<AxiosResponse<T>>;
}

/**
 * Wraps `@nestjs/axios`'s `HttpService` so that every call goes through `rateLimit(limiter,
 * { method, url })`: the daily quota guard, the throttle (wait for a permit, then subscribe to
 * `HttpService`'s observable) and the retry of 429s on requests safe to repeat. All calls
 * through the same limiter, from every service, share one budget.
 *
 * The limiter sees the full URL (`httpService.axiosRef.getUri(config)`: base URL and params),
 * the method, the priority, an `Idempotency-Key` header and the request's headers. Identical
 * GETs in flight share one response (`rateLimit`'s dedupe; with the limiter's `cache`, a fresh
 * one is served from memory): same full URL and the same headers (defaults and config) and
 * options (`auth`, `responseType`, agents, transforms…: every option of the config or the
 * instance but the URL's parts, signals and progress callbacks, objects and functions by
 * identity), so requests sent as different users never share. On an
 * `HttpService` whose axios instance has request interceptors of the app's (they may add an
 * `Authorization`), nothing is shared unless `config.rateLimit.shareKey` says so. The config
 * passed on to `HttpService` carries `rateLimit: { skip: true }`, so interceptors installed by
 * `attachRateLimiter` on the same axios instance do not gate it twice. An `AbortSignal` in the
 * config aborts a request that is still queued too: it then ends with axios's `CanceledError`,
 * nothing sent. A `config.rateLimit.skip` request goes straight to `HttpService`.
 *
 * ```ts
 * import type { HttpService } from '@nestjs/axios';
 * import { firstValueFrom } from 'rxjs';
 * import type { Limiter } from 'rx-ratelimit';
 * import { rateLimitedHttp } from 'rx-ratelimit/nestjs';
 *
 * declare const httpService: HttpService;
 * declare const limiter: Limiter;
 * const api = rateLimitedHttp(httpService, limiter, { maxRetries: 3 });
 * const res = await firstValueFrom(api.get<{ id: number }>('https://api.example.com/v1/deals/1'));
 * ```
 */
export function rateLimitedHttp(
  httpService: HttpService,
  limiter: Limiter,
  options: RateLimitedHttpOptions = {},
): RateLimitedHttp {
  return { limiter, ...pacedHttp('rateLimitedHttp', httpService, () => limiter, options) };
}

/** Options of {@link tenantHttp}. */
export interface TenantHttpOptions extends RateLimitedHttpOptions {
  /**
   * The pool key of a call: the credential it is sent with, so the budget paced is the one the
   * provider counts, whichever tenant the code meant. Runs for each call, with the config as
   * passed (the instance's default headers are not in it). A call for which it returns
   * `undefined` or `''` fails with a `TypeError` before anything is sent.
   * @default the `Authorization` header, else `x-api-token`, else the `api_token` query parameter
   */
  readonly key?: (config: AxiosRequestConfig) => string | undefined;
}

/** `HttpService` paced per tenant: each call by the pool's limiter for its credential. */
export interface TenantHttp extends Omit<RateLimitedHttp, 'limiter'> {
  /** The pool whose limiters pace the calls. */
  readonly pool: LimiterPool;
}

/**
 * Wraps `HttpService` for many tenants: each call goes through `pool.get(key)`, where `key`
 * is the credential the call carries (`options.key` to read it elsewhere), as
 * {@link rateLimitedHttp} does for one limiter. The tenant of an incoming request (a header,
 * the JWT's subject, a CLS value) picks which credential your code sends; the limiter follows
 * the credential actually sent, so two tenants sharing one token share one budget, and a
 * tenant first seen at runtime gets its limiter on its first call.
 *
 * ```ts
 * import type { HttpService } from '@nestjs/axios';
 * import { firstValueFrom } from 'rxjs';
 * import { createLimiterPool, providers } from 'rx-ratelimit';
 * import { tenantHttp } from 'rx-ratelimit/nestjs';
 *
 * declare const httpService: HttpService;
 * declare const tenantToken: string;
 * const pool = createLimiterPool({ provider: providers.pipedrive({ plan: 'advanced' }) });
 * const api = tenantHttp(httpService, pool);
 * const res = await firstValueFrom(
 *   api.get('https://api.pipedrive.com/v1/deals', { headers: { 'x-api-token': tenantToken } }),
 * );
 * ```
 */
export function tenantHttp(httpService: HttpService, pool: LimiterPool, options: TenantHttpOptions = {}): TenantHttp {
  if (!(pool instanceof LimiterPool))
    throw new TypeError('tenantHttp: `pool` must be a LimiterPool (createLimiterPool)');
  const { key, ...rest } = options;
  if (key !== undefined && typeof key !== 'function')
    throw new TypeError('tenantHttp: option `key` must be a function');
  const keyOf = key ?? credentialOf;
  const pick = (cfg: AxiosRequestConfig): Limiter => {
    const k = keyOf(cfg);
    if (typeof k !== 'string' || k === '') {
      throw new TypeError(
        // The path only: the URL's query and user-info may carry a credential (one not read as the key).
        `tenantHttp: no tenant key for ${(cfg.method ?? 'get').toUpperCase()} ${safePath(cfg.url) ?? ''}`.trimEnd() +
          (key ? ': options.key returned none' : ': it carries no Authorization, x-api-token or api_token'),
      );
    }
    return pool.get(k);
  };
  return { pool, ...pacedHttp('tenantHttp', httpService, pick, rest) };
}

/** The credential a call carries: `Authorization`, else `x-api-token`, else `api_token` in its params or URL. */
function credentialOf(config: AxiosRequestConfig): string | undefined {
  const headers = config.headers as unknown;
  const header = (name: string): string | undefined => {
    if (typeof headers !== 'object' || headers === null) return undefined;
    // A Map's `get` (and a list of pairs) knows names in one case only; axios sends any.
    if (headers instanceof Map || Array.isArray(headers)) {
      // The last of a name given twice in two cases: the one axios sends.
      let last: string | undefined;
      for (const e of headers as Iterable<unknown>) {
        if (!Array.isArray(e)) continue;
        const [k, v] = e as unknown[];
        if (typeof k === 'string' && k.toLowerCase() === name) last = typeof v === 'string' && v !== '' ? v : undefined;
      }
      return last;
    }
    const get = (headers as { get?: unknown }).get;
    if (typeof get === 'function') {
      const v: unknown = (get as (n: string) => unknown).call(headers, name);
      return typeof v === 'string' && v !== '' ? v : undefined;
    }
    for (const [k, v] of Object.entries(headers))
      if (k.toLowerCase() === name && typeof v === 'string' && v !== '') return v;
    return undefined;
  };
  const fromHeaders = header('authorization') ?? header('x-api-token');
  if (fromHeaders !== undefined) return fromHeaders;
  const params = config.params as unknown;
  if (typeof params === 'object' && params !== null) {
    const v =
      params instanceof URLSearchParams ? params.get('api_token') : (params as Record<string, unknown>)['api_token'];
    if (typeof v === 'string' && v !== '') return v;
  }
  const url = config.url;
  if (typeof url === 'string' && url.includes('api_token=')) {
    try {
      const v = new URL(url, 'http://localhost').searchParams.get('api_token');
      if (v) return v;
    } catch {
      // Not a URL: no credential in it.
    }
  }
  return undefined;
}

/** The methods of a paced `HttpService`, each call's limiter chosen by `pick`. */
function pacedHttp(
  where: string,
  httpService: HttpService,
  pick: (config: AxiosRequestConfig) => Limiter,
  options: RateLimitedHttpOptions,
): Omit<RateLimitedHttp, 'limiter'> {
  const { priority: defaultPriority, ...config } = options;
  checkPriority(where, defaultPriority);

  const gate = <T>(
    method: string,
    cfg: AxiosRequestConfig,
    send: (c: AxiosRequestConfig) => Observable<AxiosResponse<T>>,
  ): Observable<AxiosResponse<T>> => {
    if (cfg.rateLimit?.skip) return send(cfg);
    // The limiter is chosen at subscription (a pool's may have been evicted since the call), and
    // a call with no tenant key errors the observable, as any failed request does.
    return defer(() => gateWith(pick(cfg), method, cfg, send));
  };

  const gateWith = <T>(
    limiter: Limiter,
    method: string,
    cfg: AxiosRequestConfig,
    send: (c: AxiosRequestConfig) => Observable<AxiosResponse<T>>,
  ): Observable<AxiosResponse<T>> => {
    const info = infoOf(httpService, method, cfg, defaultPriority);
    const headers = idempotencyHeaders(httpService, method, cfg);
    const passOn: AxiosRequestConfig = {
      ...cfg,
      ...(headers === undefined ? {} : { headers }),
      rateLimit: { ...cfg.rateLimit, skip: true },
    };
    // The limiter reads the raw answer of the transport: interceptors on `axiosRef` that
    // resolve with the body or reject with it cannot hide its status and headers.
    const gated$ = defer(() => {
      const capture = captureRaw(httpService.axiosRef as HttpService['axiosRef'] | undefined, passOn);
      return new Observable<AxiosResponse<T>>((subscriber) => {
        capture.begin();
        return send(capture.config).subscribe(subscriber);
      }).pipe(rateLimit<AxiosResponse<T>>(limiter, info, { extractResponse: capture.extract, ...config }));
    });
    // Its `signal` or its `cancelToken`: axios honours both, so does the wait for a permit.
    const signal = axiosCancelSignal(cfg);
    if (!signal) return gated$;
    return new Observable<AxiosResponse<T>>((subscriber) => {
      const forward = {
        next: (value: AxiosResponse<T>) => subscriber.next(value),
        error: (error: unknown) => subscriber.error(error),
        complete: () => subscriber.complete(),
      };
      // Already aborted, or aborted while queued or waiting to retry: let axios end it with
      // its CanceledError (it sends nothing with an aborted signal).
      if (signal.aborted) return send(passOn).subscribe(forward);
      let inner = gated$.subscribe(forward);
      const stop = listenAbort(signal, () => {
        inner.unsubscribe();
        inner = send(passOn).subscribe(forward);
      });
      return () => {
        stop();
        inner.unsubscribe();
      };
    });
  };

  return {
    httpService,
    request: <T>(cfg: AxiosRequestConfig) =>
      gate<T>(cfg.method ?? httpService.axiosRef?.defaults?.method ?? 'get', cfg, (c) => httpService.request<T>(c)),
    get: <T>(url: string, cfg: AxiosRequestConfig = {}) =>
      gate<T>('get', { ...cfg, url }, (c) => httpService.get<T>(url, strip(c))),
    delete: <T>(url: string, cfg: AxiosRequestConfig = {}) =>
      gate<T>('delete', { ...cfg, url }, (c) => httpService.delete<T>(url, strip(c))),
    head: <T>(url: string, cfg: AxiosRequestConfig = {}) =>
      gate<T>('head', { ...cfg, url }, (c) => httpService.head<T>(url, strip(c))),
    post: <T, D>(url: string, data?: D, cfg: AxiosRequestConfig<D> = {}) =>
      gate<T>('post', { ...cfg, url }, (c) => httpService.post<T, D>(url, data, strip(c) as AxiosRequestConfig<D>)),
    put: <T, D>(url: string, data?: D, cfg: AxiosRequestConfig<D> = {}) =>
      gate<T>('put', { ...cfg, url }, (c) => httpService.put<T, D>(url, data, strip(c) as AxiosRequestConfig<D>)),
    patch: <T, D>(url: string, data?: D, cfg: AxiosRequestConfig<D> = {}) =>
      gate<T>('patch', { ...cfg, url }, (c) => httpService.patch<T, D>(url, data, strip(c) as AxiosRequestConfig<D>)),
  };
}

/** The request's headers with `Idempotency-Key` from `rateLimit.idempotencyKey`, unless it has one. */
function idempotencyHeaders(
  httpService: HttpService,
  method: string,
  config: AxiosRequestConfig,
): AxiosRequestConfig['headers'] {
  const m = method.toLowerCase();
  const defaultHeaders = (httpService.axiosRef as HttpService['axiosRef'] | undefined)?.defaults?.headers as unknown as
    Record<string, unknown> | undefined;
  return withIdempotencyKey(
    config.headers,
    config.rateLimit?.idempotencyKey,
    defaultHeaders?.[m],
    defaultHeaders?.['common'],
    defaultHeaders,
  );
}

/** The config of a shorthand call, without the `url` added to compute the limiter's info. */
function strip(config: AxiosRequestConfig): AxiosRequestConfig {
  const { url: _url, ...rest } = config;
  return rest;
}

function infoOf(
  httpService: HttpService,
  method: string,
  config: AxiosRequestConfig,
  defaultPriority: number | undefined,
): RequestInfo {
  const m = method.toLowerCase();
  const instance = httpService.axiosRef as HttpService['axiosRef'] | undefined;
  const defaults = instance?.defaults;
  const defaultHeaders = defaults?.headers as unknown as Record<string, unknown> | undefined;
  return requestInfo({
    method: m,
    url: urlOf(httpService, { ...config, method: m }),
    priority: config.rateLimit?.priority ?? defaultPriority,
    idempotencyKey:
      config.rateLimit?.idempotencyKey ??
      idempotencyKeyOf(config.headers, defaultHeaders?.[m], defaultHeaders?.['common'], defaultHeaders),
    // A body read once (a stream) is not sent again, whatever `retry` says.
    retry: isOneShotBody(config.data) ? false : config.rateLimit?.retry,
    cost: config.rateLimit?.cost,
    headers: axiosRequestHeaders(instance, m, config),
    shareKey: config.rateLimit?.shareKey ?? axiosShareKey(config),
  });
}

/** The full URL, params included; the bare URL when there is no axios instance (a mock). */
function urlOf(httpService: HttpService, config: AxiosRequestConfig): string | undefined {
  const instance = httpService.axiosRef as HttpService['axiosRef'] | undefined;
  if (instance && typeof instance.getUri === 'function') {
    try {
      return instance.getUri(config) || undefined;
    } catch {
      // A params serializer that throws: axios fails the same way when it sends.
    }
  }
  return resolveUrl(config.baseURL ?? instance?.defaults?.baseURL, config.url);
}
