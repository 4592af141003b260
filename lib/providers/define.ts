import * as z from 'zod/mini';
import { checkEach, int, oneOf } from '../core/schema.js';
import { parseOptions } from '../core/options.js';
import type { RequestInfo } from '../core/request.js';
import type { ResponseLike } from '../core/response.js';
import type { BucketKind, BucketSpec, Provider, ResponseReading } from './types.js';
import type { CostLearner } from '../core/costLearning.js';

/** What `defineProvider` takes: a name, the buckets (a list, or per request), and a reader. */
export interface ProviderDefinition {
  readonly name: string;
  /** The buckets every request counts against, or a function choosing them per request. */
  readonly buckets: readonly BucketSpec[] | ((request: RequestInfo) => readonly BucketSpec[]);
  /**
   * Reads one response. A throw is caught and treated as a response that says nothing. `now`:
   * the calendar time, for a reset the response does not place in time (see `Provider.read`).
   */
  readonly read: (response: ResponseLike, request: RequestInfo, now?: number) => ResponseReading;
  /**
   * The units a request takes of a bucket, when more than 1 (see `Provider.cost`); `undefined`
   * for 1. The request's own `cost` wins. A throw counts as `undefined`.
   */
  readonly cost?: (request: RequestInfo, bucket: BucketSpec) => number | undefined;
  /**
   * Does reading an answer with this status need its body, beyond a 429's or 403's (see
   * `Provider.readsBody`)? A throw counts as `false`. @default never
   */
  readonly readsBody?: (status: number, request: RequestInfo) => boolean;
  /**
   * The API charges each request an unknown number of units and tells only what is left:
   * learn each request's cost from the drop in `remaining` (see `Provider.learnCost`). Made by
   * `learnCosts()`. @default none
   */
  readonly learnCost?: () => CostLearner;
  /**
   * The bucket kinds the specs use beyond fixed windows: `[rollingWindows]` for `rolling: true`,
   * `[leakyBuckets]` for `restorePerSecond` (see `Provider.bucketKinds`). @default []
   */
  readonly bucketKinds?: readonly BucketKind[];
  /**
   * The most requests one credential may have in flight at once (see `Provider.maxConcurrent`):
   * the limiter's `maxConcurrent` unless its options give one. @default no limit
   */
  readonly maxConcurrent?: number;
}

/**
 * The zod (`zod/mini`) schema of a {@link BucketSpec}, as `defineProvider` checks each one: compose
 * it into a schema of your own options. Unknown fields are refused.
 */
export const bucketSpecSchema = z.strictObject({
  name: z.string().check(z.minLength(1)),
  limit: z.optional(int().check(z.minimum(0))),
  windowMs: z.optional(z.number().check(z.positive())),
  pacing: z.optional(oneOf(['burst', 'smooth'])),
  quota: z.optional(z.boolean()),
  rolling: z.optional(z.boolean()),
  restorePerSecond: z.optional(z.number().check(z.positive())),
});

const definition = z.object({
  name: z.string().check(z.minLength(1)),
  buckets: z
    .custom<readonly BucketSpec[] | ((r: RequestInfo) => readonly BucketSpec[])>(
      (b) => Array.isArray(b) || typeof b === 'function',
      { error: 'an array of buckets or a function', abort: true },
    )
    .check(z.superRefine((b, ctx) => checkEach(bucketSpecSchema, Array.isArray(b) ? b.entries() : [], ctx))),
  read: z.custom<ProviderDefinition['read']>((f) => typeof f === 'function', 'a function'),
  cost: z.optional(z.custom<NonNullable<ProviderDefinition['cost']>>((f) => typeof f === 'function', 'a function')),
  readsBody: z.optional(
    z.custom<NonNullable<ProviderDefinition['readsBody']>>((f) => typeof f === 'function', 'a function'),
  ),
  learnCost: z.optional(
    z.custom<NonNullable<ProviderDefinition['learnCost']>>((f) => typeof f === 'function', 'a function (learnCosts())'),
  ),
  bucketKinds: z.optional(
    z.custom<readonly BucketKind[]>(
      (l) => Array.isArray(l) && l.every((k: BucketKind | null) => typeof k?.make === 'function'),
      'a list of bucket kinds (rollingWindows, leakyBuckets)',
    ),
  ),
  maxConcurrent: z.optional(int().check(z.minimum(1))),
});

/**
 * Defines a provider profile for any API: its documented buckets (hints until headers tell)
 * and how its responses report limits. Checked now; a bad field throws a `TypeError`.
 *
 * ```ts
 * import { defineProvider, readCounters, readRetryAfter } from 'rx-ratelimit';
 * const acme = defineProvider({
 *   name: 'acme',
 *   buckets: [{ name: 'default', limit: 50, windowMs: 10_000 }],
 *   read: (res) => {
 *     const b = readCounters(res, 'default', { limit: 'x-acme-limit', remaining: 'x-acme-left', reset: 'x-acme-reset' }, 'unix-seconds');
 *     return { outcome: res.status === 429 ? 'limited' : 'ok', buckets: b ? [b] : [], ...readRetryAfter(res) };
 *   },
 * });
 * ```
 */
export function defineProvider(def: ProviderDefinition): Provider {
  const parsed = parseOptions('defineProvider', definition, def) as ProviderDefinition;
  const list = parsed.buckets;
  const buckets = typeof list === 'function' ? list : () => list;
  const read = parsed.read;
  const cost = parsed.cost;
  const readsBody = parsed.readsBody;
  const learnCost = parsed.learnCost;
  const bucketKinds = parsed.bucketKinds;
  const maxConcurrent = parsed.maxConcurrent;
  return {
    name: parsed.name,
    buckets,
    ...(maxConcurrent !== undefined ? { maxConcurrent } : {}),
    ...(cost ? { cost } : {}),
    ...(learnCost ? { learnCost } : {}),
    ...(bucketKinds ? { bucketKinds } : {}),
    ...(readsBody
      ? {
          readsBody(status: number, request: RequestInfo) {
            try {
              return readsBody(status, request) === true;
            } catch {
              return false;
            }
          },
        }
      : {}),
    read(response, request, now) {
      try {
        return read(response, request, now);
      } catch {
        return { outcome: response.status === 429 ? 'limited' : 'ok', buckets: [] };
      }
    },
  };
}
