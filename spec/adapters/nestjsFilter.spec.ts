import 'reflect-metadata';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Get, Module, type INestApplication } from '@nestjs/common';
import { APP_FILTER, HttpAdapterHost, NestFactory } from '@nestjs/core';
import { asyncScheduler, catchError, lastValueFrom, of, type SchedulerLike } from 'rxjs';
import {
  BlockedError,
  createLimiter,
  CostExceedsLimitError,
  LimiterClosedError,
  LimiterPoolFullError,
  QueueFullError,
  QuotaExhaustedError,
  RetryLimitError,
  providers,
  rateLimit,
  responseLike,
} from '../../lib/index.js';
import { RateLimitExceptionFilter } from '../../lib/adapters/nestjs.js';

const NOW = 1_700_000_000_000;
const at = { provider: 'procore', key: 'key_0123456789abcdef' };

/** One error of each class the library raises, as the limiter would make it. */
const errors = {
  quota: new QuotaExhaustedError({ ...at, bucket: 'hourly', resumeAt: NOW + 30_000, waitMs: 30_000, maxWaitMs: 1_000 }),
  blocked: new BlockedError({ ...at, status: 403, until: NOW + 60_000 }),
  retryLimit: new RetryLimitError({ ...at, attempts: 6, status: 429 }),
  queueFull: new QueueFullError({ ...at, maxQueue: 100 }),
  poolFull: new LimiterPoolFullError({ ...at, max: 1_000 }),
  closed: new LimiterClosedError(at),
  cost: new CostExceedsLimitError({ ...at, bucket: 'hourly', cost: 50, limit: 10 }),
};

describe('RateLimitExceptionFilter: the status each library error gets', () => {
  /** `status`: by default and with `status: 429`; `undefined` for Nest's own answer. */
  it.each<{
    error: keyof typeof errors;
    answer: string;
    status: [number | undefined, number | undefined];
    retryAfter?: number;
  }>([
    { error: 'quota', answer: '503, or 429, Retry-After until resumeAt', status: [503, 429], retryAfter: 30 },
    { error: 'blocked', answer: '503, or 429, Retry-After until the block ends', status: [503, 429], retryAfter: 60 },
    { error: 'retryLimit', answer: '503, or 429', status: [503, 429] },
    { error: 'queueFull', answer: '503, or 429', status: [503, 429] },
    // This service's own state, not the client's rate limit.
    { error: 'poolFull', answer: '503 whatever the status option', status: [503, 503] },
    { error: 'closed', answer: '503 whatever the status option', status: [503, 503] },
    // No wait admits it: a bug or a wrong setting.
    { error: 'cost', answer: 'Nest’s own answer', status: [undefined, undefined] },
  ])('$error: $answer', ({ error: name, status, retryAfter }) => {
    const error = errors[name];
    const bodyOf = (option?: 429) =>
      new RateLimitExceptionFilter(undefined, {
        logger: false,
        now: () => NOW,
        ...(option ? { status: option } : {}),
      }).bodyOf(error);
    expect([bodyOf()?.statusCode, bodyOf(429)?.statusCode]).toEqual(status);
    expect(bodyOf()?.retryAfter).toBe(retryAfter);
    if (status[0] !== undefined) expect(bodyOf()).toMatchObject({ provider: 'procore', reason: error.name });
    expect(JSON.stringify(bodyOf() ?? {})).not.toContain(at.key);
  });
});

describe('RateLimitExceptionFilter with no clock given', () => {
  it("tells Retry-After from the limiter's clock, which a step of the wall clock does not move", async () => {
    // The limiter's clock stands at NOW, years from `Date.now()`, as a monotonic clock stands
    // apart from a wall clock stepped since the limiter was made.
    const standing: SchedulerLike = { now: () => NOW, schedule: asyncScheduler.schedule.bind(asyncScheduler) };
    const limiter = createLimiter({ provider: providers.generic(), key: 'k', maxWaitMs: 500, scheduler: standing });
    const spent = { 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '20' };
    await lastValueFrom(of(responseLike(200, spent)).pipe(rateLimit(limiter)));
    const refusal = await lastValueFrom(
      of(responseLike(200, {})).pipe(
        rateLimit(limiter),
        catchError((e: unknown) => of(e)),
      ),
    );
    expect(refusal).toBeInstanceOf(QuotaExhaustedError);
    // The 20 s reset and the limiter's guard after it (before: `resumeAt` against `Date.now()`, 1 s).
    const retryAfter = new RateLimitExceptionFilter(undefined, { logger: false }).bodyOf(refusal)?.retryAfter;
    expect(retryAfter).toBeGreaterThanOrEqual(20);
    expect(retryAfter).toBeLessThanOrEqual(21);
    await limiter.close();
  });
});

describe('RateLimitExceptionFilter with status 429 in a Nest app', () => {
  let app: INestApplication;
  let base = '';

  beforeAll(async () => {
    class Routes {
      poolFull(): never {
        throw errors.poolFull;
      }
      closed(): never {
        throw errors.closed;
      }
      cost(): never {
        throw errors.cost;
      }
    }
    Controller()(Routes);
    for (const name of ['poolFull', 'closed', 'cost'] as const) {
      const descriptor = Object.getOwnPropertyDescriptor(Routes.prototype, name);
      if (descriptor) Get(name)(Routes.prototype, name, descriptor);
    }
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class AppModule {}
    Module({
      controllers: [Routes],
      providers: [
        {
          provide: APP_FILTER,
          useFactory: (host: HttpAdapterHost) =>
            new RateLimitExceptionFilter(host.httpAdapter, { status: 429, logger: false }),
          inject: [HttpAdapterHost],
        },
      ],
    })(AppModule);
    app = await NestFactory.create(AppModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    base = await app.getUrl();
  });
  afterAll(async () => {
    await app.close();
  });

  it('a full limiter pool answers 503, not the 429 of a client over its limit', async () => {
    const res = await fetch(`${base}/poolFull`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ statusCode: 503, reason: 'LimiterPoolFullError', provider: 'procore' });
  });

  it('a closed limiter answers 503 (the service is going away)', async () => {
    const res = await fetch(`${base}/closed`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ statusCode: 503, reason: 'LimiterClosedError' });
  });

  it('CostExceedsLimitError keeps Nest’s own answer: no wait would admit it', async () => {
    const res = await fetch(`${base}/cost`);
    expect(res.status).toBe(500);
    expect(res.headers.get('retry-after')).toBeNull();
    expect(await res.json()).toEqual({ statusCode: 500, message: 'Internal server error' });
  });
});
