import * as z from 'zod/mini';
import { int, listOf, oneOf } from '../core/schema.js';
import { parseOptions } from '../core/options.js';
import type { ResetUnit } from '../headers/reset.js';
import { defineProvider } from './define.js';
import { isServedFromCache, readCounters, readIetf, readRetryAfter, type CounterHeaders } from './read.js';
import type { BucketSpec, Provider } from './types.js';

/** Options of `providers.generic()` and `providers.ietf()`. All optional. */
export interface GenericProviderOptions {
  /** Name shown in state and events. @default 'generic' (or 'ietf') */
  readonly name?: string;
  /** Documented requests per window, used until headers tell. */
  readonly limit?: number;
  /** Documented window, ms. */
  readonly windowMs?: number;
  /** Spread requests evenly over the window instead of sending while there is room. @default 'burst' */
  readonly pacing?: 'burst' | 'smooth';
  /** How the reset header is written. `auto` tells unix seconds, unix ms and seconds-left apart by size. @default 'auto' */
  readonly resetUnit?: ResetUnit;
  /** Header names, when the API uses others than `X-RateLimit-Limit/-Remaining/-Reset`. */
  readonly headers?: CounterHeaders;
  /** Statuses that mean "rate limited". @default [429] */
  readonly limitedStatuses?: readonly number[];
}

const options = z.strictObject({
  name: z.optional(z.string().check(z.minLength(1))),
  limit: z.optional(int().check(z.minimum(0))),
  windowMs: z.optional(z.number().check(z.positive())),
  pacing: z.optional(oneOf(['burst', 'smooth'])),
  resetUnit: z.optional(oneOf(['unix-seconds', 'unix-ms', 'seconds-left', 'ms-left', 'timestamp', 'auto'])),
  headers: z.optional(
    z.strictObject({
      limit: z.optional(z.string()),
      remaining: z.optional(z.string()),
      reset: z.optional(z.string()),
      period: z.optional(z.string()),
    }),
  ),
  limitedStatuses: z.optional(listOf(int().check(z.minimum(100), z.maximum(599)))),
});

const X_RATELIMIT: CounterHeaders = {
  limit: 'x-ratelimit-limit',
  remaining: 'x-ratelimit-remaining',
  reset: 'x-ratelimit-reset',
};
const X_RATE_LIMIT: CounterHeaders = {
  limit: 'x-rate-limit-limit',
  remaining: 'x-rate-limit-remaining',
  reset: 'x-rate-limit-reset',
};

function hintBucket(o: GenericProviderOptions): BucketSpec {
  const spec: { -readonly [K in keyof BucketSpec]: BucketSpec[K] } = { name: 'default' };
  if (o.limit !== undefined) spec.limit = o.limit;
  if (o.windowMs !== undefined) spec.windowMs = o.windowMs;
  if (o.pacing !== undefined) spec.pacing = o.pacing;
  return spec;
}

/**
 * A provider for any API that sends the common headers: the IETF `RateLimit`/`RateLimit-Policy`
 * fields (or the older `RateLimit-Limit/-Remaining/-Reset`), else `X-RateLimit-*` or
 * `X-Rate-Limit-*`, and `Retry-After` (or `X-RateLimit-Retry-After`). One bucket, `default`, plus
 * one per IETF policy. A response served from a cache (`Age` above 0) reports no counters.
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.generic({ limit: 10, windowMs: 1000 }), key: 'my-token' });
 * ```
 */
export function generic(opts: GenericProviderOptions = {}): Provider {
  const o = parseOptions('providers.generic', options, opts) as GenericProviderOptions;
  const limited = new Set(o.limitedStatuses ?? [429]);
  const unit = o.resetUnit ?? 'auto';
  return defineProvider({
    name: o.name ?? 'generic',
    buckets: [hintBucket(o)],
    read(res) {
      // A cached copy's counters describe the budget as it was: read none of them.
      const cached = isServedFromCache(res);
      const ietf = o.headers || cached ? [] : readIetf(res);
      const counters =
        cached || ietf.length
          ? undefined
          : o.headers
            ? readCounters(res, 'default', o.headers, unit)
            : (readCounters(res, 'default', X_RATELIMIT, unit) ?? readCounters(res, 'default', X_RATE_LIMIT, unit));
      return {
        outcome: limited.has(res.status) ? 'limited' : 'ok',
        buckets: counters ? [counters] : ietf,
        ...readRetryAfter(res),
      };
    },
  });
}

/**
 * A provider for APIs that follow the IETF draft (draft-ietf-httpapi-ratelimit-headers): the
 * `RateLimit` and `RateLimit-Policy` fields, one bucket per policy, the older
 * `RateLimit-Limit/-Remaining/-Reset` trio, and `Retry-After`.
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.ietf(), key: 'my-token' });
 * ```
 */
export function ietf(opts: Omit<GenericProviderOptions, 'headers' | 'resetUnit'> = {}): Provider {
  const o = parseOptions('providers.ietf', options, opts) as GenericProviderOptions;
  const limited = new Set(o.limitedStatuses ?? [429]);
  return defineProvider({
    name: o.name ?? 'ietf',
    buckets: [hintBucket(o)],
    read: (res) => ({
      outcome: limited.has(res.status) ? 'limited' : 'ok',
      buckets: readIetf(res),
      ...readRetryAfter(res),
    }),
  });
}
