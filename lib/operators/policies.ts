/**
 * Internal to the library. The decisions of the three operators, in one place: `throttleByHeaders`,
 * `retryOn429` and `dailyQuotaGuard` use them as RxJS operators, and `rateLimit` runs them in
 * its single subscriber (see `pacedRequest.ts`). Plain functions of (limiter, info, config), so that
 * nothing is allocated per request to hold them.
 */
import type { Limiter, Permit } from '../core/limiter.js';
import type { ResponseReading } from '../core/provider.js';
import { checkRequestInfo, checkRetryNonIdempotent, type RequestInfo } from '../core/request.js';
import { isResendable } from '../core/resend.js';
import type { ResponseExtractor, ResponseLike } from '../core/response.js';
import type { DailyQuotaGuardConfig, RateLimitConfig, RetryOn429Config } from './config.js';

/** The extractor an operator uses: its own, else the limiter's. */
export function extractorOf(limiter: Limiter, config: { readonly extractResponse?: ResponseExtractor }) {
  return config.extractResponse ?? limiter.extractResponse;
}

/**
 * The response in `x` by `extract`; one that throws (a user's, on a value it did not expect)
 * finds none: the request's own value or error goes on as it is, never replaced by that throw.
 */
export function responseIn(extract: ResponseExtractor, x: unknown): ResponseLike | undefined {
  try {
    return extract(x);
  } catch {
    return undefined;
  }
}

/**
 * What every operator checks when it is made (`name`: the operator), so that a bad value is a
 * `TypeError` naming it at the call that gave it: the request's fields, and each option the
 * operator reads. An `extractResponse` that was no function left every response unread (no
 * pacing at all); `statuses: 429` threw a bare `TypeError` on the first answer.
 */
export function checkOperator(name: string, info: RequestInfo, config: RateLimitConfig): void {
  checkRequestInfo(info);
  const { extractResponse, statuses, reservePriority } = config;
  if (extractResponse !== undefined && typeof extractResponse !== 'function')
    badOption(name, 'extractResponse', 'a function', extractResponse);
  if (
    statuses !== undefined &&
    (!Array.isArray(statuses) || !statuses.every((s) => Number.isInteger(s) && s >= 100 && s <= 599))
  )
    badOption(name, 'statuses', 'an array of HTTP status codes (100 to 599)', statuses);
  if (reservePriority !== undefined && (typeof reservePriority !== 'number' || Number.isNaN(reservePriority)))
    badOption(name, 'reservePriority', 'a number', reservePriority);
}

function badOption(name: string, option: string, what: string, value: unknown): never {
  const got =
    typeof value === 'number'
      ? String(value)
      : value === null
        ? 'null'
        : Array.isArray(value)
          ? 'an array with other values'
          : typeof value;
  throw new TypeError(`${name}: option \`${option}\` must be ${what}, got ${got}`);
}

// ---- throttleByHeaders --------------------------------------------------------------------

/**
 * Reads the response in `raw` (a value or an error of the request), if any, into the permit,
 * and returns what the provider made of it (`blocked`: the credential is cut off; `limited` on
 * a 200: a throttle told in the body). A user extractor that throws must not lose the
 * request's own outcome, nor the permit: it reads as no response.
 */
export function readAnswer(extract: ResponseExtractor, permit: Permit, raw: unknown): ResponseReading | undefined {
  try {
    const res = responseIn(extract, raw);
    return res === undefined ? undefined : permit.observe(res, raw);
  } catch {
    return undefined;
  }
}

// ---- retryOn429 ---------------------------------------------------------------------------

/** A 429 that arrived as a value (fetch resolves with it) turned into an error so it retries. */
export class RetryableAnswer {
  constructor(
    readonly value: unknown,
    readonly response: ResponseLike,
  ) {}
}

/** Checks `maxRetries` (a `TypeError` naming it) and returns it. */
export function maxRetriesOf(config: RetryOn429Config): number {
  const maxRetries = config.maxRetries ?? 5;
  if (!Number.isInteger(maxRetries) || maxRetries < 0) {
    const got = typeof maxRetries === 'number' ? String(maxRetries) : typeof maxRetries;
    throw new TypeError(`retryOn429: option \`maxRetries\` must be a whole number >= 0, got ${got}`);
  }
  return maxRetries;
}

/** Checks `retryNonIdempotent` (a `TypeError` naming it) and returns it. */
export function retryNonIdempotentOf(config: RetryOn429Config): boolean {
  return checkRetryNonIdempotent('retryOn429', config.retryNonIdempotent);
}

/**
 * The response in `x` if the request is to be sent again after it ({@link isResendable}): a
 * status in `statuses` (429 unless told) or an answer the provider reads as `limited` (GitHub's
 * rate-limit 403), on a request safe to repeat (`safe`); on a request not safe to repeat, only what the provider says the
 * server did not act on. `reading`: the provider's reading of `x`, when the caller has it;
 * otherwise the limiter's, else the provider is asked (a profile is pure).
 */
export function retryableResponse(
  limiter: Limiter,
  info: RequestInfo,
  config: RetryOn429Config,
  x: unknown,
  safe: boolean,
  reading?: ResponseReading,
): ResponseLike | undefined {
  if (x instanceof RetryableAnswer) return x.response;
  const res = responseIn(extractorOf(limiter, config), x);
  if (!res) return undefined;
  const listed = (config.statuses ?? DEFAULT_STATUSES).includes(res.status);
  if (listed && safe) return res;
  // Any other answer is one to retry only if the provider reads it as a rate limit.
  const read = reading ?? limiter.readingOf(x) ?? peek(limiter, res, info);
  return isResendable(info, safe, listed, read) ? res : undefined;
}

const DEFAULT_STATUSES: readonly number[] = [429];

/** What the provider makes of `res`, without applying it to the limiter; a throw reads as nothing. */
function peek(limiter: Limiter, res: ResponseLike, info: RequestInfo): ResponseReading | undefined {
  try {
    return limiter.provider.read(res, info);
  } catch {
    return undefined;
  }
}

/**
 * Reads a rate-limit answer the limiter has not seen (retryOn429 used without
 * throttleByHeaders): a status in `statuses`, or an answer the provider reads as `limited`.
 */
export function observeUnseen(limiter: Limiter, info: RequestInfo, config: RetryOn429Config, raw: unknown): void {
  if (typeof raw !== 'object' || raw === null || limiter.hasSeen(raw)) return;
  const res = retryableResponse(limiter, info, config, raw, true);
  if (res) limiter.observe(res, info, raw);
}

/**
 * What to do with an error of attempt `attempts` (1 for the first): wait `ms` and send again,
 * or fail with `error` (what the request ended with, or `RetryLimitError`/`QuotaExhaustedError`).
 * `safe`: the request may be repeated ({@link isRetrySafe}). Throws what a user extractor throws.
 */
export function retryDecision(
  limiter: Limiter,
  info: RequestInfo,
  config: RetryOn429Config,
  maxRetries: number,
  error: unknown,
  attempts: number,
  safe: boolean,
): { readonly ms: number } | { readonly fail: unknown } {
  const raw = error instanceof RetryableAnswer ? error.value : error;
  observeUnseen(limiter, info, config, raw);
  const res = retryableResponse(limiter, info, config, error, safe);
  if (!res) return { fail: error };
  try {
    return { ms: limiter.retryDelay(info, { attempts, maxRetries, status: res.status, cause: raw }) };
  } catch (e) {
    return { fail: e };
  }
}

// ---- dailyQuotaGuard ----------------------------------------------------------------------

/** Checks `reserve` (a `TypeError` naming it). */
export function checkReserve(config: DailyQuotaGuardConfig, name = 'dailyQuotaGuard'): void {
  const reserve = config.reserve === undefined ? 0 : config.reserve;
  if (!Number.isInteger(reserve) || reserve < 0) badOption(name, 'reserve', 'a whole number >= 0', reserve);
}

/** Units of each quota bucket this request must leave (none at or above `reservePriority`). */
export function reserveFor(info: RequestInfo, config: DailyQuotaGuardConfig): number {
  return (info.priority ?? 0) >= (config.reservePriority ?? 1) ? 0 : (config.reserve ?? 0);
}
