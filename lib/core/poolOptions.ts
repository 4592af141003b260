/** The options of {@link createLimiterPool}: their type, schema and defaults, and their check. */
import * as z from 'zod/mini';
import { parseLimiterOptions, parseOptions, type LimiterOptions } from './options.js';
import { countOrInfinity, int, withDefaults, type WithDefaults } from './schema.js';

/** Options of {@link createLimiterPool}: a limiter's options without `key`, plus the pool's own. */
export interface LimiterPoolOptions extends Omit<LimiterOptions, 'key' | 'label'> {
  /**
   * A limiter nothing has asked for (`get`) this long, with nothing queued or in flight and no
   * pause, block or spent bucket in force, is evicted: its `state$` completes and its memory
   * is freed. The next `get` for its key makes a new one, which learns the budget again from
   * its first response (or from the shared store, which kept it). @default 300_000 (5 minutes)
   */
  readonly idleMs?: number;
  /**
   * Most limiters alive at once. At the cap, `get` for a new key first evicts the least recently
   * used limiter that holds nothing (nothing queued, in flight or in force), and throws a
   * {@link LimiterPoolFullError} when none does. @default Infinity
   */
  readonly max?: number;
  /**
   * Most often `state$` emits, ms: the pool's snapshot lists every limiter, so a change on one
   * tenant is batched with those within this interval. @default 100
   */
  readonly stateIntervalMs?: number;
}

const poolSchema = z.looseObject({
  idleMs: z.optional(int().check(z.minimum(1))),
  max: z.optional(countOrInfinity(1)),
  stateIntervalMs: z.optional(z.number().check(z.minimum(0))),
});
const POOL_DEFAULTS = { idleMs: 300_000, max: Infinity, stateIntervalMs: 100 };

/**
 * The pool's own options with their defaults, and the options of its limiters: checked now, with
 * a placeholder key, so that a bad one fails at `createLimiterPool` rather than at the first `get`.
 */
export function parsePoolOptions(options: LimiterPoolOptions): {
  idleMs: number;
  max: number;
  stateIntervalMs: number;
  limiterOptions: Omit<LimiterOptions, 'key'>;
} {
  // A key or a label of its own would be every tenant's: one label for all (their states, logs
  // and metrics merged as one), a stray token kept. Refused, its value never shown.
  for (const name of ['key', 'label']) {
    if (
      typeof options === 'object' &&
      options !== null &&
      (options as unknown as Record<string, unknown>)[name] !== undefined
    ) {
      throw new TypeError(
        `createLimiterPool: option \`${name}\` is not a pool's: each tenant's limiter has its own, from the key given to pool.get(key)`,
      );
    }
  }
  const { idleMs, max, stateIntervalMs, ...limiterOptions } = withDefaults(
    parseOptions('createLimiterPool', poolSchema, options),
    POOL_DEFAULTS,
  ) as WithDefaults<z.output<typeof poolSchema>, typeof POOL_DEFAULTS> & Omit<LimiterOptions, 'key'>;
  // The limiter options are checked now, with a placeholder key, so a bad one fails here.
  parseLimiterOptions({ ...limiterOptions, key: 'pool' } as LimiterOptions, 'createLimiterPool');
  return { idleMs, max, stateIntervalMs, limiterOptions };
}
