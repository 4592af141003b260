/**
 * The promise way in of `rx-ratelimit/axios`: `rateLimitInterceptor` paces every request of an
 * instance at its transport, and `attachRateLimiter` installs it. Part of `rx-ratelimit/axios`
 * (`axios.ts`, which re-exports it).
 */
import type { AxiosAdapter, AxiosInstance, AxiosRequestConfig, AxiosResponse, InternalAxiosRequestConfig } from 'axios';
import type { Limiter, Permit } from '../core/limiter.js';
import type { ResponseReading } from '../core/provider.js';
import { checkRetryNonIdempotent, isOneShotBody, isRetrySafe, type RequestInfo } from '../core/request.js';
import { discardBody, isResendable, withRetryCost } from '../core/resend.js';
import type { ResponseLike } from '../core/response.js';
import { fullUrl } from './axiosRequest.js';
import { toResponseLike } from './axiosResponse.js';
import { kindOf, rateLimitSettingsError } from './axiosSettings.js';
import { OUR_ADAPTERS, resolveAdapter } from './axiosTransport.js';
import {
  abortReason,
  acquirePermit,
  axiosCancelSignal,
  checkAll,
  checkMaxRetries,
  checkOptionNames,
  checkPriority,
  checkStatuses,
  idempotencyKeyOf,
  isLimiter,
  markOwnInterceptor,
  requestInfo,
  sleep,
} from './common.js';

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
  /**
   * Statuses to retry, whatever the provider reads. An answer the provider reads as a rate limit
   * (GitHub's rate-limit 403, Shopify's `THROTTLED` 200) is retried too. @default [429]
   */
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
 * interceptor that throws before the request is sent has taken none. A `signal` (or `cancelToken`) aborted while
 * waiting removes the request from the queue (axios rejects with its own `CanceledError`, so
 * `axios.isCancel` works, and nothing is sent). A response that shows the credential blocked
 * rejects with `BlockedError` (`cause`: the response or `AxiosError`). A 429 on a request safe
 * to repeat is sent again by the adapter once the limiter may send, up to `maxRetries` (then
 * `RetryLimitError`, `cause`: the last `AxiosError`), so the other interceptors run once and see
 * the final answer; a wait longer than the limiter's `maxWaitMs` rejects with
 * `QuotaExhaustedError`. Other 429s reject with the `AxiosError` as axios raised it. A 200
 * the provider reads as a rate limit (Shopify GraphQL's `THROTTLED`) is retried as a 429 is,
 * a POST too when the provider says the server did not run it.
 * Per-request settings go in `config.rateLimit`; a `config.rateLimit.idempotencyKey` is sent
 * as the `Idempotency-Key` header unless the request has one.
 *
 * A request interceptor that runs after this one and sets another `config.adapter` takes the
 * request around the limiter: install this one last among those that choose adapters.
 * `response` and `error` pass answers through unchanged; installing them is optional.
 *
 * The options and the limiter are checked when it is made: a name it does not take
 * (`maxRetry`), a value of the wrong type (`retryNonIdempotent: 'yes'`) or a non-limiter throws
 * one `TypeError` naming each.
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
  return interceptorOf(limiter, interceptorSettings('rateLimitInterceptor', limiter, opts));
}

/** {@link rateLimitInterceptor} with its options checked. */
function interceptorOf(limiter: Limiter, settings: InterceptorSettings): RateLimitInterceptor {
  const { maxRetries, statuses, priority: defaultPriority, retryNonIdempotent, instance } = settings;
  /** Permits of requests in flight, for `dispose()`. */
  const live = new Set<Permit>();
  let disposed = false;

  const infoOf = (config: InternalAxiosRequestConfig): RequestInfo =>
    requestInfo({
      method: config.method ?? 'get',
      url: fullUrl(instance, config),
      priority: config.rateLimit?.priority ?? defaultPriority,
      idempotencyKey: config.rateLimit?.idempotencyKey ?? idempotencyKeyOf(config.headers),
      // A body read once (a stream) is not sent again, whatever `retry` says.
      retry: isOneShotBody(config.data) ? false : config.rateLimit?.retry,
      cost: config.rateLimit?.cost,
    });

  /** Sends `config` through `send` under permits, retrying 429s; the raw answer is read here. */
  const gated = async (send: AxiosAdapter, config: InternalAxiosRequestConfig): Promise<AxiosResponse> => {
    let info = infoOf(config);
    const key = config.rateLimit?.idempotencyKey;
    if (key && idempotencyKeyOf(config.headers) === undefined) setHeader(config, 'Idempotency-Key', key);
    const safe = isRetrySafe(info, retryNonIdempotent);
    // Its `signal` or its `cancelToken`: axios honours both, so does the wait for a permit.
    const cancel = axiosCancelSignal(config);
    for (let attempt = 1; ; attempt++) {
      const got = await acquirePermit(limiter, info, cancel);
      // Aborted while queued: axios turns any failure of an aborted request into its own
      // CanceledError (nothing is sent).
      if (got.aborted) throw abortReason(cancel);
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
      let reading: ResponseReading | undefined;
      try {
        if (!disposed) {
          res = toResponseLike(raw);
          reading = res === undefined ? undefined : permit.observe(res, raw);
        }
      } finally {
        live.delete(permit);
        permit.release();
      }
      if (reading?.outcome === 'blocked') throw limiter.blockedError(raw);
      // Without the instance a retry could not go through its config: 429s are read, not retried.
      if (
        instance !== undefined &&
        !disposed &&
        res !== undefined &&
        isResendable(info, safe, statuses.has(res.status), reading)
      ) {
        const current = info;
        info = withRetryCost(current, reading, () => limiter.provider.buckets(current));
        const waitMs = limiter.retryDelay(info, {
          attempts: attempt,
          maxRetries,
          status: res.status,
          cause: raw,
          request: permit.request,
        });
        // The answer given up: a streamed body (`responseType: 'stream'`) would hold its socket.
        discardBody(raw);
        if (!(await sleep(limiter, waitMs, cancel))) throw abortReason(cancel);
        continue;
      }
      if (failed) throw raw;
      return raw as AxiosResponse;
    }
  };

  const wrap = (setting: unknown): AxiosAdapter => {
    const adapter: AxiosAdapter = async (config) => {
      const send = await resolveAdapter(setting, config, instance);
      const bad = disposed ? undefined : rateLimitSettingsError('rateLimitInterceptor', config.rateLimit);
      if (bad) throw bad;
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

/** Every name {@link RateLimitInterceptorOptions} takes. */
const OPTION_NAMES: ReadonlySet<string> = new Set<keyof RateLimitInterceptorOptions>([
  'maxRetries',
  'retryNonIdempotent',
  'statuses',
  'priority',
  'instance',
]);

/**
 * The options of {@link rateLimitInterceptor} and its limiter checked when it is made (`where`:
 * the call that was given them), as the other adapters check theirs: one `TypeError` names every
 * bad one. A misspelt name (`maxRetry`) would leave its setting at the default, a
 * `retryNonIdempotent: 'yes'` would not resend POSTs, and a non-limiter would fail every request.
 */
function interceptorSettings(where: string, limiter: unknown, opts: RateLimitInterceptorOptions) {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
    throw new TypeError(`${where}: options must be an object, got ${kindOf(opts)}`);
  }
  const [maxRetries, statuses, priority, retryNonIdempotent, instance] = checkAll(where, [
    () => checkMaxRetries(where, opts.maxRetries),
    () => checkStatuses(where, opts.statuses),
    () => checkPriority(where, opts.priority),
    () => checkRetryNonIdempotent(where, opts.retryNonIdempotent),
    () => {
      const { instance } = opts;
      if (instance !== undefined && !isAxiosInstance(instance))
        throw new TypeError(`${where}: option \`instance\` must be an axios instance`);
      return instance;
    },
    () => {
      if (!isLimiter(limiter)) throw new TypeError(`${where}: \`limiter\` must be a limiter from createLimiter()`);
    },
    () => checkOptionNames(where, opts, OPTION_NAMES),
  ]);
  return { maxRetries, statuses, priority, retryNonIdempotent, instance };
}
type InterceptorSettings = ReturnType<typeof interceptorSettings>;

/** Has `x` what the interceptors use of an axios instance? Any axios 1.x instance does. */
function isAxiosInstance(x: unknown): x is AxiosInstance {
  const i = x as Partial<AxiosInstanceLike> | null | undefined;
  return typeof i?.getUri === 'function' && typeof i.interceptors?.request?.use === 'function';
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
 * The options and the limiter are checked as {@link rateLimitInterceptor} checks them, when
 * attached: a bad one throws a `TypeError` naming it, and nothing is attached.
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
  const where = 'attachRateLimiter';
  if (!isAxiosInstance(instance)) throw new TypeError(`${where}: \`instance\` must be an axios instance`);
  const axiosInstance = instance;
  // An `instance` in `opts` (typed as the interceptor's options, they may carry one) gives way.
  const i = interceptorOf(limiter, { ...interceptorSettings(where, limiter, opts), instance: axiosInstance });
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
