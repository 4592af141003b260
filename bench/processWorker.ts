/**
 * One client process of `npm run bench:processes`: a limiter on the Redis store that sends its
 * part of the requests to the simulator when the parent says `go`, and reports what it saw
 * (statuses, when each request was admitted and answered). Forked by bench/processes.ts.
 */
import { Redis } from 'ioredis';
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { fromFetch } from 'rxjs/fetch';

import { createLimiter, providers, rateLimit, type LimiterStore } from '../lib/index.js';
import { redisStore } from '../lib/stores/redis/index.js';

export interface ProcessJob {
  readonly url: string;
  readonly token: string;
  readonly requests: number;
  readonly streams: number;
  readonly redisPort: number;
  readonly prefix: string;
  readonly provider: 'pipedrive' | 'teos';
  /** TEOS's windows as the simulator runs them (compressed). */
  readonly teos?: {
    readonly perMinute: number;
    readonly perDay: number;
    readonly minuteMs: number;
    readonly dayMs: number;
  };
  readonly resetGuardMs?: number;
  /** The memory store instead of Redis: the reference of one process alone. */
  readonly memory?: boolean;
}

export interface ProcessReport {
  readonly type: 'done';
  readonly statuses: number[];
  /** Epoch ms at which each request was admitted, and answered. */
  readonly admitted: number[];
  readonly answered: number[];
  readonly finishedAt: number;
}

const job = JSON.parse(process.env['RXRL_BENCH_JOB'] ?? '{}') as ProcessJob;
const redis = new Redis({ port: job.redisPort, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 100 });
redis.on('error', () => undefined);
const limiter = createLimiter({
  provider:
    job.provider === 'teos' && job.teos
      ? providers.teos({
          hints: {
            minute: { limit: job.teos.perMinute, windowMs: job.teos.minuteMs },
            day: { limit: job.teos.perDay, windowMs: job.teos.dayMs },
          },
        })
      : providers.pipedrive({ plan: 'essential' }),
  key: job.token,
  ...(job.resetGuardMs === undefined ? {} : { resetGuardMs: job.resetGuardMs }),
  ...(job.memory
    ? {}
    : {
        store: debug(
          redisStore({ client: redis, secret: 'rx-ratelimit-bench-secret', prefix: job.prefix, timeoutMs: 2000 }),
        ),
      }),
});
const admitted: number[] = [];

/** `RXRL_BENCH_DEBUG=1`: logs every store call of this process (epoch ms), for the bench's trace. */
function debug(store: LimiterStore): LimiterStore {
  if (process.env['RXRL_BENCH_DEBUG'] !== '1') return store;
  const log = (line: string) => process.stdout.write(`${Date.now() % 10_000_000} p${process.pid % 1000} ${line}\n`);
  return {
    kind: store.kind,
    open: (ctx) => {
      const s = store.open(ctx);
      if (!s) return s;
      const acquire = s.acquire.bind(s);
      const observe = s.observe.bind(s);
      const onChange = s.onChange.bind(s);
      s.acquire = async (b, c, o) => {
        const at = Date.now() % 10_000_000;
        const g = await acquire(b, c, o);
        log(
          `acquire(${c}) sent ${at}: ${g.leases.length} wait ${g.waitMs} ${JSON.stringify(g.buckets.map((x) => [x.remaining, x.resetInMs]))}`,
        );
        return g;
      };
      s.observe = (l, r, b) => {
        log(`observe ${JSON.stringify(r.map((x) => [x.remaining, x.resetInMs, x.index]))}`);
        observe(l, r, b);
      };
      s.onChange = (f) =>
        onChange(() => {
          log('notice');
          f();
        });
      return s;
    },
  };
}
limiter.events$.subscribe((e) => {
  if (e.type === 'admitted') admitted.push(Date.now());
});

const path = (i: number): string =>
  job.provider === 'teos'
    ? `/api/v1/items?n=${process.pid}-${i}`
    : `/v1/deals/${process.pid}-${i}?api_token=${job.token}`;

async function run(): Promise<void> {
  const answered: number[] = [];
  const statuses = await lastValueFrom(
    from(Array.from({ length: job.requests }, (_, i) => i)).pipe(
      mergeMap(
        (i) =>
          fromFetch(`${job.url}${path(i)}`, { headers: { authorization: `Bearer ${job.token}` } }).pipe(
            rateLimit(limiter, { method: 'GET', url: path(i).split('?')[0] ?? '' }),
            mergeMap(async (res) => {
              await res.arrayBuffer();
              answered.push(Date.now());
              return res.status;
            }),
          ),
        job.streams,
      ),
      toArray(),
    ),
  );
  const report: ProcessReport = { type: 'done', statuses, admitted, answered, finishedAt: Date.now() };
  await limiter.close();
  redis.disconnect();
  process.send?.(report, () => process.disconnect());
}

process.on('message', (msg: unknown) => {
  if (msg === 'go') run().catch((error: unknown) => process.send?.({ type: 'error', error: String(error) }));
});
/**
 * Warms up before `go`, as a service that has been running a while: Node's fetch loads on first
 * use, a first connection is slow, and the limiter's code runs once (on a throwaway token).
 */
async function warmUp(): Promise<void> {
  const url = `${job.url}${path(-1)}`.replace(job.token, `warm-${process.pid}`);
  const warm = createLimiter({
    provider: providers.pipedrive({ plan: 'essential' }),
    key: `warm-${process.pid}`,
    store: redisStore({ client: redis, secret: 'rx-ratelimit-bench-secret', prefix: job.prefix }),
  });
  await lastValueFrom(
    fromFetch(url, { headers: { authorization: `Bearer warm-${process.pid}` } }).pipe(
      rateLimit(warm, { method: 'GET', url: '/v1/deals/warm-up' }),
      mergeMap((res) => res.arrayBuffer()),
    ),
  );
  await warm.close();
  await redis.ping();
}
warmUp()
  .then(() => process.send?.({ type: 'ready' }))
  .catch((error: unknown) => process.send?.({ type: 'error', error: String(error) }));
