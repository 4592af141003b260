/** The options of the Redis store, as the user gives them and as a session keeps them. */
import type { Redis, Cluster } from 'ioredis';
import * as z from 'zod/mini';

import { secretSchema } from '../../core/options.js';
import { MAX_SERVER_WAIT_LIMIT_MS } from '../../core/window.js';

/** Options of {@link redisStore}. */
export interface RedisStoreOptions {
  /** An ioredis client (`new Redis(…)` or `new Cluster(…)`); the store never closes it. */
  readonly client: Redis | Cluster;
  /**
   * The secret (16+ characters) that keys the hash naming a credential's Redis keys. Required,
   * and the same in every process that shares a budget (they find each other's keys by it):
   * e.g. `process.env.RATE_LIMIT_SECRET`. Whoever can list the Redis keys but lacks it cannot
   * test guesses of a key against their names (an unkeyed hash of a 6-digit PIN is reversed in
   * under a second). Changing it starts every budget afresh under new names. Never shown.
   */
  readonly secret: string;
  /** Prefix of every key. @default 'rxrl:' */
  readonly prefix?: string;
  /**
   * Keys expire this long after their last write (an unused limiter leaves nothing behind),
   * except the pause hash of a block until `unblock()` (`blockCooldownMs: Infinity`), which
   * lasts until `unblock()` or `resume()`, as the block does in every limiter. @default 86_400_000 (a day)
   */
  readonly keyTtlMs?: number;
  /**
   * A request admitted by a process that then died stops counting as in flight after this
   * long. Longer than your slowest request, at most a year. @default 60_000
   */
  readonly leaseMs?: number;
  /** A Redis call slower than this counts as Redis being unavailable. @default 1000 */
  readonly timeoutMs?: number;
  /** While Redis is unavailable, try it again this often. @default 1000 */
  readonly retryMs?: number;
  /**
   * Listen for other processes' changes, so a waiting request goes as soon as another
   * process's response frees budget, and a block (Pipedrive's 403) met by another process stops
   * this one at once. One pub/sub connection per store (a duplicate of `client`), shared by all
   * its limiters, a channel per credential; it is open while any limiter of the store is.
   * Without it the limiter asks again every 250 ms while it waits on responses. On a `Cluster`,
   * sharded pub/sub (SSUBSCRIBE, Redis 7). @default true
   */
  readonly subscribe?: boolean;
}

export const schema = z.strictObject({
  client: z.custom<Redis | Cluster>(
    (c) =>
      typeof c === 'object' &&
      c !== null &&
      typeof (c as Redis).defineCommand === 'function' &&
      typeof (c as Redis).duplicate === 'function',
    'an ioredis client (new Redis(…) or new Cluster(…))',
  ),
  secret: secretSchema,
  // A brace would make a Cluster hash tag of its own: every tenant's keys on one slot, or one
  // credential's keys spread over several (CROSSSLOT on every script).
  prefix: z._default(
    z
      .string()
      .check(
        z.refine(
          (p) => p.length <= 200 && !p.includes('{') && !p.includes('}'),
          'a string of at most 200 characters without `{` or `}` (each key’s hash tag is the library’s)',
        ),
      ),
    'rxrl:',
  ),
  keyTtlMs: z._default(z.int().check(z.minimum(1000)), 86_400_000),
  // At most a year: the scripts take a lease that lapses later than any limiter's could for
  // garbage (written by hand: it would count in flight for good).
  leaseMs: z._default(z.int().check(z.minimum(100), z.maximum(MAX_SERVER_WAIT_LIMIT_MS)), 60_000),
  timeoutMs: z._default(z.int().check(z.minimum(1)), 1000),
  retryMs: z._default(z.int().check(z.minimum(1)), 1000),
  subscribe: z._default(z.boolean(), true),
});

/** Options as a session keeps them: without the secret, which only the store's closure holds. */
export type Parsed = Omit<z.output<typeof schema>, 'secret'>;
