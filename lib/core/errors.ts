/**
 * The errors rx-ratelimit raises. Each is a class with a literal `name`, read-only structured
 * fields and a guard function, so callers can branch without `instanceof` across realms or
 * duplicated package copies.
 */
import { capText, isoOrNever, withoutUserInfo } from './events.js';
import { showAs, type InspectFn } from './inspect.js';

/** Where a wait or a failure came from; carries no credential. */
export interface ErrorContext {
  /** The provider's name, e.g. `"procore"`. */
  readonly provider: string;
  /** The limiter's key label: a hash of the credential, never the credential. */
  readonly key: string;
}

const BRAND = Symbol.for('rx-ratelimit.error');

/**
 * Each of our errors' cause as received, reachable only through `rawCauseOf`: a weak map, not a
 * private field, is as invisible to inspect, JSON and reflection, and also serves a copy of the
 * error (each joiner of a shared request gets its own: `copyOfError` in sharing.ts).
 */
const rawCauses = new WeakMap<object, unknown>();

/** @internal `copy`, a copy of `original` made for another caller, has the same raw cause. */
export function sameRawCause(copy: object, original: object): void {
  if (rawCauses.has(original)) rawCauses.set(copy, rawCauses.get(original));
}

/**
 * Base class of every error rx-ratelimit creates.
 *
 * ```ts
 * import type { Observable } from 'rxjs';
 * import { isRateLimitError } from 'rx-ratelimit';
 * declare const request$: Observable<unknown>; // any request through a limiter
 * request$.subscribe({ error: (e) => isRateLimitError(e) && console.warn(e.name, e.message) });
 * ```
 */
export class RateLimitError extends Error {
  override readonly name: string = 'RateLimitError';
  /** Brand checked by the guards, so they work across duplicated copies of the package. */
  declare readonly [BRAND]: true;
  readonly provider: string;
  readonly key: string;
  /**
   * What ended the request, redacted: ours as they are; a string without its URLs' queries and
   * user-info; anything else (an `AxiosError`, a fetch `Response`, an Angular
   * `HttpErrorResponse`) as a {@link CauseSummary}. The object the HTTP client made holds the
   * request (`config.headers.Authorization`, `?api_token=` in URLs, the raw request head), so it
   * is not kept here, where loggers and error trackers walk; {@link rawCauseOf} returns it.
   */
  declare readonly cause?: unknown;

  /** Errors are made by the limiter; applications read them (and test code may make them). */
  constructor(message: string, context: ErrorContext, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: redactedCause(options.cause) });
    rawCauses.set(this, options?.cause);
    this.provider = context.provider;
    this.key = context.key;
    Object.defineProperty(this, BRAND, { value: true });
    showAs(this, inspectError);
  }

  /** @internal The unredacted cause (see {@link rawCauseOf}); `undefined` for an error of another copy of the package. */
  static rawCauseOf(e: RateLimitError): unknown {
    return rawCauses.get(e);
  }

  /** Plain data for logs: our own fields; not the cause (its summary is in `cause`). */
  toJSON(): Record<string, unknown> {
    const data: Record<string, unknown> = { name: this.name, message: this.message };
    for (const [k, v] of Object.entries(this)) if (k !== 'cause') data[k] = v;
    return data;
  }
}

/**
 * `util.inspect` and `console.log` of our errors: the error as Node shows it, its (redacted)
 * `cause` included; a cause that is not ours is shown by name, message, status and code only.
 */
const inspectError: InspectFn = function (this: object, _depth, options, inspect) {
  const e = this as RateLimitError;
  if (typeof inspect !== 'function') return `${e.stack ?? `${e.name}: ${e.message}`}`;
  // A real Error (so Node prints it as one, whatever the realm) of the same class with the same
  // fields; without this one's own inspect function, so Node shows it as an error.
  const view = Object.setPrototypeOf(new Error(e.message), Object.getPrototypeOf(e) as object) as Record<
    PropertyKey,
    unknown
  >;
  Object.defineProperty(view, 'stack', { value: e.stack, writable: true, configurable: true });
  for (const [k, v] of Object.entries(e)) if (k !== 'cause') view[k] = v;
  // Redacted already; summarised again for an error built by another copy of the package.
  if (e.cause !== undefined) Object.defineProperty(view, 'cause', { value: redactedCause(e.cause) });
  return inspect(view, options);
};

/**
 * What our errors keep of a cause they did not create: enough to branch on and to log, nothing
 * of the request that was sent.
 */
export interface CauseSummary {
  /** The cause's `name` (`"AxiosError"`, `"HttpErrorResponse"`), else its class name (`"Response"`). */
  readonly name?: string;
  /** Its message, without query strings, fragments or user-info of the URLs in it. */
  readonly message?: string;
  /** The HTTP status (`status`, or `response.status` for an `AxiosError`). */
  readonly status?: number;
  /** Its `code` (`"ERR_BAD_REQUEST"`, `"ECONNRESET"`). */
  readonly code?: string | number;
}

/**
 * The cause of one of our errors exactly as the HTTP client made it (an `AxiosError` with its
 * `config`, a fetch `Response`, an Angular `HttpErrorResponse`), for code that must read it: a
 * response body, a header. It holds the request, credentials included: do not log it. `cause`
 * itself is the redacted form.
 *
 * ```ts
 * import { isRetryLimitError, rawCauseOf } from 'rx-ratelimit';
 * declare const e: unknown; // what a request through a limiter failed with
 * if (isRetryLimitError(e)) console.warn(e.cause); // { name: 'AxiosError', message: …, status: 429 }
 * const response = isRetryLimitError(e) ? (rawCauseOf(e) as { response?: unknown }).response : undefined;
 * ```
 */
export function rawCauseOf(error: RateLimitError): unknown {
  return RateLimitError.rawCauseOf(error);
}

/** Longest message a cause summary keeps (cut at a segment boundary, ending in `…`). */
const MAX_CAUSE_MESSAGE = 2048;

/**
 * A cause as our errors keep it: ours as they are (their own causes are redacted); a string
 * without its URLs' secrets; others as a {@link CauseSummary} (read defensively: a hostile
 * cause must not make creating or printing an error throw).
 */
function redactedCause(cause: unknown): unknown {
  if (typeof cause === 'string') return withoutQueries(cause);
  if (typeof cause !== 'object' || cause === null) return cause;
  try {
    return isRateLimitError(cause) ? cause : summaryOf(cause);
  } catch {
    return { name: 'unreadable cause' };
  }
}

function summaryOf(cause: object): CauseSummary {
  const c = cause as { name?: unknown; message?: unknown; status?: unknown; code?: unknown; response?: unknown };
  const response = c.response;
  const status =
    c.status ??
    (typeof response === 'object' && response !== null ? (response as { status?: unknown }).status : undefined);
  const name =
    typeof c.name === 'string'
      ? c.name
      : (Object.getPrototypeOf(cause) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  const summary: { -readonly [K in keyof CauseSummary]: CauseSummary[K] } = {};
  if (typeof name === 'string') summary.name = capText(name, 200);
  if (typeof c.message === 'string') summary.message = withoutQueries(c.message);
  if (typeof status === 'number') summary.status = status;
  if (typeof c.code === 'string') summary.code = capText(c.code, 200);
  else if (typeof c.code === 'number') summary.code = c.code;
  return summary;
}

/**
 * Removes query strings, fragments and user-info from the URLs in a text (Angular puts the URL
 * in its messages, spaces and all), cut first to {@link MAX_CAUSE_MESSAGE} characters; then any `&name=value`
 * left, a query's later parameters after a space or a quote in an earlier one's value (a URL as
 * the app wrote it: `?q=red shoes&api_token=…`). Every pattern is linear.
 */
function withoutQueries(text: string): string {
  return (
    withoutUserInfo(capText(text, MAX_CAUSE_MESSAGE))
      // A user-info with a space in it (`https://bob:pa ss@host`, as the app wrote it).
      .replace(/([/\\]{2})[^/\\?#@\r\n]{1,200}@/g, '$1')
      .replace(/[?#][^\s'"]*/g, '')
      .replace(/&[^\s&=#'"]{1,100}=[^\s&#'"]*/g, '')
  );
}

/** Ms from `now` (the limiter's clock; the wall clock when not told) until `at`, at least 0; `undefined` for no time. */
function msUntil(at: number, now = Date.now()): number | undefined {
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/**
 * A request would have to wait past `maxWaitMs` (an exhausted hourly or daily budget, a long
 * pause after a 429), so it fails now instead of sleeping for hours. Nothing was sent.
 *
 * ```ts
 * import { isQuotaExhaustedError } from 'rx-ratelimit';
 * declare const e: unknown; // what a request through a limiter failed with
 * declare function scheduleLater(at: number): void; // your job queue
 * if (isQuotaExhaustedError(e)) scheduleLater(e.resumeAt);
 * ```
 */
export class QuotaExhaustedError extends RateLimitError {
  override readonly name = 'QuotaExhaustedError' as const;
  /** The bucket that is out of budget, or `"pause"` when the limiter is paused after a 429. */
  readonly bucket: string;
  /**
   * Epoch ms (limiter clock) when a request could be sent again; `Infinity` when nobody can
   * tell (the wait depended on a response that did not come, or on `maxConcurrent`).
   */
  readonly resumeAt: number;
  /**
   * Ms from when this error was made until `resumeAt`, measured on the limiter's clock, which no
   * step of the wall clock moves: the wait, for code that handles the error at once and has no
   * limiter to ask (`resumeAt - Date.now()` is off by any step of the wall clock since the
   * limiter was made). `Infinity` when nobody can tell.
   */
  readonly resumeInMs: number;

  /** Made by the limiter; the fields above are its arguments. */
  constructor(
    context: ErrorContext & {
      bucket: string;
      resumeAt: number;
      waitMs: number;
      maxWaitMs: number;
      /** Set when the bucket had room, all of it kept for requests of higher priority. */
      reserve?: number;
      /** The limiter's clock when it was made (epoch ms). @default Date.now() */
      now?: number;
    },
    options?: { cause?: unknown },
  ) {
    const why =
      context.reserve !== undefined
        ? `its last ${context.reserve} kept for requests of higher priority (reserve)`
        : Number.isFinite(context.waitMs)
          ? `a wait of ${fmtMs(context.waitMs)}, more than maxWaitMs ${fmtMs(context.maxWaitMs)}`
          : `no response has said when it resets; maxWaitMs ${fmtMs(context.maxWaitMs)}`;
    super(
      `${context.provider}: bucket "${context.bucket}" has no budget ` +
        `${Number.isFinite(context.resumeAt) ? `until ${isoOrNever(context.resumeAt)}` : 'for a time nobody can tell'} ` +
        `(${why}); the request was not sent`,
      context,
      options,
    );
    this.bucket = context.bucket;
    this.resumeAt = context.resumeAt;
    this.resumeInMs = msUntil(context.resumeAt, context.now) ?? Infinity;
  }
}

/**
 * The provider has cut the credential off (Pipedrive's Cloudflare 403 page). Every request of
 * the limiter fails with this until `until`, or until `limiter.unblock()`; nothing is sent.
 */
export class BlockedError extends RateLimitError {
  override readonly name = 'BlockedError' as const;
  /** HTTP status of the response that blocked the credential. */
  readonly status: number;
  /** Epoch ms (limiter clock) when the limiter will try again, or `null` for never by itself. */
  readonly until: number | null;
  /**
   * Ms from when this error was made until `until`, measured on the limiter's clock (as
   * {@link QuotaExhaustedError.resumeInMs}); `null` with `until`.
   */
  readonly untilInMs: number | null;

  /** Made by the limiter; the fields above are its arguments. */
  constructor(
    context: ErrorContext & {
      status: number;
      until: number | null;
      /** The limiter's clock when it was made (epoch ms). @default Date.now() */
      now?: number;
    },
    options?: { cause?: unknown },
  ) {
    super(
      `${context.provider}: the provider blocked this credential (HTTP ${context.status}); ` +
        `no request is sent until ${context.until === null ? 'limiter.unblock() is called' : isoOrNever(context.until)}`,
      context,
      options,
    );
    this.status = context.status;
    this.until = context.until;
    this.untilInMs = context.until === null ? null : (msUntil(context.until, context.now) ?? Infinity);
  }
}

/** A request got 429 more times than `maxRetries` allows. `cause` is the last 429 as received. */
export class RetryLimitError extends RateLimitError {
  override readonly name = 'RetryLimitError' as const;
  /** How many times the request was sent. */
  readonly attempts: number;
  /** Status of the last response (429). */
  readonly status: number;

  /** Made by the limiter; the fields above are its arguments. */
  constructor(context: ErrorContext & { attempts: number; status: number }, options?: { cause?: unknown }) {
    super(
      `${context.provider}: still rate limited (HTTP ${context.status}) after ${context.attempts} attempts`,
      context,
      options,
    );
    this.attempts = context.attempts;
    this.status = context.status;
  }
}

/**
 * The limiter's queue holds `maxQueue` requests already: this one was refused, or it was waiting
 * and a request of a higher `priority` took its place. Not sent.
 */
export class QueueFullError extends RateLimitError {
  override readonly name = 'QueueFullError' as const;
  /** The `maxQueue` option in force. */
  readonly maxQueue: number;

  /** Made by the limiter; the fields above are its arguments. */
  constructor(context: ErrorContext & { maxQueue: number }) {
    super(`${context.provider}: the queue is full (maxQueue ${context.maxQueue}); the request was not sent`, context);
    this.maxQueue = context.maxQueue;
  }
}

/**
 * The request costs more units of a bucket than the bucket's whole limit: no window could
 * ever admit it, so it fails at once instead of waiting. Not sent.
 *
 * ```ts
 * import { isCostExceedsLimitError } from 'rx-ratelimit';
 * declare const e: unknown;
 * if (isCostExceedsLimitError(e)) console.warn(`${e.bucket}: cost ${e.cost} > limit ${e.limit}`);
 * ```
 */
export class CostExceedsLimitError extends RateLimitError {
  override readonly name = 'CostExceedsLimitError' as const;
  /** The bucket whose limit is below the cost. */
  readonly bucket: string;
  /** The units the request asked of it. */
  readonly cost: number;
  /** The bucket's limit as the limiter knows it (a hint, or the server's figure). */
  readonly limit: number;

  /** Made by the limiter; the fields above are its arguments. */
  constructor(context: ErrorContext & { bucket: string; cost: number; limit: number }) {
    super(
      `${context.provider}: the request costs ${context.cost} units of bucket "${context.bucket}", ` +
        `more than its limit of ${context.limit}; no window can admit it, so it was not sent`,
      context,
    );
    this.bucket = context.bucket;
    this.cost = context.cost;
    this.limit = context.limit;
  }
}

/**
 * `pool.get(key)` for a new key found the pool at its `max`, each of its limiters busy (requests
 * queued or in flight, or a pause, a block or a spent bucket in force), so none could be evicted
 * to make room. `key` is the label the new key's limiter would show, never the key.
 */
export class LimiterPoolFullError extends RateLimitError {
  override readonly name = 'LimiterPoolFullError' as const;
  /** The pool's `max`. */
  readonly max: number;

  /** Made by the limiter pool; the fields above are its arguments. */
  constructor(context: ErrorContext & { max: number }) {
    super(
      `rx-ratelimit: the ${context.provider} limiter pool holds its maximum of ${context.max} limiters, each with requests queued` +
        ` or in flight or a pause, block or spent window in force, so none could be evicted for a new key; raise \`max\` or retry later`,
      context,
    );
    this.max = context.max;
  }
}

/**
 * The limiter was closed (`limiter.close()`, or the pool or module that made it closed it) and
 * takes no more requests: it keeps its buckets in a shared store, whose connection it gave up
 * (a request waiting in its queue then, or asked for afterwards, fails with this), or, with the
 * memory store, it left its credential's limit state and a newer limiter of the same key holds
 * that credential now (a pool's limiter kept past its eviction: get it from the pool again).
 * Nothing was sent.
 *
 * ```ts
 * import { isLimiterClosedError } from 'rx-ratelimit';
 * declare const e: unknown; // what a request through a limiter failed with
 * if (isLimiterClosedError(e)) console.warn('shutting down:', e.message);
 * ```
 */
export class LimiterClosedError extends RateLimitError {
  override readonly name = 'LimiterClosedError' as const;

  /** Made by the limiter. */
  constructor(context: ErrorContext) {
    super(`${context.provider}: the limiter is closed (limiter.close()); the request was not sent`, context);
  }
}

/** Is `e` any error created by rx-ratelimit? */
export const isRateLimitError = (e: unknown): e is RateLimitError =>
  typeof e === 'object' && e !== null && (e as { [BRAND]?: unknown })[BRAND] === true;
/** Is `e` a {@link QuotaExhaustedError}? */
export const isQuotaExhaustedError = (e: unknown): e is QuotaExhaustedError =>
  isRateLimitError(e) && e.name === 'QuotaExhaustedError';
/** Is `e` a {@link BlockedError}? */
export const isBlockedError = (e: unknown): e is BlockedError => isRateLimitError(e) && e.name === 'BlockedError';
/** Is `e` a {@link RetryLimitError}? */
export const isRetryLimitError = (e: unknown): e is RetryLimitError =>
  isRateLimitError(e) && e.name === 'RetryLimitError';
/** Is `e` a {@link QueueFullError}? */
export const isQueueFullError = (e: unknown): e is QueueFullError => isRateLimitError(e) && e.name === 'QueueFullError';
/** Is `e` a {@link CostExceedsLimitError}? */
export const isCostExceedsLimitError = (e: unknown): e is CostExceedsLimitError =>
  isRateLimitError(e) && e.name === 'CostExceedsLimitError';
/** Is `e` a {@link LimiterClosedError}? */
export const isLimiterClosedError = (e: unknown): e is LimiterClosedError =>
  isRateLimitError(e) && e.name === 'LimiterClosedError';
/**
 * @internal Ms until a refusal's `resumeAt` (a `QuotaExhaustedError`) or `until` (a
 * `BlockedError` with an end) on the limiter's clock: read on `now` when given, else the wait the
 * error carries (`resumeInMs`, `untilInMs`; an error of an older copy of the package carries none:
 * then against the wall clock). `Infinity` when nobody can tell; `undefined` for any other error.
 */
export function refusalWaitMs(error: unknown, now?: () => number): number | undefined {
  const [at, inMs] = isQuotaExhaustedError(error)
    ? [error.resumeAt, error.resumeInMs]
    : isBlockedError(error) && error.until !== null
      ? [error.until, error.untilInMs]
      : [undefined, undefined];
  if (at === undefined) return undefined;
  if (!Number.isFinite(at)) return Infinity;
  return now ? at - now() : typeof inMs === 'number' ? inMs : at - Date.now();
}

/** Is `e` a {@link LimiterPoolFullError}? */
export function isLimiterPoolFullError(e: unknown): e is LimiterPoolFullError {
  return isRateLimitError(e) && e.name === 'LimiterPoolFullError';
}

/** A duration as a person reads it: `850 ms`, `42 s`, `12 min 5 s`, `6 h 37 min`, `2 d 3 h`. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'forever';
  if (ms < 10_000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 120) return `${min} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h${min % 60 ? ` ${min % 60} min` : ''}`;
  return `${Math.floor(h / 24)} d${h % 24 ? ` ${h % 24} h` : ''}`;
}
