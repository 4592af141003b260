/**
 * `HttpService` of `@nestjs/axios` paced by a limiter (`rateLimitedHttp`) or by a pool's limiter
 * of each call's credential (`tenantHttp`). Part of `rx-ratelimit/nestjs` (`nestjs.ts`, which
 * re-exports it); `@nestjs/axios` is used through its `HttpService` type only.
 */
import type { HttpService } from '@nestjs/axios';
import type { AxiosRequestConfig, AxiosResponse } from 'axios';
import { defer, Observable, throwError } from 'rxjs';
import * as z from 'zod/mini';
import type { Limiter } from '../core/limiter.js';
import { safePath } from '../core/events.js';
import { parseOptions } from '../core/options.js';
import { LimiterPool } from '../core/pool.js';
import { checkRetryNonIdempotent, isOneShotBody, shareIdentity, type RequestInfo } from '../core/request.js';
import { checkOperator, checkReserve, maxRetriesOf } from '../operators/policies.js';
import { rateLimit, type RateLimitConfig } from '../operators/rateLimit.js';
import { withIdempotencyKey } from './axiosRequest.js';
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
 * nothing sent. An abort ends its own call only: a GET that others share goes on for them, and
 * is cancelled when the last of them has gone. A `config.rateLimit.skip` request goes straight
 * to `HttpService`.
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
  checkHttpOptions('rateLimitedHttp', options, false);
  return { limiter, ...pacedHttp(httpService, () => limiter, options) };
}

/**
 * @internal Checks the settings of a paced `HttpService` when it is made, as `rateLimit` checks
 * them when each request starts (`where`: the function they were given to): a bad one would
 * otherwise pass here and then fail every request. A misspelt name (`maxRetry`), and a `key`
 * given where no pool reads it (`tenant: false`), would leave a setting at its default without
 * a word; `retryNonIdempotent: 'false'` from the environment, `reserve: -5`, `maxRetries: -1` and
 * `statuses: [42]` would fail every request. One `TypeError` names each of them.
 */
export function checkHttpOptions(where: string, options: TenantHttpOptions, tenant = true): void {
  if (typeof options !== 'object' || options === null) throw new TypeError(`${where}: options must be an object`);
  const { priority, key, ...config } = options;
  checkAll(where, [
    () => parseOptions(where, tenant ? TENANT_HTTP_OPTIONS : HTTP_OPTIONS, options),
    () => {
      if (key !== undefined && typeof key !== 'function')
        throw new TypeError(`${where}: option \`key\` must be a function`);
    },
    () => checkPriority(where, priority),
    () => checkOperator(where, {}, config),
    () => checkRetryNonIdempotent(where, config.retryNonIdempotent),
    // Their errors name the operator that reads the option; the prefix names the call that gave it.
    ...[maxRetriesOf, checkReserve].map((check) => () => {
      try {
        check(config);
      } catch (error) {
        if (error instanceof TypeError) throw new TypeError(`${where}: ${error.message}`, { cause: error });
        throw error;
      }
    }),
  ]);
}

/** Every option of {@link RateLimitedHttpOptions} (their values are checked on their own). */
const HTTP_OPTION_SHAPE = {
  priority: z.optional(z.unknown()),
  maxRetries: z.optional(z.unknown()),
  retryNonIdempotent: z.optional(z.unknown()),
  statuses: z.optional(z.unknown()),
  extractResponse: z.optional(z.unknown()),
  reserve: z.optional(z.unknown()),
  reservePriority: z.optional(z.unknown()),
} satisfies Record<keyof RateLimitedHttpOptions, z.ZodMiniType>;
const HTTP_OPTIONS = z.strictObject(HTTP_OPTION_SHAPE);
const TENANT_HTTP_OPTIONS = z.strictObject({
  ...HTTP_OPTION_SHAPE,
  key: z.optional(z.unknown()),
} satisfies Record<keyof TenantHttpOptions, z.ZodMiniType>);

/**
 * @internal Runs every check of one call's options and throws one `TypeError` that names every
 * bad option (`where`: the call, each check's message less that prefix), rather than the first
 * only; a single failure is thrown as it is. Anything but a `TypeError` goes on at once.
 */
export function checkAll(where: string, checks: ReadonlyArray<() => void>): void {
  const errors: TypeError[] = [];
  for (const check of checks) {
    try {
      check();
    } catch (error) {
      if (!(error instanceof TypeError)) throw error;
      errors.push(error);
    }
  }
  const [first] = errors;
  if (first === undefined) return;
  if (errors.length === 1) throw first;
  const prefix = `${where}: `;
  const each = errors.map((e) => (e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message));
  throw new TypeError(`${where}: ${each.join('; ')}`, { cause: first });
}

/** Options of {@link tenantHttp}. */
export interface TenantHttpOptions extends RateLimitedHttpOptions {
  /**
   * The pool key of a call: the credential it is sent with, so the budget paced is the one the
   * provider counts, whichever tenant the code meant. Runs for each call, with the config as
   * passed (the instance's defaults are not in it). A call for which it returns `undefined` or
   * `''` fails with a `TypeError` before anything is sent.
   * @default the token itself, as `pool.get(token)` takes it, as axios will send it (the call's
   * config over the instance's defaults): the `Authorization` header less its scheme (`Bearer`,
   * `Token`, `Basic`…) or the basic credentials of `auth`, else `x-api-token`, else the
   * `api_token` query parameter; trimmed
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
 * The key is the token itself, without the `Authorization` header's scheme: `Bearer t`,
 * `bearer t` and `pool.get('t')` in other code (a job, a webhook handler) are one limiter, so a
 * pause one of them sees holds for the others; `auth: { username, password }` is the key of the
 * `Basic` header axios makes of it. It is read where axios reads it: the call's config and the
 * axios instance's defaults (`headers`, their `common` and per-method entries, `auth`,
 * `params`), the call's over the instance's. A call that gives its credential header (or
 * `api_token`) twice with different values, in two cases of the name, in `headers.common` or
 * the method's headers, as a list, or beside `auth`, fails with a `TypeError` before anything
 * is sent, as does one whose value axios would replace with a default's (a default `auth`, a
 * default header over the call's `common` one): pacing by one tenant's budget while sending
 * another's credential is what the key exists to prevent. The key is only ever shown as its
 * keyed hash.
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
  checkHttpOptions('tenantHttp', options);
  const { key, ...rest } = options;
  const pick = (cfg: AxiosRequestConfig, method: string): Limiter => {
    // The path only: the URL's query and user-info may carry a credential.
    const call = `${method.toUpperCase()} ${safePath(cfg.url) ?? ''}`.trimEnd();
    let found: unknown;
    if (key) found = key(cfg);
    else {
      const instance = httpService.axiosRef as AxiosInstanceLike | undefined;
      if (hasUserInfo(instance, cfg)) {
        throw new TypeError(
          `tenantHttp: ${call} carries a credential in its URL's user-info, which axios on Node sends in place of ` +
            'any Authorization header; give it as `auth` or a header (the call is not sent)',
        );
      }
      const read = credentialOf(instance, cfg, method);
      if (typeof read === 'object') {
        throw new TypeError(
          `tenantHttp: ${call} gives ${read.twice} twice with different values (between its config, \`auth\` and ` +
            "the axios instance's defaults); the call is not sent, so that it is never paced by one credential's " +
            'budget and sent with another',
        );
      }
      found = read;
    }
    if (typeof found !== 'string' || found === '') {
      throw new TypeError(
        `tenantHttp: no tenant key for ${call}` +
          (key
            ? ': options.key returned none'
            : ": it carries no Authorization (header or `auth`), x-api-token or api_token, in its config or the axios instance's defaults"),
      );
    }
    return pool.get(found);
  };
  return { pool, ...pacedHttp(httpService, pick, rest) };
}

/** The parts of `HttpService.axiosRef` read to find a call's credential (a mock may have none). */
interface AxiosInstanceLike {
  readonly defaults?: { readonly headers?: unknown; readonly auth?: unknown } | undefined;
  readonly getUri?: ((config: AxiosRequestConfig) => string) | undefined;
}

/**
 * A value given for a credential, and where: axios sends, of the values given in one config (the
 * call's, or the instance's defaults), `auth` over the header itself over the method's default
 * headers over `common` ones; between the two, the call's over the defaults' at the same rank.
 */
interface Given {
  readonly value: string;
  readonly rank: number;
}

const RANK_COMMON = 0;
const RANK_METHOD = 1;
const RANK_HEADER = 2;
const RANK_AUTH = 3;

/**
 * The credential a call carries, as axios will send it and as code elsewhere passes it to
 * `pool.get`: the token of its `Authorization` (the header, or the basic credentials of `auth`),
 * else `x-api-token`, else `api_token` in its URL. Each is read from the call's config and from
 * the instance's defaults (`headers`, their `common` and per-method buckets, `auth`, `params`,
 * `baseURL`), merged as axios merges them. `twice` names the one given with two different values.
 */
function credentialOf(
  instance: AxiosInstanceLike | undefined,
  config: AxiosRequestConfig,
  method: string,
): string | undefined | { readonly twice: string } {
  const m = method.toLowerCase();
  const defaults = instance?.defaults;
  // axios takes `auth` from the config, else from the defaults (a `null` one in the config means
  // none); two plain objects it merges, the call's fields over the defaults'.
  const callAuth: unknown = config.auth;
  const baseAuth: unknown = defaults?.auth;
  const ownAuth = basicAuthOf(
    isPlainObject(callAuth) && isPlainObject(baseAuth) ? { ...baseAuth, ...callAuth } : callAuth,
  );
  const defaultAuth = callAuth === undefined ? basicAuthOf(baseAuth) : [];
  // With `auth`, axios drops the `Authorization` header: one unset there (`null`) is no conflict.
  const withAuth = ownAuth.length + defaultAuth.length > 0;
  const headers = (from: unknown): Given[] =>
    headerValues(from, 'authorization', m)
      .map((g) => ({ value: withoutScheme(g.value), rank: g.rank }))
      .filter((g) => !withAuth || g.value !== '');
  const authorization = sentValue(
    [...ownAuth, ...headers(config.headers)],
    [...defaultAuth, ...headers(defaults?.headers)],
  );
  if (authorization !== undefined)
    return typeof authorization === 'object' ? { twice: 'Authorization' } : authorization;
  const apiToken = sentValue(
    headerValues(config.headers, 'x-api-token', m),
    headerValues(defaults?.headers, 'x-api-token', m),
  );
  if (apiToken !== undefined) return typeof apiToken === 'object' ? { twice: 'x-api-token' } : apiToken;
  const query = oneValue(queryValues(instance, config, 'api_token'));
  return typeof query === 'object' ? { twice: 'api_token' } : query;
}

/**
 * The one value axios sends of those the call (`own`) and the instance's defaults give: the
 * call's, unless a default of a higher rank (a default header over the call's `common` one, a
 * default `auth` over the call's header) says otherwise, which axios would send instead of what
 * the call meant: that is a conflict, as two values in one config are.
 */
function sentValue(own: readonly Given[], defaults: readonly Given[]): string | undefined | { readonly twice: true } {
  if (own.length === 0) return oneValue(defaults.map((g) => g.value));
  const mine = oneValue(own.map((g) => g.value));
  if (typeof mine === 'object') return mine;
  const top = Math.max(...own.map((g) => g.rank));
  const over = defaults.filter((g) => g.rank > top).map((g) => g.value);
  if (over.length > 0 && typeof oneValue([...over, mine ?? '']) === 'object') return { twice: true };
  return mine;
}

/**
 * The one credential among `values` (trimmed; `''` for a header unset with `null`, `false` or
 * an empty string): `undefined` when there is none, `{ twice }` when they differ.
 */
function oneValue(values: readonly string[]): string | undefined | { readonly twice: true } {
  const distinct = new Set(values.map((v) => v.trim()));
  if (distinct.size > 1) return { twice: true };
  const [only] = distinct;
  return only === '' ? undefined : only;
}

/**
 * The credentials of axios's `auth` (`{ username, password }`) as the `Authorization: Basic`
 * header axios sends for it carries them, base64 of UTF-8 `username:password` (Node's http, and
 * axios in browsers for ASCII), so that `auth` and that header are one key; none for no `auth`.
 * axios sends it in place of any `Authorization` header.
 */
function isPlainObject(value: unknown): value is Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function basicAuthOf(auth: unknown): Given[] {
  if (typeof auth !== 'object' || auth === null) return [];
  const { username, password } = auth as { username?: unknown; password?: unknown };
  // As axios joins them: a missing (or falsy) part is empty.
  const text = `${String(username || '')}:${String(password || '')}`;
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return [{ value: btoa(binary), rank: RANK_AUTH }];
}

/**
 * An `Authorization` value less its scheme: `Bearer t`, `bearer t` and `Token t` give `t`, and
 * `Basic dXNlcjpwdw==` its base64 credentials. The scheme says how the credential is sent, not
 * whose it is (and is case-insensitive, RFC 9110 §11.1); a value of one word is a bare token.
 */
function withoutScheme(value: string): string {
  return value.trim().replace(/^[\w!#$%&'*+.^`|~-]+[ \t]+(?=\S)/, '');
}

/**
 * Every value `headers` gives the header `name` (lower case) for a call of `method`, with its
 * rank: under each case of the name, in `common` and in the method's own entry (axios merges both
 * in), and each item of a list. `null`, `false` and `''` (axios sends no such header) read as
 * `''`, so that one next to a credential is a conflict; `undefined` is no value.
 */
function headerValues(headers: unknown, name: string, method: string): Given[] {
  if (typeof headers !== 'object' || headers === null) return [];
  const out: Given[] = [];
  const addOne = (value: unknown, rank: number): void => {
    if (value === null || value === false) out.push({ value: '', rank });
    else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint' || value === true)
      out.push({ value: String(value), rank });
  };
  // A list is sent as one header line per item.
  const add = (value: unknown, rank = RANK_HEADER): void => {
    if (Array.isArray(value)) for (const v of value as unknown[]) addOne(v, rank);
    else if (value !== undefined) addOne(value, rank);
  };
  if (headers instanceof Map || Array.isArray(headers)) {
    for (const e of headers as Iterable<unknown>) {
      if (!Array.isArray(e)) continue;
      const [k, v] = e as unknown[];
      if (typeof k === 'string' && k.toLowerCase() === name) add(v);
    }
    return out;
  }
  const get = (headers as { get?: unknown }).get;
  if (typeof get === 'function') {
    // AxiosHeaders and fetch's Headers hold one value per name, whatever its case.
    add((get as (n: string) => unknown).call(headers, name));
    return out;
  }
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name) add(v);
    else if ((k === 'common' || k === method) && typeof v === 'object' && v !== null && !Array.isArray(v))
      for (const [k2, v2] of Object.entries(v as object))
        if (k2.toLowerCase() === name) add(v2, k === 'common' ? RANK_COMMON : RANK_METHOD);
  }
  return out;
}

/**
 * Every value of the query parameter `name` in the URL axios sends: the instance's `getUri`
 * (`baseURL`, the URL, and the config's `params` merged over the defaults', as axios merges and
 * serializes them); without an instance (a mock), the call's `params` and URL.
 */
function queryValues(instance: AxiosInstanceLike | undefined, config: AxiosRequestConfig, name: string): string[] {
  if (instance && typeof instance.getUri === 'function') {
    let uri: string | undefined;
    try {
      uri = instance.getUri(config);
    } catch {
      // A params serializer that throws: axios fails the same way when it sends, so nothing is.
    }
    return uri === undefined ? [] : searchValues(uri, name);
  }
  const out: string[] = [];
  const params = config.params as unknown;
  if (params instanceof URLSearchParams) out.push(...params.getAll(name));
  else if (typeof params === 'object' && params !== null) {
    // A list is sent as `api_token[]=…` by axios: another parameter.
    const v = (params as Record<string, unknown>)[name];
    if (typeof v === 'string' || typeof v === 'number') out.push(String(v));
  }
  if (typeof config.url === 'string') out.push(...searchValues(config.url, name));
  return out;
}

/** Does the URL axios sends `config` to carry user-info (`https://user:token@host`)? */
function hasUserInfo(instance: AxiosInstanceLike | undefined, config: AxiosRequestConfig): boolean {
  let uri: string | undefined;
  try {
    uri = instance && typeof instance.getUri === 'function' ? instance.getUri(config) : config.url;
  } catch {
    // A params serializer that throws: axios fails the same way when it sends, so nothing is.
  }
  if (typeof uri !== 'string' || !uri.includes('@')) return false;
  try {
    const url = new URL(uri, 'http://localhost');
    return url.username !== '' || url.password !== '';
  } catch {
    return false;
  }
}

/** Every value of the query parameter `name` in `url` (none when it is not a URL). */
function searchValues(url: string, name: string): string[] {
  if (!url.includes(`${name}=`)) return [];
  try {
    return new URL(url, 'http://localhost').searchParams.getAll(name);
  } catch {
    // Not a URL: no credential in it.
    return [];
  }
}

/** The methods of a paced `HttpService`, each call's limiter chosen by `pick`. */
function pacedHttp(
  httpService: HttpService,
  pick: (config: AxiosRequestConfig, method: string) => Limiter,
  options: RateLimitedHttpOptions,
): Omit<RateLimitedHttp, 'limiter'> {
  const { priority: defaultPriority, ...config } = options;

  const gate = <T>(
    method: string,
    cfg: AxiosRequestConfig,
    send: (c: AxiosRequestConfig) => Observable<AxiosResponse<T>>,
  ): Observable<AxiosResponse<T>> => {
    const bad = rateLimitSettingsError('rateLimitedHttp', cfg.rateLimit);
    if (bad) return throwError(() => bad);
    if (cfg.rateLimit?.skip) return send(cfg);
    // The limiter is chosen at subscription (a pool's may have been evicted since the call), and
    // a call with no tenant key errors the observable, as any failed request does.
    return defer(() => gateWith(pick(cfg, method), method, cfg, send));
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
    // Its `signal` or its `cancelToken`: axios honours both, so does the wait for a permit.
    const signal = axiosCancelSignal(cfg);
    // `rateLimit` may hand this GET's answer to identical GETs of other callers: it is sent with a
    // signal of its own, so that this caller's abort leaves only this caller (below).
    const joinable = signal !== undefined && shareIdentity(info) !== undefined;
    // The limiter reads the raw answer of the transport: interceptors on `axiosRef` that
    // resolve with the body or reject with it cannot hide its status and headers.
    const gated$ = defer(() => {
      const capture = captureRaw(httpService.axiosRef as HttpService['axiosRef'] | undefined, passOn);
      return new Observable<AxiosResponse<T>>((subscriber) => {
        capture.begin();
        return (joinable ? sendForAll(send, capture.config) : send(capture.config)).subscribe(subscriber);
      }).pipe(rateLimit<AxiosResponse<T>>(limiter, info, { extractResponse: capture.extract, ...config }));
    });
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
    // The body goes in the config the limiter reads (a stream is sent once, never retried), as
    // axios itself merges it: the argument over the config's own `data`.
    post: <T, D>(url: string, data?: D, cfg: AxiosRequestConfig<D> = {}) =>
      gate<T>('post', withBody(cfg, url, data), (c) =>
        httpService.post<T, D>(url, data, strip(c) as AxiosRequestConfig<D>),
      ),
    put: <T, D>(url: string, data?: D, cfg: AxiosRequestConfig<D> = {}) =>
      gate<T>('put', withBody(cfg, url, data), (c) =>
        httpService.put<T, D>(url, data, strip(c) as AxiosRequestConfig<D>),
      ),
    patch: <T, D>(url: string, data?: D, cfg: AxiosRequestConfig<D> = {}) =>
      gate<T>('patch', withBody(cfg, url, data), (c) =>
        httpService.patch<T, D>(url, data, strip(c) as AxiosRequestConfig<D>),
      ),
  };
}

/**
 * `send(config)` for every caller who joins it: without the caller's `signal` and `cancelToken`,
 * which would cancel it under the others, and with an `AbortSignal` of its own, aborted when the
 * last of them unsubscribes (`rateLimit` unsubscribes it then) before the answer came. After the
 * answer there is nothing to cancel, and an abort would destroy a stream body being read.
 */
function sendForAll<T>(
  send: (c: AxiosRequestConfig) => Observable<AxiosResponse<T>>,
  config: AxiosRequestConfig,
): Observable<AxiosResponse<T>> {
  return new Observable<AxiosResponse<T>>((subscriber) => {
    const { signal: _signal, cancelToken: _cancelToken, ...rest } = config;
    const controller = new AbortController();
    let answered = false;
    const inner = send({ ...rest, signal: controller.signal }).subscribe({
      next: (value) => {
        answered = true;
        subscriber.next(value);
      },
      error: (error: unknown) => {
        answered = true;
        subscriber.error(error);
      },
      complete: () => subscriber.complete(),
    });
    return () => {
      inner.unsubscribe();
      if (!answered) controller.abort();
    };
  });
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
/** `cfg` with `url`, and with `data` when the call gives one (axios keeps the config's own else). */
function withBody<D>(cfg: AxiosRequestConfig<D>, url: string, data: D | undefined): AxiosRequestConfig {
  return data === undefined ? { ...cfg, url } : { ...cfg, url, data };
}

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
