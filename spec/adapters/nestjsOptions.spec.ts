import 'reflect-metadata';

import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from '@jest/globals';
import { HttpModule, HttpService } from '@nestjs/axios';
import { Logger, Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import axios from 'axios';
import { createLimiter, createLimiterPool, providers, type Limiter } from '../../lib/index.js';
import {
  getLimiterToken,
  getRateLimitedHttpToken,
  LimiterRegistry,
  RateLimitExceptionFilter,
  RateLimitModule,
  rateLimitedHttp,
  tenantHttp,
  type RateLimitedHttp,
  type RateLimitModuleOptions,
  type TenantHttp,
} from '../../lib/adapters/nestjs.js';

// Every options object of rx-ratelimit/nestjs refuses a name it does not know, with one
// TypeError naming every bad option: a misspelt one would otherwise leave its setting at the
// default (`global: true`, `maxRetry: 3`) or register nothing (`limiter: {…}`) without a word.

const SECRET = 'options-secret-token-0123456789abcdef';
const pd = () => ({ provider: providers.pipedrive({ plan: 'advanced' }), key: SECRET });
/** The TypeError `fn` throws (or the error of the promise it returns). */
const thrown = async (fn: () => unknown): Promise<TypeError> => {
  try {
    await fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    // Names only: never a key's value.
    expect(inspect(error)).not.toContain(SECRET);
    return error as TypeError;
  }
  throw new Error('did not throw');
};
/** Compiles a testing module of `imports` and closes it; what `get` returned before. */
async function boot<T>(
  imports: NonNullable<DynamicModule['imports']>,
  get: (m: { get: (t: unknown) => unknown }) => T,
) {
  const moduleRef = await Test.createTestingModule({ imports }).compile();
  try {
    return get({ get: (t) => moduleRef.get(t as string, { strict: false }) });
  } finally {
    await moduleRef.close();
  }
}

describe('RateLimitModule.forRoot: an unknown option fails when the module is declared', () => {
  it('a misspelt name: named', async () => {
    const error = await thrown(() => RateLimitModule.forRoot({ limiter: { pd: pd() } } as never));
    expect(error.message).toBe('RateLimitModule.forRoot: unknown option `limiter`');
  });

  it('every bad option in one error: unknown names and bad values', async () => {
    const error = await thrown(() =>
      RateLimitModule.forRoot({ global: true, isGlobal: 'yes', limiters: [pd()], limiterName: ['pd'] } as never),
    );
    expect(error.message).toMatch(/^RateLimitModule\.forRoot: /);
    for (const part of [
      /unknown option `global`, `limiterName`/,
      /option `isGlobal` must be of type boolean/,
      /option `limiters` must be an object of limiters or limiter options by name, got an array/,
    ])
      expect(error.message).toMatch(part);
  });

  it("a limiter's options are createLimiter's: a misspelt one fails at bootstrap, naming the limiter", async () => {
    const error = await thrown(() =>
      boot([RateLimitModule.forRoot({ limiters: { pd: { ...pd(), maxQueu: 5 } as never } })], () => undefined),
    );
    expect(error.message).toMatch(/^RateLimitModule: limiter "pd": .*unknown option `maxQueu`/);
  });

  it("a pool's options are createLimiterPool's: a misspelt one fails at bootstrap, naming the pool", async () => {
    const pools = { tenants: { provider: providers.generic(), idleMS: 1000 } as never };
    const error = await thrown(() => boot([RateLimitModule.forRoot({ pools })], () => undefined));
    expect(error.message).toMatch(/^RateLimitModule: pool "tenants": .*unknown option `idleMS`/);
  });
});

describe('RateLimitModule.forRootAsync: unknown options, its own and in what its factory returns', () => {
  it('a misspelt name of its own fails when the module is declared', async () => {
    const error = await thrown(() =>
      RateLimitModule.forRootAsync({ useFactroy: () => ({ limiters: { pd: pd() } }), limiterNames: ['pd'] } as never),
    );
    expect(error.message).toBe('RateLimitModule.forRootAsync: unknown option `useFactroy`');
  });

  it('a misspelt name in what the factory returns fails at bootstrap', async () => {
    const module = RateLimitModule.forRootAsync({
      useFactory: () => ({ limiter: { pd: pd() } }) as RateLimitModuleOptions,
    });
    const error = await thrown(() => boot([module], () => undefined));
    expect(error.message).toBe('RateLimitModule: unknown option `limiter`');
  });

  it('isGlobal returned by the factory, where it does nothing: says where it goes', async () => {
    const module = RateLimitModule.forRootAsync({
      useFactory: () => ({ limiters: { pd: pd() }, isGlobal: true }) as RateLimitModuleOptions,
    });
    const error = await thrown(() => boot([module], () => undefined));
    expect(error.message).toMatch(/option `isGlobal` must be given to forRootAsync itself, beside `useFactory`/);
  });
});

describe('RateLimitModule.forFeature and the paced HttpService: unknown settings', () => {
  const http = new HttpService(axios.create());
  const limiter: Limiter = createLimiter({ provider: providers.generic(), key: 'options-spec' });
  const pool = createLimiterPool({ provider: providers.generic() });
  const registry = new LimiterRegistry({ limiters: { one: limiter }, pools: { many: pool } });
  afterAll(async () => {
    await Promise.all([limiter.close(), pool.close()]);
  });

  it('forFeature: a misspelt option of its own, and of httpOptions, in one error', async () => {
    const error = await thrown(() =>
      RateLimitModule.forFeature(['one'], {
        htp: HttpService,
        httpOptions: { maxRetry: 3, reserve: -5 },
      } as never),
    );
    expect(error.message).toMatch(/^RateLimitModule\.forFeature: /);
    expect(error.message).toContain('unknown option `htp`');
    expect(error.message).toContain('httpOptions: unknown option `maxRetry`');
    expect(error.message).toContain('`reserve` must be a whole number >= 0, got -5');
  });

  it.each<[string, () => unknown, RegExp]>([
    ['rateLimitedHttp', () => rateLimitedHttp(http, limiter, { maxRetry: 3 } as never), /^rateLimitedHttp: /],
    ['registry.http', () => registry.http(http, 'one', { maxRetry: 3 } as never), /^rateLimitedHttp: /],
    ['tenantHttp', () => tenantHttp(http, pool, { maxRetry: 3 } as never), /^tenantHttp: /],
    ['registry.tenantHttp', () => registry.tenantHttp(http, 'many', { maxRetry: 3 } as never), /^tenantHttp: /],
    [
      'forFeature httpOptions',
      () => RateLimitModule.forFeature(['one'], { http: HttpService, httpOptions: { maxRetry: 3 } as never }),
      /^RateLimitModule\.forFeature: httpOptions: /,
    ],
  ])('%s: a misspelt setting is named', async (_, make, where) => {
    const error = await thrown(make);
    expect(error.message).toMatch(where);
    expect(error.message).toContain('unknown option `maxRetry`');
  });

  it("`key` is a pool's setting: refused for one limiter, taken for a pool and by forFeature for either", async () => {
    const key = () => 'k';
    expect((await thrown(() => rateLimitedHttp(http, limiter, { key } as never))).message).toBe(
      'rateLimitedHttp: unknown option `key`',
    );
    expect(() => tenantHttp(http, pool, { key })).not.toThrow();
    const got = await boot(
      [
        RateLimitModule.forRoot({
          isGlobal: true,
          limiters: { one: { provider: providers.generic(), key: 'options-spec-2' } },
          pools: { many: { provider: providers.generic() } },
        }),
        RateLimitModule.forFeature(['one', 'many'], {
          imports: [HttpModule],
          http: HttpService,
          httpOptions: { key, maxRetries: 1 },
        }),
      ],
      (m) => [m.get(getRateLimitedHttpToken('one')), m.get(getRateLimitedHttpToken('many'))],
    );
    expect((got[0] as RateLimitedHttp).limiter).toBeDefined();
    expect((got[1] as TenantHttp).pool).toBeDefined();
  });

  it('every bad setting in one error', async () => {
    const error = await thrown(() => rateLimitedHttp(http, limiter, { maxRetry: 3, priority: Number.NaN } as never));
    expect(error.message).toMatch(
      /^rateLimitedHttp: unknown option `maxRetry`; option `priority` must be a finite number/,
    );
  });
});

describe('LimiterRegistry and RateLimitExceptionFilter: unknown options', () => {
  it('the registry names a misspelt option', async () => {
    const error = await thrown(() => new LimiterRegistry({ pool: {} } as never));
    expect(error.message).toBe('RateLimitModule: unknown option `pool`');
  });

  it('the filter names every bad option; `status` as before', async () => {
    const error = await thrown(
      () => new RateLimitExceptionFilter(undefined, { statusCode: 429, logger: 'yes' } as never),
    );
    expect(error.message).toMatch(/^RateLimitExceptionFilter: /);
    expect(error.message).toContain('unknown option `statusCode`');
    expect(error.message).toContain('option `logger` must be a logger with a `warn` method, or false, got "yes"');
    expect((await thrown(() => new RateLimitExceptionFilter(undefined, { status: 500 } as never))).message).toBe(
      'RateLimitExceptionFilter: option `status` must be 429 or 503, got 500',
    );
  });
});

describe('docs/nestjs.md: the documented registrations still work', () => {
  it('forRoot with limiters, isGlobal and limiter options (maxWaitMs)', async () => {
    const limiter = await boot(
      [
        HttpModule,
        RateLimitModule.forRoot({
          isGlobal: true,
          limiters: {
            pipedrive: pd(),
            procore: { provider: providers.procore(), key: `${SECRET}-procore`, maxWaitMs: 60_000 },
          },
        }),
      ],
      (m) => m.get(getLimiterToken('procore')),
    );
    expect(limiter).toBeDefined();
  });

  it('forFeature with imports, http and httpOptions under a global forRoot', async () => {
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class DealsModule {}
    Module({
      imports: [
        RateLimitModule.forFeature(['pipedrive'], {
          imports: [HttpModule.register({ baseURL: 'https://api.pipedrive.com' })],
          http: HttpService,
          httpOptions: { maxRetries: 3 },
        }),
      ],
    })(DealsModule);
    const api = await boot(
      [RateLimitModule.forRoot({ isGlobal: true, limiters: { pipedrive: pd() } }), DealsModule],
      (m) => m.get(getRateLimitedHttpToken('pipedrive')),
    );
    expect((api as RateLimitedHttp).limiter).toBeDefined();
  });

  it('forRootAsync with imports, inject, useFactory, limiterNames and isGlobal; and with useClass', async () => {
    const SECRETS = 'SECRETS';
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class SecretsModule {}
    Module({ providers: [{ provide: SECRETS, useValue: { pipedriveToken: SECRET } }], exports: [SECRETS] })(
      SecretsModule,
    );
    const byFactory = RateLimitModule.forRootAsync({
      imports: [SecretsModule],
      inject: [SECRETS],
      useFactory: (secrets: { pipedriveToken: string }): RateLimitModuleOptions => ({
        limiters: { pipedrive: { provider: providers.pipedrive({ plan: 'advanced' }), key: secrets.pipedriveToken } },
      }),
      limiterNames: ['pipedrive'],
      isGlobal: true,
    });
    expect(await boot([byFactory], (m) => m.get(getLimiterToken('pipedrive')))).toBeDefined();
    class Options {
      create(): RateLimitModuleOptions {
        return { limiters: { procore: { provider: providers.procore(), key: `${SECRET}-procore` } } };
      }
    }
    const byClass = RateLimitModule.forRootAsync({ useClass: Options, limiterNames: ['procore'] });
    expect(await boot([byClass], (m) => m.get(getLimiterToken('procore')))).toBeDefined();
  });

  it('pools with idleMs and max, and registry.http / registry.tenantHttp with their settings', async () => {
    const [api, tenants] = await boot(
      [
        HttpModule,
        RateLimitModule.forRoot({
          isGlobal: true,
          limiters: { pipedrive: pd() },
          pools: { tenants: { provider: providers.pipedrive({ plan: 'advanced' }), idleMs: 300_000, max: 50_000 } },
        }),
      ],
      (m) => {
        const registry = m.get(LimiterRegistry) as LimiterRegistry;
        const http = m.get(HttpService) as HttpService;
        return [registry.http(http, 'pipedrive', { maxRetries: 3 }), registry.tenantHttp(http, 'tenants')] as const;
      },
    );
    expect([api.limiter, tenants.pool]).toEqual([expect.anything(), expect.anything()]);
  });

  it('the exception filter as a class under APP_FILTER: Nest makes it with no options', async () => {
    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class AppModule {}
    Module({ providers: [{ provide: APP_FILTER, useClass: RateLimitExceptionFilter }] })(AppModule);
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    await app.close();
  });

  it('the exception filter with { status: 429 } and with a logger', () => {
    expect(() => new RateLimitExceptionFilter(undefined, { status: 429 })).not.toThrow();
    expect(
      () => new RateLimitExceptionFilter(undefined, { logger: { warn: () => undefined }, now: Date.now }),
    ).not.toThrow();
    expect(() => new RateLimitExceptionFilter()).not.toThrow();
    // Nest's own Logger class, whose `warn` is static.
    expect(() => new RateLimitExceptionFilter(undefined, { logger: Logger })).not.toThrow();
  });
});
