import 'reflect-metadata';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { HttpModule, HttpService } from '@nestjs/axios';
import { Controller, Get, Module, type INestApplication } from '@nestjs/common';
import { APP_FILTER, HttpAdapterHost, NestFactory } from '@nestjs/core';
import { firstValueFrom } from 'rxjs';
import { BlockedError, QuotaExhaustedError } from '../../lib/index.js';
import { RateLimitExceptionFilter } from '../../lib/adapters/nestjs.js';
import { startSimulator, type Simulator } from '../../lib/testing/index.js';

// A real Nest HTTP app (express, real sockets) whose routes fail the way calls through the
// limiter do; the filter is registered as users do, with APP_FILTER. No decorator metadata:
// the controller's decorators are applied as functions.

const TOKEN = 'secret-token-filter-0123456789';

describe('RateLimitExceptionFilter at the HTTP boundary of a Nest app', () => {
  let app: INestApplication;
  let base = '';
  let sim: Simulator;
  const logged: string[] = [];

  beforeAll(async () => {
    sim = await startSimulator({ latencyMs: 2, pipedrive: { plan: 'essential', limit: 1 } });
    class Routes {
      constructor(private readonly http: HttpService) {}
      quota(): never {
        throw new QuotaExhaustedError({
          provider: 'pipedrive',
          key: 'key_x',
          bucket: 'daily',
          resumeAt: Date.now() + 90_000,
          waitMs: 90_000,
          maxWaitMs: 60_000,
        });
      }
      blocked(): never {
        throw new BlockedError({ provider: 'pipedrive', key: 'key_x', status: 403, until: null });
      }
      async upstream(): Promise<unknown> {
        // Two calls in a window of one: the second is the API's own 429, reaching the route.
        const url = `${sim.urlFor('pipedrive')}/v1/deals`;
        const call = () => firstValueFrom(this.http.get(url, { headers: { 'x-api-token': TOKEN } }));
        await call();
        return (await call()).data;
      }
      other(): never {
        throw new Error('something else');
      }
    }
    Controller()(Routes);
    for (const name of ['quota', 'blocked', 'upstream', 'other'] as const) {
      const descriptor = Object.getOwnPropertyDescriptor(Routes.prototype, name);
      if (descriptor) Get(name)(Routes.prototype, name, descriptor);
    }
    Reflect.defineMetadata('design:paramtypes', [HttpService], Routes);

    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class AppModule {}
    Module({
      imports: [HttpModule],
      controllers: [Routes],
      providers: [
        {
          provide: APP_FILTER,
          useFactory: (host: HttpAdapterHost) =>
            new RateLimitExceptionFilter(host.httpAdapter, { logger: { warn: (m: string) => logged.push(m) } }),
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
    await sim.close();
  });

  it('QuotaExhaustedError → 503 with Retry-After from resumeAt and a body that names the provider, not the key', async () => {
    const res = await fetch(`${base}/quota`);
    expect(res.status).toBe(503);
    const after = Number(res.headers.get('retry-after'));
    expect(after).toBeGreaterThanOrEqual(85);
    expect(after).toBeLessThanOrEqual(90);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      statusCode: 503,
      reason: 'QuotaExhaustedError',
      provider: 'pipedrive',
      retryAfter: after,
    });
    expect(JSON.stringify(body)).not.toContain('key_x');
  });

  it('BlockedError → 503 without Retry-After when the block has no end', async () => {
    const res = await fetch(`${base}/blocked`);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeNull();
    expect(await res.json()).toMatchObject({ reason: 'BlockedError', provider: 'pipedrive' });
  });

  it("the upstream API's own 429 (an AxiosError) → 503 with its Retry-After; the token is in no answer and no log line", async () => {
    const res = await fetch(`${base}/upstream`);
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ reason: 'UpstreamRateLimited' });
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(text).not.toContain(TOKEN);
    expect(logged.join('\n')).not.toContain(TOKEN);
    expect(logged.some((l) => l.includes('UpstreamRateLimited'))).toBe(true);
  });

  it('any other exception keeps Nest’s default answer', async () => {
    const res = await fetch(`${base}/other`);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ statusCode: 500, message: 'Internal server error' });
  });
});
