import { afterEach, describe, expect, it } from '@jest/globals';
import axios, { isAxiosError, isCancel, type AxiosInstance, type AxiosResponse } from 'axios';
import { firstValueFrom, lastValueFrom, merge, toArray, type Observable } from 'rxjs';
import {
  createLimiter,
  defineProvider,
  describeEvent,
  isBlockedError,
  isQuotaExhaustedError,
  isRetryLimitError,
  providers,
  type Limiter,
  type LimiterEvent,
  rawCauseOf,
} from '../../lib/index.js';
import { attachRateLimiter, rateLimitedRequest } from '../../lib/adapters/axios.js';
import {
  fixedWindowApi,
  pacingReport,
  startTestServer,
  wait,
  type FixedWindowApi,
  type FixedWindowApiOptions,
  type TestServer,
} from '../helpers/server.js';

const TOKEN = 'sk_live_TOPSECRET_axios_0123456789';
const generic = () => providers.generic({ resetUnit: 'unix-seconds' });

let server: TestServer | undefined;
let api: FixedWindowApi | undefined;
/** The limiters a test made: closed after it, so the next test's limiter of the token starts fresh. */
const made: Limiter[] = [];

/** `createLimiter`, closed after the test (limiters of one token share their state until then). */
function limiterOf(options: Parameters<typeof createLimiter>[0]): Limiter {
  const limiter = createLimiter(options);
  made.push(limiter);
  return limiter;
}

afterEach(async () => {
  api?.dispose();
  await server?.close();
  await Promise.all(made.splice(0).map((l) => l.close()));
  server = undefined;
  api = undefined;
});

async function start(opts: FixedWindowApiOptions): Promise<{ server: TestServer; client: AxiosInstance }> {
  api = fixedWindowApi(opts);
  server = await startTestServer(api);
  const client = axios.create({ baseURL: server.url, headers: { Authorization: `Bearer ${TOKEN}` } });
  return { server, client };
}

async function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error };
  }
}

function expectPacedWithoutA429(s: TestServer, limiter: Limiter, count: number, events: readonly LimiterEvent[]): void {
  const report = {
    ...pacingReport(s.requests, 5, 1000),
    admitted: events.filter((e) => e.type === 'admitted').map((e) => `${Math.floor(e.at / 1000)}+${e.at % 1000}ms`),
  };
  expect({
    count: s.requests.length,
    non200: s.requests.filter((r) => r.status !== 200).length,
    ...report,
  }).toMatchObject({
    count,
    non200: 0,
    over: [],
  });
  // 20 requests at 5 per window need at least 4 windows: the limit was used, not guessed.
  expect(report.windows).toBeGreaterThanOrEqual(Math.ceil(count / 5));
  expect(limiter.snapshot).toMatchObject({ queued: 0, inFlight: 0 });
}

describe('attachRateLimiter over a real socket', () => {
  it('paces 20 concurrent requests to 5 per second: all succeed, the server sees no 429', async () => {
    const { server: s, client } = await start({ limit: 5, windowMs: 1000 });
    const limiter = limiterOf({ provider: generic(), key: TOKEN });
    const events: LimiterEvent[] = [];
    limiter.events$.subscribe((e) => events.push(e));
    attachRateLimiter(client, limiter);

    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => client.get<{ ok: boolean }>(`/items/${i}`)));

    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    expectPacedWithoutA429(s, limiter, 20, events);
  });

  it('retries a GET after Retry-After: 1, and holds the other requests as long', async () => {
    const { server: s, client } = await start({
      limit: 100,
      windowMs: 1000,
      override: (r) =>
        r.n === 1 ? { status: 429, headers: { 'Retry-After': '1' }, body: { error: 'slow down' } } : undefined,
    });
    const limiter = limiterOf({ provider: generic(), key: TOKEN });
    attachRateLimiter(client, limiter);

    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => client.get(`/items/${i}`)));

    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
    const [first, ...rest] = s.requests;
    expect(first?.status).toBe(429);
    expect(rest).toHaveLength(8);
    expect(rest.filter((r) => r.url === first?.url)).toHaveLength(1);
    for (const r of rest) expect(r.at - first!.at).toBeGreaterThanOrEqual(1000);
  });

  it('does not retry a POST without an idempotency key: rejects with the AxiosError as received', async () => {
    const { server: s, client } = await start({
      limit: 100,
      windowMs: 1000,
      override: (r) => (r.method === 'POST' ? { status: 429, headers: { 'Retry-After': '1' } } : undefined),
    });
    const limiter = limiterOf({ provider: generic(), key: TOKEN });
    attachRateLimiter(client, limiter);

    const out = await settle(client.post('/deals', { title: 'x' }));

    expect(out.ok).toBe(false);
    const error = (out as { error: unknown }).error;
    expect(isAxiosError(error)).toBe(true);
    expect(isAxiosError(error) && error.response?.status).toBe(429);
    expect(s.requests.map((r) => r.method)).toEqual(['POST']);
    expect(limiter.snapshot.inFlight).toBe(0);
  });

  it('retries a POST that carries an Idempotency-Key header', async () => {
    const { server: s, client } = await start({
      limit: 100,
      windowMs: 1000,
      override: (r) => (r.n === 1 ? { status: 429, headers: { 'Retry-After': '1' } } : undefined),
    });
    attachRateLimiter(client, limiterOf({ provider: generic(), key: TOKEN }));

    const res = await client.post('/deals', { title: 'x' }, { headers: { 'Idempotency-Key': 'deal-42' } });

    expect(res.status).toBe(200);
    expect(s.requests.map((r) => [r.status, r.idempotencyKey, r.body])).toEqual([
      [429, 'deal-42', '{"title":"x"}'],
      [200, 'deal-42', '{"title":"x"}'],
    ]);
  });

  it('an abort while queued removes the request: axios rejects with CanceledError and nothing is sent', async () => {
    const { server: s, client } = await start({ limit: 5, windowMs: 1000, latencyMs: 300 });
    const limiter = limiterOf({ provider: generic(), key: TOKEN });
    attachRateLimiter(client, limiter);
    const controller = new AbortController();

    const a = client.get('/a'); // the cold-start request: the others wait for its headers
    const b = settle(client.get('/b', { signal: controller.signal }));
    await wait(50);
    expect(limiter.snapshot.queued).toBe(1);
    controller.abort();

    const outB = await b;
    expect(outB.ok).toBe(false);
    expect(isCancel((outB as { error: unknown }).error)).toBe(true);
    expect((await a).status).toBe(200);
    await wait(200);
    expect(s.requests.map((r) => r.url)).toEqual(['/a']);
    expect(limiter.snapshot).toMatchObject({ queued: 0, inFlight: 0 });
  });

  it('never shows the token in the snapshot, events or errors', async () => {
    const { client } = await start({
      limit: 100,
      windowMs: 1000,
      override: (r) => {
        if (r.url.startsWith('/always429')) return { status: 429, headers: { 'Retry-After': '0' } };
        if (r.url.startsWith('/blocked'))
          return { status: 403, headers: { 'Content-Type': 'text/html' }, body: '<html>Cloudflare</html>' };
        if (r.url.startsWith('/long')) return { status: 429, headers: { 'Retry-After': '30' } };
        return undefined;
      },
    });
    const base = generic();
    const blocking = defineProvider({
      name: 'generic-with-block',
      buckets: (req) => base.buckets(req),
      read: (res, req) => (res.status === 403 ? { outcome: 'blocked', buckets: [] } : base.read(res, req)),
    });
    const limiter = limiterOf({ provider: blocking, key: TOKEN, backoffBaseMs: 10, random: () => 0 });
    const other = limiterOf({ provider: generic(), key: TOKEN, maxWaitMs: 2000 });
    const events: LimiterEvent[] = [];
    limiter.events$.subscribe((e) => events.push(e));
    other.events$.subscribe((e) => events.push(e));
    attachRateLimiter(client, limiter, { maxRetries: 1 });
    const client2 = axios.create({ baseURL: server!.url, headers: { Authorization: `Bearer ${TOKEN}` } });
    attachRateLimiter(client2, other);

    const q = `?api_token=${TOKEN}`;
    expect((await client.get(`/items/1${q}`)).status).toBe(200);
    const retryLimit = await settle(client.get(`/always429${q}`));
    const blocked = await settle(client.get(`/blocked${q}`));
    const afterBlock = await settle(client.get(`/items/2${q}`));
    const quota = await settle(client2.get('/long', { params: { api_token: TOKEN } }));
    const afterPause = await settle(client2.get(`/items/3${q}`));

    const errors = [retryLimit, blocked, afterBlock, quota, afterPause].map((o) => (o.ok ? undefined : o.error));
    expect(isRetryLimitError(errors[0])).toBe(true);
    expect(isRetryLimitError(errors[0]) && isAxiosError(rawCauseOf(errors[0]))).toBe(true);
    expect(isBlockedError(errors[1])).toBe(true);
    expect(isBlockedError(errors[2])).toBe(true);
    expect(isQuotaExhaustedError(errors[3])).toBe(true);
    expect(isQuotaExhaustedError(errors[4])).toBe(true);

    const texts = [
      JSON.stringify(limiter.snapshot),
      JSON.stringify(other.snapshot),
      JSON.stringify(events),
      ...events.map(describeEvent),
      ...errors.flatMap((e) => [String(e), (e as Error).message, JSON.stringify(e)]),
    ];
    expect(events.length).toBeGreaterThan(10);
    for (const t of texts) expect(t).not.toContain(TOKEN);
  });
});

/** Like an SDK: resolve with the body only, reject with the error's body only. */
function replaceWithBodies(client: AxiosInstance): void {
  client.interceptors.response.use(
    (response) => response.data as AxiosResponse,
    (error: unknown) => Promise.reject((isAxiosError(error) && error.response?.data) || error),
  );
}

describe('attachRateLimiter with other interceptors on the instance', () => {
  it.each([
    ['before', true],
    ['after', false],
  ])(
    'a body-replacing response interceptor registered %s ours: 20 requests paced, none hangs, no 429',
    async (_, first) => {
      const { server: s, client } = await start({ limit: 5, windowMs: 1000 });
      const limiter = limiterOf({ provider: generic(), key: TOKEN });
      const events: LimiterEvent[] = [];
      limiter.events$.subscribe((e) => events.push(e));
      if (first) replaceWithBodies(client);
      attachRateLimiter(client, limiter);
      if (!first) replaceWithBodies(client);

      const bodies = await Promise.all(Array.from({ length: 20 }, (_, i) => client.get(`/items/${i}`)));

      expect(bodies).toEqual(Array(20).fill(expect.objectContaining({ ok: true })));
      expectPacedWithoutA429(s, limiter, 20, events);
    },
  );

  it('a 429 is retried and its body-replaced rejection is not what the caller gets', async () => {
    const { server: s, client } = await start({
      limit: 100,
      windowMs: 1000,
      override: (r) =>
        r.n === 1 ? { status: 429, headers: { 'Retry-After': '1' }, body: { error: 'slow' } } : undefined,
    });
    replaceWithBodies(client);
    attachRateLimiter(client, limiterOf({ provider: generic(), key: TOKEN }));

    const body = await client.get('/items/1');

    expect(body).toMatchObject({ ok: true });
    expect(s.requests.map((r) => r.status)).toEqual([429, 200]);
  });

  it('a request interceptor that throws after ours keeps no permit: the next request goes', async () => {
    const { server: s, client } = await start({ limit: 5, windowMs: 1000 });
    const limiter = limiterOf({ provider: generic(), key: TOKEN });
    // Registered before ours, so axios runs it after ours.
    client.interceptors.request.use((config) => {
      if (config.url === '/fails') throw new Error('signing failed');
      return config;
    });
    attachRateLimiter(client, limiter);

    const failed = await settle(client.get('/fails'));
    const next = await Promise.race([client.get('/items/1').then((r) => r.status), wait(3000).then(() => 'hung')]);

    expect((failed as { error: Error }).error.message).toBe('signing failed');
    expect(next).toBe(200);
    expect(s.requests.map((r) => r.url)).toEqual(['/items/1']);
    expect(limiter.snapshot).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it('rateLimit.idempotencyKey is sent as the Idempotency-Key header on every attempt; a caller’s header wins', async () => {
    const { server: s, client } = await start({
      limit: 100,
      windowMs: 1000,
      override: (r) => (r.n === 1 || r.n === 3 ? { status: 429, headers: { 'Retry-After': '1' } } : undefined),
    });
    attachRateLimiter(client, limiterOf({ provider: generic(), key: TOKEN }));

    await client.post('/deals', { title: 'x' }, { rateLimit: { idempotencyKey: 'deal-42' } });
    await client.post(
      '/deals',
      { title: 'y' },
      { headers: { 'Idempotency-Key': 'mine' }, rateLimit: { idempotencyKey: 'deal-43' } },
    );

    expect(s.requests.map((r) => [r.status, r.idempotencyKey])).toEqual([
      [429, 'deal-42'],
      [200, 'deal-42'],
      [429, 'mine'],
      [200, 'mine'],
    ]);
  });
});

describe('rateLimitedRequest over a real socket', () => {
  const many = <T>(n: number, make: (i: number) => Observable<T>) =>
    lastValueFrom(merge(...Array.from({ length: n }, (_, i) => make(i))).pipe(toArray()));

  it('paces 20 concurrent requests to 5 per second: all succeed, the server sees no 429', async () => {
    const { server: s, client } = await start({ limit: 5, windowMs: 1000 });
    const limiter = limiterOf({ provider: generic(), key: TOKEN });
    const events: LimiterEvent[] = [];
    limiter.events$.subscribe((e) => events.push(e));

    const results = await many(20, (i) => rateLimitedRequest<{ ok: boolean }>(limiter, client, { url: `/items/${i}` }));

    expect(results.map((r) => r.data.ok)).toEqual(Array(20).fill(true));
    expectPacedWithoutA429(s, limiter, 20, events);
  });

  it('retries a GET after Retry-After: 1, and holds the other requests as long', async () => {
    const { server: s, client } = await start({
      limit: 100,
      windowMs: 1000,
      override: (r) => (r.n === 1 ? { status: 429, headers: { 'Retry-After': '1' } } : undefined),
    });
    const limiter = limiterOf({ provider: generic(), key: TOKEN });

    const results: AxiosResponse[] = await many(8, (i) => rateLimitedRequest(limiter, client, { url: `/items/${i}` }));

    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
    const [first, ...rest] = s.requests;
    expect(first?.status).toBe(429);
    expect(rest).toHaveLength(8);
    for (const r of rest) expect(r.at - first!.at).toBeGreaterThanOrEqual(1000);
  });

  it('does not retry a POST without an idempotency key: errors with the AxiosError as received', async () => {
    const { server: s, client } = await start({
      limit: 100,
      windowMs: 1000,
      override: (r) => (r.method === 'POST' ? { status: 429, headers: { 'Retry-After': '1' } } : undefined),
    });
    const limiter = limiterOf({ provider: generic(), key: TOKEN });

    const out = await settle(
      firstValueFrom(rateLimitedRequest(limiter, client, { method: 'POST', url: '/deals', data: { a: 1 } })),
    );

    expect(out.ok).toBe(false);
    const error = (out as { error: unknown }).error;
    expect(isAxiosError(error) && error.response?.status).toBe(429);
    expect(s.requests).toHaveLength(1);
  });

  it('unsubscribing while queued sends nothing; unsubscribing in flight aborts the call', async () => {
    const { server: s, client } = await start({ limit: 5, windowMs: 1000, latencyMs: 300 });
    const limiter = limiterOf({ provider: generic(), key: TOKEN });

    const a = rateLimitedRequest(limiter, client, { url: '/a' }).subscribe();
    const b = rateLimitedRequest(limiter, client, { url: '/b' }).subscribe();
    await wait(50);
    expect(limiter.snapshot).toMatchObject({ queued: 1, inFlight: 1 });
    b.unsubscribe(); // queued
    a.unsubscribe(); // in flight
    expect(limiter.snapshot).toMatchObject({ queued: 0, inFlight: 0 });
    await wait(400);

    expect(s.requests.map((r) => [r.url, r.aborted])).toEqual([['/a', true]]);
  });

  it('an aborted config.signal cancels the call', async () => {
    const { server: s, client } = await start({ limit: 5, windowMs: 1000, latencyMs: 300 });
    const limiter = limiterOf({ provider: generic(), key: TOKEN });
    const controller = new AbortController();

    const out = settle(firstValueFrom(rateLimitedRequest(limiter, client, { url: '/a', signal: controller.signal })));
    await wait(50);
    controller.abort();

    const result = await out;
    expect(result.ok).toBe(false);
    expect(isCancel((result as { error: unknown }).error)).toBe(true);
    await wait(50);
    expect(s.requests.map((r) => [r.url, r.aborted])).toEqual([['/a', true]]);
    expect(limiter.snapshot.inFlight).toBe(0);
  });
});

describe('rateLimitedRequest with other interceptors on the instance', () => {
  it('a body-replacing response interceptor: 20 requests paced, none hangs, no 429', async () => {
    const { server: s, client } = await start({ limit: 5, windowMs: 1000 });
    const limiter = limiterOf({ provider: generic(), key: TOKEN });
    const events: LimiterEvent[] = [];
    limiter.events$.subscribe((e) => events.push(e));
    replaceWithBodies(client);

    const bodies = await lastValueFrom(
      merge(...Array.from({ length: 20 }, (_, i) => rateLimitedRequest(limiter, client, { url: `/items/${i}` }))).pipe(
        toArray(),
      ),
    );

    expect(bodies).toEqual(Array(20).fill(expect.objectContaining({ ok: true })));
    expectPacedWithoutA429(s, limiter, 20, events);
  });

  it('the idempotencyKey option is sent as the Idempotency-Key header on every attempt', async () => {
    const { server: s, client } = await start({
      limit: 100,
      windowMs: 1000,
      override: (r) => (r.n === 1 ? { status: 429, headers: { 'Retry-After': '1' } } : undefined),
    });
    const limiter = limiterOf({ provider: generic(), key: TOKEN });

    await firstValueFrom(
      rateLimitedRequest(limiter, client, { method: 'POST', url: '/deals', data: { a: 1 } }, { idempotencyKey: 'k-7' }),
    );

    expect(s.requests.map((r) => [r.status, r.idempotencyKey])).toEqual([
      [429, 'k-7'],
      [200, 'k-7'],
    ]);
  });
});
