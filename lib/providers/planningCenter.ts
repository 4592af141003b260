import * as z from 'zod/mini';
import { parseOptions } from '../core/options.js';
import type { RequestInfo } from '../core/request.js';
import type { ResponseLike } from '../core/response.js';
import { parseCount } from '../headers/count.js';
import { parsePeriod } from '../headers/period.js';
import { defineProvider } from './define.js';
import {
  bodyValue,
  checkBucketNames,
  commonShape,
  field,
  hinted,
  items,
  type CommonProviderOptions,
} from './endpoint.js';
import { compact, readRetryAfter } from './read.js';
import type { BucketReading, Provider } from './types.js';

/**
 * Options of `providers.planningCenter()`: only the common ones. Its buckets are `default`
 * (every request) and `high-offset` (requests with `offset` above 30,000, on top of `default`).
 *
 * ```ts
 * import { providers, type PlanningCenterOptions } from 'rx-ratelimit';
 * const options: PlanningCenterOptions = { hints: { default: { limit: 50 } } };
 * const pco = providers.planningCenter(options);
 * ```
 */
export type PlanningCenterOptions = CommonProviderOptions;

const DEFAULT = 'default';
const HIGH_OFFSET = 'high-offset';
const H = 'x-pco-api-request-rate-';
/**
 * "Rate limit exceeded: 118 of 100 requests per 20 seconds". Linear: a match starts only where a
 * digit run starts (the lookbehind) and every repetition is bounded, so a long run of digits is
 * not rescanned from each of its digits.
 */
const DETAIL =
  /(?<!\d)(\d{1,15})\s{1,8}of\s{1,8}(\d{1,15})\s{1,8}requests?\s{1,8}per\s{1,8}([\w .]{1,40}?)\s{0,8}\.?$/i;
const schema = z
  .strictObject(commonShape)
  .check(z.superRefine(checkBucketNames((n) => n === DEFAULT || n === HIGH_OFFSET, `"${DEFAULT}", "${HIGH_OFFSET}"`)));

/**
 * Does the request's query carry an `offset` above 30,000 (Planning Center's stricter limit)?
 *
 * ```ts
 * import { isHighOffset } from 'rx-ratelimit';
 * isHighOffset('/people/v2/people?per_page=100&offset=30100'); // true
 * ```
 */
export function isHighOffset(url: string | undefined): boolean {
  // Only the first 8 KB (what servers accept as a request line): parsing 100 KB of query took 10 ms.
  const query = /\?([^#]*)/.exec((url ?? '').slice(0, 8192))?.[1];
  if (!query) return false;
  try {
    return new URLSearchParams(query).getAll('offset').some((v) => /^\s*\d+\s*$/.test(v) && Number(v) > 30_000);
  } catch {
    return false;
  }
}

/** Count, limit and period from a 429 body's `errors[].detail`, when the headers lack them. */
function fromBody(body: unknown): { count: number; limit: number; windowMs: number | undefined } | undefined {
  for (const error of items(field(bodyValue(body), 'errors'))) {
    const detail = field(error, 'detail');
    const m = typeof detail === 'string' ? DETAIL.exec(detail.slice(0, 500)) : null;
    if (m) return { count: Number(m[1]), limit: Number(m[2]), windowMs: parsePeriod(m[3]) };
  }
  return undefined;
}

function reading(res: ResponseLike, request: RequestInfo): BucketReading | undefined {
  let limit = parseCount(res.header(`${H}limit`));
  let count = parseCount(res.header(`${H}count`));
  let windowMs = parsePeriod(res.header(`${H}period`));
  if (res.status === 429 && (limit === undefined || count === undefined || windowMs === undefined)) {
    const body = fromBody(res.body);
    limit ??= body?.limit;
    count ??= body?.count;
    windowMs ??= body?.windowMs;
  }
  // The count includes rejected requests and can pass the limit.
  const remaining = limit !== undefined && count !== undefined ? Math.max(0, limit - count) : undefined;
  // No reset header: only a count of 1 says when the window started (with this request).
  const reset = count === 1 && windowMs !== undefined ? { inMs: windowMs } : undefined;
  if (limit === undefined && remaining === undefined && windowMs === undefined) return undefined;
  return compact({ name: isHighOffset(request.url) ? HIGH_OFFSET : DEFAULT, limit, remaining, reset, windowMs });
}

/**
 * Planning Center: 100 requests per 20 seconds per user, 75 for requests with an `offset`
 * above 30,000 (hints until the headers tell). Reads `X-PCO-API-Request-Rate-Limit`,
 * `-Rate-Period` and `-Rate-Count` (which counts rejected requests too, so remaining is
 * `limit − count`, never below 0). There is no reset header: a count of 1 starts the window,
 * otherwise the limiter keeps its own. A 429 waits `Retry-After` and pauses every stream; its
 * body (`"118 of 100 requests per 20 seconds"`) fills in what the headers lack.
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.planningCenter(), key: 'pco-user-token' });
 * ```
 */
export function planningCenter(options: PlanningCenterOptions = {}): Provider {
  const o = parseOptions('providers.planningCenter', schema, options) as PlanningCenterOptions;
  const normal = hinted({ name: DEFAULT, limit: 100, windowMs: 20_000 }, o.hints);
  const high = hinted({ name: HIGH_OFFSET, limit: 75, windowMs: 20_000 }, o.hints);
  const extra = o.extraBuckets ?? [];
  const plain = [normal, ...extra];
  const highOffset = [normal, high, ...extra];
  return defineProvider({
    name: 'planning-center',
    buckets: (request) => (isHighOffset(request.url) ? highOffset : plain),
    read(res, request) {
      const r = reading(res, request);
      const buckets = r ? [r] : [];
      return res.status === 429 ? { outcome: 'limited', buckets, ...readRetryAfter(res) } : { outcome: 'ok', buckets };
    },
  });
}
