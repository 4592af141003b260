/**
 * Durable deferral with BullMQ: when a limiter has no budget for a while, the worker stops
 * taking jobs until the budget returns, so waiting jobs stay in Redis, not in memory.
 * Nothing here imports BullMQ: pass your worker and its `Worker.RateLimitError`.
 */
import { isQuotaExhaustedError } from '../../core/errors.js';

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
    const now = (options.now ?? Date.now)();
    const waitMs = Number.isFinite(error.resumeAt)
      ? Math.max(1, Math.ceil(error.resumeAt - now))
      : (options.unknownWaitMs ?? 1000);
    await worker.rateLimit(waitMs);
    throw rateLimitError();
  }
}
