import 'reflect-metadata';

import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { HttpModule, HttpService } from '@nestjs/axios';
import { Module } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import { isDuplicateLimiterError, providers, type Limiter } from '../../lib/index.js';
import {
  getLimiterToken,
  getRateLimitedHttpToken,
  LimiterRegistry,
  RateLimitModule,
  type RateLimitedHttp,
} from '../../lib/adapters/nestjs.js';
import { redisStore } from '../../lib/stores/redis/index.js';
import { credentialLabel, startSimulator, type Simulator } from '../../lib/testing/index.js';
import { REDIS } from '../helpers/redis.js';

// Module layouts as NestJS apps write them: real DI (@nestjs/testing), real HttpService, the
// Pipedrive simulator over loopback sockets, a real Redis for the shutdown test.

const pipedrive = () => providers.pipedrive({ plan: 'advanced' });

/** GETs `count` deals through `api`, `concurrency` at a time; resolves with the statuses. */
function fetchDeals(api: RateLimitedHttp, url: string, token: string, count: number, concurrency: number, first = 0) {
  return lastValueFrom(
    from(Array.from({ length: count }, (_, i) => first + i)).pipe(
      mergeMap(
        (i) =>
          api
            .get(`${url}/v1/deals/${i}`, { params: { api_token: token }, validateStatus: () => true })
            .pipe(mergeMap(async (res) => res.status)),
        concurrency,
      ),
      toArray(),
    ),
  );
}

describe('NestJS module layouts: one limiter per provider and token', () => {
  let sim: Simulator;
  let moduleRef: TestingModule | undefined;

  beforeAll(async () => {
    sim = await startSimulator({ latencyMs: 2, pipedrive: { plan: 'advanced' } });
  });
  afterEach(async () => {
    await moduleRef?.close();
    moduleRef = undefined;
  });
  afterAll(async () => {
    await sim.close();
  });

  it('two feature modules that each call forRoot for one token share one limiter: 80 concurrent calls, 0 × 429', async () => {
    const token = 'token-two-forRoots';
    const register = () => RateLimitModule.forRoot({ limiters: { pipedrive: { provider: pipedrive(), key: token } } });
    @Module({
      imports: [HttpModule, register()],
      providers: [
        {
          provide: 'A',
          useFactory: (h: HttpService, r: LimiterRegistry) => r.http(h, 'pipedrive'),
          inject: [HttpService, LimiterRegistry],
        },
      ],
      exports: ['A'],
    })
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class FeatureA {}
    @Module({
      imports: [HttpModule, register()],
      providers: [
        {
          provide: 'B',
          useFactory: (h: HttpService, r: LimiterRegistry) => r.http(h, 'pipedrive'),
          inject: [HttpService, LimiterRegistry],
        },
      ],
      exports: ['B'],
    })
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class FeatureB {}
    moduleRef = await Test.createTestingModule({ imports: [FeatureA, FeatureB] }).compile();
    const a = moduleRef.get<RateLimitedHttp>('A');
    const b = moduleRef.get<RateLimitedHttp>('B');
    expect(a.limiter).toBe(b.limiter);

    const url = sim.urlFor('pipedrive');
    const [sa, sb] = await Promise.all([fetchDeals(a, url, token, 40, 20), fetchDeals(b, url, token, 40, 20, 1000)]);
    expect([...sa, ...sb].filter((s) => s !== 200)).toEqual([]);
    expect(sim.stats().pipedrive[credentialLabel(token)]).toMatchObject({ ok: 80, limited: 0, blocked: 0 });
  }, 30_000);

  it('two forRoot registrations of one token that disagree fail at bootstrap, naming both', async () => {
    const token = 'token-disagree';
    @Module({
      imports: [
        RateLimitModule.forRoot({ limiters: { deals: { provider: pipedrive(), key: token, maxWaitMs: 1000 } } }),
      ],
    })
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class FeatureA {}
    @Module({
      imports: [
        RateLimitModule.forRoot({ limiters: { persons: { provider: pipedrive(), key: token, maxWaitMs: 5000 } } }),
      ],
    })
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class FeatureB {}
    const error = await Test.createTestingModule({ imports: [FeatureA, FeatureB] })
      .compile()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isDuplicateLimiterError(error)).toBe(true);
    expect(String(error)).toMatch(/limiter "deals"/);
    expect(String(error)).toMatch(/limiter "persons"/);
    expect(String(error)).toMatch(/maxWaitMs: 1000/);
    expect(String(error)).not.toContain(token);
  });

  it('a labelSecret that differs between two registrations is named, never shown', async () => {
    const token = 'token-label-secrets';
    const first = 'first-label-secret-0123456789';
    const second = 'second-label-secret-0123456789';
    const register = (labelSecret: string) =>
      RateLimitModule.forRoot({ limiters: { pd: { provider: pipedrive(), key: token, labelSecret } } });
    @Module({ imports: [register(first)] })
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class FeatureA {}
    @Module({ imports: [register(second)] })
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class FeatureB {}
    const error = await Test.createTestingModule({ imports: [FeatureA, FeatureB] })
      .compile()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isDuplicateLimiterError(error)).toBe(true);
    expect(String(error)).toMatch(/labelSecret: key_/);
    for (const secret of [first, second, token]) expect(String(error)).not.toContain(secret);
  });

  it('forFeature: a feature module injects the root limiter and a rate-limited HttpService by name; an unknown name fails at bootstrap', async () => {
    const token = 'token-feature';
    @Module({
      imports: [
        RateLimitModule.forFeature(['pipedrive'], {
          imports: [HttpModule],
          http: HttpService,
          httpOptions: { maxRetries: 2 },
        }),
      ],
      providers: [
        {
          provide: 'DEALS',
          useFactory: (api: RateLimitedHttp, limiter: Limiter) => ({ api, limiter }),
          inject: [getRateLimitedHttpToken('pipedrive'), getLimiterToken('pipedrive')],
        },
      ],
      exports: ['DEALS'],
    })
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class DealsModule {}
    moduleRef = await Test.createTestingModule({
      imports: [
        RateLimitModule.forRoot({ isGlobal: true, limiters: { pipedrive: { provider: pipedrive(), key: token } } }),
        DealsModule,
      ],
    }).compile();
    const deals = moduleRef.get<{ api: RateLimitedHttp; limiter: Limiter }>('DEALS');
    expect(deals.limiter).toBe(moduleRef.get(LimiterRegistry).get('pipedrive'));
    expect(deals.api.limiter).toBe(deals.limiter);
    const statuses = await fetchDeals(deals.api, sim.urlFor('pipedrive'), token, 30, 10);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);

    @Module({ imports: [RateLimitModule.forFeature(['procore'])] })
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class Unknown {}
    await expect(
      Test.createTestingModule({
        imports: [
          RateLimitModule.forRoot({
            isGlobal: true,
            limiters: { pipedrive: { provider: pipedrive(), key: 'token-x' } },
          }),
          Unknown,
        ],
      }).compile(),
    ).rejects.toThrow(/no limiter named "procore" \(registered: "pipedrive"\)/);
  }, 30_000);

  it('app.close() closes what the module opened: no Redis connection of the store is left', async () => {
    const name = `nest-shutdown-${process.pid}-${Date.now()}`;
    const client = new Redis({ ...REDIS, connectionName: name });
    const admin = new Redis(REDIS);
    try {
      const count = async () =>
        ((await admin.call('CLIENT', 'LIST')) as string).split('\n').filter((l) => l.includes(` name=${name} `)).length;
      moduleRef = await Test.createTestingModule({
        imports: [
          RateLimitModule.forRoot({
            limiters: {
              pipedrive: {
                provider: pipedrive(),
                key: 'token-shutdown',
                store: redisStore({ client, secret: 'rx-ratelimit-test-secret', prefix: `${name}:` }),
              },
            },
          }),
        ],
      }).compile();
      const limiter = moduleRef.get(LimiterRegistry).get('pipedrive');
      expect(limiter.snapshot.provider).toBe('pipedrive'); // the store opened its connections with the limiter
      for (let i = 0; i < 50 && (await count()) < 2; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await count()).toBe(2); // yours and the store's pub/sub
      await moduleRef.close();
      moduleRef = undefined;
      for (let i = 0; i < 50 && (await count()) > 1; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await count()).toBe(1); // only yours, which stays yours to close
    } finally {
      client.disconnect();
      admin.disconnect();
    }
  });
});
