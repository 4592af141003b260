/**
 * One axios request as a cold observable paced by the limiter (`rateLimitedRequest`), for RxJS
 * code. Part of `rx-ratelimit/axios` (`axios.ts`, which re-exports it).
 */
import type { AxiosInstance, AxiosRequestConfig, AxiosResponse } from 'axios';
import { defer, Observable } from 'rxjs';
import type { Limiter } from '../core/limiter.js';
import { isOneShotBody, type RequestInfo } from '../core/request.js';
import { rateLimit, type RateLimitConfig } from '../operators/rateLimit.js';
import { rateLimitSettingsError } from './axiosSettings.js';
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
   * @default config.rateLimit.shareKey, else the full URL with params; `false` for
   * `responseType: 'stream'` and for a request with `data` (axios sends a GET's body)
   */
  readonly shareKey?: RequestInfo['shareKey'];
}

/**
 * One axios request as a cold observable paced by the limiter: each subscription waits for a
 * permit, then sends the request (`rateLimit`: quota guard, throttle, retry on 429).
 *
 * Unsubscribing while queued sends nothing; unsubscribing in flight aborts the axios call
 * through an `AbortController`. A `signal` (or `cancelToken`) in `config` works the same way (queued, waiting to
 * retry or in flight) and ends the observable with axios's `CanceledError`. A 429 on a request
 * safe to repeat (GET, PUT, DELETE…, or one with an `Idempotency-Key`) is retried after the
 * limiter's resume time, up to `maxRetries` (then `RetryLimitError`, `cause`: the last
 * `AxiosError`); other 429s end with the `AxiosError` as axios raised it. The request skips
 * any interceptor installed by {@link attachRateLimiter} on the same instance, so it is not
 * gated twice. Identical GETs in flight on the limiter share one response (`rateLimit`'s
 * dedupe; and with the limiter's `cache`, a fresh one is served from memory): identical means
 * same full URL with params, the same headers (the instance's defaults and the config's) and
 * the same options (`auth`, `responseType`, agents, transforms…: every option of the config or
 * the instance but the URL's parts, signals and progress callbacks, objects and functions by
 * identity), so requests sent as different users (or with another client certificate) never
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
  const bad = rateLimitSettingsError('rateLimitedRequest', config.rateLimit);
  if (bad) throw bad;
  const defaults = axiosInstance.defaults;
  const method = (config.method ?? defaults.method ?? 'get').toLowerCase();
  const defaultHeaders = defaults.headers as unknown as Record<string, unknown> | undefined;
  // Read at each subscription, as axios reads the instance's defaults when it sends: an
  // observable made before the app changed them (another user signed in) must not be shared
  // or cached under the headers it was made with.
  const infoNow = (): RequestInfo =>
    requestInfo({
      method,
      url: fullUrl(axiosInstance, config),
      priority: priority ?? config.rateLimit?.priority,
      idempotencyKey:
        idempotencyKey ??
        config.rateLimit?.idempotencyKey ??
        idempotencyKeyOf(config.headers, defaultHeaders?.[method], defaultHeaders?.['common'], defaultHeaders),
      // A body read once (a stream) is not sent again, whatever `retry` says.
      retry: isOneShotBody(config.data) ? false : (retry ?? config.rateLimit?.retry),
      cost: config.rateLimit?.cost,
      headers: axiosRequestHeaders(axiosInstance, method, config),
      shareKey: shareKey ?? config.rateLimit?.shareKey ?? axiosShareKey(config),
    });
  // Its `signal` or its `cancelToken`: axios honours both, so does the wait for a permit.
  const signal = axiosCancelSignal(config);
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
      let answered = false;
      axiosInstance
        .request<T, AxiosResponse<T, D>, D>({
          ...(capture?.config ?? config),
          ...(headers === undefined ? {} : { headers }),
          signal: controller.signal,
          rateLimit: { ...config.rateLimit, skip: true },
        })
        .then(
          (response) => {
            answered = true;
            subscriber.next(response);
            subscriber.complete();
          },
          (error: unknown) => {
            answered = true;
            subscriber.error(error);
          },
        );
      // Only a call still in flight is aborted: once answered, an abort would destroy a body
      // the caller is still reading (`responseType: 'stream'` read 0 of its bytes).
      return () => {
        if (!answered) controller.abort();
      };
    });
  const send$ = sendOf();
  // The limiter reads the raw answer of the transport: response interceptors on the instance
  // (an SDK's that resolve with the body) cannot hide its status and headers.
  const gated$ = defer(() => {
    const capture = captureRaw(axiosInstance, config);
    return sendOf(capture).pipe(
      rateLimit<AxiosResponse<T, D>>(limiter, infoNow(), { extractResponse: capture.extract, ...rest }),
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
export function fullUrl(instance: AxiosInstance | undefined, config: AxiosRequestConfig): string | undefined {
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
