import 'reflect-metadata';

import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { HttpModule, HttpService } from '@nestjs/axios';
import axios, { isAxiosError, type AxiosResponse } from 'axios';
import { Module } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import {
  firstValueFrom,
  from,
  lastValueFrom,
  mergeMap,
  NEVER,
  of,
  take,
  throwError,
  toArray,
  type Observable,
} from 'rxjs';
import { createLimiter, defineProvider, providers, type Limiter, type LimiterSnapshot } from '../../lib/index.js';
import {
  getLimiterToken,
  InjectLimiter,
  LimiterRegistry,
  RATE_LIMIT_MODULE_OPTIONS,
  RateLimitModule,
  rateLimitedHttp,
  type RateLimitedHttp,
  type RateLimitModuleOptions,
} from '../../lib/adapters/nestjs.js';
import { attachRateLimiter } from '../../lib/adapters/axios.js';
import { startSimulator, type Simulator } from '../../lib/testing/index.js';
import {
  fixedWindowApi,
  pacingReport,
  startTestServer,
  type FixedWindowApi,
  type TestServer,
} from '../helpers/server.js';

// Real Nest DI (`@nestjs/testing`), real `@nestjs/axios` HttpService, real sockets to the
// provider simulator on loopback. No decorator metadata: providers are factories.

/** A service as an app would write it: syncs deals through the rate-limited HttpService. */
class DealsSync {
  readonly api: RateLimitedHttp;
  constructor(
    http: HttpService,
    registry: LimiterRegistry,
    private readonly baseUrl: string,
  ) {
    this.api = registry.http(http, 'pipedrive');
  }

  /** Fetches `count` deals, `concurrency` at a time; resolves with every status. */
  fetchAll(count: number, concurrency: number): Promise<number[]> {
    return lastValueFrom(
      from(Array.from({ length: count }, (_, i) => i)).pipe(
        mergeMap(
          (i) =>
            this.api
              .get<{ success: boolean }>(`${this.baseUrl}/v1/deals/${i}`, { params: { api_token: 'token-N' } })
              .pipe(mergeMap(async (res) => res.status)),
          concurrency,
        ),
        toArray(),
      ),
    );
  }
}

const countsOf = (sim: Simulator, provider: 'pipedrive' | 'procore') => Object.values(sim.stats()[provider]);

describe('rx-ratelimit/nestjs with @nestjs/axios against the simulator', () => {
  // Pipedrive in real time (40 requests per 2 s); Procore's hour compressed to 2 s.
  let sim: Simulator;
  let procoreSim: Simulator;
  let moduleRef: TestingModule | undefined;

  beforeAll(async () => {
    sim = await startSimulator({ latencyMs: 2, pipedrive: { plan: 'advanced' } });
    procoreSim = await startSimulator({ latencyMs: 2, timeScale: 1800, procore: { limit: 40 } });
  });
  afterEach(async () => {
    await moduleRef?.close();
    moduleRef = undefined;
  });
  afterAll(async () => {
    await sim.close();
    await procoreSim.close();
  });

  it('forRoot: 120 calls from a service, 30 at a time, all succeed with zero 429s', async () => {
    moduleRef = await Test.createTestingModule({
      imports: [
        HttpModule,
        RateLimitModule.forRoot({
          limiters: { pipedrive: { provider: providers.pipedrive({ plan: 'advanced' }), key: 'token-N' } },
        }),
      ],
      providers: [
        {
          provide: DealsSync,
          useFactory: (http: HttpService, registry: LimiterRegistry) =>
            new DealsSync(http, registry, sim.urlFor('pipedrive')),
          inject: [HttpService, LimiterRegistry],
        },
      ],
    }).compile();

    const sync = moduleRef.get(DealsSync);
    const started = Date.now();
    const statuses = await sync.fetchAll(120, 30);
    const elapsed = Date.now() - started;

    expect(statuses).toHaveLength(120);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const counts = countsOf(sim, 'pipedrive');
    expect(counts).toHaveLength(1);
    expect(counts[0]).toMatchObject({ ok: 120, limited: 0, blocked: 0, sentWhileLimited: 0 });
    // Never faster than the limits allow: 3 windows of 40 take at least 4 s from the first request. (How near
    // to 4 s is the benchmark's figure; in real time an upper bound would measure how busy the machine is.)
    expect(elapsed).toBeGreaterThanOrEqual(3900);

    // The limiter injected by name is the one the service used; its state is in the registry.
    const limiter = moduleRef.get<Limiter>(getLimiterToken('pipedrive'));
    expect(limiter).toBe(moduleRef.get(LimiterRegistry).get('pipedrive'));
    expect(sync.api.limiter).toBe(limiter);
    const snap = moduleRef.get(LimiterRegistry).snapshot()['pipedrive'];
    expect(snap?.provider).toBe(limiter.provider.name);
    expect(snap?.totals).toMatchObject({ sent: 120, rateLimited: 0 });
    expect(snap?.buckets.some((b) => b.limit === 40 && b.source !== 'hint')).toBe(true);
  }, 30_000);

  it('forRootAsync: a factory with inject and imports, global, limiters by name, state$ through the registry', async () => {
    const PROCORE_TOKEN = 'PROCORE_TOKEN';
    @Module({ providers: [{ provide: PROCORE_TOKEN, useValue: 'token-P' }], exports: [PROCORE_TOKEN] })
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class ConfigModule {}

    const shared = createLimiter({
      provider: providers.procore({ hints: { hourly: { limit: 40, windowMs: 2000 } } }),
      key: 'token-P',
    });
    moduleRef = await Test.createTestingModule({
      imports: [
        HttpModule.register({ baseURL: procoreSim.urlFor('procore'), headers: { authorization: 'Bearer token-P' } }),
        RateLimitModule.forRootAsync({
          imports: [ConfigModule],
          inject: [PROCORE_TOKEN],
          useFactory: async (token: string): Promise<RateLimitModuleOptions> => {
            await Promise.resolve();
            expect(token).toBe('token-P');
            return { limiters: { procore: shared, spare: { provider: providers.generic(), key: 'spare' } } };
          },
          limiterNames: ['procore'],
          isGlobal: true,
        }),
      ],
      providers: [
        {
          provide: 'PROCORE_HTTP',
          useFactory: (http: HttpService, limiter: Limiter) => rateLimitedHttp(http, limiter, { maxRetries: 2 }),
          inject: [HttpService, getLimiterToken('procore')],
        },
      ],
    }).compile();

    const registry = moduleRef.get(LimiterRegistry);
    expect(registry.names()).toEqual(['procore', 'spare']);
    expect(moduleRef.get(getLimiterToken('procore'))).toBe(shared);
    expect(registry.get('spare').provider.name).toBe(providers.generic().name);
    expect(() => moduleRef?.get(getLimiterToken('spare'))).toThrow();
    expect(() => registry.get('nope')).toThrow(/no limiter named "nope" \(registered: "procore", "spare"\)/);
    expect(moduleRef.get<{ limiters: object }>(RATE_LIMIT_MODULE_OPTIONS).limiters).toHaveProperty('procore');

    const seen: Array<Record<string, LimiterSnapshot>> = [];
    const watching = registry.snapshot$().subscribe((s) => seen.push(s));
    const api = moduleRef.get<RateLimitedHttp>('PROCORE_HTTP');
    const statuses = await lastValueFrom(
      from(Array.from({ length: 100 }, (_, i) => i)).pipe(
        mergeMap((i) => api.get(`/rest/v1.0/projects/${i}`).pipe(mergeMap(async (r) => r.status)), 25),
        toArray(),
      ),
    );
    watching.unsubscribe();

    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(countsOf(procoreSim, 'procore')[0]).toMatchObject({ ok: 100, limited: 0, blocked: 0 });
    expect(Object.keys(seen[0] ?? {})).toEqual(['procore', 'spare']);
    expect(seen.length).toBeGreaterThan(10);
    const sentSeen = new Set(seen.map((s) => s['procore']?.totals.sent));
    expect(sentSeen.size).toBeGreaterThan(10); // the state moved while the requests flowed
    const last = await firstValueFrom(registry.snapshot$().pipe(take(1)));
    expect(last['procore']?.totals).toMatchObject({ sent: 100, rateLimited: 0 });
  }, 30_000);

  it('global: a feature module injects limiters by name without importing the module', async () => {
    const seenBy: string[] = [];
    @Module({
      providers: [
        {
          provide: 'FEATURE',
          useFactory: (limiter: Limiter, registry: LimiterRegistry) => {
            seenBy.push(limiter.key, ...registry.names());
            return limiter;
          },
          inject: [getLimiterToken('a'), LimiterRegistry],
        },
      ],
    })
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class FeatureModule {}

    moduleRef = await Test.createTestingModule({
      imports: [
        RateLimitModule.forRoot({
          isGlobal: true,
          limiters: { a: { provider: providers.generic(), key: 'k', label: 'a' } },
        }),
        FeatureModule,
      ],
    }).compile();
    expect(seenBy).toEqual(['a', 'a']);
  });

  it('not global by default: a feature module that does not import it cannot resolve a limiter', async () => {
    @Module({
      providers: [{ provide: 'FEATURE', useFactory: (l: Limiter) => l, inject: [getLimiterToken('a')] }],
    })
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class FeatureModule {}
    await expect(
      Test.createTestingModule({
        imports: [
          RateLimitModule.forRoot({ limiters: { a: { provider: providers.generic(), key: 'k' } } }),
          FeatureModule,
        ],
      }).compile(),
    ).rejects.toThrow(/rx-ratelimit:limiter:a/);
  });

  it('a bad limiter option fails at bootstrap with a TypeError naming the limiter', async () => {
    await expect(
      Test.createTestingModule({
        imports: [
          RateLimitModule.forRoot({
            limiters: { broken: { provider: providers.generic(), key: 'k', maxWaitMs: -1 } },
          }),
        ],
      }).compile(),
    ).rejects.toThrow(/RateLimitModule: limiter "broken": .*maxWaitMs/);
  });

  it('works with a mocked HttpService (no axios instance), as in unit tests', async () => {
    const calls: unknown[][] = [];
    const response = { status: 200, statusText: 'OK', headers: { 'x-ratelimit-remaining': '9' }, data: 1, config: {} };
    const mock = {
      get: (...args: unknown[]): Observable<unknown> => {
        calls.push(args);
        return of(response);
      },
    } as unknown as HttpService;
    const limiter = createLimiter({ provider: providers.generic(), key: 'mock' });
    const res = await firstValueFrom(rateLimitedHttp(mock, limiter).get('/v1/x', { headers: { a: 'b' } }));
    expect(res.data).toBe(1);
    expect(calls).toEqual([['/v1/x', { headers: { a: 'b' }, rateLimit: { skip: true } }]]);
  });

  it('gives the limiter the cost of config.rateLimit.cost', async () => {
    const response = { status: 200, statusText: 'OK', headers: {}, data: 1, config: {} };
    const mock = { post: () => of(response), get: () => of(response) } as unknown as HttpService;
    const costs: unknown[] = [];
    const limiter = createLimiter({
      provider: defineProvider({
        name: 'costs',
        buckets: (req) => {
          costs.push(req.cost);
          return [];
        },
        read: () => ({ outcome: 'ok', buckets: [] }),
      }),
      key: 'nest-costs',
    });
    costs.length = 0; // made, the limiter read the provider's rules for a plain GET and POST
    const api = rateLimitedHttp(mock, limiter);
    await firstValueFrom(api.post('/graphql', {}, { rateLimit: { cost: 5 } }));
    await firstValueFrom(api.get('/x', { rateLimit: { cost: { default: 2 } } }));
    await firstValueFrom(api.get('/y'));
    expect([...new Set(costs.map((c) => JSON.stringify(c)))]).toEqual(['5', '{"default":2}', undefined]);
    await limiter.close();
  });

  it('an AbortSignal removes a queued request: it goes to HttpService only to end with its cancel error', async () => {
    const sent: Array<AbortSignal | undefined> = [];
    const mock = {
      get: (_url: string, config: { signal?: AbortSignal }): Observable<unknown> => {
        sent.push(config.signal);
        // Like axios: an aborted signal fails at once; otherwise the first request hangs.
        return config.signal?.aborted ? throwError(() => new Error('canceled')) : NEVER;
      },
    } as unknown as HttpService;
    // Cold start: the second request waits for the first response, which never comes.
    const limiter = createLimiter({ provider: providers.generic(), key: 'abort' });
    const api = rateLimitedHttp(mock, limiter);
    const first = api.get('/a').subscribe();
    const controller = new AbortController();
    const second = firstValueFrom(api.get('/b', { signal: controller.signal })).catch((e: Error) => e.message);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(sent).toHaveLength(1);
    expect(limiter.snapshot.queued).toBe(1);
    controller.abort();
    expect(await second).toBe('canceled');
    expect(sent).toHaveLength(2);
    expect(sent[1]?.aborted).toBe(true);
    expect(limiter.snapshot.queued).toBe(0);
    first.unsubscribe();
  });

  it('an axios CancelToken removes a queued request as a signal does', async () => {
    const sent: Array<{ reason?: unknown } | undefined> = [];
    const mock = {
      get: (_url: string, config: { cancelToken?: { reason?: unknown } }): Observable<unknown> => {
        sent.push(config.cancelToken);
        // Like axios: a cancelled token fails at once; otherwise the first request hangs.
        return config.cancelToken?.reason ? throwError(() => new Error('canceled')) : NEVER;
      },
    } as unknown as HttpService;
    const limiter = createLimiter({ provider: providers.generic(), key: 'cancel-token' });
    const api = rateLimitedHttp(mock, limiter);
    const first = api.get('/a').subscribe();
    const source = axios.CancelToken.source();
    const second = firstValueFrom(api.get('/b', { cancelToken: source.token })).catch((e: Error) => e.message);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(limiter.snapshot.queued).toBe(1);
    source.cancel();
    expect(await second).toBe('canceled');
    expect(sent).toHaveLength(2);
    expect(limiter.snapshot.queued).toBe(0);
    first.unsubscribe();
  });

  it('InjectLimiter is Inject(getLimiterToken(name))', () => {
    expect(typeof InjectLimiter('x')).toBe('function');
    expect(getLimiterToken('x')).toBe('rx-ratelimit:limiter:x');
  });
});

describe('HttpService whose axios instance has other interceptors', () => {
  let server: TestServer | undefined;
  let api: FixedWindowApi | undefined;
  let moduleRef: TestingModule | undefined;
  afterEach(async () => {
    api?.dispose();
    await server?.close();
    await moduleRef?.close();
    server = undefined;
    api = undefined;
    moduleRef = undefined;
  });

  const start = async (opts: Parameters<typeof fixedWindowApi>[0]) => {
    api = fixedWindowApi(opts);
    server = await startTestServer(api);
    // `register` gives the service its own axios instance (plain `HttpModule` shares axios's default one).
    moduleRef = await Test.createTestingModule({ imports: [HttpModule.register({})] }).compile();
    return { server, http: moduleRef.get(HttpService) };
  };
  /** Like an SDK: resolve with the body only, reject with the error's body only. */
  const replaceWithBodies = (http: HttpService) =>
    http.axiosRef.interceptors.response.use(
      (response) => response.data as AxiosResponse,
      (error: unknown) => Promise.reject((isAxiosError(error) && error.response?.data) || error),
    );
  const twenty = <T>(call: (i: number) => Observable<T>) =>
    lastValueFrom(
      from(Array.from({ length: 20 }, (_, i) => i)).pipe(
        mergeMap((i) => call(i)),
        toArray(),
      ),
    );
  const expectPaced = (s: TestServer, limiter: Limiter) => {
    expect({
      count: s.requests.length,
      non200: s.requests.filter((r) => r.status !== 200).length,
      over: pacingReport(s.requests, 5, 1000).over,
    }).toEqual({ count: 20, non200: 0, over: [] });
    expect(limiter.snapshot).toMatchObject({ inFlight: 0, queued: 0 });
  };
  const generic = () => providers.generic({ resetUnit: 'unix-seconds' });

  it.each([
    ['before', true],
    ['after', false],
  ])(
    'attachRateLimiter on axiosRef with a body-replacing interceptor registered %s it: 20 calls paced, none hangs',
    async (_, first) => {
      const { server: s, http } = await start({ limit: 5, windowMs: 1000 });
      const limiter = createLimiter({ provider: generic(), key: 'nest-a' });
      if (first) replaceWithBodies(http);
      attachRateLimiter(http.axiosRef, limiter);
      if (!first) replaceWithBodies(http);

      const bodies = await twenty((i) => http.get(`${s.url}/items/${i}`));

      expect(bodies).toEqual(Array(20).fill(expect.objectContaining({ ok: true })));
      expectPaced(s, limiter);
    },
  );

  it('rateLimitedHttp with a body-replacing interceptor: 20 calls paced, none hangs, a 429 retried', async () => {
    const { server: s, http } = await start({
      limit: 5,
      windowMs: 1000,
      override: (r) =>
        r.n === 1 ? { status: 429, headers: { 'Retry-After': '1' }, body: { error: 'slow' } } : undefined,
    });
    const limiter = createLimiter({ provider: generic(), key: 'nest-b' });
    replaceWithBodies(http);
    const paced = rateLimitedHttp(http, limiter);

    const bodies = await twenty((i) => paced.get(`${s.url}/items/${i}`));

    expect(bodies).toEqual(Array(20).fill(expect.objectContaining({ ok: true })));
    expect(s.requests[0]?.status).toBe(429);
    expect(s.requests.filter((r) => r.status === 429)).toHaveLength(1);
    expect(pacingReport(s.requests.slice(1), 5, 1000).over).toEqual([]);
    expect(limiter.snapshot).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it('rateLimit.idempotencyKey is sent as the Idempotency-Key header on every attempt', async () => {
    const { server: s, http } = await start({
      limit: 100,
      windowMs: 1000,
      override: (r) => (r.n === 1 ? { status: 429, headers: { 'Retry-After': '1' } } : undefined),
    });
    const paced = rateLimitedHttp(http, createLimiter({ provider: generic(), key: 'nest-c' }));

    await firstValueFrom(paced.post(`${s.url}/deals`, { a: 1 }, { rateLimit: { idempotencyKey: 'deal-9' } }));

    expect(s.requests.map((r) => [r.status, r.idempotencyKey])).toEqual([
      [429, 'deal-9'],
      [200, 'deal-9'],
    ]);
  });
});
