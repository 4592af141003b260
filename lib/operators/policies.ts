/**
 * Internal to the library. The decisions of the three operators, in one place: `throttleByHeaders`,
 * `retryOn429` and `dailyQuotaGuard` use them as RxJS operators, and `rateLimit` runs them in
 * its single subscriber (see `pacedRequest.ts`). Plain functions of (limiter, info, config), so that
 * nothing is allocated per request to hold them.
 */
import type { Limiter, Permit } from '../core/limiter.js';
import type { RequestInfo } from '../core/request.js';
import type { ResponseExtractor, ResponseLike } from '../core/response.js';
import type { DailyQuotaGuardConfig, RetryOn429Config } from './config.js';

/** The extractor an operator uses: its own, else the limiter's. */
export function extractorOf(limiter: Limiter, config: { readonly extractResponse?: ResponseExtractor }) {
  return config.extractResponse ?? limiter.extractResponse;
}

// ---- throttleByHeaders --------------------------------------------------------------------

/**
 * Reads the response in `raw` (a value or an error of the request), if any, into the permit:
 * is the credential blocked? A user extractor that throws must not lose the request's own
 * outcome, nor the permit: it reads as "not blocked".
 */
export function readBlocked(extract: ResponseExtractor, permit: Permit, raw: unknown): boolean {
  try {
    const res = extract(raw);
    return res !== undefined && permit.observe(res, raw).outcome === 'blocked';
  } catch {
    return false;
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
    throw new TypeError(`retryOn429: option \`maxRetries\` must be a whole number >= 0, got ${String(maxRetries)}`);
  }
  return maxRetries;
}

/** The response in `x` if it has a status to retry (429 unless `statuses` says otherwise). */
export function retryableResponse(limiter: Limiter, config: RetryOn429Config, x: unknown): ResponseLike | undefined {
  if (x instanceof RetryableAnswer) return x.response;
  const res = extractorOf(limiter, config)(x);
  return res && (config.statuses ?? DEFAULT_STATUSES).includes(res.status) ? res : undefined;
}

const DEFAULT_STATUSES: readonly number[] = [429];

/** Reads a 429 the limiter has not seen (retryOn429 used without throttleByHeaders). */
export function observeUnseen(limiter: Limiter, info: RequestInfo, config: RetryOn429Config, raw: unknown): void {
  const res = retryableResponse(limiter, config, raw);
  if (res && typeof raw === 'object' && raw !== null) limiter.observe(res, info, raw);
}

/**
 * What to do with an error of attempt `attempts` (1 for the first): wait `ms` and send again,
 * or fail with `error` (what the request ended with, or `RetryLimitError`/`QuotaExhaustedError`).
 * Throws what a user extractor throws.
 */
export function retryDecision(
  limiter: Limiter,
  info: RequestInfo,
  config: RetryOn429Config,
  maxRetries: number,
  error: unknown,
  attempts: number,
): { readonly ms: number } | { readonly fail: unknown } {
  const res = retryableResponse(limiter, config, error);
  if (!res) return { fail: error };
  const raw = error instanceof RetryableAnswer ? error.value : error;
  observeUnseen(limiter, info, config, raw);
  try {
    return { ms: limiter.retryDelay(info, { attempts, maxRetries, status: res.status, cause: raw }) };
  } catch (e) {
    return { fail: e };
  }
}

// ---- dailyQuotaGuard ----------------------------------------------------------------------

/** Checks `reserve` (a `TypeError` naming it). */
export function checkReserve(config: DailyQuotaGuardConfig): void {
  const reserve = config.reserve ?? 0;
  if (!Number.isInteger(reserve) || reserve < 0) {
    throw new TypeError(`dailyQuotaGuard: option \`reserve\` must be a whole number >= 0, got ${String(reserve)}`);
  }
}

/** Units of each quota bucket this request must leave (none at or above `reservePriority`). */
export function reserveFor(info: RequestInfo, config: DailyQuotaGuardConfig): number {
  return (info.priority ?? 0) >= (config.reservePriority ?? 1) ? 0 : (config.reserve ?? 0);
}
