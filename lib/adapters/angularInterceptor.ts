/**
 * The interceptor of `rx-ratelimit/angular` (`rateLimitInterceptor`): its options, how it
 * picks a request's limiter, and how it sends the request through it. The entry point is
 * `angular.ts`, which re-exports this file with the DI providers and the status signal.
 */
import { safePath } from '../core/events.js';
import {
  HttpErrorResponse,
  HttpHeaderResponse,
  HttpResponse,
  type HttpEvent,
  type HttpHandlerFn,
  type HttpInterceptorFn,
  type HttpRequest,
} from '@angular/common/http';
import { inject, PLATFORM_ID, REQUEST } from '@angular/core';
import { catchError, concat, defer, from, Observable, tap, throwError, type Subscription } from 'rxjs';
import type { Limiter } from '../core/limiter.js';
import { checkRetryNonIdempotent, type RequestHeaders, type RequestInfo } from '../core/request.js';
import { reportUnhandledError } from '../core/waiter.js';
import { checkOperator, checkReserve } from '../operators/policies.js';
import { rateLimit, type RateLimitConfig } from '../operators/rateLimit.js';
import {
  RATE_LIMIT_COST,
  RATE_LIMIT_PRIORITY,
  RATE_LIMIT_RETRY,
  RATE_LIMIT_SHARE_KEY,
  RATE_LIMIT_SKIP,
} from './angularContext.js';
import { checkCors, checkHeaders, type CorsBlockedReport, type MissingHeadersReport } from './angularDiagnostics.js';
import { byHostKey, entryForUrl } from './angularHosts.js';
import { extractAngularResponse, isPartialEvent, readBlobBodies, toResponseLike } from './angularResponse.js';
import { answeredByTransferCache } from './angularTransferCache.js';
import { remember, TRANSFER_RECORDER, type TransferRecorder } from './angularTransfer.js';
import { checkMaxRetries, checkPriority, checkStatuses, idempotencyKeyOf, isLimiter, requestInfo } from './common.js';

// ---------------------------------------------------------------------------------------------
// Options

/** Picks the limiter of a request; `undefined` lets the request through untouched. */
export type LimiterSelector = (req: HttpRequest<unknown>) => Limiter | undefined;

/** Options of {@link rateLimitInterceptor}; `limiters` is required. */
export interface RateLimitInterceptorOptions extends Omit<RateLimitConfig, 'extractResponse'> {
  /**
   * The limiter of each request: a plain object by host (`'api.pipedrive.com'`, or with the
   * port, `'localhost:8080'`, tried first), or a function of the request. A key is read as a
   * URL's host is (any case, a Unicode name, a trailing dot; `'api.example.com:443'` matches
   * `https://api.example.com/`); one that is no host throws a `TypeError`. Requests with no
   * limiter pass through untouched.
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
  /**
   * Under server rendering, the longest a request waits for a permit, before it is sent and
   * before each retry: past it the request fails with `QuotaExhaustedError`. Angular serializes
   * the page only once every request has ended, so a request waiting out a 429's `Retry-After:
   * 300` held the render for five minutes. The pause goes on in the page (`provideRateLimiting`),
   * and the browser's limiter waits it out. `Infinity` waits as in a browser (up to the
   * limiter's `maxWaitMs`).
   * @default 5000
   */
  readonly serverMaxWaitMs?: number;
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
 * - Identical GET/HEAD requests in flight at once (same URL, every header, response type,
 *   credentials and the other fetch options) are sent once and shared, unless the limiter has `dedupe: false` or the
 *   request sets {@link RATE_LIMIT_SHARE_KEY} to `false`; requests sent as different users
 *   never are. Headers added by interceptors after this one are not seen: put the one that adds
 *   credentials before it.
 * - The interceptors after this one, and the backend, run once the permit is granted, and
 *   again for each retry. Put this one last so that slow interceptors (token refresh) run
 *   before a permit is taken, not while holding it.
 * - A request Angular's HTTP transfer cache answers from the page (`provideClientHydration()`,
 *   until the app is stable) goes around the limiter: nothing is sent, nothing waits or counts.
 * - With `observe: 'events'`, the caller sees each attempt's `Sent` and upload progress, and of
 *   the answers only the one it is given: the `ResponseHeader` and download progress of a 429
 *   that is retried never reach it.
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
    serverMaxWaitMs = DEFAULT_SERVER_MAX_WAIT_MS,
    baseUrl,
    ...config
  }: Omit<RateLimitInterceptorOptions, 'limiters'> = options;
  checkOptionNames(name, options);
  checkPriority(name, priority);
  checkMaxRetries(name, config.maxRetries);
  checkStatuses(name, config.statuses);
  checkRetryNonIdempotent(name, config.retryNonIdempotent);
  checkReserve(config, name);
  // What `rateLimit` checks of the rest when each request is made (`reservePriority`): a bad
  // value found then failed every request, long after the interceptor was created.
  checkOperator(name, {}, config);
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
  if (typeof serverMaxWaitMs !== 'number' || !(serverMaxWaitMs >= 0)) {
    throw new TypeError(
      `${name}: option \`serverMaxWaitMs\` must be a number >= 0 (ms), or Infinity, got ${typeof serverMaxWaitMs === 'number' ? serverMaxWaitMs : typeof serverMaxWaitMs}`,
    );
  }
  if (baseUrl !== undefined && (typeof baseUrl !== 'string' || !URL.canParse(baseUrl))) {
    throw new TypeError(`${name}: option \`baseUrl\` must be an absolute URL`);
  }
  // A callback that throws must not take the response (or the request's own error) from the
  // caller: its error is reported as RxJS reports an unhandled one.
  const report =
    onMissingHeaders === false
      ? false
      : guarded(onMissingHeaders ?? ((r: MissingHeadersReport) => console.warn(r.message)));
  const corsReport =
    onCorsBlocked === false ? false : guarded(onCorsBlocked ?? ((r: CorsBlockedReport) => console.warn(r.message)));
  // The text of the `Blob` bodies of 403s and 429s, read before the limiter reads their errors.
  const blobBodies = new WeakMap<object, unknown>();
  const rlConfig: RateLimitConfig = {
    ...config,
    extractResponse: Object.assign(
      (x: unknown) => {
        if (notFromNetwork.has(x as object)) return undefined;
        if (x instanceof HttpErrorResponse && blobBodies.has(x)) {
          return toResponseLike(x.status, x.headers, blobBodies.get(x));
        }
        return extractAngularResponse(x);
      },
      { beforeAnswer: isPartialEvent },
    ),
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
    // Angular's HTTP transfer cache, after this interceptor, answers it from the page: nothing is
    // sent, so it neither waits for nor spends a permit.
    if (answeredByTransferCache(req, server)) return next(req);
    const info = requestInfo({
      method: req.method,
      url: url?.href ?? req.urlWithParams,
      priority: checkPriority('RATE_LIMIT_PRIORITY', req.context.get(RATE_LIMIT_PRIORITY)) ?? priority,
      retry: req.context.get(RATE_LIMIT_RETRY),
      cost: req.context.get(RATE_LIMIT_COST),
      idempotencyKey: idempotencyKeyOf(req.headers),
      headers: shareHeadersOf(req),
      // Progress events are the subscriber's own: such a request is never shared.
      shareKey:
        req.reportProgress || req.reportDownloadProgress || req.reportUploadProgress
          ? false
          : req.context.get(RATE_LIMIT_SHARE_KEY),
    });
    const host = url?.host ?? '';
    // Recorded for the page of this render only (SSR, `provideRateLimiting`'s transferState).
    const recorder = server ? recorderOfRender() : undefined;
    const where = url && recorder ? { recorder, method: req.method, url: url.origin + url.pathname } : undefined;
    // The rest of the chain (later interceptors, the backend) runs when the permit is granted,
    // and again for each retry.
    const paced = (sending?: (on: boolean) => void) => {
      const sent$ = new Observable<HttpEvent<unknown>>((subscriber) => {
        sending?.(true);
        // A response given during the subscription did not come from the network (no HttpClient
        // backend answers synchronously): an interceptor after this one answering from a cache of
        // its own, whose answer tells nothing of the API's budget.
        let subscribing = true;
        const subscription = next(req)
          .pipe(
            tap((event) => {
              if (subscribing && event instanceof HttpResponse) notFromNetwork.add(event);
            }),
          )
          .subscribe(subscriber);
        subscribing = false;
        return () => {
          subscription.unsubscribe();
          sending?.(false);
        };
      }).pipe(
        tap({
          next: (event) => {
            if (!(event instanceof HttpResponse) || notFromNetwork.has(event)) return;
            if (where) remember(where, limiter, event);
            if (report !== false) checkHeaders(limiter, event, info, host, missingHeadersAfter, report);
          },
          error: (error: unknown) => {
            if (!(error instanceof HttpErrorResponse)) return;
            if (error.status > 0) {
              if (where) remember(where, limiter, error);
            } else if (corsReport !== false && url && !server) {
              checkCors(limiter, url, baseUrl, corsReport);
            }
          },
        }),
        readBlobBodies(blobBodies),
      );
      return withoutRetriedAnswers(sent$, (attempt$) =>
        attempt$.pipe(rateLimit<HttpEvent<unknown>>(limiter, info, rlConfig)),
      );
    };
    return server && serverMaxWaitMs !== Infinity ? waitingAtMost(limiter, info, serverMaxWaitMs, paced) : paced();
  };
}

/** What {@link RateLimitInterceptorOptions.serverMaxWaitMs} is when not set. */
const DEFAULT_SERVER_MAX_WAIT_MS = 5_000;

/**
 * `paced(sending)` that fails with `QuotaExhaustedError` once it has waited `ms` on end without
 * an attempt in flight (`sending(true)` when one is sent, `sending(false)` when it has ended):
 * on the server a render waits for it. A request that joined an identical one in flight sends
 * nothing of its own: while the limiter has requests in flight and tells no wait past `ms` (no
 * pause, no window spent until a later reset), the wait may be for that answer, and is looked at
 * again `ms` later. Timed on the limiter's scheduler.
 */
function waitingAtMost(
  limiter: Limiter,
  info: RequestInfo,
  ms: number,
  paced: (sending: (on: boolean) => void) => Observable<HttpEvent<unknown>>,
): Observable<HttpEvent<unknown>> {
  return new Observable<HttpEvent<unknown>>((subscriber) => {
    let timer: Subscription | undefined;
    const check = (): void => {
      const now = limiter.now();
      const { pausedUntil, inFlight } = limiter.snapshot;
      const paused = pausedUntil !== null && pausedUntil > now;
      // A wait the limiter can tell (a pause, a window spent until its reset) past the bound
      // fails now, whatever else is in flight (a limiter every render shares always has some).
      const known = limiter.resumeAt(info) - now > ms;
      if (!paused && !known && inFlight > 0) {
        timer = limiter.scheduler.schedule(check, ms);
        return;
      }
      subscriber.error(limiter.waitedTooLong(ms, ms, info));
    };
    const sending = (on: boolean) => {
      timer?.unsubscribe();
      timer = on || subscriber.closed ? undefined : limiter.scheduler.schedule(check, ms);
    };
    sending(false);
    const subscription = paced(sending).subscribe(subscriber);
    return () => {
      timer?.unsubscribe();
      timer = undefined;
      subscription.unsubscribe();
    };
  });
}

/**
 * `paced(attempt$)`, where `attempt$` is `sent$` with the events of each attempt's answer held
 * back while that answer is an error (its `ResponseHeader` and download progress, with
 * `observe: 'events'`): dropped when the request is sent again after it (a 429 retried), handed
 * on just before the error otherwise. So a caller sees the answer it is given, never a retried
 * 429's. The `Sent` and upload progress of each attempt come before its status is known, and
 * pass as they happen: a request sent again is seen to be sent again.
 */
function withoutRetriedAnswers(
  sent$: Observable<HttpEvent<unknown>>,
  paced: (attempt$: Observable<HttpEvent<unknown>>) => Observable<HttpEvent<unknown>>,
): Observable<HttpEvent<unknown>> {
  return defer(() => {
    // The events of the last attempt's error answer, until the request is sent again or ends.
    let held: Array<HttpEvent<unknown>> | undefined;
    const attempt$ = new Observable<HttpEvent<unknown>>((subscriber) => {
      // A new attempt: the one before it was answered with an error that is being retried.
      held = undefined;
      let holding: Array<HttpEvent<unknown>> | undefined;
      const release = () => {
        const events = holding ?? [];
        holding = held = undefined;
        for (const event of events) subscriber.next(event);
      };
      return sent$.subscribe({
        next: (event) => {
          if (holding && !(event instanceof HttpResponse)) holding.push(event);
          else if (event instanceof HttpHeaderResponse && !(event.status >= 200 && event.status < 300))
            held = holding = [event];
          else {
            // An interceptor after this one turned the error into an answer: it is the answer.
            release();
            subscriber.next(event);
          }
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          release();
          subscriber.complete();
        },
      });
    });
    return paced(attempt$).pipe(
      catchError((error: unknown) => {
        const events = held ?? [];
        held = undefined;
        return concat(
          from(events),
          throwError(() => error),
        );
      }),
    );
  });
}

/** Every option {@link buildInterceptor} reads. */
const OPTION_NAMES: ReadonlySet<string> = new Set([
  'priority',
  'onMissingHeaders',
  'missingHeadersAfter',
  'onCorsBlocked',
  'baseUrl',
  'maxRetries',
  'retryNonIdempotent',
  'statuses',
  'reserve',
  'reservePriority',
  'serverMaxWaitMs',
]);

/**
 * Throws a `TypeError` naming the options that are none of {@link OPTION_NAMES}: a misspelt one
 * (`maxRetry`) left its setting at the default without a word.
 */
function checkOptionNames(name: string, options: object): void {
  const unknown = Object.keys(options).filter((key) => !OPTION_NAMES.has(key));
  if (unknown.length > 0) {
    throw new TypeError(`${name}: unknown option ${unknown.map((key) => `\`${key.slice(0, 40)}\``).join(', ')}`);
  }
}

/** `callback`, its throws reported on a later task instead of reaching the request it reports on. */
function guarded<R>(callback: (report: R) => void): (report: R) => void {
  return (r) => {
    try {
      callback(r);
    } catch (e) {
      reportUnhandledError(e);
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Server rendering and the browser

/** This render's recorder of responses for the page, if `provideRateLimiting` carries them. */
function recorderOfRender(): TransferRecorder | undefined {
  try {
    return inject(TRANSFER_RECORDER, { optional: true }) ?? undefined;
  } catch {
    return undefined;
  }
}

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

/** The URL for a warning: no query, fragment or user-info (a `//user:pass@host` one too), 200 characters at most. */
function pathOnly(url: string): string {
  return (safePath(url) ?? '').slice(0, 200);
}

/** Responses an interceptor after this one gave synchronously: not from the network, not read. */
const notFromNetwork = new WeakSet<object>();

/**
 * The request's headers, and as pseudo-headers what else changes who it is sent as or what
 * comes back (response type; the fetch options: credentials mode and whether cookies go, mode
 * and redirect, which give opaque answers, the browser cache mode, the referrer, the integrity
 * a body must match, the timeout): two GETs are shared only when all of these are equal
 * (`rateLimit`'s one rule for every adapter).
 */
function shareHeadersOf(req: HttpRequest<unknown>): RequestHeaders {
  const pairs: Array<[string, unknown]> = req.headers.keys().map((name) => [name, req.headers.getAll(name) ?? []]);
  pairs.push([':response-type', req.responseType], [':with-credentials', String(req.withCredentials)]);
  const options: ReadonlyArray<[string, unknown]> = [
    [':credentials', req.credentials],
    [':mode', req.mode],
    [':redirect', req.redirect],
    [':cache', req.cache],
    [':referrer', req.referrer],
    [':referrer-policy', req.referrerPolicy],
    [':integrity', req.integrity],
    [':timeout', req.timeout],
  ];
  // Left out when not set, so that requests without them keep the identity they had.
  for (const [name, value] of options) if (value !== undefined && value !== '') pairs.push([name, String(value)]);
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
  for (const [host, { key, value }] of byHostKey<unknown>('rateLimitInterceptor', 'limiters', limiters)) {
    if (!isLimiter(value)) {
      throw new TypeError(
        `rateLimitInterceptor: option \`limiters\` must map hosts to limiters; "${safePath(key)}" does not`,
      );
    }
    byHost.set(host, value);
  }
  return (_req, url) => (url ? entryForUrl(byHost, url) : undefined);
}

function parseUrl(url: string, baseUrl: string | undefined): URL | undefined {
  const base = baseUrl ?? (globalThis as { location?: { href?: unknown } }).location?.href;
  try {
    return new URL(url, typeof base === 'string' ? base : undefined);
  } catch {
    return undefined;
  }
}
