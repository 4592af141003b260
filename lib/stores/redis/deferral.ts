/**
 * Durable deferral with BullMQ: when a limiter has no budget for a while, the worker stops
 * taking jobs until the budget returns, so waiting jobs stay in Redis, not in memory.
 * Nothing here imports BullMQ: pass your worker and its `Worker.RateLimitError`.
 */
import { isQuotaExhaustedError, type QuotaExhaustedError } from '../../core/errors.js';

/** The part of a BullMQ `Worker` that deferral uses (`worker.rateLimit(ms)`, or `queue.rateLimit(ms)`). */
export interface RateLimitable {
  /** Keeps jobs from starting for `expireTimeMs`. */
  rateLimit(expireTimeMs: number): Promise<void>;
}

/** Options of {@link deferWhenLimited}. */
export interface DeferOptions {
  /** How long to stop taking jobs when the limiter cannot tell when budget returns. @default 1000 */
  readonly unknownWaitMs?: number;
  /** Clock of the limiter (epoch ms). @default Date.now */
  readonly now?: () => number;
}

/**
 * Runs one job's work; if the limiter refuses it because the budget will not return within
 * the limiter's `maxWaitMs` (a `QuotaExhaustedError`: a bucket is empty or the token is
 * paused after a 429), stops the BullMQ worker from taking jobs until the limiter's
 * `resumeAt` and throws BullMQ's rate-limit error: the job goes back to the wait list,
 * without counting as an attempt, and runs again after the reset. Any other error is
 * thrown as it is.
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
 *     deferWhenLimited(worker, () => Worker.RateLimitError(), () =>
 *       lastValueFrom(fromFetch(`https://api.example.com/items/${job.data.id}`).pipe(rateLimit(limiter))),
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
    if (!isQuotaExhaustedError(error)) throw error;
    const waitMs = waitOf(error, options);
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
 * Use it when one queue carries many tenants (a limiter pool); {@link deferWhenLimited} stops
 * the whole worker instead, which suits a queue of one token. Any other error is thrown as it is.
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
 *   (job, token) =>
 *     deferJobWhenLimited(job, token, () => new DelayedError(), () =>
 *       lastValueFrom(
 *         fromFetch(`https://api.procore.com/rest/v1.0/items/${job.data.id}`, {
 *           headers: { authorization: `Bearer ${job.data.token}` },
 *         }).pipe(rateLimit(pool.get(job.data.token))),
 *       ),
 *     ),
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
    if (!isQuotaExhaustedError(error)) throw error;
    const waitMs = waitOf(error, options);
    // BullMQ's delayed set is keyed by wall-clock epoch ms.
    await job.moveToDelayed(Date.now() + waitMs, token);
    throw delayedError();
  }
}

/** How long a refused job should wait: until the quota's `resumeAt`, or `unknownWaitMs` (1 s). */
function waitOf(error: QuotaExhaustedError, options: DeferOptions): number {
  const now = (options.now ?? Date.now)();
  return Number.isFinite(error.resumeAt)
    ? Math.max(1, Math.ceil(error.resumeAt - now))
    : (options.unknownWaitMs ?? 1000);
}
