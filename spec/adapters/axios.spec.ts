import { describe, expect, it } from '@jest/globals';
import { Readable } from 'node:stream';
import axios, {
  AxiosError,
  AxiosHeaders,
  CanceledError,
  isAxiosError,
  isCancel,
  type AxiosAdapter,
  type AxiosResponse,
  type InternalAxiosRequestConfig,
} from 'axios';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import {
  createLimiter,
  defineProvider,
  isBlockedError,
  isQuotaExhaustedError,
  isRetryLimitError,
  providers,
  type LimiterEvent,
  type Provider,
  type RequestInfo,
  rawCauseOf,
  type RateLimitError,
} from '../../lib/index.js';
import {
  attachRateLimiter,
  rateLimitedRequest,
  rateLimitInterceptor,
  toResponseLike,
} from '../../lib/adapters/axios.js';

/**
 * A key of its own for each limiter made here: limiters of one provider and key in a process
 * share one limit state, and these stand for independent credentials.
 */
let keys = 0;

const generic = () => providers.generic({ resetUnit: 'unix-seconds' });

function axiosResponse(status: number, headers: unknown, data?: unknown): AxiosResponse {
  return {
    status,
    statusText: '',
    headers: headers as AxiosResponse['headers'],
    data,
    config: { headers: new AxiosHeaders() },
  };
}

describe('toResponseLike (axios)', () => {
  it('reads AxiosHeaders by any case', () => {
    const res = toResponseLike(
      axiosResponse(200, new AxiosHeaders({ 'X-RateLimit-Remaining': '4', 'Retry-After': 3 })),
    );
    expect(res?.status).toBe(200);
    expect(res?.header('x-ratelimit-remaining')).toBe('4');
    expect(res?.header('X-RATELIMIT-REMAINING')).toBe('4');
    expect(res?.header('retry-after')).toBe('3');
    expect(res?.header('x-missing')).toBeUndefined();
  });

  it('reads a plain header object by any case, joining array values', () => {
    const res = toResponseLike(
      axiosResponse(200, { 'X-RateLimit-Limit': '10', 'set-cookie': ['a=1', 'b=2'], 'x-count': 7, 'x-null': null }),
    );
    expect(res?.header('x-ratelimit-limit')).toBe('10');
    expect(res?.header('Set-Cookie')).toBe('a=1, b=2');
    expect(res?.header('X-Count')).toBe('7');
    expect(res?.header('x-null')).toBeUndefined();
  });

  it('joins array values held by AxiosHeaders', () => {
    const headers = new AxiosHeaders();
    headers.set('X-RateLimit-Policy', ['10;w=1', '100;w=60']);
    expect(toResponseLike(axiosResponse(200, headers))?.header('x-ratelimit-policy')).toBe('10;w=1, 100;w=60');
  });

  it('reads the response inside an AxiosError', () => {
    const response = axiosResponse(429, new AxiosHeaders({ 'Retry-After': '2' }), { error: 'slow down' });
    const error = new AxiosError(
      'Request failed with status code 429',
      AxiosError.ERR_BAD_REQUEST,
      undefined,
      {},
      response,
    );
    const res = toResponseLike(error);
    expect(res?.status).toBe(429);
    expect(res?.header('RETRY-AFTER')).toBe('2');
    expect(res?.body).toEqual({ error: 'slow down' });
  });

  it('parses JSON text only where a provider reads it (429, 403) and only up to 256 KiB', () => {
    const json = new AxiosHeaders({ 'content-type': 'application/json' });
    const small = '{"error":"slow down"}';
    const big = JSON.stringify({ pad: 'x'.repeat(300 * 1024) });
    expect(toResponseLike(axiosResponse(200, json, small))?.body).toBe(small);
    expect(toResponseLike(axiosResponse(429, json, small))?.body).toEqual({ error: 'slow down' });
    expect(toResponseLike(axiosResponse(403, json, small))?.body).toEqual({ error: 'slow down' });
    expect(toResponseLike(axiosResponse(429, json, big))?.body).toBeUndefined();
    expect(toResponseLike(axiosResponse(200, json, new TextEncoder().encode(small)))?.body).toBeUndefined();
  });

  it('returns undefined when there is no response', () => {
    expect(toResponseLike(new AxiosError('socket hang up', 'ECONNRESET'))).toBeUndefined();
    expect(toResponseLike(new CanceledError())).toBeUndefined();
    expect(toResponseLike(undefined)).toBeUndefined();
    expect(toResponseLike(null)).toBeUndefined();
    expect(toResponseLike('429')).toBeUndefined();
    expect(toResponseLike({})).toBeUndefined();
    expect(toResponseLike({ status: 200 })).toBeUndefined();
    expect(toResponseLike(new Error('boom'))).toBeUndefined();
  });

  it('gives the body as a provider reads it: parsed JSON, text, decoded bytes; never a stream', () => {
    const json = { 'Content-Type': 'application/json; charset=utf-8' };
    expect(toResponseLike(axiosResponse(429, json, { a: 1 }))?.body).toEqual({ a: 1 });
    expect(toResponseLike(axiosResponse(429, json, '{"a":1}'))?.body).toEqual({ a: 1 });
    expect(toResponseLike(axiosResponse(429, json, 'not json'))?.body).toBe('not json');
    expect(toResponseLike(axiosResponse(403, { 'content-type': 'text/html' }, '<html>Cloudflare</html>'))?.body).toBe(
      '<html>Cloudflare</html>',
    );
    expect(toResponseLike(axiosResponse(429, json, Buffer.from('{"throttled_by":"hour"}')))?.body).toEqual({
      throttled_by: 'hour',
    });
    expect(toResponseLike(axiosResponse(429, json, new TextEncoder().encode('{"b":2}').buffer))?.body).toEqual({
      b: 2,
    });
    const stream = Readable.from([]);
    expect(toResponseLike(axiosResponse(429, json, stream))?.body).toBeUndefined();
    expect(toResponseLike(axiosResponse(204, {}, undefined))).toEqual({ status: 204, header: expect.any(Function) });
  });
});

type Reply = { status: number; headers?: Record<string, string>; data?: unknown } | Error;

/** An axios adapter that answers from a script, no network; rejects per validateStatus like axios. */
function fakeAdapter(reply: (config: InternalAxiosRequestConfig, n: number) => Reply | Promise<Reply>) {
  const calls: InternalAxiosRequestConfig[] = [];
  const thrown: AxiosError[] = [];
  const adapter: AxiosAdapter = async (config) => {
    calls.push(config);
    const r = await reply(config, calls.length);
    if (r instanceof Error) throw r;
    const response: AxiosResponse = {
      status: r.status,
      statusText: '',
      headers: new AxiosHeaders(r.headers),
      data: r.data,
      config,
      request: {},
    };
    if (!config.validateStatus || config.validateStatus(r.status)) return response;
    const error = new AxiosError(
      `Request failed with status code ${r.status}`,
      AxiosError.ERR_BAD_REQUEST,
      config,
      {},
      response,
    );
    thrown.push(error);
    throw error;
  };
  return { adapter, calls, thrown };
}

const limited = (retryAfter = '0'): Reply => ({
  status: 429,
  headers: { 'Retry-After': retryAfter },
  data: { error: 'slow down' },
});
const ok: Reply = { status: 200, data: { ok: true } };

/** Records the RequestInfo of every request the limiter sees. */
function recording(base: Provider = generic()): { provider: Provider; infos: RequestInfo[] } {
  const infos: RequestInfo[] = [];
  const provider = defineProvider({
    name: 'recording',
    buckets: (req) => {
      if (!infos.includes(req)) infos.push(req);
      return base.buckets(req);
    },
    read: (res, req) => (res.status === 403 ? { outcome: 'blocked', buckets: [] } : base.read(res, req)),
  });
  return { provider, infos };
}

function fastLimiter(provider: Provider = generic(), extra: { maxWaitMs?: number } = {}) {
  return createLimiter({ provider, key: `token-${++keys}`, backoffBaseMs: 1, random: () => 0, ...extra });
}

async function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error };
  }
}

const errorOf = (o: { ok: boolean; error?: unknown }) => (o as { error: unknown }).error;

describe('attachRateLimiter', () => {
  it('retries a 429 on a GET and resolves with the next response', async () => {
    const { adapter, calls } = fakeAdapter((_c, n) => (n === 1 ? limited() : ok));
    const client = axios.create({ adapter });
    const limiter = fastLimiter();
    const events: LimiterEvent[] = [];
    limiter.events$.subscribe((e) => events.push(e));
    attachRateLimiter(client, limiter);

    const res = await client.get('/x');

    expect(res.data).toEqual({ ok: true });
    expect(calls).toHaveLength(2);
    expect(events.filter((e) => e.type === 'retry-scheduled')).toEqual([expect.objectContaining({ attempt: 2 })]);
    expect(events.filter((e) => e.type === 'admitted')).toHaveLength(2);
    expect(limiter.snapshot).toMatchObject({
      inFlight: 0,
      queued: 0,
      totals: { sent: 2, responses: 2, rateLimited: 1 },
    });
  });

  it('fails with RetryLimitError after maxRetries, its cause the last AxiosError', async () => {
    const { adapter, calls, thrown } = fakeAdapter(() => limited());
    const client = axios.create({ adapter });
    attachRateLimiter(client, fastLimiter(), { maxRetries: 2 });

    const out = await settle(client.get('/x'));

    const error = errorOf(out);
    expect(isRetryLimitError(error)).toBe(true);
    expect(isRetryLimitError(error) && error.attempts).toBe(3);
    expect(isRetryLimitError(error) && error.status).toBe(429);
    expect(calls).toHaveLength(3);
    expect(rawCauseOf(error as RateLimitError)).toBe(thrown[2]);
  });

  it('does not retry a POST; does with an Idempotency-Key header, rateLimit.retry or retryNonIdempotent', async () => {
    const run = async (opts: { retryNonIdempotent?: boolean }, config: Parameters<typeof axios.post>[2] = {}) => {
      const { adapter, calls, thrown } = fakeAdapter((_c, n) => (n === 1 ? limited() : ok));
      const client = axios.create({ adapter });
      attachRateLimiter(client, fastLimiter(), opts);
      const out = await settle(client.post('/deals', { a: 1 }, config));
      return { out, calls: calls.length, thrown };
    };
    const plain = await run({});
    expect(plain.calls).toBe(1);
    expect(errorOf(plain.out)).toBe(plain.thrown[0]);
    expect((await run({}, { headers: { 'idempotency-key': 'k1' } })).calls).toBe(2);
    expect((await run({}, { rateLimit: { idempotencyKey: 'k1' } })).calls).toBe(2);
    expect((await run({}, { rateLimit: { retry: true } })).calls).toBe(2);
    expect((await run({ retryNonIdempotent: true })).calls).toBe(2);
    const forbidden = await run({}, { method: 'GET', rateLimit: { retry: false } });
    expect(forbidden.calls).toBe(1);
  });

  it('does not send again a body read once (a stream), even with rateLimit.retry', async () => {
    const run = async (data: unknown) => {
      const { adapter, calls } = fakeAdapter((_c, n) => (n === 1 ? limited() : ok));
      const client = axios.create({ adapter });
      attachRateLimiter(client, fastLimiter(), { retryNonIdempotent: true });
      const out = await settle(client.put('/upload', data, { rateLimit: { retry: true } }));
      return { ok: out.ok, calls: calls.length };
    };
    expect(await run(Readable.from([Buffer.from('file')]))).toEqual({ ok: false, calls: 1 });
    expect(await run({ a: 1 })).toEqual({ ok: true, calls: 2 });
    expect(await run('text')).toEqual({ ok: true, calls: 2 });
  });

  it('retries a 200 the provider reads as a rate limit (a throttle in the body), a POST too when it never ran', async () => {
    // As Shopify's GraphQL: a 200 whose body says THROTTLED; the transport hands it over as text.
    const infos: RequestInfo[] = [];
    const provider = defineProvider({
      name: 'body-throttle',
      buckets: (req) => {
        infos.push(req);
        return [{ name: 'points' }];
      },
      read: (res) =>
        typeof res.body === 'string' && res.body.includes('THROTTLED')
          ? {
              outcome: 'limited',
              buckets: [],
              retryAfter: { delayMs: 1 },
              retrySource: 'body',
              notProcessed: true,
              retryCost: { points: 7 },
            }
          : { outcome: 'ok', buckets: [] },
    });
    const throttled: Reply = { status: 200, data: '{"errors":[{"extensions":{"code":"THROTTLED"}}]}' };
    const { adapter, calls } = fakeAdapter((_c, n) => (n === 1 ? throttled : { status: 200, data: '{"data":{}}' }));
    const client = axios.create({ adapter });
    attachRateLimiter(client, fastLimiter(provider));

    const res = await client.post('/graphql.json', { query: '{ shop { name } }' });

    expect(res.data).toEqual({ data: {} });
    expect(calls).toHaveLength(2);
    expect(infos.at(-1)).toMatchObject({ method: 'POST', cost: { points: 7 } });

    const always = fakeAdapter(() => throttled);
    const failing = axios.create({ adapter: always.adapter });
    attachRateLimiter(failing, fastLimiter(provider), { maxRetries: 1 });
    const out = await settle(failing.get('/graphql.json'));
    expect(errorOf(out)).toMatchObject({ name: 'RetryLimitError', attempts: 2, status: 200 });
  });

  it('retries a 429 that validateStatus let through, and resolves with a non-retried one', async () => {
    const { adapter, calls } = fakeAdapter((_c, n) => (n === 1 || n === 3 ? limited() : ok));
    const client = axios.create({ adapter, validateStatus: () => true });
    attachRateLimiter(client, fastLimiter());

    expect((await client.get('/x')).status).toBe(200);
    expect(calls).toHaveLength(2);
    expect((await client.post('/y')).status).toBe(429);
    expect(calls).toHaveLength(3);
  });

  it('fails with QuotaExhaustedError when the wait passes maxWaitMs, nothing more sent', async () => {
    const { adapter, calls, thrown } = fakeAdapter(() => limited('60'));
    const client = axios.create({ adapter });
    attachRateLimiter(client, fastLimiter(generic(), { maxWaitMs: 1000 }));

    const error = errorOf(await settle(client.get('/x')));

    expect(isQuotaExhaustedError(error)).toBe(true);
    expect(rawCauseOf(error as RateLimitError)).toBe(thrown[0]);
    expect(calls).toHaveLength(1);
  });

  it('rejects with BlockedError on a block, and later requests without sending them', async () => {
    const { provider } = recording();
    const { adapter, calls, thrown } = fakeAdapter(() => ({
      status: 403,
      headers: { 'content-type': 'text/html' },
      data: '<html>',
    }));
    const client = axios.create({ adapter });
    const limiter = fastLimiter(provider);
    attachRateLimiter(client, limiter);

    const first = errorOf(await settle(client.get('/x')));
    const second = errorOf(await settle(client.get('/y')));

    expect(isBlockedError(first)).toBe(true);
    expect(rawCauseOf(first as RateLimitError)).toBe(thrown[0]);
    expect(isBlockedError(second)).toBe(true);
    expect(calls).toHaveLength(1);
    expect(limiter.snapshot.inFlight).toBe(0);
  });

  it('rejects a network error as is and returns the permit', async () => {
    const failure = new AxiosError('socket hang up', 'ECONNRESET');
    const { adapter, calls } = fakeAdapter(() => failure);
    const client = axios.create({ adapter });
    const limiter = fastLimiter();
    attachRateLimiter(client, limiter);

    expect(errorOf(await settle(client.get('/x')))).toBe(failure);
    expect(calls).toHaveLength(1);
    expect(limiter.snapshot).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it('returns the permit when a custom adapter fails with a plain Error or answers with another config', async () => {
    const failure = new Error('adapter exploded');
    const { adapter, calls } = fakeAdapter((_c, n) => (n === 1 ? failure : ok));
    const client = axios.create({
      adapter: async (config) => {
        const res = await adapter(config);
        return { ...res, config: { ...config } };
      },
    });
    const limiter = fastLimiter();
    attachRateLimiter(client, limiter);

    expect(errorOf(await settle(client.get('/x')))).toBe(failure);
    expect(limiter.snapshot.inFlight).toBe(0);
    // The cold start is not stuck on a permit that never came back.
    expect((await client.get('/y')).status).toBe(200);
    expect(calls).toHaveLength(2);
    expect(limiter.snapshot).toMatchObject({ inFlight: 0, totals: { sent: 2, responses: 1 } });
  });

  it('gives the limiter method, baseURL + url, priority and idempotency key', async () => {
    const { provider, infos } = recording();
    const { adapter } = fakeAdapter(() => ok);
    const client = axios.create({ adapter, baseURL: 'https://api.example.com/v1/' });
    attachRateLimiter(client, fastLimiter(provider), { priority: 2 });
    infos.length = 0; // made, the limiter read the provider's rules for a plain GET and POST

    await client.post('/deals?x=1', {}, { headers: { 'Idempotency-Key': 'k1' } });
    await client.get('https://other.example.com/abs', { rateLimit: { priority: 7, retry: false } });

    expect(infos).toEqual([
      { method: 'POST', url: 'https://api.example.com/v1/deals?x=1', priority: 2, idempotencyKey: 'k1' },
      { method: 'GET', url: 'https://other.example.com/abs', priority: 7, retry: false },
    ]);
  });

  it('gives the limiter the text of a URL object, as axios sends it (never refused as no string)', async () => {
    const { provider, infos } = recording();
    const { adapter } = fakeAdapter(() => ok);
    const client = axios.create({ adapter });
    attachRateLimiter(client, fastLimiter(provider));
    infos.length = 0;
    await client.get(new URL('https://api.example.com/v1/deals?x=1') as unknown as string);
    const deal = await lastValueFrom(
      rateLimitedRequest(fastLimiter(provider), client, {
        url: new URL('https://api.example.com/v1/deals/2') as never,
      }),
    );
    expect(deal.status).toBe(200);
    expect(infos.map((i) => i.url)).toEqual(
      expect.arrayContaining(['https://api.example.com/v1/deals?x=1', 'https://api.example.com/v1/deals/2']),
    );
  });

  it('gives the limiter the cost of config.rateLimit.cost', async () => {
    const { provider, infos } = recording();
    const { adapter } = fakeAdapter(() => ok);
    const client = axios.create({ adapter });
    attachRateLimiter(client, fastLimiter(provider));
    infos.length = 0;
    await client.post('/graphql', {}, { rateLimit: { cost: 5 } });
    await client.get('/x', { rateLimit: { cost: { default: 2 } } });
    expect(infos.map((i) => i.cost)).toEqual([5, { default: 2 }]);
  });

  it('sends waiting requests by priority', async () => {
    let release: (r: Reply) => void = () => undefined;
    const { adapter, calls } = fakeAdapter((_c, n) => (n === 1 ? new Promise<Reply>((r) => (release = r)) : ok));
    const client = axios.create({ adapter });
    const limiter = fastLimiter();
    attachRateLimiter(client, limiter);

    const first = client.get('/first'); // cold start: the others wait for its response
    await new Promise((r) => setTimeout(r, 5));
    const low = client.get('/low');
    const high = client.get('/high', { rateLimit: { priority: 5 } });
    await new Promise((r) => setTimeout(r, 5));
    expect(limiter.snapshot.queued).toBe(2);
    release(ok);
    await Promise.all([first, low, high]);

    expect(calls.map((c) => c.url)).toEqual(['/first', '/high', '/low']);
  });

  it('an abort while queued cancels the wait: CanceledError, nothing sent', async () => {
    let release: (r: Reply) => void = () => undefined;
    const { adapter, calls } = fakeAdapter((_c, n) => (n === 1 ? new Promise<Reply>((r) => (release = r)) : ok));
    const client = axios.create({ adapter });
    const limiter = fastLimiter();
    attachRateLimiter(client, limiter);
    const controller = new AbortController();

    const first = client.get('/first');
    const second = settle(client.get('/second', { signal: controller.signal }));
    await new Promise((r) => setTimeout(r, 5));
    controller.abort();

    expect(isCancel(errorOf(await second))).toBe(true);
    expect(limiter.snapshot.queued).toBe(0);
    release(ok);
    await first;
    expect(calls.map((c) => c.url)).toEqual(['/first']);
  });

  it('an abort during the wait before a retry rejects with CanceledError at once', async () => {
    const { adapter, calls } = fakeAdapter(() => limited('5'));
    const client = axios.create({ adapter });
    attachRateLimiter(client, fastLimiter());
    const controller = new AbortController();

    const out = settle(client.get('/x', { signal: controller.signal }));
    await new Promise((r) => setTimeout(r, 20));
    controller.abort();

    expect(isCancel(errorOf(await out))).toBe(true);
    expect(calls).toHaveLength(1);
  });

  it('a CancelToken cancelled while queued cancels the wait: CanceledError at once, nothing sent', async () => {
    let release: (r: Reply) => void = () => undefined;
    const { adapter, calls } = fakeAdapter((_c, n) => (n === 1 ? new Promise<Reply>((r) => (release = r)) : ok));
    const client = axios.create({ adapter });
    const limiter = fastLimiter();
    attachRateLimiter(client, limiter);
    const source = axios.CancelToken.source();

    const first = client.get('/first');
    const second = settle(client.get('/second', { cancelToken: source.token }));
    await new Promise((r) => setTimeout(r, 5));
    expect(limiter.snapshot.queued).toBe(1);
    source.cancel('user left');

    // Ends while /first is still in flight: the wait for a permit was cancelled.
    expect(isCancel(errorOf(await second))).toBe(true);
    expect(limiter.snapshot.queued).toBe(0);
    release(ok);
    await first;
    expect(calls.map((c) => c.url)).toEqual(['/first']);
  });

  it('a CancelToken cancelled during the wait before a retry rejects with CanceledError at once', async () => {
    const { adapter, calls } = fakeAdapter(() => limited('5'));
    const client = axios.create({ adapter });
    attachRateLimiter(client, fastLimiter());
    const source = axios.CancelToken.source();

    const out = settle(client.get('/x', { cancelToken: source.token }));
    await new Promise((r) => setTimeout(r, 20));
    source.cancel();

    const ended = await Promise.race([out, new Promise((r) => setTimeout(() => r('still waiting'), 1000))]);
    expect(ended).not.toBe('still waiting');
    expect(isCancel(errorOf(ended as { ok: boolean }))).toBe(true);
    expect(calls).toHaveLength(1);
  });

  it('skips requests marked rateLimit.skip', async () => {
    const { adapter } = fakeAdapter(() => ok);
    const client = axios.create({ adapter });
    const limiter = fastLimiter();
    attachRateLimiter(client, limiter);

    await client.get('/health', { rateLimit: { skip: true } });

    expect(limiter.snapshot.totals.sent).toBe(0);
  });

  it('detach() ejects the interceptors and returns the permits of requests in flight', async () => {
    let release: (r: Reply) => void = () => undefined;
    const { adapter } = fakeAdapter((_c, n) => (n === 1 ? new Promise<Reply>((r) => (release = r)) : ok));
    const client = axios.create({ adapter });
    const limiter = fastLimiter();
    const detach = attachRateLimiter(client, limiter);

    const first = client.get('/first');
    await new Promise((r) => setTimeout(r, 5));
    expect(limiter.snapshot.inFlight).toBe(1);
    detach();
    detach();
    expect(limiter.snapshot.inFlight).toBe(0);
    release(ok);
    expect((await first).status).toBe(200);
    await client.get('/later');
    expect(limiter.snapshot.totals.sent).toBe(1);
  });

  it('checks its options when attached', () => {
    const client = axios.create();
    expect(() => attachRateLimiter(client, fastLimiter(), { maxRetries: -1 })).toThrow(/`maxRetries`.*-1/);
    expect(() => attachRateLimiter(client, fastLimiter(), { statuses: [1000] })).toThrow(TypeError);
    expect(() => rateLimitInterceptor(fastLimiter(), { priority: Number.NaN })).toThrow(/`priority`/);
  });

  it('a misspelled or mistyped config.rateLimit setting fails the request, naming it; nothing is sent', async () => {
    const { adapter, calls } = fakeAdapter(() => ok);
    const client = axios.create({ adapter });
    attachRateLimiter(client, fastLimiter());
    for (const [rateLimit, message] of [
      [{ skp: true }, /rateLimitInterceptor: `config.rateLimit` has unknown option `skp`/],
      [{ sharekey: false, retyr: false }, /unknown option `sharekey`, `retyr`/],
      [{ skip: 'yes' }, /`config.rateLimit.skip` must be a boolean, got string/],
      ['fast', /`config.rateLimit` must be an object, got string/],
    ] as const) {
      const r = await settle(client.get('/x', { rateLimit: rateLimit as never }));
      expect(r.ok).toBe(false);
      expect((r as { error: Error }).error).toBeInstanceOf(TypeError);
      expect((r as { error: Error }).error.message).toMatch(message);
    }
    expect(calls).toHaveLength(0);
    // Every setting it documents still goes.
    await client.get('/x', { rateLimit: { priority: 1, retry: false, cost: 1, shareKey: 'x', idempotencyKey: 'k' } });
    await client.get('/x', { rateLimit: { skip: true } });
    expect(calls).toHaveLength(2);
    expect(() =>
      rateLimitedRequest(fastLimiter(), client, { url: '/x', rateLimit: { shareky: 'x' } as never }),
    ).toThrow(/rateLimitedRequest: `config.rateLimit` has unknown option `shareky`/);
    expect(() => rateLimitedRequest(fastLimiter(), client, { url: '/x', rateLimit: { shareKey: 3 } as never })).toThrow(
      /`config.rateLimit.shareKey` must be a string or false, got number/,
    );
  });

  it('without an instance, rateLimitInterceptor reads 429s but does not retry them', async () => {
    const { adapter, calls, thrown } = fakeAdapter(() => limited('1'));
    const client = axios.create({ adapter });
    const limiter = fastLimiter();
    const i = rateLimitInterceptor(limiter);
    client.interceptors.request.use(i.request);
    client.interceptors.response.use(i.response, i.error);

    expect(errorOf(await settle(client.get('/x')))).toBe(thrown[0]);
    expect(calls).toHaveLength(1);
    expect(limiter.snapshot.pausedUntil).not.toBeNull();
  });
});

describe('rateLimitedRequest', () => {
  it('is cold: sends on each subscription, none before', async () => {
    const { adapter, calls } = fakeAdapter(() => ok);
    const client = axios.create({ adapter });
    const limiter = fastLimiter();

    const deal$ = rateLimitedRequest<{ ok: boolean }>(limiter, client, { url: '/deals/1' });
    expect(calls).toHaveLength(0);
    expect((await firstValueFrom(deal$)).data).toEqual({ ok: true });
    await lastValueFrom(deal$);
    expect(calls).toHaveLength(2);
  });

  it('leaves an answered call alone when its subscriber goes: a stream body is still read whole', async () => {
    const body = Readable.from(['x'.repeat(1000), 'y'.repeat(1000)]);
    let signal: AbortSignal | undefined;
    const client = axios.create({
      adapter: async (config) => {
        signal = config.signal as AbortSignal;
        // As the http adapter does: an abort destroys the stream it answered with.
        signal.addEventListener('abort', () => body.destroy());
        return { data: body, status: 200, statusText: 'OK', headers: {}, config };
      },
    });
    const res = await firstValueFrom(
      rateLimitedRequest<Readable>(fastLimiter(), client, { url: '/file', responseType: 'stream' }),
    );
    let read = 0;
    for await (const chunk of res.data) read += (chunk as string).length;
    expect(signal?.aborted).toBe(false);
    expect(read).toBe(2000);
  });

  it('retries a 429 through the limiter and errors with the AxiosError when not safe', async () => {
    const { adapter, calls, thrown } = fakeAdapter((c) => (c.method === 'post' || calls.length === 1 ? limited() : ok));
    const client = axios.create({ adapter });
    const limiter = fastLimiter();

    expect((await firstValueFrom(rateLimitedRequest(limiter, client, { url: '/x' }))).status).toBe(200);
    expect(calls).toHaveLength(2);
    const out = await settle(firstValueFrom(rateLimitedRequest(limiter, client, { method: 'POST', url: '/y' })));
    expect(errorOf(out)).toBe(thrown[1]);
    expect(isAxiosError(errorOf(out))).toBe(true);
    expect(calls).toHaveLength(3);
  });

  it('does not send again a body read once (a stream), even with retry', async () => {
    const { adapter, calls } = fakeAdapter((_c, n) => (n === 1 ? limited() : ok));
    const client = axios.create({ adapter });
    const put = (data: unknown) =>
      settle(
        firstValueFrom(
          rateLimitedRequest(fastLimiter(), client, { method: 'PUT', url: '/upload', data }, { retry: true }),
        ),
      );
    expect((await put(Readable.from([Buffer.from('file')]))).ok).toBe(false);
    expect(calls).toHaveLength(1);
    calls.length = 0;
    expect((await put('text')).ok).toBe(true);
    expect(calls).toHaveLength(2);
  });

  it('is gated once even on an instance with attachRateLimiter', async () => {
    const { adapter } = fakeAdapter(() => ok);
    const client = axios.create({ adapter });
    const limiter = fastLimiter();
    const events: LimiterEvent[] = [];
    limiter.events$.subscribe((e) => events.push(e));
    attachRateLimiter(client, limiter);

    await firstValueFrom(rateLimitedRequest(limiter, client, { url: '/x' }));

    expect(events.filter((e) => e.type === 'admitted')).toHaveLength(1);
  });

  it('gives the limiter method, instance baseURL + url, priority and idempotency key', async () => {
    const { provider, infos } = recording();
    const { adapter } = fakeAdapter(() => ok);
    const client = axios.create({ adapter, baseURL: 'https://api.example.com/v1' });
    const limiter = fastLimiter(provider);
    infos.length = 0; // made, the limiter read the provider's rules for a plain GET and POST

    await firstValueFrom(
      rateLimitedRequest(
        limiter,
        client,
        { method: 'patch', url: 'deals/1', headers: { 'IDEMPOTENCY-KEY': 'k2' } },
        { priority: 3 },
      ),
    );
    await firstValueFrom(rateLimitedRequest(limiter, client, { url: '/a' }, { idempotencyKey: 'k3', retry: true }));
    await firstValueFrom(
      rateLimitedRequest(limiter, client, { url: '/a', params: { page: 2 } }, { shareKey: 'page-2' }),
    );
    await firstValueFrom(rateLimitedRequest(limiter, client, { url: '/file', responseType: 'stream' }));

    expect(infos).toEqual([
      { method: 'PATCH', url: 'https://api.example.com/v1/deals/1', priority: 3, idempotencyKey: 'k2' },
      // GETs carry their headers: what tells identical requests apart for sharing.
      {
        method: 'GET',
        url: 'https://api.example.com/v1/a',
        idempotencyKey: 'k3',
        retry: true,
        headers: expect.any(Array),
      },
      { method: 'GET', url: 'https://api.example.com/v1/a?page=2', shareKey: 'page-2', headers: expect.any(Array) },
      { method: 'GET', url: 'https://api.example.com/v1/file', shareKey: false, headers: expect.any(Array) },
    ]);
  });

  it('a config.cancelToken cancelled while queued ends with CanceledError at once and sends nothing', async () => {
    let release: (r: Reply) => void = () => undefined;
    const { adapter, calls } = fakeAdapter((_c, n) => (n === 1 ? new Promise<Reply>((r) => (release = r)) : ok));
    const client = axios.create({ adapter });
    const limiter = fastLimiter();
    const source = axios.CancelToken.source();

    const first = firstValueFrom(rateLimitedRequest(limiter, client, { url: '/first' }));
    const second = settle(
      firstValueFrom(rateLimitedRequest(limiter, client, { url: '/second', cancelToken: source.token })),
    );
    await new Promise((r) => setTimeout(r, 5));
    expect(limiter.snapshot.queued).toBe(1);
    source.cancel();

    expect(isCancel(errorOf(await second))).toBe(true);
    expect(limiter.snapshot.queued).toBe(0);
    release(ok);
    await first;
    expect(calls.map((c) => c.url)).toEqual(['/first']);
  });

  it('a config.signal aborted while queued ends with CanceledError and sends nothing', async () => {
    let release: (r: Reply) => void = () => undefined;
    const { adapter, calls } = fakeAdapter((_c, n) => (n === 1 ? new Promise<Reply>((r) => (release = r)) : ok));
    const client = axios.create({ adapter });
    const limiter = fastLimiter();
    const controller = new AbortController();

    const first = firstValueFrom(rateLimitedRequest(limiter, client, { url: '/first' }));
    const second = settle(
      firstValueFrom(rateLimitedRequest(limiter, client, { url: '/second', signal: controller.signal })),
    );
    await new Promise((r) => setTimeout(r, 5));
    expect(limiter.snapshot.queued).toBe(1);
    controller.abort();

    expect(isCancel(errorOf(await second))).toBe(true);
    expect(limiter.snapshot.queued).toBe(0);
    release(ok);
    await first;
    expect(calls.map((c) => c.url)).toEqual(['/first']);
    const late = await settle(
      firstValueFrom(rateLimitedRequest(limiter, client, { url: '/late', signal: controller.signal })),
    );
    expect(isCancel(errorOf(late))).toBe(true);
    expect(calls).toHaveLength(1);
  });
});
