/**
 * A quota bucket emptied only by our requests in flight, with the Redis store, against the tests'
 * Redis (spec/helpers/redis.ts; own key prefix) in real time: the memory store's case is
 * spec/reliability/quotaInFlight.virtual.spec.ts. HubSpot's daily limit against the simulator:
 * three GETs are counted by the server, the last one answered first, so the daily figure Redis
 * reads counts the two still out, which it takes off that figure again and reads the day empty.
 * A request asked then waits for their answers: it goes if they show room, and fails with
 * QuotaExhaustedError if they show none, never while they are out. Each limiter has its own
 * ioredis client, as separate processes would. Time is asserted as order only (what was sent,
 * and how each request ended), never as margins.
 */
import { describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { defer, firstValueFrom, Subject } from 'rxjs';

import {
  createLimiter,
  isQuotaExhaustedError,
  providers,
  rateLimit,
  responseLike,
  type Limiter,
  type Permit,
  type RateLimitError,
  type ResponseLike,
} from '../../../lib/index.js';
import { redisKeys, redisStore } from '../../../lib/stores/redis/index.js';
import { createSimulatorEngine, type SimulatorEngine } from '../../../lib/testing/index.js';
import { closedAfterEach, REDIS } from '../../helpers/redis.js';
import { until } from './fork.js';

const secret = 'rx-ratelimit-test-secret';
const prefix = `rxrl-quota-flight-${process.pid}-${Date.now()}:`;
const { clients, limiters, tickets } = closedAfterEach();

/** The simulator's clock: noon UTC of a fixed day, running in real time (midnight, the reset, is 12 h off). */
const ROUND_START = Date.UTC(2026, 10, 23, 12, 0, 0);

const client = () => {
  const c = new Redis({ port: REDIS.port, host: REDIS.host });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
};

let keys = 0;
/** A fresh credential (its own keys in Redis) and the simulator that counts its day. */
function credential(perDay: number): { key: string; engine: SimulatorEngine; low: () => Promise<string | null> } {
  const key = `hubspot-day-${++keys}`;
  const t0 = Date.now();
  const engine = createSimulatorEngine({ hubspot: { perDay }, now: () => ROUND_START + (Date.now() - t0) });
  const bucket = redisKeys(prefix, 'hubspot', key, secret).bucket('daily');
  const admin = client();
  return { key, engine, low: () => admin.hget(bucket, 'low') };
}

/** A limiter of `key` on the Redis store, as one process would have it (its own client). */
function limiter(key: string): Limiter {
  const l = createLimiter({
    provider: providers.hubspot({ hints: { daily: { limit: 5 } } }),
    key,
    coldStartConcurrency: 3,
    store: redisStore({ client: client(), secret, prefix, timeoutMs: 1000, retryMs: 200, keyTtlMs: 60_000 }),
  });
  limiters.push(l);
  return l;
}

/** The server's answer to one GET, counted when it is sent. */
function send(engine: SimulatorEngine, i: number): ResponseLike {
  const res = engine.handle({
    provider: 'hubspot',
    path: `/crm/v3/objects/contacts/${i}`,
    headers: { Authorization: 'Bearer hs' },
  });
  return responseLike(res.status, res.headers, res.body);
}

/** One request through `acquire`: sent when granted, answered when the test says. */
interface Asked {
  permit?: Permit;
  answer?: ResponseLike;
  error?: RateLimitError;
}

function ask(l: Limiter, engine: SimulatorEngine, i: number): Asked {
  const asked: Asked = {};
  tickets.push(
    l.acquire(
      { method: 'GET', url: `/crm/v3/objects/contacts/${i}` },
      {
        granted: (permit) => {
          asked.permit = permit;
          asked.answer = send(engine, i);
        },
        rejected: (e) => (asked.error = e),
      },
    ),
  );
  return asked;
}

function answer(a: Asked): void {
  a.permit?.observe(a.answer as ResponseLike);
  a.permit?.release();
}

/**
 * Three GETs of `l` counted by the server, the last answered: Redis has read the day's figure
 * that counts all three while the first two are still out. Returns those two.
 */
async function twoOut(l: Limiter, c: ReturnType<typeof credential>, perDay: number): Promise<Asked[]> {
  const out = [0, 1, 2].map((i) => ask(l, c.engine, i));
  await until(() => out.every((a) => a.permit !== undefined));
  answer(out[2] as Asked);
  await until(async () => (await c.low()) === String(perDay - 3));
  return out.slice(0, 2);
}

/** Long enough for a request to have been asked of Redis (and refused, before the fix). */
const settle = () => new Promise((r) => setTimeout(r, 300));

describe('redis store: a quota bucket emptied only by our requests in flight', () => {
  it('through acquire: the request waits for their answers and goes with the last unit of the day', async () => {
    const c = credential(4);
    const l = limiter(c.key);
    const first = await twoOut(l, c, 4);
    const fourth = ask(l, c.engine, 3);
    await settle();
    // Before the fix: refused at once, the day's reset being 12 h away, though 1 unit was left.
    expect(fourth.error).toBeUndefined();
    expect(fourth.permit).toBeUndefined();
    first.forEach(answer);
    await until(() => fourth.permit !== undefined || fourth.error !== undefined);
    expect(fourth.error).toBeUndefined();
    expect(fourth.answer?.status).toBe(200);
    answer(fourth);
  });

  it('through acquire: a day really spent fails with QuotaExhaustedError once those answers are in', async () => {
    const c = credential(3);
    const l = limiter(c.key);
    const first = await twoOut(l, c, 3);
    const fourth = ask(l, c.engine, 3);
    await settle();
    expect(fourth.error).toBeUndefined();
    first.forEach(answer);
    await until(() => fourth.permit !== undefined || fourth.error !== undefined);
    expect(fourth.permit).toBeUndefined();
    expect(isQuotaExhaustedError(fourth.error)).toBe(true);
    expect(fourth.error).toMatchObject({ bucket: 'daily' });
  });

  it('through rateLimit on another process: its requests wait for the first one’s answers, then go', async () => {
    const c = credential(5);
    const a = limiter(c.key);
    const b = limiter(c.key);
    const first = await twoOut(a, c, 5);
    // Two GETs of process b, through the operator (its quota check first): each waits for the
    // answers of a's requests, whose figure Redis took them off. The second is asked once b has
    // heard from Redis that the day reads empty.
    const answers = [new Subject<ResponseLike>(), new Subject<ResponseLike>()];
    let sent = 0;
    const request = (i: number) =>
      firstValueFrom(
        defer(() => {
          sent++;
          const res = send(c.engine, 10 + i);
          setTimeout(() => (answers[i] as Subject<ResponseLike>).next(res), 0);
          return answers[i] as Subject<ResponseLike>;
        }).pipe(rateLimit(b, { method: 'GET', url: `/crm/v3/objects/contacts/${10 + i}` })),
      );
    const results = [request(0)];
    await settle();
    results.push(request(1));
    const ended = Promise.allSettled(results);
    await settle();
    expect(sent).toBe(0);
    first.forEach(answer);
    const outcomes = await ended;
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value.status : (o.reason as Error).name))).toEqual([
      200, 200,
    ]);
    expect(sent).toBe(2);
  });
});
