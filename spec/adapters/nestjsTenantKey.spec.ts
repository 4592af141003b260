import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { HttpService } from '@nestjs/axios';
import axios, { type AxiosRequestConfig, type CreateAxiosDefaults } from 'axios';
import { firstValueFrom } from 'rxjs';
import { createLimiterPool, providers, type LimiterPool } from '../../lib/index.js';
import { tenantHttp } from '../../lib/adapters/nestjs.js';

// tenantHttp keys each call by the credential axios sends, wherever the app put it: the call's
// config or the axios instance's defaults (`headers`, `common`, per method, `auth`, `params`).
// Sent over a real socket with axios's own http adapter, so each test compares the pool's key
// with what reached the server, not with a model of axios.

/** What the server received of one request. */
interface Received {
  readonly authorization: string | undefined;
  readonly apiToken: string | undefined;
  readonly url: string;
}

let server: Server;
let base = '';
const received: Received[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const h: IncomingHttpHeaders = req.headers;
    received.push({
      authorization: h.authorization,
      apiToken: typeof h['x-api-token'] === 'string' ? h['x-api-token'] : undefined,
      url: req.url ?? '',
    });
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/** An `HttpService` over a new axios instance with `defaults`, on the local server. */
const service = (defaults: CreateAxiosDefaults = {}): HttpService =>
  new HttpService(axios.create({ baseURL: base, ...defaults }));

/** The pool key of the credential the server received last: the token, as `pool.get` takes it. */
const sentKey = (): string | undefined => {
  const last = received.at(-1);
  const auth = last?.authorization?.replace(/^\S+\s+/, '');
  return auth ?? last?.apiToken ?? new URL(last?.url ?? '/', base).searchParams.get('api_token') ?? undefined;
};

/** Sends `config` through `tenantHttp` on `http`; the key the server saw. */
async function send(http: HttpService, pool: LimiterPool, config: AxiosRequestConfig = {}): Promise<string> {
  await firstValueFrom(tenantHttp(http, pool).request({ url: '/v1/deals', ...config }));
  const key = sentKey();
  if (key === undefined) throw new Error('no credential reached the server');
  return key;
}

const basic = (user: string, password: string): string => Buffer.from(`${user}:${password}`).toString('base64');

describe('NestJS tenantHttp: two tenants whose token is in the axios instance defaults or in `auth` get a limiter each', () => {
  it.each<[string, (token: string) => CreateAxiosDefaults]>([
    ['defaults.headers.Authorization', (t) => ({ headers: { Authorization: `Bearer ${t}` } })],
    ['defaults.headers.common.Authorization', (t) => ({ headers: { common: { Authorization: `Bearer ${t}` } } })],
    ["the method's defaults (headers.get)", (t) => ({ headers: { get: { authorization: `bearer ${t}` } } })],
    ['defaults.headers x-api-token', (t) => ({ headers: { 'X-Api-Token': t } })],
    ['defaults.params api_token', (t) => ({ params: { api_token: t } })],
    ['defaults.auth', (t) => ({ auth: { username: t, password: 'x' } })],
  ])('%s: one limiter per tenant, keyed by what axios sent', async (_, defaults) => {
    const pool = createLimiterPool({ provider: providers.generic() });
    const acme = service(defaults('tok-acme'));
    const globex = service(defaults('tok-globex'));
    const keys = [await send(acme, pool), await send(globex, pool), await send(acme, pool)];
    expect(new Set(keys).size).toBe(2);
    for (const key of keys) expect(pool.has(key)).toBe(true);
    expect(pool.size).toBe(2);
    await pool.close();
  });

  it('`auth` on each call: a limiter per tenant, keyed by the basic credentials sent', async () => {
    const pool = createLimiterPool({ provider: providers.generic() });
    const http = service();
    const acme = await send(http, pool, { auth: { username: 'acme@example.com', password: 'tok-acme' } });
    const globex = await send(http, pool, { auth: { username: 'globex@example.com', password: 'tok-globex' } });
    expect([acme, globex]).toEqual([basic('acme@example.com', 'tok-acme'), basic('globex@example.com', 'tok-globex')]);
    expect([pool.has(acme), pool.has(globex), pool.size]).toEqual([true, true, 2]);
    await pool.close();
  });
});

describe('NestJS tenantHttp: `auth` merged as axios merges it; user-info refused', () => {
  it('a call’s `auth` over a default `auth` field by field: keyed by the merged credentials sent', async () => {
    const pool = createLimiterPool({ provider: providers.generic() });
    const http = service({ auth: { username: 'svc', password: 'shared-pw' } });
    const key = await send(http, pool, { auth: { username: 'tenant-a' } as never });
    expect(key).toBe(basic('tenant-a', 'shared-pw'));
    expect([pool.has(key), pool.size]).toEqual([true, 1]);
    await pool.close();
  });

  it('a URL with user-info (which axios sends in place of the header) fails before it is sent', async () => {
    const pool = createLimiterPool({ provider: providers.generic() });
    const before = received.length;
    const url = `${base.replace('//', '//tenant-b:tok-b@')}/v1/deals`;
    const error = await firstValueFrom(
      tenantHttp(service(), pool).request({ url, headers: { Authorization: 'Bearer tok-a' } }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(/GET \S*\/v1\/deals carries a credential in its URL's user-info/);
    expect(inspect(error)).not.toContain('tok-b');
    expect(received.length).toBe(before);
    expect(pool.size).toBe(0);
    await pool.close();
  });
});

describe('NestJS tenantHttp: one token is one limiter, wherever it is given', () => {
  it('in the defaults, in a call, and to pool.get(token) elsewhere: one limiter', async () => {
    const pool = createLimiterPool({ provider: providers.generic() });
    const withDefaults = service({ headers: { common: { Authorization: 'Bearer tok-7' } } });
    const bare = service();
    await send(withDefaults, pool);
    await send(bare, pool, { headers: { authorization: 'bearer tok-7' } });
    const limiter = pool.get('tok-7');
    expect([pool.size, limiter.snapshot.totals.sent]).toEqual([1, 2]);
    await pool.close();
  });

  it('`auth` and an `Authorization: Basic` header of the same credentials: one limiter', async () => {
    const pool = createLimiterPool({ provider: providers.generic() });
    const withAuth = service({ auth: { username: 'me', password: 'tök-7' } });
    const key = await send(withAuth, pool);
    expect(key).toBe(basic('me', 'tök-7'));
    await send(service(), pool, { headers: { Authorization: `Basic ${key}` } });
    await send(withAuth, pool, { headers: { Authorization: `Basic ${key}` } });
    expect([pool.size, pool.get(key).snapshot.totals.sent]).toEqual([1, 3]);
    await pool.close();
  });
});

describe("NestJS tenantHttp: the call's credential over the instance's, as axios merges them", () => {
  it.each<[string, CreateAxiosDefaults, AxiosRequestConfig]>([
    [
      'a header over the default header',
      { headers: { Authorization: 'Bearer tok-A' } },
      { headers: { authorization: 'Bearer tok-B' } },
    ],
    [
      'a header over a default in common',
      { headers: { common: { Authorization: 'Bearer tok-A' } } },
      { headers: { Authorization: 'Bearer tok-B' } },
    ],
    [
      "the method's header over a default in common",
      { headers: { common: { Authorization: 'Bearer tok-A' } } },
      { headers: { get: { Authorization: 'Bearer tok-B' } } as never },
    ],
    [
      '`auth` over the default header',
      { headers: { Authorization: 'Bearer tok-A' } },
      { auth: { username: 'u', password: 'tok-B' } },
    ],
    [
      '`auth` over the default `auth`',
      { auth: { username: 'u', password: 'tok-A' } },
      { auth: { username: 'u', password: 'tok-B' } },
    ],
    [
      '`auth: null` unsets the default `auth`',
      { auth: { username: 'u', password: 'tok-A' } },
      { auth: null as never, headers: { Authorization: 'Bearer tok-B' } },
    ],
    [
      'x-api-token over the default one',
      { headers: { 'x-api-token': 'tok-A' } },
      { headers: { 'X-API-Token': 'tok-B' } },
    ],
    [
      'api_token in params over the default one',
      { params: { api_token: 'tok-A' } },
      { params: { api_token: 'tok-B' } },
    ],
  ])('%s: keyed by the one sent', async (_, defaults, config) => {
    const pool = createLimiterPool({ provider: providers.generic() });
    const key = await send(service(defaults), pool, config);
    // The call's token went out (plain, or inside the basic credentials), and is the key.
    expect([key, Buffer.from(key, 'base64').toString()]).toContainEqual(expect.stringMatching(/(^|:)tok-B$/));
    expect([pool.has(key), pool.size]).toEqual([true, 1]);
    await pool.close();
  });

  it.each<[string, CreateAxiosDefaults, AxiosRequestConfig, string]>([
    // axios sends the default `auth` instead of the call's header: paced as one, sent as another.
    [
      'a default `auth` that replaces the call’s header',
      { auth: { username: 'u', password: 'tok-A' } },
      { headers: { Authorization: 'Bearer tok-B' } },
      'Authorization',
    ],
    [
      '`auth` beside another Authorization header in one call',
      {},
      { auth: { username: 'u', password: 'tok-A' }, headers: { Authorization: 'Bearer tok-B' } },
      'Authorization',
    ],
    // axios sends a header over `common`, a default's over the call's.
    [
      'a default header over the call’s in common',
      { headers: { Authorization: 'Bearer tok-A' } },
      { headers: { common: { Authorization: 'Bearer tok-B' } } as never },
      'Authorization',
    ],
    [
      'two defaults that differ, the call giving none',
      { headers: { Authorization: 'Bearer tok-A', common: { Authorization: 'Bearer tok-B' } } },
      {},
      'Authorization',
    ],
    [
      'api_token in the default params and another in the URL',
      { params: { api_token: 'tok-A' } },
      { url: '/v1/deals?api_token=tok-B' },
      'api_token',
    ],
  ])('refused, nothing sent: %s', async (_, defaults, config, name) => {
    const pool = createLimiterPool({ provider: providers.generic() });
    const before = received.length;
    const error = await firstValueFrom(
      tenantHttp(service(defaults), pool).request({ url: '/v1/deals', ...config }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toContain(`GET /v1/deals gives ${name} twice with different values`);
    expect(inspect(error)).not.toMatch(/tok-|dTp0b2st/);
    expect([received.length - before, pool.size]).toEqual([0, 0]);
    await pool.close();
  });
});

describe('NestJS tenantHttp: a credential read from the defaults stays out of state and errors', () => {
  it("the pool's state names each tenant by a keyed hash, never its token or basic credentials", async () => {
    const pool = createLimiterPool({ provider: providers.generic() });
    await send(service({ auth: { username: 'acme', password: 'tok-secret-acme' } }), pool);
    await send(service({ headers: { common: { Authorization: 'Bearer tok-secret-globex' } } }), pool);
    const state = JSON.stringify(pool.snapshot());
    expect(pool.size).toBe(2);
    for (const secret of ['tok-secret', basic('acme', 'tok-secret-acme')]) expect(state).not.toContain(secret);
    for (const s of pool.snapshot().limiters) expect(s.key).toMatch(/^key_[0-9a-f]{16}$/);
    await pool.close();
  });
});
