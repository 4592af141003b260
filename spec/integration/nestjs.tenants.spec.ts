import 'reflect-metadata';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { HttpModule, HttpService } from '@nestjs/axios';
import { Controller, Get, Headers, Module, Param, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { firstValueFrom } from 'rxjs';
import { providers } from '../../lib/index.js';
import { LimiterRegistry, RateLimitModule, type TenantHttp } from '../../lib/adapters/nestjs.js';
import { credentialLabel, startSimulator, type Simulator } from '../../lib/testing/index.js';

// Many tenants in a real Nest HTTP app (express, real sockets) against the Pipedrive simulator:
// the route reads the tenant from the incoming request's header, looks up its token, and calls
// the API through `tenantHttp`, which paces each call by the pool's limiter for the token it
// carries. No decorator metadata: decorators are applied as functions.

/** The app's tenant directory: tenant id → its Pipedrive token. Tenants are added at runtime. */
const directory = new Map<string, string>([
  ['acme', 'token-acme-0123456789abcdef'],
  ['globex', 'token-globex-0123456789abcdef'],
]);

describe('NestJS: a limiter per tenant, chosen per request', () => {
  let app: INestApplication;
  let base = '';
  let sim: Simulator;

  beforeAll(async () => {
    sim = await startSimulator({ latencyMs: 2, pipedrive: { plan: 'essential' } });
    const url = sim.urlFor('pipedrive');
    class Routes {
      private readonly api: TenantHttp;
      constructor(http: HttpService, registry: LimiterRegistry) {
        this.api = registry.tenantHttp(http, 'pipedrive');
      }
      async deal(tenant: string | undefined, id: string): Promise<{ status: number }> {
        const token = tenant === undefined ? undefined : directory.get(tenant);
        if (token === undefined) return { status: 404 };
        const res = await firstValueFrom(
          this.api.get(`${url}/v1/deals/${id}`, { headers: { 'x-api-token': token }, validateStatus: () => true }),
        );
        return { status: res.status };
      }
    }
    Controller()(Routes);
    const descriptor = Object.getOwnPropertyDescriptor(Routes.prototype, 'deal');
    if (descriptor) Get('deals/:id')(Routes.prototype, 'deal', descriptor);
    Headers('x-tenant')(Routes.prototype, 'deal', 0);
    Param('id')(Routes.prototype, 'deal', 1);
    Reflect.defineMetadata('design:paramtypes', [HttpService, LimiterRegistry], Routes);

    // eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
    class AppModule {}
    Module({
      imports: [
        HttpModule,
        RateLimitModule.forRoot({
          isGlobal: true,
          pools: { pipedrive: { provider: providers.pipedrive({ plan: 'essential' }), idleMs: 60_000 } },
        }),
      ],
      controllers: [Routes],
    })(AppModule);
    app = await NestFactory.create(AppModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    base = await app.getUrl();
  });
  afterAll(async () => {
    await app.close();
    await sim.close();
  });

  /** `count` GETs for `tenant` through the app, `concurrency` at a time; their statuses. */
  async function calls(tenant: string, count: number, concurrency: number, first = 0): Promise<number[]> {
    const statuses: number[] = [];
    let next = first;
    const worker = async () => {
      while (next < first + count) {
        const id = next++;
        const res = await fetch(`${base}/deals/${id}`, { headers: { 'x-tenant': tenant } });
        statuses.push(((await res.json()) as { status: number }).status);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return statuses;
  }

  it('paces each tenant by its own token: two tenants at once, 0 × 429 for either', async () => {
    const [a, g] = await Promise.all([calls('acme', 40, 15), calls('globex', 40, 15, 1000)]);
    expect([...a, ...g].filter((s) => s !== 200)).toEqual([]);
    const stats = sim.stats().pipedrive;
    expect(stats[credentialLabel('token-acme-0123456789abcdef')]).toMatchObject({ ok: 40, limited: 0, blocked: 0 });
    expect(stats[credentialLabel('token-globex-0123456789abcdef')]).toMatchObject({ ok: 40, limited: 0, blocked: 0 });
  }, 60_000);

  it("a tenant added at runtime gets its limiter on its first call and appears in the registry's snapshot", async () => {
    const registry = app.get(LimiterRegistry);
    const before = Object.keys(registry.snapshot());
    directory.set('initech', 'token-initech-0123456789abcdef');
    expect(await calls('initech', 3, 1)).toEqual([200, 200, 200]);
    const after = registry.snapshot();
    const added = Object.keys(after).filter((k) => !before.includes(k));
    expect(added).toHaveLength(1);
    expect(added[0]).toMatch(/^pipedrive\/key_[0-9a-f]{16}$/);
    expect(after[added[0] as string]?.totals.sent).toBe(3);
    // Labels only: no token in the snapshot.
    expect(JSON.stringify(after)).not.toContain('token-');
  }, 30_000);

  it('the limiter follows the credential sent: two tenant ids on one token share one limiter', async () => {
    const registry = app.get(LimiterRegistry);
    const pool = registry.pool('pipedrive');
    directory.set('acme-eu', 'token-acme-0123456789abcdef');
    const size = pool.size;
    const [a, b] = await Promise.all([calls('acme', 20, 10, 2000), calls('acme-eu', 20, 10, 3000)]);
    expect([...a, ...b].filter((s) => s !== 200)).toEqual([]);
    expect(pool.size).toBe(size);
    expect(sim.stats().pipedrive[credentialLabel('token-acme-0123456789abcdef')]).toMatchObject({ limited: 0 });
  }, 60_000);
});
