import * as z from 'zod/mini';
import { parseOptions } from '../core/options.js';
import { rollingWindows } from '../core/rollingBucket.js';
import type { ResponseLike } from '../core/response.js';
import { parseCount } from '../headers/count.js';
import { splitDateList } from '../headers/httpDate.js';
import { parsePeriod } from '../headers/period.js';
import { parseReset, type ResetValue } from '../headers/reset.js';
import { checkBucketNames, commonShape, hinted, retryFields, type CommonProviderOptions } from './endpoint.js';
import { defineProvider } from './define.js';
import { compact } from './read.js';
import type { BucketReading, Provider } from './types.js';

/**
 * Options of `providers.teos()`: only the common ones. Its buckets are `minute` and `day`.
 * `minute` paces smoothly (the doc asks for evenly spread calls); `hints: { minute: { pacing:
 * 'burst' } }` spends each rolling minute as fast as it allows instead.
 *
 * ```ts
 * import { providers, type TeosOptions } from 'rx-ratelimit';
 * const options: TeosOptions = { hints: { day: { limit: 5000 }, minute: { pacing: 'burst' } } };
 * const teos = providers.teos(options);
 * ```
 */
export type TeosOptions = CommonProviderOptions;

const MINUTE = 'minute';
const DAY = 'day';
const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
const schema = z
  .strictObject(commonShape)
  .check(z.superRefine(checkBucketNames((n) => n === MINUTE || n === DAY, `"${MINUTE}", "${DAY}"`)));

/**
 * A repeated header joined with ", ". An HTTP-date reset (`Thu, 01 Jan 2026 00:01:00 GMT`,
 * which `parseReset` reads as it reads ISO 8601) keeps the comma after its day name.
 */
function members(value: string | undefined): string[] {
  return value === undefined ? [] : splitDateList(value);
}

function later(a: ResetValue | undefined, b: ResetValue | undefined): ResetValue | undefined {
  if (!a || !b) return a ?? b;
  return 'at' in a && 'at' in b ? (a.at >= b.at ? a : b) : 'inMs' in a && 'inMs' in b ? (a.inMs >= b.inMs ? a : b) : a;
}

/**
 * One reading per period: `X-Rate-Limit-Limit` is the period (`1m`, `12h`, `1d`), zipped with
 * `-Remaining` and `-Reset` (ISO 8601) member by member when the header is repeated.
 */
function readings(res: ResponseLike, names: (ms: number) => string): BucketReading[] {
  const periods = members(res.header('x-rate-limit-limit'));
  const remaining = members(res.header('x-rate-limit-remaining'));
  const resets = members(res.header('x-rate-limit-reset'));
  const byName = new Map<string, BucketReading>();
  periods.forEach((p, i) => {
    const windowMs = parsePeriod(p);
    if (windowMs === undefined) return;
    const name = names(windowMs);
    // Members are zipped only when every list has one per period; otherwise they cannot be told apart.
    const left = remaining.length === periods.length ? parseCount(remaining[i]) : undefined;
    const reset = resets.length === periods.length ? parseReset(resets[i], 'timestamp') : undefined;
    const prev = byName.get(name);
    const merged = {
      remaining:
        prev?.remaining === undefined || left === undefined
          ? (left ?? prev?.remaining)
          : Math.min(prev.remaining, left),
      reset: later(prev?.reset, reset),
    };
    byName.set(name, compact({ name, ...merged, windowMs, rolling: true }));
  });
  return [...byName.values()];
}

/**
 * TEOS: a tenant makes at most 100 calls per minute, spread evenly (the doc asks for that:
 * `minute` paces smoothly unless `hints.minute.pacing` is `'burst'`), and 10,000 per rolling
 * 24 hours (`day`, a quota: when it is spent, a request waits for the oldest call to age out
 * within `maxWaitMs`, or fails at once with `resumeAt`). `X-Rate-Limit-Limit` is
 * a period (`1m`, `1d`; another period becomes a bucket `period:<ms>`), `-Remaining` a count,
 * `-Reset` an ISO 8601 UTC date-time; repeated headers give one reading per period. They appear only once enough calls were made. Calls
 * made while throttled count and push the reset away, so a 429 pauses every stream until the
 * reset of the exhausted period.
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.teos(), key: 'teos-api-key' });
 * ```
 */
export function teos(options: TeosOptions = {}): Provider {
  const o = parseOptions('providers.teos', schema, options) as TeosOptions;
  const minute = hinted({ name: MINUTE, limit: 100, windowMs: MINUTE_MS, pacing: 'smooth', rolling: true }, o.hints);
  const day = hinted({ name: DAY, limit: 10_000, windowMs: DAY_MS, quota: true, rolling: true }, o.hints);
  // A hinted window (TEOS changed "1m" to "2m") still names the same bucket.
  const minuteMs = new Set([MINUTE_MS, minute.windowMs]);
  const dayMs = new Set([DAY_MS, day.windowMs]);
  const names = (ms: number) => (minuteMs.has(ms) ? MINUTE : dayMs.has(ms) ? DAY : `period:${ms}`);
  return defineProvider({
    name: 'teos',
    bucketKinds: [rollingWindows],
    buckets: [minute, day, ...(o.extraBuckets ?? [])],
    read(res) {
      const buckets = readings(res, names);
      if (res.status !== 429) return { outcome: 'ok', buckets };
      // Wait for the exhausted period; with no period named, for the one reset given.
      const exhausted = buckets
        .filter((b) => b.remaining === 0)
        .reduce<ResetValue | undefined>((at, b) => later(at, b.reset), undefined);
      const resets = members(res.header('x-rate-limit-reset'));
      const lone = buckets.length === 0 && resets.length === 1 ? parseReset(resets[0], 'timestamp') : undefined;
      return { outcome: 'limited', buckets, ...retryFields(res, undefined, exhausted ?? lone) };
    },
  });
}
