/**
 * The interceptor of `rx-ratelimit/angular` (`rateLimitInterceptor`), the Angular response
 * extractor, and the record and replay of a server render's responses. The entry point is
 * `angular.ts`, which re-exports this file with the DI providers and the status signal.
 */
import {
  HttpContextToken,
  HttpErrorResponse,
  HttpEventType,
  HttpResponse,
  type HttpEvent,
  type HttpHandlerFn,
  type HttpHeaders,
  type HttpInterceptorFn,
  type HttpRequest,
} from '@angular/common/http';
import { inject, PLATFORM_ID, REQUEST } from '@angular/core';
import { Observable, tap } from 'rxjs';
import type { Limiter } from '../core/limiter.js';
import type { RequestHeaders, RequestInfo } from '../core/request.js';
import { extractResponse, responseLike, type ResponseExtractor, type ResponseLike } from '../core/response.js';
import { rateLimit, type RateLimitConfig } from '../operators/rateLimit.js';
import { checkMaxRetries, checkPriority, checkStatuses, idempotencyKeyOf, isLimiter, requestInfo } from './common.js';

// ---------------------------------------------------------------------------------------------
// Per-request options

/**
 * Priority of one request among those waiting on its limiter; higher goes first, equal
 * priorities keep their order. Unset: the interceptor's `priority` option (default 0).
 *
 * ```ts
 * import { HttpContext } from '@angular/common/http';
 * import { RATE_LIMIT_PRIORITY } from 'rx-ratelimit/angular';
 * const context = new HttpContext().set(RATE_LIMIT_PRIORITY, 10);
 * // http.get(url, { context })
 * ```
 */
export const RATE_LIMIT_PRIORITY = new HttpContextToken<number | undefined>(() => undefined);

/**
 * Force (`true`) or forbid (`false`) retrying this request after a 429, whatever its method.
 * Unset, idempotent methods (GET, HEAD, PUT, DELETE…) and requests with an `Idempotency-Key`
 * header are retried, POST and PATCH are not (unless the option `retryNonIdempotent`).
 *
 * ```ts
 * import { HttpContext } from '@angular/common/http';
 * import { RATE_LIMIT_RETRY } from 'rx-ratelimit/angular';
 * // This POST is safe to repeat: the API ignores duplicates.
 * const context = new HttpContext().set(RATE_LIMIT_RETRY, true);
 * ```
 */
export const RATE_LIMIT_RETRY = new HttpContextToken<boolean | undefined>(() => undefined);

/**
 * Units of its buckets this request takes: a number, or per bucket name (see
 * `RequestInfo.cost`). Unset: what the provider says, else 1.
 *
 * ```ts
 * import { HttpContext } from '@angular/common/http';
 * import { RATE_LIMIT_COST } from 'rx-ratelimit/angular';
 * // A GraphQL mutation: 5 of GitHub's secondary points.
 * const context = new HttpContext().set(RATE_LIMIT_COST, { 'points:graphql': 5 });
 * ```
 */
export const RATE_LIMIT_COST = new HttpContextToken<number | Readonly<Record<string, number>> | undefined>(
  () => undefined,
);

/**
 * `true` sends the request around the limiter, untouched: not queued, not counted, its
 * response not read. @default false
 *
 * ```ts
 * import { HttpContext } from '@angular/common/http';
 * import { RATE_LIMIT_SKIP } from 'rx-ratelimit/angular';
 * const context = new HttpContext().set(RATE_LIMIT_SKIP, true);
 * ```
 */
export const RATE_LIMIT_SKIP = new HttpContextToken<boolean>(() => false);

/**
 * What makes this GET/HEAD "identical" to others for in-flight sharing and the limiter's cache,
 * in place of its URL (its headers still count: requests sent as different users never
 * share); `false` never shares it. Unset: the URL with params.
 *
 * ```ts
 * import { HttpContext } from '@angular/common/http';
 * import { RATE_LIMIT_SHARE_KEY } from 'rx-ratelimit/angular';
 * // Always fetch this one afresh.
 * const context = new HttpContext().set(RATE_LIMIT_SHARE_KEY, false);
 * ```
 */
export const RATE_LIMIT_SHARE_KEY = new HttpContextToken<string | false | undefined>(() => undefined);

// ---------------------------------------------------------------------------------------------
// Options

/** Picks the limiter of a request; `undefined` lets the request through untouched. */
export type LimiterSelector = (req: HttpRequest<unknown>) => Limiter | undefined;

/**
 * What {@link RateLimitInterceptorOptions.onMissingHeaders} receives, once per limiter, when
 * the API's responses carry none of the rate-limit headers its provider reads. Carries the key
 * label, never the credential.
 */
export interface MissingHeadersReport {
  /** Host (with port if any) of the last such response's request; `''` when unknown. */
  readonly host: string;
  /** The limiter's provider, e.g. `'pipedrive'`. */
  readonly provider: string;
  /** The limiter's key label (a hash), never the key. */
  readonly key: string;
  /** Successful responses in a row, before any with limit headers, that had none. */
  readonly responses: number;
  /** The header names the provider looked for (lower case), and `retry-after`. */
  readonly expected: readonly string[];
  /** The header names the response did show (lower case). */
  readonly visible: readonly string[];
  /**
   * `true` when the response showed only CORS-safelisted headers (`content-type`,
   * `content-length`, `cache-control`…): what a browser shows of a cross-origin response whose
   * API sends no `Access-Control-Expose-Headers`.
   */
  readonly likelyCors: boolean;
  /** One line for a log: the host, the provider, the headers and what to do. */
  readonly message: string;
}

/** Options of {@link rateLimitInterceptor}; `limiters` is required. */
export interface RateLimitInterceptorOptions extends Omit<RateLimitConfig, 'extractResponse'> {
  /**
   * The limiter of each request: a record by host (`'api.pipedrive.com'`, or with the port,
   * `'localhost:8080'`, tried first), or a function of the request. Requests with no limiter
   * pass through untouched.
   */
  readonly limiters: Readonly<Record<string, Limiter>> | LimiterSelector;
  /** Priority of requests that do not set {@link RATE_LIMIT_PRIORITY}. @default 0 */
  readonly priority?: number;
  /**
   * Called once per limiter when `missingHeadersAfter` successful responses in a row carried
   * none of the limit headers its provider reads (typically a browser hiding them across
   * origins). `false` turns the check off.
   * @default `console.warn(report.message)`
   */
  readonly onMissingHeaders?: ((report: MissingHeadersReport) => void) | false;
  /** Successful responses without limit headers before `onMissingHeaders` is called. @default 3 */
  readonly missingHeadersAfter?: number;
  /**
   * Called once per origin when a request to it fails with status 0 in a browser: most often
   * the browser refused the response because the API sent no `Access-Control-Allow-Origin` for
   * this page's origin. The API has received (and counted) the request all the same. `false`
   * turns the check off.
   * @default `console.warn(report.message)`
   */
  readonly onCorsBlocked?: ((report: CorsBlockedReport) => void) | false;
  /**
   * Base URL against which relative request URLs are resolved to find their host.
   * @default `location.href` in a browser; under SSR the incoming request's URL (Angular's
   * `REQUEST` token); a relative URL that still has no host is sent around the limiter, with a
   * warning once
   */
  readonly baseUrl?: string;
}

/**
 * What {@link RateLimitInterceptorOptions.onCorsBlocked} receives, once per origin, when a
 * request through a limiter failed with status 0 in a browser.
 */
export interface CorsBlockedReport {
  /** Origin of the API the request went to, e.g. `'https://api.pipedrive.com'`. */
  readonly origin: string;
  /** Origin of the page: `location.origin`, or the `baseUrl` option's. */
  readonly pageOrigin: string;
  /** The limiter's provider, e.g. `'pipedrive'`. */
  readonly provider: string;
  /** The limiter's key label (a hash), never the key. */
  readonly key: string;
  /** One line for a log: what happened and what to do. */
  readonly message: string;
}

// ---------------------------------------------------------------------------------------------
// Responses

/**
 * Reads Angular's `HttpResponse` and `HttpErrorResponse` as the limiter's `ResponseLike`
 * (headers by case-insensitive name, repeated ones joined with `", "`; the body of a response,
 * the `error` body of an error). An `HttpErrorResponse` with status 0 (no answer: network
 * error, CORS refusal) and the other `HttpEvent`s (`Sent`, progress, `ResponseHeader`) carry
 * no complete response: `undefined`. Anything else goes to the default `extractResponse`.
 *
 * ```ts
 * import { HttpErrorResponse, HttpHeaders } from '@angular/common/http';
 * import { extractAngularResponse } from 'rx-ratelimit/angular';
 *
 * const error = new HttpErrorResponse({ status: 429, headers: new HttpHeaders({ 'Retry-After': '2' }) });
 * extractAngularResponse(error)?.header('retry-after'); // '2'
 * ```
 */
export const extractAngularResponse: ResponseExtractor = (x) => {
  if (x instanceof HttpResponse) return toResponseLike(x.status, x.headers, x.body);
  if (x instanceof HttpErrorResponse) return x.status > 0 ? toResponseLike(x.status, x.headers, x.error) : undefined;
  if (isPartialEvent(x)) return undefined;
  return extractResponse(x);
};

function toResponseLike(status: number, headers: HttpHeaders, body: unknown): ResponseLike {
  // `HttpHeaders.get` returns the first value only; an XHR response may carry several.
  const get = (name: string): string | null => headers.getAll(name)?.join(', ') ?? null;
  return responseLike(status, { get }, body === null ? undefined : body);
}

/** An Angular `HttpEvent` that is not a full response: `{ type: HttpEventType.Sent }` and the like. */
function isPartialEvent(x: unknown): boolean {
  if (typeof x !== 'object' || x === null) return false;
  const type = (x as { type?: unknown }).type;
  return typeof type === 'number' && type !== (HttpEventType.Response as number);
}

// ---------------------------------------------------------------------------------------------
// Missing headers

/** Response headers a browser shows across origins without `Access-Control-Expose-Headers`. */
const CORS_SAFELISTED: ReadonlySet<string> = new Set([
  'cache-control',
  'content-language',
  'content-length',
  'content-type',
  'expires',
  'last-modified',
  'pragma',
]);

/** Per limiter (whichever interceptor it is used by): responses without numbers so far, or settled. */
const headerChecks = new WeakMap<Limiter, { blind: number; done: boolean }>();

/**
 * Reads a successful response with the limiter's provider, noting which headers it looks
 * for. Reports once per limiter when `after` of them in a row, before any response with
 * numbers, had none.
 */
function checkHeaders(
  limiter: Limiter,
  response: HttpResponse<unknown>,
  info: RequestInfo,
  host: string,
  after: number,
  report: (r: MissingHeadersReport) => void,
): void {
  let check = headerChecks.get(limiter);
  if (!check) headerChecks.set(limiter, (check = { blind: 0, done: false }));
  if (check.done || response.status < 200 || response.status >= 300) return;
  const res = toResponseLike(response.status, response.headers, response.body);
  const asked = new Set<string>();
  const recording: ResponseLike = {
    status: res.status,
    body: res.body,
    header: (name) => {
      asked.add(name.toLowerCase());
      return res.header(name);
    },
  };
  let found: boolean;
  try {
    found = limiter.provider.read(recording, info).buckets.length > 0;
  } catch {
    // A user-defined provider that throws is read as "says nothing", as the limiter does.
    found = false;
  }
  if (found) {
    check.done = true;
    return;
  }
  if (++check.blind < after) return;
  check.done = true;
  // Headers the provider reads for writes only (Pipedrive's `x-daily-requests-left` for POST and
  // PUT) must be exposed too, though this response, to a read, did not need them.
  try {
    limiter.provider.read(recording, { ...info, method: 'POST' });
  } catch {
    // As above: nothing more to learn.
  }
  asked.add('retry-after');
  const expected = [...asked];
  const visible = response.headers.keys().map((k) => k.toLowerCase());
  const likelyCors = visible.every((name) => CORS_SAFELISTED.has(name));
  const where = host ? `from ${host}` : 'from this API';
  const why = likelyCors
    ? `Only CORS-safelisted headers were visible (${visible.join(', ') || 'none'}): a browser calling another ` +
      'origin hides the rest unless the API sends'
    : 'Either the API does not send them, or a proxy drops them; across origins, a browser also hides them unless the API sends';
  report({
    host,
    provider: limiter.provider.name,
    key: limiter.key,
    responses: check.blind,
    expected,
    visible,
    likelyCors,
    message:
      `rx-ratelimit: ${check.blind} responses ${where} carried none of the rate-limit headers the ` +
      `"${limiter.provider.name}" limiter (key ${limiter.key}) reads, so it paces by the documented hints ` +
      `and learns of the limit only from 429s. ${why} "Access-Control-Expose-Headers: ${expected.join(', ')}".`,
  });
}

// ---------------------------------------------------------------------------------------------
// The interceptor

/**
 * A functional `HttpInterceptorFn` that sends each request through its limiter with
 * `rateLimit`: it waits for a permit (by priority), reads the `HttpResponse` or
 * `HttpErrorResponse` headers back into the limiter, and on a 429 waits as long as the
 * limiter says and sends the request again when that is safe (see {@link RATE_LIMIT_RETRY}).
 * All requests through one limiter, from every component and service, share one budget.
 *
 * - Errors it raises are the library's: `QuotaExhaustedError` (a wait past `maxWaitMs`, a
 *   spent daily budget), `BlockedError`, `RetryLimitError` (`cause`: the last
 *   `HttpErrorResponse`), `QueueFullError`. A 429 that is not retried, and every other error
 *   (a network error included), reaches the caller as the `HttpErrorResponse` it was.
 * - Unsubscribing from a waiting request removes it from the queue: nothing is sent.
 * - Identical GET/HEAD requests in flight at once (same URL, every header, response type and
 *   credentials mode) are sent once and shared, unless the limiter has `dedupe: false` or the
 *   request sets {@link RATE_LIMIT_SHARE_KEY} to `false`; requests sent as different users
 *   never are. Headers added by interceptors after this one are not seen: put the one that adds
 *   credentials before it.
 * - The interceptors after this one, and the backend, run once the permit is granted, and
 *   again for each retry. Put this one last so that slow interceptors (token refresh) run
 *   before a permit is taken, not while holding it.
 *
 * ```ts
 * import { provideHttpClient, withFetch, withInterceptors } from '@angular/common/http';
 * import { createLimiter, providers } from 'rx-ratelimit';
 * import { rateLimitInterceptor } from 'rx-ratelimit/angular';
 *
 * const procore = createLimiter({ provider: providers.procore(), key: 'company-7' });
 * export const httpProviders = [
 *   provideHttpClient(
 *     withFetch(),
 *     withInterceptors([
 *       rateLimitInterceptor({
 *         limiters: (req) => (req.url.startsWith('https://api.procore.com/') ? procore : undefined),
 *         maxRetries: 3,
 *       }),
 *     ]),
 *   ),
 * ];
 * ```
 */
export function rateLimitInterceptor(options: RateLimitInterceptorOptions): HttpInterceptorFn {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('rateLimitInterceptor: options must be an object with `limiters`');
  }
  const { limiters, ...rest } = options;
  return buildInterceptor('rateLimitInterceptor', rest, selector(limiters), typeof limiters !== 'function');
}

/** @internal The interceptor of {@link rateLimitInterceptor}, its limiter chosen by `select`. */
export function buildInterceptor(
  name: string,
  options: Omit<RateLimitInterceptorOptions, 'limiters'>,
  select: (req: HttpRequest<unknown>, url: URL | undefined) => Limiter | undefined,
  byHost: boolean,
): HttpInterceptorFn {
  const {
    priority,
    onMissingHeaders,
    onCorsBlocked,
    missingHeadersAfter = 3,
    baseUrl,
    ...config
  }: Omit<RateLimitInterceptorOptions, 'limiters'> = options;
  checkPriority(name, priority);
  checkMaxRetries(name, config.maxRetries);
  checkStatuses(name, config.statuses);
  if (!Number.isInteger(missingHeadersAfter) || missingHeadersAfter < 1) {
    throw new TypeError(
      `${name}: option \`missingHeadersAfter\` must be a whole number >= 1, got ${String(missingHeadersAfter)}`,
    );
  }
  if (onMissingHeaders !== undefined && onMissingHeaders !== false && typeof onMissingHeaders !== 'function') {
    throw new TypeError(`${name}: option \`onMissingHeaders\` must be a function or false`);
  }
  if (onCorsBlocked !== undefined && onCorsBlocked !== false && typeof onCorsBlocked !== 'function') {
    throw new TypeError(`${name}: option \`onCorsBlocked\` must be a function or false`);
  }
  if (baseUrl !== undefined && (typeof baseUrl !== 'string' || !URL.canParse(baseUrl))) {
    throw new TypeError(`${name}: option \`baseUrl\` must be an absolute URL`);
  }
  const report = onMissingHeaders ?? ((r: MissingHeadersReport) => console.warn(r.message));
  const corsReport = onCorsBlocked ?? ((r: CorsBlockedReport) => console.warn(r.message));
  const rlConfig: RateLimitConfig = {
    ...config,
    extractResponse: (x) => (notFromNetwork.has(x as object) ? undefined : extractAngularResponse(x)),
  };
  let warnedRelative = false;

  return (req: HttpRequest<unknown>, next: HttpHandlerFn): Observable<HttpEvent<unknown>> => {
    if (req.context.get(RATE_LIMIT_SKIP)) return next(req);
    const server = onServer();
    const url = parseUrl(req.urlWithParams, baseUrl ?? (server ? incomingRequestUrl() : undefined));
    if (!url && byHost && !warnedRelative && !/^[a-z][a-z0-9+.-]*:/i.test(req.url)) {
      // Under SSR with no REQUEST (prerendering, a custom engine): the host is unknown.
      warnedRelative = true;
      console.warn(
        `rx-ratelimit: ${name} cannot tell the host of the relative URL "${pathOnly(req.url)}" ` +
          '(no `baseUrl` option, no incoming REQUEST, no `location`), so it and every such request ' +
          'go around the limiter, unpaced. Give the interceptor `baseUrl`, or use absolute URLs.',
      );
    }
    const limiter = select(req, url);
    if (!limiter) return next(req);
    const info = requestInfo({
      method: req.method,
      url: url?.href ?? req.urlWithParams,
      priority: checkPriority('RATE_LIMIT_PRIORITY', req.context.get(RATE_LIMIT_PRIORITY)) ?? priority,
      retry: req.context.get(RATE_LIMIT_RETRY),
      cost: req.context.get(RATE_LIMIT_COST),
      idempotencyKey: idempotencyKeyOf(req.headers),
      headers: shareHeadersOf(req),
      // Progress events are the subscriber's own: such a request is never shared.
      shareKey: req.reportProgress ? false : req.context.get(RATE_LIMIT_SHARE_KEY),
    });
    const host = url?.host ?? '';
    const where = url ? { method: req.method, url: url.origin + url.pathname } : undefined;
    // The rest of the chain (later interceptors, the backend) runs when the permit is granted,
    // and again for each retry.
    const sent$ = new Observable<HttpEvent<unknown>>((subscriber) => {
      // A response given during the subscription did not come from the network (no HttpClient
      // backend answers synchronously): Angular's HTTP transfer cache replaying, in the browser, a
      // response of the server render, which the server's limiter has read already.
      let subscribing = true;
      const subscription = next(req)
        .pipe(
          tap((event) => {
            if (subscribing && event instanceof HttpResponse) notFromNetwork.add(event);
          }),
        )
        .subscribe(subscriber);
      subscribing = false;
      return subscription;
    }).pipe(
      tap({
        next: (event) => {
          if (!(event instanceof HttpResponse) || notFromNetwork.has(event)) return;
          if (where) remember(limiter, event.status, event.headers, where);
          if (report !== false) checkHeaders(limiter, event, info, host, missingHeadersAfter, report);
        },
        error: (error: unknown) => {
          if (!(error instanceof HttpErrorResponse)) return;
          if (error.status > 0) {
            if (where) remember(limiter, error.status, error.headers, where);
          } else if (corsReport !== false && url && !server) {
            checkCors(limiter, url, baseUrl, corsReport);
          }
        },
      }),
    );
    return sent$.pipe(rateLimit<HttpEvent<unknown>>(limiter, info, rlConfig));
  };
}

// ---------------------------------------------------------------------------------------------
// Server rendering and the browser

/** `true` when running under Angular's server platform (SSR); outside an injection context, `false`. */
function onServer(): boolean {
  try {
    return inject(PLATFORM_ID, { optional: true }) === 'server';
  } catch {
    return false;
  }
}

/** The URL of the request being rendered (SSR), or `undefined`. */
function incomingRequestUrl(): string | undefined {
  try {
    const url = inject(REQUEST, { optional: true })?.url;
    return typeof url === 'string' && URL.canParse(url) ? url : undefined;
  } catch {
    return undefined;
  }
}

/** A URL without its query and fragment (which may carry a token), for messages. */
function pathOnly(url: string): string {
  return url.replace(/[?#].*$/s, '').slice(0, 200);
}

/** Responses an interceptor after this one gave synchronously: not from the network, not read. */
const notFromNetwork = new WeakSet<object>();

/** Origins already reported as blocked (bounded: a page talks to few origins). */
const corsReported = new Set<string>();

function checkCors(limiter: Limiter, url: URL, baseUrl: string | undefined, report: (r: CorsBlockedReport) => void) {
  const page = (globalThis as { location?: { origin?: unknown } }).location?.origin;
  const pageOrigin = typeof page === 'string' ? page : baseUrl ? new URL(baseUrl).origin : '';
  // No page (Node) or same origin: no CORS; status 0 is the network's doing.
  if (pageOrigin === '' || url.origin === pageOrigin || corsReported.has(url.origin) || corsReported.size >= 64) return;
  corsReported.add(url.origin);
  report({
    origin: url.origin,
    pageOrigin,
    provider: limiter.provider.name,
    key: limiter.key,
    message:
      `rx-ratelimit: a request to ${url.origin} through the "${limiter.provider.name}" limiter (key ${limiter.key}) ` +
      `failed with status 0. In a browser this is most often CORS: the API sent no ` +
      `"Access-Control-Allow-Origin" for ${pageOrigin}, so the browser hid the response, ` +
      'yet the API received the request and counted it against your limit. Allow this origin at the API, ' +
      'or call it through a same-origin proxy that forwards the rate-limit headers.',
  });
}

/** One response a limiter read, reduced to what its provider reads: for the browser's limiter (TransferState). */
export interface RecordedResponse {
  readonly status: number;
  /** Method and URL without query (which may carry a token), for the provider's choice of buckets. */
  readonly method: string;
  readonly url: string;
  /** The headers the provider read (lower-case names), and nothing else. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

/** Per limiter, its last responses (status and headers, unread until needed). */
const lastResponses = new WeakMap<
  Limiter,
  Array<{ status: number; headers: HttpHeaders; method: string; url: string }>
>();
/** Responses kept per limiter: enough for reads and writes that count against other buckets. */
const KEPT = 4;

function remember(limiter: Limiter, status: number, headers: HttpHeaders, where: { method: string; url: string }) {
  let list = lastResponses.get(limiter);
  if (!list) lastResponses.set(limiter, (list = []));
  list.push({ status, headers, ...where });
  if (list.length > KEPT) list.shift();
}

/**
 * @internal The last responses `limiter` read through an interceptor, oldest first, each
 * reduced to the headers its provider reads (never cookies, never the request's query).
 */
export function recordedResponses(limiter: Limiter): RecordedResponse[] {
  return (lastResponses.get(limiter) ?? []).map(({ status, headers, method, url }) => {
    const seen = new Map<string, string>();
    const res = toResponseLike(status, headers, null);
    const recording: ResponseLike = {
      status,
      header: (name) => {
        const value = res.header(name);
        if (value !== undefined) seen.set(name.toLowerCase(), value.slice(0, 1024));
        return value;
      },
    };
    for (const m of [method, 'POST']) {
      try {
        limiter.provider.read(recording, { method: m, url });
      } catch {
        // A provider that throws reads nothing.
      }
    }
    recording.header('retry-after');
    return { status, method, url, headers: [...seen] };
  });
}

/** @internal Lets `limiter` read `recorded` as if it had received them, in order. */
export function replayResponses(limiter: Limiter, recorded: readonly RecordedResponse[]): void {
  for (const r of recorded) {
    const headers = new Map(r.headers.map(([name, value]) => [name, value]));
    limiter.observe(responseLike(r.status, { get: (name: string) => headers.get(name.toLowerCase()) ?? null }), {
      method: r.method,
      url: r.url,
    });
  }
}

/**
 * The request's headers, and as pseudo-headers what else changes the events it yields (response
 * type, credentials mode): two GETs are shared only when all of these are equal (`rateLimit`'s
 * one rule for every adapter).
 */
function shareHeadersOf(req: HttpRequest<unknown>): RequestHeaders {
  const pairs: Array<[string, unknown]> = req.headers.keys().map((name) => [name, req.headers.getAll(name) ?? []]);
  pairs.push([':response-type', req.responseType], [':with-credentials', String(req.withCredentials)]);
  return pairs;
}

function selector(
  limiters: RateLimitInterceptorOptions['limiters'],
): (req: HttpRequest<unknown>, url: URL | undefined) => Limiter | undefined {
  if (typeof limiters === 'function') {
    return (req) => {
      const limiter = limiters(req);
      if (limiter !== undefined && !isLimiter(limiter)) {
        throw new TypeError('rateLimitInterceptor: the `limiters` function must return a Limiter or undefined');
      }
      return limiter;
    };
  }
  if (typeof limiters !== 'object' || limiters === null) {
    throw new TypeError('rateLimitInterceptor: option `limiters` must be a record of limiters by host, or a function');
  }
  const byHost = new Map<string, Limiter>();
  for (const [host, limiter] of Object.entries(limiters)) {
    if (!isLimiter(limiter)) {
      throw new TypeError(`rateLimitInterceptor: option \`limiters\` must map hosts to limiters; "${host}" does not`);
    }
    if (host.includes('/')) {
      throw new TypeError(
        `rateLimitInterceptor: option \`limiters\` is keyed by host ("api.example.com" or "localhost:8080"), got "${host}"`,
      );
    }
    byHost.set(host.toLowerCase(), limiter);
  }
  return (_req, url) => (url ? (byHost.get(url.host) ?? byHost.get(url.hostname)) : undefined);
}

function parseUrl(url: string, baseUrl: string | undefined): URL | undefined {
  const base = baseUrl ?? (globalThis as { location?: { href?: unknown } }).location?.href;
  try {
    return new URL(url, typeof base === 'string' ? base : undefined);
  } catch {
    return undefined;
  }
}
