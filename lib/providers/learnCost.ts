/**
 * `learnCosts()`: what a profile gives as `learnCost` to have the limiter learn each request's
 * cost from the drop in `remaining` (lib/core/costLearning.ts). Its own module, so that an app
 * whose profiles do not learn costs does not bundle the learner.
 */
import * as z from 'zod/mini';
import { CostLearner } from '../core/costLearning.js';
import { parseOptions } from '../core/options.js';
import type { RequestInfo } from '../core/request.js';
import { endpointKey } from './route.js';

/**
 * How costs are learnt: which requests cost alike, and how many keys to remember.
 *
 * ```ts
 * import { providers, type LearnCostOptions } from 'rx-ratelimit';
 * const learnCost: LearnCostOptions = { key: (r) => r.url?.split('?')[0], maxKeys: 200 };
 * const provider = providers.generic({ learnCost });
 * ```
 */
export interface LearnCostOptions {
  /**
   * Which requests cost alike (a request's `costKey` wins); `undefined` learns nothing for it.
   * @default the route: method and path, ids as `:id` (`endpointKey`)
   */
  readonly key?: (request: RequestInfo) => string | undefined;
  /** Most keys remembered; the least recently used is forgotten past it. @default 1000 */
  readonly maxKeys?: number;
}

/** Is `v` a `learnCost` option of a profile: a boolean, or `{ key?, maxKeys? }` and nothing else? */
function isLearnCost(v: unknown): v is boolean | LearnCostOptions {
  if (typeof v === 'boolean') return true;
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  const m = o['maxKeys'];
  return (
    Object.keys(o).every((k) => k === 'key' || k === 'maxKeys') &&
    (o['key'] === undefined || typeof o['key'] === 'function') &&
    (m === undefined || (Number.isInteger(m) && (m as number) >= 1 && (m as number) <= 100_000))
  );
}

/**
 * The schema of a profile's `learnCost` option (`true`, or {@link LearnCostOptions}): a check,
 * not `z.union`, which would add its class to a browser bundle.
 */
export const learnCostOption = z.optional(
  z.custom<boolean | LearnCostOptions>(isLearnCost, 'true, false, or { key?: a function, maxKeys?: 1 to 100000 }'),
);

/**
 * Learn each request's cost from the drop in `remaining` (`defineProvider`'s `learnCost`; a
 * profile's `learnCost: true` makes one): for an API that charges unknown costs per request and
 * tells only what is left. Checked now; a bad option throws a `TypeError`.
 *
 * ```ts
 * import { defineProvider, learnCosts, readCounters } from 'rx-ratelimit';
 * const acme = defineProvider({
 *   name: 'acme',
 *   buckets: [{ name: 'points', limit: 1000, windowMs: 60_000 }],
 *   read: (res) => {
 *     const b = readCounters(res, 'points', { limit: 'x-points-limit', remaining: 'x-points-left', reset: 'x-points-reset' }, 'unix-seconds');
 *     return { outcome: res.status === 429 ? 'limited' : 'ok', buckets: b ? [b] : [] };
 *   },
 *   learnCost: learnCosts({ maxKeys: 500 }),
 * });
 * ```
 */
export function learnCosts(options: LearnCostOptions = {}): () => CostLearner {
  const o = parseOptions('learnCosts', z.object({ options: learnCostOption }), { options }).options;
  const given = typeof o === 'object' ? o : {};
  const key = given.key ?? endpointKey;
  const maxKeys = given.maxKeys ?? 1000;
  return () => new CostLearner(key, maxKeys);
}
