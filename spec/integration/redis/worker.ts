/**
 * One process of the multi-process Redis tests: a limiter on the Redis store that sends its
 * share of requests to the simulator when the parent says `go`, and reports what it saw.
 * Run with `node --import tsx` (forked by redis.processes.spec.ts).
 */
import { Redis } from 'ioredis';
import { defer, from, lastValueFrom, mergeMap, toArray, type Observable } from 'rxjs';
import { fromFetch } from 'rxjs/fetch';

import { createLimiter, providers, rateLimit, responseLike, type LimiterEvent } from '../../../lib/index.js';
import { redisStore } from '../../../lib/stores/redis/index.js';
import { SHOPIFY_QUERY_COST, shopifyQuery, type WorkerJob } from './fork.js';

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
      : job.provider === 'shopify' && job.shopify?.api === 'graphql'
        ? providers.shopify({
            api: 'graphql',
            queryCost: SHOPIFY_QUERY_COST,
            hints: { graphql: { limit: job.shopify.bucket, restorePerSecond: job.shopify.perSecond } },
          })
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
/** `error`: why the store was found unavailable (a timeout, or the connection's own error). */
const events: Array<Pick<LimiterEvent, 'type' | 'at'> & { error?: string }> = [];
limiter.events$.subscribe((e) => {
  if (
    e.type === 'store-unavailable' ||
    e.type === 'store-recovered' ||
    e.type === 'rate-limited' ||
    (e.type === 'admitted' && process.env['RXRL_TRACE'])
  )
    events.push({ type: e.type, at: e.at, ...(e.type === 'store-unavailable' ? { error: e.error } : {}) });
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

const GRAPHQL_PATH = '/admin/api/2024-10/graphql.json';
/** Answers whose body held GraphQL errors (a `THROTTLED` among them): their codes or messages. */
const errors: string[] = [];
/** The longest a request took from its admission to its answer read (not Shopify GraphQL), ms. */
let slowestMs = 0;

/** One request, paced by the limiter: its status once answered. */
function request(i: number): Observable<number> {
  if (job.provider === 'shopify' && job.shopify?.api === 'graphql') {
    const q = shopifyQuery(i);
    // The limiter reads the bucket and the actual cost from the body: it is handed the parsed answer.
    return defer(async () => {
      const res = await fetch(`${job.url}${GRAPHQL_PATH}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${job.token}`,
          'content-type': 'application/json',
          'x-simulated-query-cost': String(q.requested),
          'x-simulated-actual-cost': String(q.actual),
        },
        body: JSON.stringify({ query: '{ shop { name } }' }),
      });
      return responseLike(res.status, res.headers, (await res.json()) as unknown);
    }).pipe(
      rateLimit(limiter, {
        method: 'POST',
        url: GRAPHQL_PATH,
        ...(q.estimate === undefined ? {} : { cost: q.estimate }),
      }),
      mergeMap(async (res) => {
        const body = res.body as { errors?: Array<{ message?: string; extensions?: { code?: string } }> };
        for (const e of body.errors ?? []) errors.push(e.extensions?.code ?? e.message ?? 'error');
        return res.status;
      }),
    );
  }
  // Subscribed when the limiter admits the request (its lease in Redis runs from then on).
  let sentAt = 0;
  return defer(() => {
    sentAt = Date.now();
    return fromFetch(`${job.url}${path(i)}`, { headers: { authorization: `Bearer ${job.token}` } });
  }).pipe(
    rateLimit(limiter, { method: 'GET', url: path(i).split('?')[0] ?? '' }),
    mergeMap(async (res) => {
      await res.arrayBuffer();
      slowestMs = Math.max(slowestMs, Date.now() - sentAt);
      return res.status;
    }),
  );
}

async function run(): Promise<void> {
  const started = Date.now();
  let done = 0;
  const statuses = await lastValueFrom(
    from(Array.from({ length: job.requests }, (_, i) => i)).pipe(
      mergeMap(
        (i) =>
          request(i).pipe(
            mergeMap(async (status) => {
              done++;
              if (done % 10 === 0) send({ type: 'progress', done });
              return status;
            }),
          ),
        job.streams,
      ),
      toArray(),
    ),
  );
  await limiter.close();
  redis.disconnect();
  process.send?.(
    { type: 'done', statuses, errors, slowestMs, elapsed: Date.now() - started, finishedAt: Date.now(), events },
    () => process.disconnect(),
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
