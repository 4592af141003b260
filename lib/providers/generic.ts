import * as z from 'zod/mini';
import { int, listOf, oneOf } from '../core/schema.js';
import { parseOptions } from '../core/options.js';
import type { ResetUnit } from '../headers/reset.js';
import { defineProvider } from './define.js';
import { learnCostOption, learnCosts, type LearnCostOptions } from './learnCost.js';
import { violatedPolicies } from './problem.js';
import {
  isServedFromCache,
  policyBucket,
  readCounters,
  readIetf,
  readRetryAfter,
  type CounterHeaders,
} from './read.js';
import { DEFAULT_BUCKET, ResourceRoutes, resourceName } from './resources.js';
import type { ResponseLike } from '../core/response.js';
import type { BucketReading, BucketSpec, Provider, ResponseReading } from './types.js';

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
  /**
   * A response header naming the budget (resource) the response's numbers belong to, such as
   * GitHub's `x-ratelimit-resource`: one bucket per resource, named after it (a short token;
   * at most 32 resources, numbers naming more go to `default`). A route (method and path, ids
   * as `:id`) counts against the resource its last response named; a route not learnt yet goes
   * through `default`, one request at a time, until a response names its resource. `limit`,
   * `windowMs` and `pacing` are then each resource's hints. Not with `providers.ietf()`.
   */
  readonly resourceHeader?: string;
  /**
   * The API charges each request an unknown number of units and its `remaining` drops by
   * more than 1: learn each route's cost from the drop it can attribute to one request alone
   * (see `learnCosts`). `true`, or which requests cost alike and how many keys to keep.
   * @default false
   */
  readonly learnCost?: boolean | LearnCostOptions;
}

/**
 * Options of `providers.ietf()`: those of `generic()` but the ones about other headers
 * (`headers`, `resetUnit`, `resourceHeader`), which it refuses with a `TypeError` naming them.
 *
 * ```ts
 * import { providers, type IetfProviderOptions } from 'rx-ratelimit';
 * const options: IetfProviderOptions = { limit: 100, windowMs: 60_000, limitedStatuses: [429, 503] };
 * const provider = providers.ietf(options);
 * ```
 */
export type IetfProviderOptions = Omit<GenericProviderOptions, 'headers' | 'resetUnit' | 'resourceHeader'>;

/** An HTTP field name (RFC 9110 token), at most 64 characters. */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;

/** The options both profiles take. */
const shared = {
  name: z.optional(z.string().check(z.minLength(1))),
  limit: z.optional(int().check(z.minimum(0))),
  windowMs: z.optional(z.number().check(z.positive())),
  pacing: z.optional(oneOf(['burst', 'smooth'])),
  limitedStatuses: z.optional(listOf(int().check(z.minimum(100), z.maximum(599)))),
  learnCost: learnCostOption,
};

const options = z.strictObject({
  ...shared,
  resetUnit: z.optional(oneOf(['unix-seconds', 'unix-ms', 'seconds-left', 'ms-left', 'timestamp', 'auto'])),
  headers: z.optional(
    z.strictObject({
      limit: z.optional(z.string()),
      remaining: z.optional(z.string()),
      reset: z.optional(z.string()),
      period: z.optional(z.string()),
    }),
  ),
  // A refinement, not `z.regex`: that check kind would add its class to a browser bundle.
  resourceHeader: z.optional(
    z.string().check(z.refine((v) => HEADER_NAME.test(v), 'a header name (a token of at most 64 characters)')),
  ),
});

/** `ietf()` reads the IETF fields only: no header names, reset unit or resource header of its own. */
const ietfOptions = z.strictObject(shared);

/** Options only `generic()` understands, each with what it is for (an error names it to `ietf()` users). */
const GENERIC_ONLY: Readonly<Record<string, string>> = {
  headers: 'header names other than the IETF fields',
  resetUnit: 'the unit of an `X-RateLimit-Reset` header',
  resourceHeader: 'a bucket per resource a response header names',
};

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
  const spec: { -readonly [K in keyof BucketSpec]: BucketSpec[K] } = { name: DEFAULT_BUCKET };
  if (o.limit !== undefined) spec.limit = o.limit;
  if (o.windowMs !== undefined) spec.windowMs = o.windowMs;
  if (o.pacing !== undefined) spec.pacing = o.pacing;
  return spec;
}

/**
 * A rate-limited response: its wait, and the IETF policies its problem body names as exceeded
 * (`violated-policies`, draft-ietf-httpapi-ratelimit-headers §5), as the buckets to hold; a
 * policy named `default` is the bucket `fallback`.
 */
function limitedReading(
  res: ResponseLike,
  buckets: readonly BucketReading[],
  fallback = DEFAULT_BUCKET,
): ResponseReading {
  const policies = violatedPolicies(res.body)?.map((p) => policyBucket(p, fallback));
  return { outcome: 'limited', buckets, ...readRetryAfter(res), ...(policies ? { limitedBy: policies } : {}) };
}

/**
 * Requests whose resource is not known yet go one at a time: a bucket of one request and no
 * window, which a request takes and its answer does not give back. The answer names the
 * resource, and the route's later requests count against that instead.
 */
const LANE: BucketSpec = { name: DEFAULT_BUCKET, limit: 1 };

/**
 * A provider for any API that sends the common headers: the IETF `RateLimit`/`RateLimit-Policy`
 * fields (or the older `RateLimit-Limit/-Remaining/-Reset`), else `X-RateLimit-*` or
 * `X-Rate-Limit-*`, and `Retry-After` (or `X-RateLimit-Retry-After`). One bucket, `default`, plus
 * one per IETF policy; with `resourceHeader`, one per resource the responses name. A response
 * served from a cache (`Age` above 0, or a `Cache-Status` hit) reports no counters.
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.generic({ limit: 10, windowMs: 1000 }), key: 'my-token' });
 * // GitHub or X without a profile: one bucket per resource the responses name.
 * const github = providers.generic({ name: 'github', resourceHeader: 'x-ratelimit-resource' });
 * ```
 */
export function generic(opts: GenericProviderOptions = {}): Provider {
  const o = parseOptions('providers.generic', options, opts) as GenericProviderOptions;
  const limited = new Set(o.limitedStatuses ?? [429]);
  const unit = o.resetUnit ?? 'auto';
  const header = o.resourceHeader;
  const { name: _default, ...hint } = hintBucket(o);
  // Learnt per provider object: every limiter made with it (a pool's tenants) shares the routes.
  const routes = header === undefined ? undefined : new ResourceRoutes(LANE, hint);
  return defineProvider({
    name: o.name ?? 'generic',
    ...(o.learnCost ? { learnCost: learnCosts(o.learnCost === true ? {} : o.learnCost) } : {}),
    buckets: routes ? (request) => routes.bucketsFor(request) : [hintBucket(o)],
    read(res, request) {
      // A cached copy's counters describe the budget as it was: read none of them.
      const cached = isServedFromCache(res);
      const told = routes && !cached && header !== undefined ? resourceName(res.header(header)) : undefined;
      const name = told === undefined ? DEFAULT_BUCKET : (routes?.learn(request, told) ?? DEFAULT_BUCKET);
      const ietf = o.headers || cached ? [] : readIetf(res, name);
      const counters =
        cached || ietf.length
          ? undefined
          : o.headers
            ? readCounters(res, name, o.headers, unit)
            : (readCounters(res, name, X_RATELIMIT, unit) ?? readCounters(res, name, X_RATE_LIMIT, unit));
      const buckets = counters ? [counters] : ietf;
      return limited.has(res.status)
        ? limitedReading(res, buckets, name)
        : { outcome: 'ok', buckets, ...readRetryAfter(res) };
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
export function ietf(opts: IetfProviderOptions = {}): Provider {
  if (typeof opts === 'object' && opts !== null) {
    const given = Object.keys(GENERIC_ONLY).filter((k) => Object.prototype.hasOwnProperty.call(opts, k));
    if (given.length > 0)
      throw new TypeError(
        `providers.ietf: ${given
          .map((k) => `option \`${k}\` (${GENERIC_ONLY[k]}) is one of providers.generic()'s`)
          .join('; ')}; ietf() reads only the IETF RateLimit fields: use providers.generic({ ${given.join(', ')} })`,
      );
  }
  const o = parseOptions('providers.ietf', ietfOptions, opts) as IetfProviderOptions;
  const limited = new Set(o.limitedStatuses ?? [429]);
  return defineProvider({
    name: o.name ?? 'ietf',
    ...(o.learnCost ? { learnCost: learnCosts(o.learnCost === true ? {} : o.learnCost) } : {}),
    buckets: [hintBucket(o)],
    read: (res) => {
      const buckets = readIetf(res);
      return limited.has(res.status)
        ? limitedReading(res, buckets)
        : { outcome: 'ok', buckets, ...readRetryAfter(res) };
    },
  });
}
