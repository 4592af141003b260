/**
 * Webhook worker: processes the events the receiver enqueued, calling the provider (here
 * Procore) through a limiter whose budget lives in Redis, shared by every worker process.
 * When the budget is spent, the worker stops taking jobs until the reset
 * (`deferWhenLimited`: BullMQ's manual rate limit), so waiting events stay in Redis, not in
 * memory, and a restarted worker loses none of them.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 API_URL=https://api.procore.com PROCORE_TOKEN=… \
 *     npx tsx examples/bullmq-webhooks/worker.ts
 *
 * (In your app, import from 'rx-ratelimit' and 'rx-ratelimit/redis' instead of the relative
 * paths of this repository.)
 */
import { pathToFileURL } from 'node:url';
import { Worker, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { lastValueFrom, mergeMap } from 'rxjs';
import { fromFetch } from 'rxjs/fetch';

import { createLimiter, providers, rateLimit, type Limiter, type Provider } from '../../lib/index.js';
import { deferWhenLimited, redisStore } from '../../lib/stores/redis/index.js';
import type { WebhookEvent } from './receiver.js';

export interface WebhookWorkerOptions {
  /** BullMQ's connection (BullMQ needs `maxRetriesPerRequest: null` on it). */
  readonly connection: ConnectionOptions;
  readonly queueName?: string;
  /** The provider's base URL. */
  readonly apiUrl: string;
  readonly token: string;
  readonly limiter: Limiter;
  /** Jobs run at once by this process. @default 50 */
  readonly concurrency?: number;
  /** Called after each job's request was answered. */
  readonly onProcessed?: (event: WebhookEvent, status: number) => void;
}

/**
 * A limiter for workers: its buckets in Redis, and a short `maxWaitMs`, so that a job that
 * would wait longer goes back to the queue instead of waiting in memory. `secret` names the
 * token's Redis keys: every worker must be given the same one.
 */
export function workerLimiter(
  redis: Redis,
  token: string,
  secret: string,
  provider: Provider = providers.procore(),
): Limiter {
  return createLimiter({ provider, key: token, store: redisStore({ client: redis, secret }), maxWaitMs: 500 });
}

export function startWebhookWorker(o: WebhookWorkerOptions): Worker<WebhookEvent, number> {
  const path = (e: WebhookEvent) => `/rest/v1.0/projects/${e.projectId}`;
  const worker: Worker<WebhookEvent, number> = new Worker<WebhookEvent, number>(
    o.queueName ?? 'webhooks',
    (job) =>
      deferWhenLimited(
        worker,
        () => Worker.RateLimitError(),
        () =>
          lastValueFrom(
            fromFetch(`${o.apiUrl}${path(job.data)}`, { headers: { authorization: `Bearer ${o.token}` } }).pipe(
              rateLimit(o.limiter, { method: 'GET', url: path(job.data) }),
              mergeMap(async (res) => {
                await res.arrayBuffer();
                if (!res.ok) throw new Error(`HTTP ${res.status}`);
                o.onProcessed?.(job.data, res.status);
                return res.status;
              }),
            ),
          ),
        // The wait is measured on the limiter's clock (monotonic), not the wall clock.
        { limiter: o.limiter },
      ),
    { connection: o.connection, concurrency: o.concurrency ?? 50 },
  );
  return worker;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const url = new URL(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
  const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
  const redis = new Redis(connection);
  const token = process.env['PROCORE_TOKEN'] ?? '';
  const worker = startWebhookWorker({
    connection,
    apiUrl: process.env['API_URL'] ?? 'https://api.procore.com',
    token,
    limiter: workerLimiter(redis, token, process.env['RATE_LIMIT_SECRET'] ?? ''),
  });
  const stop = async () => {
    // Lets the jobs in hand finish; the others stay queued. BullMQ 6 can hold this until the
    // deferral's end (at most its `maximumRateLimitDelay`, 30 s) when a job in hand is deferred
    // after close began: give the process that long to stop, or the jobs it held are retried
    // only once their locks expire.
    await worker.close();
    redis.disconnect();
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}
