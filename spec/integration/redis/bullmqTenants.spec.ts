/**
 * Per-tenant deferral with BullMQ: one queue carries the jobs of many tenants; a job whose
 * tenant's budget is spent goes back to the delayed set until that tenant's reset, while the
 * worker goes on with the other tenants' jobs. A real Redis and a real BullMQ worker.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { DelayedError, Queue, Worker } from 'bullmq';
import { lastValueFrom, of } from 'rxjs';

import { createLimiterPool, defineProvider, rateLimit, responseLike } from '../../../lib/index.js';
import { deferJobWhenLimited } from '../../../lib/stores/redis/index.js';
import { REDIS } from '../../helpers/redis.js';

const connection = { host: REDIS.host, port: REDIS.port };
const name = `rxrl-tenants-${process.pid}-${Date.now()}`;

/** One bucket per tenant; a response's X-RateLimit-Remaining and -Reset (seconds left) tell the rest. */
const provider = defineProvider({
  name: 'tenants',
  buckets: [{ name: 'main', limit: 100, windowMs: 60_000 }],
  read(res) {
    return {
      outcome: 'ok',
      buckets: [
        {
          name: 'main',
          limit: 100,
          remaining: Number(res.header('x-ratelimit-remaining')),
          reset: { inMs: Number(res.header('x-ratelimit-reset')) * 1000 },
        },
      ],
    };
  },
});

const closers: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

describe('deferJobWhenLimited: a spent tenant waits in Redis, the others go on', () => {
  it("delays only the spent tenant's jobs, to its reset; the other tenant's jobs run at once", async () => {
    // Tenant "spent" has its window spent for 4 s; waits past 200 ms are refused at once.
    const pool = createLimiterPool({ provider, maxWaitMs: 200 });
    closers.push(() => pool.close());
    const spentLimiter = pool.get('token-spent');
    await lastValueFrom(
      of(responseLike(200, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '4' })).pipe(
        rateLimit(spentLimiter, { method: 'GET', url: '/x' }),
      ),
    );
    const resetAt = Date.now() + 4_000;

    const queue = new Queue(name, { connection });
    closers.push(() => queue.obliterate({ force: true }).then(() => queue.close()));
    const done: Array<{ tenant: string; at: number }> = [];
    const deferred: string[] = [];
    const worker = new Worker<{ tenant: string }>(
      name,
      (job, token) => {
        const limiter = pool.get(`token-${job.data.tenant}`);
        return deferJobWhenLimited(
          job,
          token,
          () => {
            deferred.push(job.data.tenant);
            return new DelayedError();
          },
          async () => {
            await lastValueFrom(
              of(responseLike(200, { 'x-ratelimit-remaining': '50', 'x-ratelimit-reset': '60' })).pipe(
                rateLimit(limiter, { method: 'GET', url: '/x' }),
              ),
            );
            done.push({ tenant: job.data.tenant, at: Date.now() });
          },
          { limiter },
        );
      },
      { connection, concurrency: 1 },
    );
    closers.push(() => worker.close());
    await queue.addBulk([
      ...Array.from({ length: 3 }, () => ({ name: 'sync', data: { tenant: 'spent' } })),
      ...Array.from({ length: 5 }, () => ({ name: 'sync', data: { tenant: 'fresh' } })),
    ]);
    const deadline = Date.now() + 20_000;
    while (done.length < 8 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));

    expect(done).toHaveLength(8);
    const fresh = done.filter((d) => d.tenant === 'fresh');
    const spent = done.filter((d) => d.tenant === 'spent');
    // The fresh tenant's five ran before the spent tenant's reset: nothing held them up.
    expect(fresh.every((d) => d.at < resetAt)).toBe(true);
    // The spent tenant's three were deferred, not failed, and ran after its reset.
    expect(deferred.filter((t) => t === 'spent').length).toBeGreaterThanOrEqual(3);
    expect(spent.every((d) => d.at >= resetAt - 50)).toBe(true);
    expect(await queue.getFailedCount()).toBe(0);
  }, 30_000);
});
