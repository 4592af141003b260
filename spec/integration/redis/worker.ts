/**
 * One process of the multi-process Redis tests: a limiter on the Redis store that sends its
 * share of requests to the simulator when the parent says `go`, and reports what it saw.
 * Run with `node --import tsx` (forked by redis.processes.spec.ts).
 */
import { Redis } from 'ioredis';
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { fromFetch } from 'rxjs/fetch';

import { createLimiter, providers, rateLimit, type LimiterEvent } from '../../../lib/index.js';
import { redisStore } from '../../../lib/stores/redis/index.js';
import type { WorkerJob } from './fork.js';

type Job = WorkerJob;

const job = JSON.parse(process.env['RXRL_JOB'] ?? '{}') as Job;
const send = (msg: unknown): void => {
  process.send?.(msg);
};

// A short reconnect delay: after an outage, processes come back to shared state together.
const redis = new Redis({ port: job.redisPort, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 100 });
redis.on('error', () => undefined);
const limiter = createLimiter({
  provider:
    job.provider === 'pipedrive'
      ? providers.pipedrive({ plan: 'advanced' })
      : job.provider === 'shopify' && job.shopify
        ? providers.shopify({
            api: 'rest',
            hints: { rest: { limit: job.shopify.bucket, restorePerSecond: job.shopify.perSecond } },
          })
        : job.provider === 'teos' && job.teos
          ? providers.teos({
              hints: {
                minute: { limit: job.teos.perMinute, windowMs: job.teos.minuteMs },
                day: { limit: job.teos.perDay, windowMs: job.teos.dayMs },
              },
            })
          : providers.procore({ hints: { hourly: { limit: job.limit, windowMs: job.windowMs } } }),
  key: job.token,
  ...(job.resetGuardMs === undefined ? {} : { resetGuardMs: job.resetGuardMs }),
  store: redisStore({
    client: redis,
    secret: 'rx-ratelimit-test-secret',
    prefix: job.prefix,
    timeoutMs: job.timeoutMs ?? 300,
    retryMs: 300,
    leaseMs: job.leaseMs ?? 60_000,
    keyTtlMs: 60_000,
  }),
});
const events: Array<Pick<LimiterEvent, 'type' | 'at'>> = [];
limiter.events$.subscribe((e) => {
  if (
    e.type === 'store-unavailable' ||
    e.type === 'store-recovered' ||
    e.type === 'rate-limited' ||
    (e.type === 'admitted' && process.env['RXRL_TRACE'])
  )
    events.push({ type: e.type, at: e.at });
});

const path = (i: number): string =>
  job.provider === 'pipedrive'
    ? `/v1/deals/${process.pid}-${i}?api_token=${job.token}`
    : job.provider === 'teos'
      ? // One endpoint: TEOS sends its headers once enough calls were made to it.
        `/api/v1/items?n=${process.pid}-${i}`
      : job.provider === 'shopify'
        ? `/admin/api/2024-10/products/${process.pid}-${i}.json`
        : `/rest/v1.0/projects/${process.pid}-${i}`;

async function run(): Promise<void> {
  const started = Date.now();
  let done = 0;
  const statuses = await lastValueFrom(
    from(Array.from({ length: job.requests }, (_, i) => i)).pipe(
      mergeMap(
        (i) =>
          fromFetch(`${job.url}${path(i)}`, {
            headers: { authorization: `Bearer ${job.token}` },
          }).pipe(
            rateLimit(limiter, { method: 'GET', url: path(i).split('?')[0] ?? '' }),
            mergeMap(async (res) => {
              await res.arrayBuffer();
              done++;
              if (done % 10 === 0) send({ type: 'progress', done });
              return res.status;
            }),
          ),
        job.streams,
      ),
      toArray(),
    ),
  );
  await limiter.close();
  redis.disconnect();
  process.send?.({ type: 'done', statuses, elapsed: Date.now() - started, finishedAt: Date.now(), events }, () =>
    process.disconnect(),
  );
}

process.on('message', (msg: unknown) => {
  if (msg === 'go') {
    run().catch((error: unknown) => {
      send({ type: 'error', error: String(error) });
      process.exitCode = 1;
    });
  }
});
// Warm up before `go`: Node's fetch loads on first use and a first connection is slow.
fetch(`${job.url}/warm-up`, { headers: { authorization: `Bearer warm-${process.pid}` } })
  .then((res) => res.arrayBuffer())
  .then(() => redis.ping())
  .then(() => send({ type: 'ready' }))
  .catch((error: unknown) => send({ type: 'error', error: String(error) }));
