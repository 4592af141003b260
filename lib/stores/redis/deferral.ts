/**
 * Durable deferral with BullMQ: when a limiter has no budget for a while, the worker stops
 * taking jobs until the budget returns, so waiting jobs stay in Redis, not in memory.
 * Nothing here imports BullMQ: pass your worker and its `Worker.RateLimitError`.
 */
import { refusalWaitMs } from '../../core/errors.js';

/** The part of a BullMQ `Worker` that deferral uses (`worker.rateLimit(ms)`, or `queue.rateLimit(ms)`). */
export interface RateLimitable {
  /** Keeps jobs from starting for `expireTimeMs`. */
  rateLimit(expireTimeMs: number): Promise<void>;
}

/** Options of {@link deferWhenLimited} and {@link deferJobWhenLimited}. */
export interface DeferOptions {
  /** How long to stop taking jobs when the limiter cannot tell when budget returns. @default 1000 */
  readonly unknownWaitMs?: number;
  /**
   * The limiter the work goes through (a pool's `pool.get(token)`): the wait is measured on its
   * clock, `limiter.now()`, the clock its errors' `resumeAt` and `until` are on. With the default
   * scheduler that clock is monotonic (the wall clock when the limiter was made plus the time
   * since), so measured against `Date.now()` a step of the wall clock since then (NTP, a VM
   * resumed) skews the wait by the step: after a step of an hour ahead the job is retried at
   * once, over and over, until the reset; after one back it waits an hour too long.
   */
  readonly limiter?: {
    /** The limiter's clock: epoch ms, the clock of its errors' `resumeAt` and `until`. */
    now(): number;
  };
  /**
   * The limiter's clock (epoch ms), when there is no `limiter` to ask (a clock of your own that
   * the limiter's `scheduler` also reads). Only BullMQ's delayed-set timestamp is taken from the
   * wall clock (`Date.now()` plus the wait).
   * @default `() => limiter.now()` with `limiter`; else none: the wait the error carries
   *   (`resumeInMs`, `untilInMs`), measured on the limiter's clock when it was made
   */
  readonly now?: () => number;
}

/**
 * Runs one job's work; if the limiter refuses it because the budget will not return within
 * the limiter's `maxWaitMs` (a `QuotaExhaustedError`: a bucket is empty or the token is
 * paused after a 429), stops the BullMQ worker from taking jobs until the limiter's
 * `resumeAt` and throws BullMQ's rate-limit error: the job goes back to the wait list,
 * without counting as an attempt, and runs again after the reset. A `BlockedError` (the
 * provider cut the credential off, Pipedrive's 403) with a known end is deferred the same way,
 * until its `until`; a block with no end (`until: null`, lifted only by `limiter.unblock()`)
 * is thrown as it is, as is any other error.
 *
 * Pass the limiter (`{ limiter }`): the wait is measured on its clock (see
 * {@link DeferOptions.limiter}).
 *
 * Give the limiter a short `maxWaitMs` (a second or two): shorter waits are held in memory
 * (at most the worker's concurrency), longer ones go back to Redis.
 *
 * On shutdown, BullMQ 6 holds `worker.close()` until the deferral ends (at most its
 * `maximumRateLimitDelay`, 30 s) when a job in hand is deferred after `close()` began: its
 * abort of the rate-limit wait is lost. Allow the process that long to stop.
 *
 * ```ts
 * import { Worker } from 'bullmq';
 * import { lastValueFrom } from 'rxjs';
 * import { fromFetch } from 'rxjs/fetch';
 * import { rateLimit, type Limiter } from 'rx-ratelimit';
 * import { deferWhenLimited } from 'rx-ratelimit/redis';
 *
 * declare const limiter: Limiter; // with a short maxWaitMs
 * const connection = { host: '127.0.0.1', port: 6379 };
 * const worker: Worker = new Worker(
 *   'webhooks',
 *   (job) =>
 *     deferWhenLimited(
 *       worker,
 *       () => Worker.RateLimitError(),
 *       () => lastValueFrom(fromFetch(`https://api.example.com/items/${job.data.id}`).pipe(rateLimit(limiter))),
 *       { limiter },
 *     ),
 *   { connection },
 * );
 * ```
 */
export async function deferWhenLimited<T>(
  worker: RateLimitable,
  rateLimitError: () => Error,
  work: () => Promise<T>,
  options: DeferOptions = {},
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const waitMs = waitOf(error, options);
    if (waitMs === undefined) throw error;
    await worker.rateLimit(waitMs);
    throw rateLimitError();
  }
}

/** The part of a BullMQ `Job` that per-job deferral uses. */
export interface Delayable {
  /** Moves the job to the delayed set until `timestamp` (epoch ms), as BullMQ's `Job` does. */
  moveToDelayed(timestamp: number, token?: string): Promise<void>;
}

/**
 * Runs one job's work; if the limiter refuses it with a `QuotaExhaustedError` (its tenant's
 * budget will not return within `maxWaitMs`), moves **this job** back to BullMQ's delayed set
 * until the limiter's `resumeAt` and throws BullMQ's `DelayedError`: the job runs again after
 * the reset, without counting as an attempt, while the worker goes on with other tenants' jobs.
 * A `BlockedError` with a known end (its `until`) is deferred the same way, until then; a
 * block with no end (`until: null`, lifted only by `limiter.unblock()`) is thrown as it is, as
 * is any other error. Use it when one queue carries many tenants (a limiter pool);
 * {@link deferWhenLimited} stops the whole worker instead, which suits a queue of one token.
 *
 * Pass the tenant's limiter (`{ limiter }`): the wait is measured on its clock (see
 * {@link DeferOptions.limiter}); only the delayed set's timestamp is wall-clock time.
 *
 * ```ts
 * import { DelayedError, Worker } from 'bullmq';
 * import { lastValueFrom } from 'rxjs';
 * import { fromFetch } from 'rxjs/fetch';
 * import { createLimiterPool, providers, rateLimit } from 'rx-ratelimit';
 * import { deferJobWhenLimited } from 'rx-ratelimit/redis';
 *
 * const pool = createLimiterPool({ provider: providers.procore(), maxWaitMs: 2_000 });
 * new Worker<{ token: string; id: string }>(
 *   'sync',
 *   (job, token) => {
 *     const limiter = pool.get(job.data.token);
 *     return deferJobWhenLimited(
 *       job,
 *       token,
 *       () => new DelayedError(),
 *       () =>
 *         lastValueFrom(
 *           fromFetch(`https://api.procore.com/rest/v1.0/items/${job.data.id}`, {
 *             headers: { authorization: `Bearer ${job.data.token}` },
 *           }).pipe(rateLimit(limiter)),
 *         ),
 *       { limiter },
 *     );
 *   },
 *   { connection: { host: '127.0.0.1', port: 6379 } },
 * );
 * ```
 */
export async function deferJobWhenLimited<T>(
  job: Delayable,
  token: string | undefined,
  delayedError: () => Error,
  work: () => Promise<T>,
  options: DeferOptions = {},
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const waitMs = waitOf(error, options);
    if (waitMs === undefined) throw error;
    // BullMQ's delayed set is keyed by wall-clock epoch ms: the wait, measured on the limiter's
    // clock, is added to the wall clock here and only here.
    await job.moveToDelayed(Date.now() + waitMs, token);
    throw delayedError();
  }
}

/**
 * How long a refused job should wait, in ms: until a quota's `resumeAt` or a block's `until`
 * (or `unknownWaitMs`, 1 s, when the limiter cannot tell), measured on the limiter's clock, on
 * which both are. `undefined` for an error deferral does not handle (a block with no end among
 * them: only `unblock()` ends it).
 */
function waitOf(error: unknown, options: DeferOptions): number | undefined {
  const limiter = options.limiter;
  const wait = refusalWaitMs(error, options.now ?? (limiter ? () => limiter.now() : undefined));
  if (wait === undefined) return undefined;
  if (!Number.isFinite(wait)) return options.unknownWaitMs ?? 1000;
  return Math.max(1, Math.ceil(wait));
}
