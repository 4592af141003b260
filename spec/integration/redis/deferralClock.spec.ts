/**
 * Deferral measures a refused job's wait on the limiter's clock, on which the refusal's
 * `resumeAt` (or a block's `until`) is: with the default scheduler that clock is monotonic, so
 * a step of the wall clock since the limiter was made (NTP, a VM resumed) must not move the
 * wait. Jobs refused during a block's cool-down are deferred until it ends, not failed. A real
 * Redis and real BullMQ workers; the waits asserted are the ones handed to BullMQ.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import { asyncScheduler, catchError, lastValueFrom, of, type SchedulerLike } from 'rxjs';

import {
  createLimiter,
  defineProvider,
  isBlockedError,
  isQuotaExhaustedError,
  providers,
  rateLimit,
  responseLike,
  type Limiter,
} from '../../../lib/index.js';
import { deferJobWhenLimited, deferWhenLimited } from '../../../lib/stores/redis/index.js';
import { REDIS } from '../../helpers/redis.js';

const connection = { host: REDIS.host, port: REDIS.port, maxRetriesPerRequest: null };
let runs = 0;
const queueName = (what: string) => `rxrl-deferral-${what}-${process.pid}-${Date.now()}-${runs++}`;

const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/**
 * A scheduler whose clock stands at `at` (timers run in real time): to the limiter, its own
 * clock, as the monotonic clock is to a limiter on the default scheduler, while the wall clock
 * (`Date.now()`) is `step` ms away from it, as after a step of the wall clock.
 */
function standingClock(at: number): SchedulerLike {
  return { now: () => at, schedule: asyncScheduler.schedule.bind(asyncScheduler) };
}

/** A limiter whose bucket is spent for 20 s from `limiter.now()`; waits past 500 ms are refused. */
async function spentLimiter(scheduler: SchedulerLike): Promise<Limiter> {
  const limiter = createLimiter({ provider: providers.generic(), key: 'deferral-clock', maxWaitMs: 500, scheduler });
  closers.push(() => limiter.close());
  const spent = { 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '20' };
  await lastValueFrom(of(responseLike(200, spent)).pipe(rateLimit(limiter, { url: '/a' })));
  return limiter;
}

/** A queue and its worker of concurrency 1, closed (forcibly: a deferral holds no job) after the test. */
function queueAndWorker<T>(what: string, process: (job: Job, token?: string) => Promise<T>) {
  const name = queueName(what);
  const queue = new Queue(name, { connection });
  closers.push(() => queue.obliterate({ force: true }).then(() => queue.close()));
  const worker = new Worker(name, process, { connection, concurrency: 1 });
  closers.push(() => worker.close(true));
  return { queue, worker };
}

async function until(condition: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  for (const deadline = Date.now() + ms; !(await condition()) && Date.now() < deadline;)
    await new Promise((r) => setTimeout(r, 50));
}

// Ahead: Date.now() an hour past the limiter's clock (the old code deferred by 1 ms, and the job
// spun through Redis until the reset). Back: an hour behind it (the old code waited an hour more).
describe.each([
  ['ahead', 3_600_000],
  ['back', -3_600_000],
])('deferral after the wall clock stepped an hour %s', (_, step) => {
  it('deferJobWhenLimited delays the job by the wait on the limiter clock, to a wall-clock timestamp', async () => {
    const clockAt = Date.now() - step;
    const limiter = await spentLimiter(standingClock(clockAt));
    const delays: number[] = [];
    const waits: number[] = [];
    const { queue } = queueAndWorker('job', (job, token) =>
      deferJobWhenLimited(
        {
          moveToDelayed: (timestamp: number, t?: string) => {
            // The delay BullMQ is given, from the wall clock it keys its delayed set by.
            delays.push(timestamp - Date.now());
            return job.moveToDelayed(timestamp, t);
          },
        },
        token,
        () => new DelayedError(),
        () =>
          lastValueFrom(
            of(responseLike(200, {})).pipe(
              rateLimit(limiter, { url: '/a' }),
              catchError((e: unknown) => {
                if (isQuotaExhaustedError(e)) waits.push(e.resumeAt - clockAt);
                throw e;
              }),
            ),
          ),
        { limiter },
      ),
    );
    await queue.add('webhook', { id: 1 });
    await until(() => delays.length > 0, 20_000);

    expect(waits).toHaveLength(1);
    const wait = waits[0] ?? NaN;
    expect(wait).toBeGreaterThan(19_000); // the 20 s reset, on the limiter's clock
    expect(wait).toBeLessThan(21_000);
    // Deferred once, by that wait (less the moment between the helper's Date.now() and ours).
    expect(delays).toHaveLength(1);
    expect(delays[0]).toBeLessThanOrEqual(Math.ceil(wait));
    expect(delays[0]).toBeGreaterThan(wait - 5_000);
    expect(await queue.getDelayedCount()).toBe(1);
    expect(await queue.getFailedCount()).toBe(0);
  }, 30_000);

  /**
   * One job through `deferWhenLimited` on a limiter whose bucket is spent, its clock standing
   * `step` ms from the wall clock: the waits the worker was stopped for, and the refusal's wait
   * on the limiter's clock. `withLimiter`: the helper is given the limiter to ask.
   */
  async function deferredOnce(what: string, withLimiter: boolean) {
    const clockAt = Date.now() - step;
    const limiter = await spentLimiter(standingClock(clockAt));
    const limits: number[] = [];
    const waits: number[] = [];
    const { queue, worker } = queueAndWorker(what, () =>
      deferWhenLimited(
        { rateLimit: (ms: number): Promise<void> => (limits.push(ms), worker.rateLimit(ms)) },
        () => Worker.RateLimitError(),
        () =>
          lastValueFrom(
            of(responseLike(200, {})).pipe(
              rateLimit(limiter, { url: '/a' }),
              catchError((e: unknown) => {
                if (isQuotaExhaustedError(e)) waits.push(e.resumeAt - clockAt);
                throw e;
              }),
            ),
          ),
        withLimiter ? { limiter } : {},
      ),
    );
    await queue.add('webhook', { id: 1 });
    await until(() => limits.length > 0, 20_000);
    return { limits, waits, failed: await queue.getFailedCount() };
  }

  it('deferWhenLimited stops the worker for the wait on the limiter clock', async () => {
    const { limits, waits, failed } = await deferredOnce('worker', true);
    expect(waits).toHaveLength(1);
    // The limiter's clock stands still: the wait is exact.
    expect(limits).toEqual([Math.ceil(waits[0] ?? NaN)]);
    expect(failed).toBe(0);
  }, 30_000);

  it('deferWhenLimited with no limiter to ask stops the worker for the wait the refusal carries', async () => {
    const { limits, waits, failed } = await deferredOnce('no-limiter', false);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeGreaterThan(19_000);
    // `resumeInMs`, measured on the limiter's clock when it refused (before: `resumeAt` against
    // `Date.now()`, 1 ms after the step ahead and an hour more after the step back).
    expect(limits).toEqual([Math.ceil(waits[0] ?? NaN)]);
    expect(failed).toBe(0);
  }, 30_000);
});

/** A provider that blocks the credential on 403 (as Pipedrive's Cloudflare page). */
const blocking = defineProvider({
  name: 'blocking',
  buckets: [{ name: 'default' }],
  read: (res) => ({ outcome: res.status === 403 ? 'blocked' : 'ok', buckets: [] }),
});

/** A limiter blocked by a 403 for `cooldownMs` (`Infinity`: until `unblock()`). */
async function blockedLimiter(cooldownMs: number): Promise<Limiter> {
  const limiter = createLimiter({ provider: blocking, key: 'blocked', maxWaitMs: 500, blockCooldownMs: cooldownMs });
  closers.push(() => limiter.close());
  await lastValueFrom(
    of(responseLike(403, {})).pipe(
      rateLimit(limiter),
      catchError(() => of(null)),
    ),
  );
  return limiter;
}

const ok = (limiter: Limiter) => () => lastValueFrom(of(responseLike(200, {})).pipe(rateLimit(limiter)));

describe('deferral during a block with a known end', () => {
  it('deferWhenLimited: jobs arriving during the cool-down wait for its end, then all run; none fails', async () => {
    const limiter = await blockedLimiter(4_000);
    const blockEnd = Date.now() + 4_000;
    const limits: number[] = [];
    const done: number[] = [];
    const { queue, worker } = queueAndWorker('block', async () => {
      await deferWhenLimited(
        { rateLimit: (ms) => (limits.push(ms), worker.rateLimit(ms)) },
        () => Worker.RateLimitError(),
        ok(limiter),
        { limiter },
      );
      done.push(Date.now());
    });
    await queue.addBulk([1, 2, 3].map((id) => ({ name: 'webhook', data: { id } })));
    await until(async () => done.length === 3 || (await queue.getFailedCount()) > 0, 25_000);

    expect(await queue.getFailedCount()).toBe(0);
    expect(done).toHaveLength(3);
    // Deferred until the block's end (a wait of up to its 4 s), and run after it.
    expect(limits.length).toBeGreaterThanOrEqual(1);
    expect(Math.max(...limits)).toBeLessThanOrEqual(4_000);
    expect(Math.min(...done)).toBeGreaterThanOrEqual(blockEnd - 100);
  }, 30_000);

  it('deferJobWhenLimited: the job is delayed to the end of the cool-down; a block with no end still fails', async () => {
    const limiter = await blockedLimiter(4_000);
    const blockEnd = Date.now() + 4_000;
    const delays: number[] = [];
    const done: number[] = [];
    const { queue } = queueAndWorker('block-job', async (job, token) => {
      await deferJobWhenLimited(
        { moveToDelayed: (ts, t) => (delays.push(ts - Date.now()), job.moveToDelayed(ts, t)) },
        token,
        () => new DelayedError(),
        ok(limiter),
        { limiter },
      );
      done.push(Date.now());
    });
    await queue.add('webhook', { id: 1 });
    await until(async () => done.length === 1 || (await queue.getFailedCount()) > 0, 25_000);

    expect(await queue.getFailedCount()).toBe(0);
    expect(done).toHaveLength(1);
    expect(delays.length).toBeGreaterThanOrEqual(1);
    expect(delays[0]).toBeLessThanOrEqual(4_000);
    expect(done[0]).toBeGreaterThanOrEqual(blockEnd - 100);

    // Blocked until `unblock()`: no time to defer to, so the job fails with the block, as before.
    const forever = await blockedLimiter(Infinity);
    const failures: unknown[] = [];
    const { queue: other } = queueAndWorker('block-forever', (job, token) =>
      deferJobWhenLimited(job, token, () => new DelayedError(), ok(forever), { limiter: forever }).catch(
        (e: unknown) => {
          failures.push(e);
          throw e;
        },
      ),
    );
    await other.add('webhook', { id: 2 });
    await until(async () => (await other.getFailedCount()) > 0, 20_000);
    expect(await other.getFailedCount()).toBe(1);
    expect(failures.every((e) => isBlockedError(e) && e.until === null)).toBe(true);
    expect(await other.getDelayedCount()).toBe(0);
  }, 45_000);
});
