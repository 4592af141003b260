import { afterAll, describe, expect, it } from '@jest/globals';
import { HttpService } from '@nestjs/axios';
import axios, {
  AxiosError,
  AxiosHeaders,
  CanceledError,
  isCancel,
  type AxiosAdapter,
  type AxiosRequestConfig,
  type AxiosResponse,
  type InternalAxiosRequestConfig,
} from 'axios';
import { Readable } from 'node:stream';
import { firstValueFrom } from 'rxjs';
import { createLimiter, createLimiterPool, providers, type Limiter } from '../../lib/index.js';
import {
  LimiterRegistry,
  RateLimitModule,
  rateLimitedHttp,
  tenantHttp,
  type TenantHttpOptions,
} from '../../lib/adapters/nestjs.js';

/** What the upstream saw of one call. */
interface Sent {
  readonly authorization: string | null;
  readonly apiToken: string | null;
  readonly url: string;
}

/**
 * An `HttpService` over an axios instance whose transport answers after `delayMs` with
 * `status` (a 429 says `Retry-After: 20`), and ends with axios's `CanceledError` when the
 * request's signal or cancel token fires first, as axios's own adapters do. `sent` lists what
 * reached it, `cancelled` what was cancelled once there.
 */
function upstream({ status = 200, delayMs = 30 }: { status?: number; delayMs?: number } = {}) {
  const sent: Sent[] = [];
  let cancelled = 0;
  const adapter: AxiosAdapter = (config: InternalAxiosRequestConfig) =>
    new Promise<AxiosResponse>((resolve, reject) => {
      sent.push({
        authorization: (config.headers.get('authorization') as string | undefined) ?? null,
        apiToken: (config.headers.get('x-api-token') as string | undefined) ?? null,
        url: axios.getUri(config),
      });
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        const headers = new AxiosHeaders(status === 429 ? { 'retry-after': '20' } : {});
        const response = { status, statusText: String(status), headers, data: { n: sent.length }, config };
        if (status < 400) resolve(response);
        else reject(new AxiosError(`status ${status}`, AxiosError.ERR_BAD_REQUEST, config, null, response));
      }, delayMs);
      const cancel = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        cancelled++;
        reject(new CanceledError(undefined, undefined, config));
      };
      (config.signal as AbortSignal | undefined)?.addEventListener('abort', cancel, { once: true });
      config.cancelToken?.subscribe(cancel);
    });
  const http = new HttpService(axios.create({ baseURL: 'https://api.example.com', adapter }));
  return { http, sent, cancelled: () => cancelled };
}

const outcome = <T>(promise: Promise<AxiosResponse<T>>): Promise<string> =>
  promise.then(
    (res) => `ok ${JSON.stringify(res.data)}`,
    (error: unknown) => (isCancel(error) ? 'canceled' : `error ${(error as Error).name}`),
  );

describe('NestJS tenantHttp: the pool key is the token, as pool.get(token) takes it', () => {
  it.each<[string, AxiosRequestConfig, string]>([
    ['Authorization: Bearer t', { headers: { Authorization: 'Bearer tok-7' } }, 'tok-7'],
    ['a scheme in lower case', { headers: { authorization: 'bearer tok-7' } }, 'tok-7'],
    ['another scheme', { headers: { Authorization: 'Token tok-7' } }, 'tok-7'],
    ['spaces around and inside', { headers: { Authorization: '  Bearer \t tok-7  ' } }, 'tok-7'],
    ['a bare token', { headers: { Authorization: 'tok-7' } }, 'tok-7'],
    ['Basic: its base64 credentials', { headers: { Authorization: 'Basic dXNlcjpwdw==' } }, 'dXNlcjpwdw=='],
    ['x-api-token, trimmed', { headers: { 'X-Api-Token': ' tok-7 ' } }, 'tok-7'],
    ['api_token in params', { params: { api_token: 'tok-7' } }, 'tok-7'],
    ['api_token in the URL', { url: '/v1/deals?api_token=tok-7' }, 'tok-7'],
  ])('%s', async (_, config, key) => {
    const { http } = upstream();
    const pool = createLimiterPool({ provider: providers.generic() });
    await firstValueFrom(tenantHttp(http, pool).request({ url: '/v1/deals', ...config }));
    expect([pool.has(key), pool.size]).toEqual([true, 1]);
    await pool.close();
  });

  it('a pause after a 429 on `Bearer t` holds for `bearer t` and for pool.get(t): nothing more is sent', async () => {
    const { http, sent } = upstream({ status: 429 });
    // A pause longer than maxWaitMs fails a request at once rather than waiting 20 s.
    const pool = createLimiterPool({ provider: providers.generic(), maxWaitMs: 1_000 });
    const api = tenantHttp(http, pool);
    expect(await outcome(firstValueFrom(api.post('/v1/deals', {}, { headers: { Authorization: 'Bearer t-9' } })))).toBe(
      'error AxiosError',
    );
    expect(pool.get('t-9').snapshot.pausedUntil).not.toBeNull();
    expect(await outcome(firstValueFrom(api.get('/v1/deals', { headers: { authorization: 'bearer t-9' } })))).toBe(
      'error QuotaExhaustedError',
    );
    expect([sent.length, pool.size]).toEqual([1, 1]);
    await pool.close();
  });
});

describe('NestJS tenantHttp: a call that gives its credential twice is refused, never paced as one and sent as another', () => {
  it.each<[string, AxiosRequestConfig, string]>([
    [
      'Authorization in two cases',
      { headers: { Authorization: 'Bearer A', authorization: 'Bearer B' } },
      'Authorization',
    ],
    ['x-api-token in two cases', { headers: { 'X-Api-Token': 'A', 'x-api-token': 'B' } }, 'x-api-token'],
    [
      'Authorization beside another in headers.common',
      { headers: { Authorization: 'Bearer A', common: { Authorization: 'Bearer B' } } as never },
      'Authorization',
    ],
    [
      'x-api-token beside another in the method’s headers',
      { headers: { 'x-api-token': 'A', get: { 'X-API-TOKEN': 'B' } } as never },
      'x-api-token',
    ],
    [
      'a list of pairs that names it twice (axios sends both)',
      {
        headers: [
          ['authorization', 'Bearer A'],
          ['authorization', 'Bearer B'],
        ] as never,
      },
      'Authorization',
    ],
    ['a list of two values', { headers: { Authorization: ['Bearer A', 'Bearer B'] } as never }, 'Authorization'],
    [
      'a value and one unset',
      { headers: { authorization: 'Bearer A', Authorization: null } as never },
      'Authorization',
    ],
    [
      'api_token in the params and another in the URL',
      { url: '/v1/deals?api_token=A', params: { api_token: 'B' } },
      'api_token',
    ],
  ])('%s', async (_, config, name) => {
    const { http, sent } = upstream();
    const pool = createLimiterPool({ provider: providers.generic() });
    const error = await firstValueFrom(tenantHttp(http, pool).request({ url: '/v1/deals', ...config })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TypeError);
    expect((error as TypeError).message).toContain(`GET /v1/deals gives ${name} twice with different values`);
    // Neither value is in the message.
    expect((error as TypeError).message).not.toMatch(/\bA\b|\bB\b/);
    expect([sent.length, pool.size]).toEqual([0, 0]);
    await pool.close();
  });

  it('the same token in two cases of the name, or with two cases of the scheme, is one credential: sent', async () => {
    const { http, sent } = upstream();
    const pool = createLimiterPool({ provider: providers.generic() });
    await firstValueFrom(
      tenantHttp(http, pool).get('/v1/deals', { headers: { Authorization: 'Bearer A', authorization: 'bearer A' } }),
    );
    expect([sent.length, pool.has('A'), pool.size]).toEqual([1, true, 1]);
    await pool.close();
  });
});

describe('NestJS rateLimitedHttp: one caller’s abort ends only its own call', () => {
  const limiter = (): Limiter =>
    createLimiter({ provider: providers.generic(), key: `shared-abort-${Math.random()}`, coldStartConcurrency: 10 });

  it.each([
    ['an AbortSignal', () => new AbortController()],
    [
      'a CancelToken',
      () => {
        const source = axios.CancelToken.source();
        return { abort: () => source.cancel(), token: source.token };
      },
    ],
  ] as const)(
    'A aborts with %s while B shares its GET: A ends with CanceledError, B gets the answer, one request sent',
    async (_, make) => {
      const { http, sent, cancelled } = upstream({ delayMs: 60 });
      const api = rateLimitedHttp(http, limiter());
      const canceller = make();
      const cancel = 'signal' in canceller ? { signal: canceller.signal } : { cancelToken: canceller.token };
      const a = outcome(firstValueFrom(api.get('/v1/deals/1', cancel)));
      const b = outcome(firstValueFrom(api.get('/v1/deals/1')));
      await new Promise((resolve) => setTimeout(resolve, 20));
      canceller.abort();
      expect([await a, await b]).toEqual(['canceled', 'ok {"n":1}']);
      expect([sent.length, cancelled()]).toEqual([1, 0]);
    },
  );

  it('B joins the GET of A, both abort: the request is cancelled once both have gone', async () => {
    const { http, sent, cancelled } = upstream({ delayMs: 200 });
    const api = rateLimitedHttp(http, limiter());
    const [first, second] = [new AbortController(), new AbortController()];
    const a = outcome(firstValueFrom(api.get('/v1/deals/1', { signal: first.signal })));
    const b = outcome(firstValueFrom(api.get('/v1/deals/1', { signal: second.signal })));
    await new Promise((resolve) => setTimeout(resolve, 20));
    first.abort();
    expect(await a).toBe('canceled');
    expect(cancelled()).toBe(0);
    second.abort();
    expect(await b).toBe('canceled');
    expect([sent.length, cancelled()]).toEqual([1, 1]);
  });

  it('a GET no one else can join keeps its own signal: an abort in flight cancels it at the transport', async () => {
    const { http, cancelled } = upstream({ delayMs: 200 });
    const api = rateLimitedHttp(http, limiter());
    const controller = new AbortController();
    const a = outcome(
      firstValueFrom(api.get('/v1/deals/1', { signal: controller.signal, rateLimit: { shareKey: false } })),
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    controller.abort();
    expect(await a).toBe('canceled');
    expect(cancelled()).toBe(1);
  });
});

describe('NestJS: a request’s own config.rateLimit is checked', () => {
  it('a misspelled setting fails that request with a TypeError naming it, and nothing is sent', async () => {
    const { http, sent } = upstream({ delayMs: 1 });
    const limiter = createLimiter({ provider: providers.generic(), key: 'request-settings-check' });
    const paced = rateLimitedHttp(http, limiter);
    const error = await firstValueFrom(paced.get('/v1/deals', { rateLimit: { skp: true } as never })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(/rateLimitedHttp: `config.rateLimit` has unknown option `skp`/);
    expect(sent).toHaveLength(0);
    await firstValueFrom(paced.get('/v1/deals', { rateLimit: { skip: true } }));
    await firstValueFrom(paced.get('/v1/deals', { rateLimit: { priority: 2, shareKey: false } }));
    expect(sent).toHaveLength(2);
    await limiter.close();
  });
});

describe('NestJS rateLimitedHttp: a body given to post, put or patch that reads once is never sent twice', () => {
  /** A transport that reads each body whole, answers the first call 429 (`Retry-After: 0`), then 200 with what it read. */
  function readingUpstream() {
    const bodies: string[] = [];
    const adapter: AxiosAdapter = async (config: InternalAxiosRequestConfig) => {
      const data: unknown = config.data;
      let body = '';
      if (data instanceof Readable) for await (const chunk of data) body += String(chunk);
      else body = typeof data === 'string' ? data : JSON.stringify(data);
      bodies.push(body);
      const status = bodies.length === 1 ? 429 : 200;
      const headers = new AxiosHeaders(status === 429 ? { 'retry-after': '0' } : {});
      const response = { status, statusText: String(status), headers, data: { got: body }, config };
      if (status < 400) return response;
      throw new AxiosError(`status ${status}`, AxiosError.ERR_BAD_REQUEST, config, null, response);
    };
    return { http: new HttpService(axios.create({ baseURL: 'https://api.example.com', adapter })), bodies };
  }

  it.each(['post', 'put', 'patch'] as const)(
    '%s of a stream after a 429: the 429 is the answer, the spent stream is not sent again empty',
    async (method) => {
      const { http, bodies } = readingUpstream();
      const limiter = createLimiter({ provider: providers.generic(), key: `one-shot-${method}` });
      const paced = rateLimitedHttp(http, limiter);
      const cfg = { rateLimit: { retry: true }, headers: { 'Idempotency-Key': 'k-1' } };
      const out = await outcome(firstValueFrom(paced[method]('/v1/files', Readable.from(['hello ', 'world']), cfg)));
      expect(out).toBe('error AxiosError');
      expect(bodies).toEqual(['hello world']);
      await limiter.close();
    },
  );

  it('a body that can be sent again (an object) is retried past the 429 and arrives whole', async () => {
    const { http, bodies } = readingUpstream();
    const limiter = createLimiter({ provider: providers.generic(), key: 'one-shot-object' });
    const paced = rateLimitedHttp(http, limiter);
    const res = await firstValueFrom(paced.put('/v1/files', { a: 1 }));
    expect(res.data).toEqual({ got: '{"a":1}' });
    expect(bodies).toEqual(['{"a":1}', '{"a":1}']);
    await limiter.close();
  });
});

describe('NestJS: the settings of a paced HttpService are checked when it is made', () => {
  const bad: Array<[string, TenantHttpOptions, RegExp]> = [
    [
      'retryNonIdempotent from the environment',
      { retryNonIdempotent: 'false' as never },
      /`retryNonIdempotent` must be a boolean, got "false"/,
    ],
    ['a negative reserve', { reserve: -5 }, /`reserve` must be a whole number >= 0, got -5/],
    ['a reserve that is no number', { reserve: 'lots' as never }, /`reserve` must be a whole number >= 0, got string/],
    ['a negative maxRetries', { maxRetries: -1 }, /`maxRetries` must be a whole number >= 0, got -1/],
    ['a status that is none', { statuses: [42] }, /`statuses` must be an array of HTTP status codes/],
    ['a priority that is no number', { priority: Number.NaN }, /`priority` must be a finite number, got NaN/],
  ];
  const { http } = upstream();
  const limiter = createLimiter({ provider: providers.generic(), key: 'options-check' });
  const pool = createLimiterPool({ provider: providers.generic() });
  const registry = new LimiterRegistry({ limiters: { one: limiter }, pools: { many: pool } });
  afterAll(async () => {
    await Promise.all([limiter.close(), pool.close()]);
  });

  it.each(bad)('%s: rateLimitedHttp and registry.http throw a TypeError naming the option', (_, options, message) => {
    expect(() => rateLimitedHttp(http, limiter, options)).toThrow(TypeError);
    expect(() => rateLimitedHttp(http, limiter, options)).toThrow(new RegExp(`^rateLimitedHttp: .*${message.source}`));
    expect(() => registry.http(http, 'one', options)).toThrow(message);
  });

  it.each(bad)('%s: tenantHttp and registry.tenantHttp throw a TypeError naming the option', (_, options, message) => {
    expect(() => tenantHttp(http, pool, options)).toThrow(new RegExp(`^tenantHttp: .*${message.source}`));
    expect(() => registry.tenantHttp(http, 'many', options)).toThrow(message);
  });

  it.each(bad)('%s: forFeature throws when the module is declared, before the app boots', (_, options, message) => {
    expect(() => RateLimitModule.forFeature(['one'], { http: HttpService, httpOptions: options })).toThrow(
      new RegExp(`^RateLimitModule.forFeature: httpOptions: .*${message.source}`),
    );
  });

  it('good settings pass', () => {
    const options = { maxRetries: 0, reserve: 10, statuses: [429, 503], retryNonIdempotent: false, priority: 1 };
    expect(() => rateLimitedHttp(http, limiter, options)).not.toThrow();
    expect(() => tenantHttp(http, pool, { ...options, key: () => 'k' })).not.toThrow();
    expect(() => RateLimitModule.forFeature(['one'], { http: HttpService, httpOptions: options })).not.toThrow();
  });
});
