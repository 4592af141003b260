import * as z from 'zod/mini';
import { oneOf } from '../core/schema.js';
import { parseOptions } from '../core/options.js';
import { ToldCostLearner } from '../core/costLearning.js';
import { leakyBuckets } from '../core/leakyBucket.js';
import type { RequestInfo } from '../core/request.js';
import type { ResponseLike } from '../core/response.js';
import { parseUsedLimit } from '../headers/usedLimit.js';
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
import { learnCostOption, type LearnCostOptions } from './learnCost.js';
import { readRetryAfter } from './read.js';
import type { BucketReading, BucketSpec, Provider, ResponseReading } from './types.js';

/**
 * A Shopify store's plan, which sets its Admin API buckets.
 *
 * ```ts
 * import { providers, type ShopifyPlan } from 'rx-ratelimit';
 * const plan: ShopifyPlan = 'plus';
 * const shopify = providers.shopify({ api: 'graphql', plan });
 * ```
 */
export type ShopifyPlan = 'standard' | 'advanced' | 'plus' | 'enterprise';

/**
 * Options of `providers.shopify()`.
 *
 * ```ts
 * import { providers, type ShopifyOptions } from 'rx-ratelimit';
 * const options: ShopifyOptions = { api: 'rest', plan: 'advanced' };
 * const shopify = providers.shopify(options);
 * ```
 */
export interface ShopifyOptions extends CommonProviderOptions {
  /**
   * Which Admin API the limiter paces: `'graphql'` (a bucket of cost points, bucket `graphql`)
   * or `'rest'` (a bucket of requests, bucket `rest`). One limiter per store and API.
   * @default 'graphql'
   */
  readonly api?: 'rest' | 'graphql';
  /** The store's plan: the starting capacity and restore rate, until a response tells. @default 'standard' */
  readonly plan?: ShopifyPlan;
  /**
   * GraphQL: the points a query is taken to cost when the request gives no `cost` of its own:
   * the least, raised per key to the requested cost learnt (`learnCost`). The response's
   * `actualQueryCost` replaces it either way. @default 50
   */
  readonly queryCost?: number;
  /**
   * GraphQL: learn each query's requested cost from the `requestedQueryCost` of the answers, per
   * key (a request's `costKey`, else `key` if given: by default none, as every query goes to one
   * path), and admit a later query of the key only when that much is available (never less than
   * `queryCost`). Give each operation its own `costKey` (its name): a query without one is taken
   * at `queryCost`, so that one dear query never holds back the cheap ones of another kind.
   * Costs are learnt per profile (`providers.shopify()` call), across the shops of a pool: a
   * key's queries ask alike in every shop. `false`: every query without `cost` is taken at
   * `queryCost`. Ignored for REST. @default true
   */
  readonly learnCost?: boolean | LearnCostOptions;
}

const REST = 'rest';
const GRAPHQL = 'graphql';
/** The header of the REST Admin API's bucket: `used/limit`. */
const CALL_LIMIT = 'x-shopify-shop-api-call-limit';
/**
 * Capacity and restore rate per plan. REST: the rates of Shopify's REST Admin API page, with
 * buckets of 20 s of restore (40 at 2 a second, as documented for Standard). GraphQL: Standard
 * as the GraphQL Admin API's call-limit page gives it (1,000 points, 50 a second); higher plans
 * at the restore rates of the current rate-limits page, with buckets of 20 s of restore. Hints
 * only: the header's limit, or the body's `throttleStatus`, replaces them from the first answer.
 */
const PLANS: Readonly<Record<ShopifyPlan, { readonly rest: Leak; readonly graphql: Leak }>> = {
  standard: { rest: { limit: 40, rate: 2 }, graphql: { limit: 1000, rate: 50 } },
  advanced: { rest: { limit: 80, rate: 4 }, graphql: { limit: 4000, rate: 200 } },
  plus: { rest: { limit: 400, rate: 20 }, graphql: { limit: 20_000, rate: 1000 } },
  enterprise: { rest: { limit: 800, rate: 40 }, graphql: { limit: 40_000, rate: 2000 } },
};
interface Leak {
  readonly limit: number;
  readonly rate: number;
}
const DEFAULT_QUERY_COST = 50;
/** Keys of learnt requested costs kept by default (`learnCost`). */
const DEFAULT_COST_KEYS = 1000;
/**
 * The most a single GraphQL query may cost (the call-limit page; a query asking more is refused
 * as `MAX_COST_EXCEEDED`, never run): no requested cost learnt is taken above it, so that a
 * garbled `requestedQueryCost` makes the next queries of its key wait for a full bucket at most.
 */
const MAX_QUERY_COST = 1000;
/**
 * The least capacity a GraphQL Admin API bucket has: Standard's 1,000 points (the call-limit
 * page), which is also the most a single query may cost. A `maximumAvailable` below it is not a
 * bucket to trust: taken as the limit, every query costing more than it (the default estimate
 * of 50 above a reading of 40) was refused unsent, and nothing sent, nothing corrected it.
 */
const MIN_GRAPHQL_CAPACITY = 1000;
/** Figures past these are junk, not a bucket: a safe integer of points, a rate of a million a second. */
const MAX_POINTS = 1e12;
const MAX_RATE = 1e6;
/** How much of an error's message is looked at for "Throttled". */
const MESSAGE_CHARS = 100;
const THROTTLED = /^throttled\b/i;

const schema = z
  .strictObject({
    ...commonShape,
    api: z.optional(oneOf(['rest', 'graphql'])),
    plan: z.optional(oneOf(['standard', 'advanced', 'plus', 'enterprise'])),
    queryCost: z.optional(z.number().check(z.positive(), z.maximum(1000))),
    learnCost: learnCostOption,
  })
  .check(z.superRefine(checkBucketNames((name) => name === REST || name === GRAPHQL, `"${REST}", "${GRAPHQL}"`)));

/**
 * Shopify's Admin APIs, each a leaky (token) bucket per app and store, with no window and no
 * reset. REST (`api: 'rest'`): every request costs 1 of a bucket of 40 that restores 2 a second
 * on Standard (`X-Shopify-Shop-Api-Call-Limit: 32/40` tells what is used); a 429 holds the
 * bucket for its `Retry-After`. GraphQL (`api: 'graphql'`): a query costs points (its `cost`,
 * else its key's learnt requested cost, else `queryCost`); every answer's body tells the
 * bucket (`extensions.cost.throttleStatus`: `maximumAvailable`, `currentlyAvailable`,
 * `restoreRate`) and what the query really cost (`actualQueryCost`, which replaces the
 * estimate). Shopify runs a query only once its _requested_ cost is available, and gives the
 * difference from the actual cost back after
 * (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits): the profile learns each
 * key's requested cost from the answers' `requestedQueryCost` (`learnCost`), and a query
 * without `cost` is admitted only when that much is available, holding it until its answer
 * tells the actual cost and the bucket. A `maximumAvailable` below 1,000 (the least
 * a store's bucket holds, and the most one query may cost) is not taken as the capacity, its
 * `currentlyAvailable` and `restoreRate` still are; a `THROTTLED` error in a 200 body holds
 * the bucket until the requested cost has come back, and the query is sent again then (a
 * POST too: a throttled query never ran), taking its requested cost. The limiter needs the
 * response body for GraphQL: axios, Angular and the operators over `ajax` give it, and
 * `rateLimitedFetch` reads a copy of every 2xx body (capped); `fromFetch` through the operators
 * does not (its body is a stream). With the Redis store, every process using one store's
 * credential shares its bucket (docs/distributed.md).
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.shopify({ api: 'graphql', plan: 'plus' }), key: 'my-shop.myshopify.com' });
 * ```
 */
export function shopify(options: ShopifyOptions = {}): Provider {
  const o = parseOptions('providers.shopify', schema, options) as ShopifyOptions;
  const api = o.api ?? GRAPHQL;
  const leak = PLANS[o.plan ?? 'standard'][api];
  const bucket = hinted({ name: api, limit: leak.limit, restorePerSecond: leak.rate }, o.hints);
  const specs: readonly BucketSpec[] = [bucket, ...(o.extraBuckets ?? [])];
  const queryCost = o.queryCost ?? DEFAULT_QUERY_COST;
  const learner = api === GRAPHQL && o.learnCost !== false ? requestedCosts(o.learnCost, queryCost) : undefined;
  return defineProvider({
    name: 'shopify',
    bucketKinds: [leakyBuckets],
    buckets: () => specs,
    ...(api === GRAPHQL
      ? {
          // The requested cost its key's answers told, never below `queryCost` (a bound the
          // caller may have set above every query): learning only raises the estimate.
          cost: (request: RequestInfo, b: BucketSpec) =>
            b.name === GRAPHQL ? Math.max(queryCost, learnt(learner, request) ?? 0) : undefined,
          // Every answer's body tells the bucket, and a throttled query is a 200.
          readsBody: (status: number) => status >= 200 && status < 300,
          ...(learner ? { learnCost: () => learner } : {}),
        }
      : {}),
    read:
      api === REST
        ? readRest
        : (res, request) => readGraphql(res, learner && ((requested) => learner.told(request, GRAPHQL, requested))),
  });
}

/** No key but a request's own `costKey`: queries of one path are of every kind. */
const noKey = (): undefined => undefined;

/** The requested cost learnt for `request`'s key, if any. */
function learnt(learner: ToldCostLearner | undefined, request: RequestInfo): number | undefined {
  const key = learner?.keyOf(request);
  return key === undefined ? undefined : learner?.estimate(key, GRAPHQL);
}

/**
 * The learner of GraphQL queries' requested costs: per key, the largest of the last told, at
 * most {@link MAX_QUERY_COST}. The profile's `cost` reads it (so nothing waits for a key's first
 * answer but the cold start's); the limiter has it regroup waiting queries when a cost moves.
 */
function requestedCosts(option: true | LearnCostOptions | undefined, queryCost: number): ToldCostLearner {
  const given = typeof option === 'object' ? option : {};
  return new ToldCostLearner(given.key ?? noKey, given.maxKeys ?? DEFAULT_COST_KEYS, new Set([GRAPHQL]), queryCost);
}

function readRest(res: ResponseLike): ResponseReading {
  const told = parseUsedLimit(res.header(CALL_LIMIT));
  const buckets: BucketReading[] = told
    ? [{ name: REST, limit: told.limit, remaining: Math.max(0, told.limit - told.used) }]
    : [];
  if (res.status !== 429) return { outcome: 'ok', buckets };
  return { outcome: 'limited', buckets, limitedBy: REST, ...readRetryAfter(res) };
}

/** `told`: given the requested cost the answer tells (`requestedQueryCost`), at most {@link MAX_QUERY_COST}. */
function readGraphql(res: ResponseLike, told?: (requested: number) => void): ResponseReading {
  const body = bodyValue(res.body);
  const cost = field(field(body, 'extensions'), 'cost');
  const status = field(cost, 'throttleStatus');
  const limit = points(field(status, 'maximumAvailable'));
  const available = points(field(status, 'currentlyAvailable'));
  const rate = rateOf(field(status, 'restoreRate'));
  const reading: BucketReading | undefined =
    limit === undefined && available === undefined && rate === undefined
      ? undefined
      : {
          name: GRAPHQL,
          // A capacity below the least a store has is no capacity (see MIN_GRAPHQL_CAPACITY):
          // the body's other figures are still read.
          ...(limit !== undefined && limit >= MIN_GRAPHQL_CAPACITY ? { limit } : {}),
          ...(available !== undefined ? { remaining: available } : {}),
          ...(rate !== undefined ? { restorePerSecond: rate } : {}),
        };
  const buckets = reading ? [reading] : [];
  const requested = points(field(cost, 'requestedQueryCost'));
  if (told && requested !== undefined && requested > 0) told(Math.min(requested, MAX_QUERY_COST));
  const actual = points(field(cost, 'actualQueryCost'));
  // A cost throttle refuses the query before it runs ("Before execution can begin, the app's
  // bucket must have enough room for the requested cost"): sending it again applies it once.
  const costThrottle = isThrottled(body);
  const throttled = res.status === 429 || costThrottle;
  if (!throttled)
    return actual !== undefined && actual > 0 ? { outcome: 'ok', buckets, cost: actual } : { outcome: 'ok', buckets };
  const limited: ResponseReading = {
    outcome: 'limited',
    buckets,
    limitedBy: GRAPHQL,
    ...(costThrottle ? { notProcessed: true } : {}),
    // Sent again, the query takes what the server asked of the bucket, not the estimate.
    ...(requested !== undefined && requested > 0 ? { retryCost: { [GRAPHQL]: requested } } : {}),
  };
  const retry = readRetryAfter(res);
  if (retry.retryAfter) return { ...limited, ...retry };
  // Not sent by Shopify for GraphQL: the wait is until the requested cost has come back.
  const wait =
    requested !== undefined && available !== undefined && rate !== undefined
      ? Math.ceil((Math.max(0, requested - available) / rate) * 1000)
      : undefined;
  return wait === undefined ? limited : { ...limited, retryAfter: { delayMs: wait }, retrySource: 'body' };
}

/** Does a GraphQL body's `errors` hold a throttle error (`extensions.code: THROTTLED`, or "Throttled")? */
function isThrottled(body: unknown): boolean {
  for (const error of items(field(body, 'errors'))) {
    if (field(field(error, 'extensions'), 'code') === 'THROTTLED') return true;
    const message = field(error, 'message');
    if (typeof message === 'string' && THROTTLED.test(message.slice(0, MESSAGE_CHARS))) return true;
  }
  return false;
}

/** A count of points (Shopify writes them as floats: `1000.0`), whole and ≥ 0, or `undefined`. */
function points(v: unknown): number | undefined {
  return typeof v === 'number' && v >= 0 && v <= MAX_POINTS ? Math.floor(v) : undefined;
}

function rateOf(v: unknown): number | undefined {
  return typeof v === 'number' && v > 0 && v <= MAX_RATE ? v : undefined;
}
