/**
 * `rx-ratelimit/fetch`: a drop-in `fetch` paced by the limiter, for code that uses the WHATWG
 * fetch API (Node 20+, browsers, Deno, Bun, workers) without RxJS.
 */
import { safePath } from '../core/events.js';
import type { Limiter } from '../core/limiter.js';
import type { ResponseReading } from '../core/provider.js';
import { checkRetryNonIdempotent, isOneShotBody, isRetrySafe, type RequestInfo } from '../core/request.js';
import { discardBody, isResendable, withRetryCost } from '../core/resend.js';
import { responseLike, type ResponseLike } from '../core/response.js';
import {
  abortReason,
  acquirePermit,
  BODY_STATUSES,
  checkMaxRetries,
  checkPriority,
  checkStatuses,
  idempotencyKeyOf,
  isLimiter,
  MAX_BODY_BYTES,
  parseText,
  readsBody,
  requestInfo,
  sleep,
} from './common.js';

/**
 * Settings of {@link rateLimitedFetch}. All optional.
 *
 * ```ts
 * import type { Limiter } from 'rx-ratelimit';
 * import { rateLimitedFetch, type RateLimitedFetchOptions } from 'rx-ratelimit/fetch';
 * declare const limiter: Limiter;
 * const opts: RateLimitedFetchOptions = { maxRetries: 3, priority: 1, fetch: globalThis.fetch };
 * const apiFetch = rateLimitedFetch(limiter, opts);
 * ```
 */
export interface RateLimitedFetchOptions {
  /** The fetch to wrap. @default globalThis.fetch, looked up at each call */
  readonly fetch?: typeof fetch;
  /** Retries after the first attempt; past them the call rejects with `RetryLimitError`. @default 5 */
  readonly maxRetries?: number;
  /**
   * Retry POST and PATCH after a 429 even without an `Idempotency-Key` header. Only if the API
   * does not apply a request it answered with 429. @default false
   */
  readonly retryNonIdempotent?: boolean;
  /** Priority of this fetch's requests among those waiting on the limiter; higher goes first. @default 0 */
  readonly priority?: number;
  /**
   * Units of its buckets each request takes (see `RequestInfo.cost`): a number or per bucket
   * name for every call, or a function of the call's method and URL (and `init`) for each one
   * (`undefined`: what the provider says). A bad cost rejects the call with a `TypeError`
   * naming `cost`, nothing sent.
   * @default what the provider says, else 1
   *
   * ```ts
   * import type { Limiter } from 'rx-ratelimit';
   * import { rateLimitedFetch } from 'rx-ratelimit/fetch';
   * declare const limiter: Limiter;
   * // GitHub's secondary points: writes cost 5 (providers.github({ secondaryPoints: true }) says so too).
   * const apiFetch = rateLimitedFetch(limiter, { cost: ({ method }) => (method === 'GET' ? 1 : { 'points:rest': 5 }) });
   * ```
   */
  readonly cost?:
    | RequestInfo['cost']
    | ((request: { readonly method: string; readonly url: string }, init?: RequestInit) => RequestInfo['cost']);
  /**
   * Statuses to retry, whatever the provider reads. An answer the provider reads as a rate limit
   * (GitHub's rate-limit 403, Shopify's `THROTTLED` 200) is retried too. @default [429]
   */
  readonly statuses?: readonly number[];
  /**
   * Longest time (ms) spent reading a 429/403 body (or another the provider reads) for the
   * provider; past it the limiter reads the headers only, and the permit is returned.
   * @default 5000
   */
  readonly bodyTimeoutMs?: number;
}

/** Default of `bodyTimeoutMs`. */
const BODY_TIMEOUT_MS = 5000;

/**
 * Reads a fetch `Response` as the limiter's `ResponseLike`: status, headers by
 * case-insensitive name (repeated headers joined with `", "`, as `Headers.get` does) and the
 * body you pass, if you have read it. The response itself is not consumed.
 *
 * ```ts
 * import { toResponseLike } from 'rx-ratelimit/fetch';
 * const res = await fetch('https://api.example.com/v1/deals');
 * const like = toResponseLike(res, res.status === 429 ? await res.clone().json() : undefined);
 * console.log(like.header('x-ratelimit-remaining'));
 * ```
 */
export function toResponseLike(response: Response, body?: unknown): ResponseLike {
  return responseLike(response.status, response.headers, body);
}

/**
 * A `fetch` that waits for the limiter before each request and feeds every response's
 * rate-limit headers back to it, so all calls through the same limiter share one budget.
 *
 * Behaviour, call by call:
 * - An `init.signal` (or the `Request`'s signal) aborted while waiting removes the request
 *   from the queue and rejects with the signal's reason, like `fetch` does; nothing is sent.
 *   Aborted later, before the call resolves (while a 429's body is read, during a retry
 *   wait), it rejects with the signal's reason too.
 * - A URL with a user name or password (`https://user:pass@host/`), which fetch refuses,
 *   rejects with a `TypeError` at once, before it waits; the message leaves the user name,
 *   password and query out. Send credentials in a header.
 * - On a 429 (or 403), and on the answers whose body the provider reads (`Provider.readsBody`:
 *   Shopify GraphQL's 200s), the body is read from `response.clone()` (JSON when the content
 *   type says so, else text) so providers can read body fields; the response you get is
 *   unread. At most 256 KiB are read, for at most `bodyTimeoutMs`: a bigger body, or one that
 *   does not end in time, is left to you and the limiter reads the headers only.
 * - A 200 the provider reads as a rate limit (Shopify's `THROTTLED` error) is retried as a 429
 *   is: after the wait the body states, up to `maxRetries`. A POST is retried then too when
 *   the provider says the server did not run it (Shopify's throttled query).
 * - A 429 on a request safe to repeat (GET, HEAD, PUT, DELETE…, or one with an
 *   `Idempotency-Key` header, or any with `retryNonIdempotent`) is sent again once the limiter
 *   may send; a wait longer than the limiter's `maxWaitMs` rejects with `QuotaExhaustedError`,
 *   and more than `maxRetries` 429s reject with `RetryLimitError`. Its `cause` is a summary of
 *   the last 429 (`{ name: 'Response', status: 429 }`, safe to log); `rawCauseOf(error)` is the
 *   `Response` itself. A `Request` input is cloned before each attempt, so its body is sent each
 *   time; an `init.body` read once (a `ReadableStream`, a Node `Readable`, an async iterable)
 *   cannot be sent twice, so that request is not retried.
 * - A 429 that is **not** retried (a POST without an idempotency key, say) **resolves** with the
 *   429 `Response`, as plain `fetch` does; check `response.status`. The limiter has still read
 *   it, so every other request waits.
 * - A response that shows the credential blocked (Pipedrive's 403 page) rejects with
 *   `BlockedError` (`cause`: a summary; `rawCauseOf(error)` is the `Response`); later calls
 *   reject with it without sending.
 * - A network error rejects with the original error.
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * import { rateLimitedFetch } from 'rx-ratelimit/fetch';
 *
 * const token = process.env['API_TOKEN'] ?? '';
 * const limiter = createLimiter({ provider: providers.generic(), key: token });
 * const apiFetch = rateLimitedFetch(limiter, { maxRetries: 3 });
 * const res = await apiFetch('https://api.example.com/v1/deals', { headers: { Authorization: `Bearer ${token}` } });
 * const deals = await res.json();
 * ```
 */
export function rateLimitedFetch(limiter: Limiter, opts: RateLimitedFetchOptions = {}): typeof fetch {
  return pacedFetch('rateLimitedFetch', limiter, fetchSettings('rateLimitedFetch', opts), undefined);
}

/**
 * {@link rateLimitedFetch} with its options checked (`where`: the call that gave them). `installed`:
 * the global fetch that `installRateLimitedFetch` found, sent through in place of `fetch` and
 * `globalThis.fetch`; it refuses what the global fetch refuses, though `globalThis.fetch` is now
 * the wrapper around it (ours, or another's when installed twice).
 */
function pacedFetch(
  where: string,
  limiter: Limiter,
  settings: ReturnType<typeof fetchSettings>,
  installed: typeof fetch | undefined,
): typeof fetch {
  const { fetch: own, maxRetries, statuses, priority, cost, retryNonIdempotent, bodyTimeoutMs } = settings;

  const limitedFetch = async (input: globalThis.RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    // Called as a plain function, not as a method of `opts`: browsers' fetch needs that.
    const send = installed ?? own ?? globalThis.fetch;
    if (typeof send !== 'function') throw new TypeError(`${where}: no global fetch here; pass option \`fetch\``);
    const request = isRequest(input) ? input : undefined;
    const signal = init?.signal ?? request?.signal ?? undefined;
    const method = (init?.method ?? request?.method ?? 'GET').toUpperCase();
    const url = request ? request.url : String(input instanceof URL ? input.href : input);
    // The platform's fetch refuses a URL with a user name or password, with a `TypeError` that
    // quotes the URL, its password and query tokens included. Refused here instead, before it
    // waits in the queue and takes a permit for a request that cannot be sent, with a message
    // that does not. A `fetch` of the caller's own (node-fetch sends them as Basic auth) decides.
    // Installed, `send` is the global fetch as it was, and `globalThis.fetch` the wrapper.
    const platform = installed !== undefined || send === globalThis.fetch;
    if (platform && hasUserInfo(url)) {
      throw new TypeError(
        `${where}: the URL ${JSON.stringify(safePath(url) ?? '')} holds a user name or password, which fetch refuses; send them in an \`Authorization\` header`,
      );
    }
    const costOfCall = typeof cost === 'function' ? cost({ method, url }, init) : cost;
    let info = requestInfo({
      method,
      url,
      priority,
      cost: costOfCall,
      // `init.headers` replaces the Request's headers entirely, as in fetch.
      idempotencyKey: idempotencyKeyOf(init?.headers !== undefined ? init.headers : request?.headers),
      retry: undefined,
    });
    // A body read once (a stream, an async iterable) cannot be sent twice; otherwise the
    // method (and key) decide.
    const resendable = !isOneShotBody(init?.body);
    const safe = isRetrySafe(info, retryNonIdempotent);

    for (let attempt = 1; ; attempt++) {
      // A Request's body can be read once: each attempt sends its own copy (and a body already
      // used fails here, before a permit is taken).
      const copy = request?.clone();
      const got = await acquirePermit(limiter, info, signal);
      if (got.aborted) throw abortReason(signal);
      const { permit } = got;
      let response: Response;
      let reading: ResponseReading;
      let body: unknown;
      try {
        response = await send(copy ?? input, init);
        const { status } = response;
        body =
          BODY_STATUSES.has(status) || statuses.has(status) || readsBody(limiter, status, info)
            ? await readBody(response, bodyTimeoutMs)
            : undefined;
        reading = permit.observe(toResponseLike(response, body), response);
      } finally {
        permit.release();
      }
      // Aborted while the body was read (fetch errors it then, which reads as no body): the
      // limiter has read the headers, and the call ends as an abort does, whatever the answer
      // was, not as the retry it can no longer make (`RetryLimitError`, `QuotaExhaustedError`).
      if (signal?.aborted) throw abortReason(signal);
      const listed = statuses.has(response.status);
      if (reading.outcome !== 'blocked' && (!resendable || !isResendable(info, safe, listed, reading))) return response;
      // From here the answer is not handed on: retried, or the call ends with our error (its
      // `cause`). A retried one's connection is freed; so is the last one's when its body was
      // not read whole (it stalled, or is past the cap): left to the collector, a body that
      // stalls holds its socket for good. One read whole is all received: kept, for code that
      // reads the cause's body (`rawCauseOf`: GitHub's message, Pipedrive's block page).
      let waitMs: number | undefined;
      try {
        if (reading.outcome === 'blocked') throw limiter.blockedError(response);
        const current = info;
        info = withRetryCost(current, reading, () => limiter.provider.buckets(current));
        waitMs = limiter.retryDelay(info, {
          attempts: attempt,
          maxRetries,
          status: response.status,
          cause: response,
          request: permit.request,
        });
      } finally {
        if (waitMs !== undefined || body === undefined) discardBody(response);
      }
      if (!(await sleep(limiter, waitMs, signal))) throw abortReason(signal);
    }
  };
  return limitedFetch as typeof fetch;
}

/**
 * Paces the global `fetch` for some origins only, for an SDK that calls the global `fetch` and
 * takes no `fetch` option (Procore's `@procore/js-sdk`): requests to an origin of `limiters`
 * go through {@link rateLimitedFetch} with that origin's limiter; every other fetch of the
 * process goes to the original `fetch` untouched. Returns `uninstall()`, which puts the
 * original back (if something has wrapped `fetch` since, ours stays in its chain but passes
 * everything through).
 *
 * **An origin's limiter is one credential's limiter.** Every fetch to the origin goes through
 * it, whatever `Authorization` or token it carries, so a 429 for one credential delays the
 * calls of every other credential to that origin, and their budgets are counted as one. Install
 * it for a process that calls the API as one credential (one company's token, one app's key).
 * To call it for many tenants, give each tenant's client its own limiter from
 * `createLimiterPool`: through the SDK's `fetch` option (`rateLimitedFetch(pool.get(token))`,
 * `pool.get` at each call), or by pacing each call with `rateLimit(pool.get(token), …)`; calls of
 * many credentials through the global `fetch` cannot be told apart here.
 *
 * Keys are origins (`'https://api.procore.com'`: scheme, host and port, no path); a relative
 * URL is resolved against `location.href` in a browser. Options are those of
 * `rateLimitedFetch` (`fetch` is the global one as found at install time); a paced call to a URL
 * with a user name or password is refused as `rateLimitedFetch` refuses it, before it waits.
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * import { installRateLimitedFetch } from 'rx-ratelimit/fetch';
 *
 * const procore = createLimiter({ provider: providers.procore(), key: 'company-42' });
 * const uninstall = installRateLimitedFetch({ 'https://api.procore.com': procore }, { maxRetries: 3 });
 * // … the SDK's calls to api.procore.com are paced; other fetches are not.
 * uninstall();
 * ```
 */
export function installRateLimitedFetch(
  limiters: Readonly<Record<string, Limiter>>,
  opts: Omit<RateLimitedFetchOptions, 'fetch'> = {},
): () => void {
  if (typeof limiters !== 'object' || limiters === null || Array.isArray(limiters)) {
    throw new TypeError('installRateLimitedFetch: `limiters` must be an object of limiters by origin');
  }
  // Checked here, even with no limiter given.
  const settings = fetchSettings('installRateLimitedFetch', opts);
  const original = globalThis.fetch;
  if (typeof original !== 'function') throw new TypeError('installRateLimitedFetch: no global fetch here');
  const byOrigin = new Map<string, typeof fetch>();
  const limiterOf = new Map<string, Limiter>();
  for (const [key, limiter] of Object.entries(limiters)) {
    const origin = originOfKey(key);
    if (origin === undefined) {
      throw new TypeError(
        `installRateLimitedFetch: key ${JSON.stringify((safePath(key) ?? '').slice(0, 100))} of \`limiters\` must be an origin like 'https://api.example.com'`,
      );
    }
    if (!isLimiter(limiter)) {
      throw new TypeError(
        `installRateLimitedFetch: \`limiters[${JSON.stringify((safePath(key) ?? '').slice(0, 100))}]\` must be a limiter`,
      );
    }
    // Two keys of one origin (`API.procore.com:443` is `api.procore.com`) with two limiters:
    // the last would pace every call to it, the other none, silently.
    const same = limiterOf.get(origin);
    if (same !== undefined && same !== limiter) {
      throw new TypeError(
        `installRateLimitedFetch: two keys of \`limiters\` name the origin ${JSON.stringify(origin)}; give each origin one limiter`,
      );
    }
    limiterOf.set(origin, limiter);
    byOrigin.set(origin, pacedFetch('installRateLimitedFetch', limiter, settings, original));
  }
  let active = true;
  const installed = (input: globalThis.RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const paced = active ? byOrigin.get(originOfInput(input) ?? '') : undefined;
    return paced ? paced(input, init) : original(input, init);
  };
  globalThis.fetch = installed as typeof fetch;
  return () => {
    if (!active) return;
    active = false;
    if (globalThis.fetch === installed) globalThis.fetch = original;
  };
}

/** The options of `rateLimitedFetch` checked, each bad one named with `where` (the caller). */
function fetchSettings(where: string, opts: RateLimitedFetchOptions) {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
    throw new TypeError(`${where}: options must be an object, got ${opts === null ? 'null' : typeof opts}`);
  }
  const maxRetries = checkMaxRetries(where, opts.maxRetries);
  const statuses = checkStatuses(where, opts.statuses);
  const priority = checkPriority(where, opts.priority);
  if (opts.fetch !== undefined && typeof opts.fetch !== 'function') {
    throw new TypeError(`${where}: option \`fetch\` must be a function (a fetch implementation)`);
  }
  const cost = opts.cost;
  if (
    cost !== undefined &&
    typeof cost !== 'function' &&
    typeof cost !== 'number' &&
    (typeof cost !== 'object' || cost === null || Array.isArray(cost))
  ) {
    throw new TypeError(
      `${where}: option \`cost\` must be a number, an object of costs by bucket or a function, got ${cost === null ? 'null' : Array.isArray(cost) ? 'an array' : typeof cost}`,
    );
  }
  const retryNonIdempotent = checkRetryNonIdempotent(where, opts.retryNonIdempotent);
  const bodyTimeoutMs = opts.bodyTimeoutMs ?? BODY_TIMEOUT_MS;
  if (typeof bodyTimeoutMs !== 'number' || !Number.isFinite(bodyTimeoutMs) || bodyTimeoutMs < 0) {
    throw new TypeError(
      `${where}: option \`bodyTimeoutMs\` must be a finite number of ms >= 0, got ${String(bodyTimeoutMs)}`,
    );
  }
  return { fetch: opts.fetch, maxRetries, statuses, priority, cost, retryNonIdempotent, bodyTimeoutMs };
}

/** `'https://api.example.com'` as `new URL(…).origin` writes it; `undefined` if not an origin. */
function originOfKey(key: string): string | undefined {
  try {
    const url = new URL(key);
    if (url.origin === 'null' || url.username || url.password || url.search || url.hash) return undefined;
    if (url.pathname !== '/' && url.pathname !== '') return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

/** The origin a fetch goes to, or `undefined` (a relative URL outside a browser, a bad URL). */
function originOfInput(input: unknown): string | undefined {
  try {
    if (input instanceof URL) return input.origin;
    const href = isRequest(input) ? input.url : String(input);
    const base = (globalThis as { location?: { href?: unknown } }).location?.href;
    return new URL(href, typeof base === 'string' ? base : undefined).origin;
  } catch {
    return undefined;
  }
}

/**
 * Does `url` carry a user name or password, as fetch parses it (against the page's address in
 * a browser)? A URL that does not parse: no, fetch says so itself.
 */
function hasUserInfo(url: string): boolean {
  const base = (globalThis as { location?: { href?: unknown } }).location?.href;
  try {
    const { username, password } = new URL(url, typeof base === 'string' ? base : undefined);
    return username !== '' || password !== '';
  } catch {
    return false;
  }
}

function isRequest(input: unknown): input is Request {
  if (typeof Request !== 'undefined' && input instanceof Request) return true;
  // A Request of another realm or fetch polyfill.
  const r = input as Partial<Request> | null;
  return (
    typeof input === 'object' &&
    r !== null &&
    !(input instanceof URL) &&
    typeof r.url === 'string' &&
    typeof r.method === 'string' &&
    typeof r.clone === 'function'
  );
}

/**
 * The body of a 429/403 read from a clone, streamed: `undefined` past {@link MAX_BODY_BYTES}
 * (whatever `Content-Length` says), past `timeoutMs`, or when it fails to arrive. The clone is
 * cancelled when done; the caller's copy stays whole and unread.
 */
async function readBody(response: Response, timeoutMs: number): Promise<unknown> {
  if (response.body === null || response.bodyUsed) return undefined;
  const length = Number(response.headers.get('content-length') ?? 0);
  if (length > MAX_BODY_BYTES) return undefined;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    reader = response.clone().body?.getReader();
    if (!reader) return undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const next = await Promise.race([reader.read(), timedOut]);
      if (next === 'timeout') return undefined;
      if (next.done) break;
      size += next.value.byteLength;
      if (size > MAX_BODY_BYTES) return undefined;
      chunks.push(next.value);
    }
    const bytes = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return parseText(new TextDecoder().decode(bytes), response.headers.get('content-type') ?? undefined);
  } catch {
    // The limiter then reads headers only; the caller meets the same failure if it reads the
    // original body, so nothing is hidden from it.
    return undefined;
  } finally {
    clearTimeout(timer);
    // Stop pulling for the clone: what the caller has not read stays for the caller's copy.
    reader?.cancel().catch(() => undefined);
  }
}
