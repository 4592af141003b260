import { afterEach, describe, expect, it } from '@jest/globals';
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
import { rateLimitedFetch } from '../../lib/adapters/fetch.js';
import {
  fixedWindowApi,
  pacingReport,
  startTestServer,
  wait,
  type FixedWindowApi,
  type FixedWindowApiOptions,
  type TestServer,
} from '../helpers/server.js';

const TOKEN = 'sk_live_TOPSECRET_fetch_0123456789';
const auth = { Authorization: `Bearer ${TOKEN}` };
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

async function start(opts: FixedWindowApiOptions): Promise<TestServer> {
  api = fixedWindowApi(opts);
  server = await startTestServer(api);
  return server;
}

async function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error };
  }
}

describe('rateLimitedFetch over a real socket', () => {
  it('paces 20 concurrent requests to 5 per second: all succeed, the server sees no 429', async () => {
    const s = await start({ limit: 5, windowMs: 1000 });
    const limiter = limiterOf({ provider: generic(), key: TOKEN });
    const events: LimiterEvent[] = [];
    limiter.events$.subscribe((e) => events.push(e));
    const apiFetch = rateLimitedFetch(limiter);

    const bodies = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const res = await apiFetch(`${s.url}/items/${i}`, { headers: auth });
        return (await res.json()) as { ok: boolean };
      }),
    );

    expect(bodies.map((b) => b.ok)).toEqual(Array(20).fill(true));
    const report = {
      ...pacingReport(s.requests, 5, 1000),
      admitted: events.filter((e) => e.type === 'admitted').map((e) => `${Math.floor(e.at / 1000)}+${e.at % 1000}ms`),
    };
    expect({
      count: s.requests.length,
      non200: s.requests.filter((r) => r.status !== 200).length,
      ...report,
    }).toMatchObject({
      count: 20,
      non200: 0,
      over: [],
    });
    expect(report.windows).toBeGreaterThanOrEqual(4);
    expect(limiter.snapshot).toMatchObject({ queued: 0, inFlight: 0 });
  });

  it('retries a GET after Retry-After: 1, and holds the other requests as long', async () => {
    const s = await start({
      limit: 100,
      windowMs: 1000,
      override: (r) =>
        r.n === 1 ? { status: 429, headers: { 'Retry-After': '1' }, body: { error: 'slow down' } } : undefined,
    });
    const apiFetch = rateLimitedFetch(limiterOf({ provider: generic(), key: TOKEN }));

    const statuses = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => (await apiFetch(`${s.url}/items/${i}`, { headers: auth })).status),
    );

    expect(statuses).toEqual(Array(8).fill(200));
    const [first, ...rest] = s.requests;
    expect(first?.status).toBe(429);
    expect(rest).toHaveLength(8);
    expect(rest.filter((r) => r.url === first?.url)).toHaveLength(1);
    for (const r of rest) expect(r.at - first!.at).toBeGreaterThanOrEqual(1000);
  });

  it('does not retry a POST without an idempotency key: resolves with the unread 429 Response', async () => {
    const s = await start({
      limit: 100,
      windowMs: 1000,
      override: (r) =>
        r.method === 'POST'
          ? { status: 429, headers: { 'Retry-After': '1' }, body: { error: 'rate limited' } }
          : undefined,
    });
    const limiter = limiterOf({ provider: generic(), key: TOKEN });
    const apiFetch = rateLimitedFetch(limiter);

    const res = await apiFetch(`${s.url}/deals`, { method: 'POST', headers: auth, body: '{"title":"x"}' });

    expect(res.status).toBe(429);
    expect(res.bodyUsed).toBe(false);
    expect(await res.json()).toEqual({ error: 'rate limited' });
    expect(s.requests.map((r) => r.method)).toEqual(['POST']);
    // The limiter read it all the same: the next request waits out the Retry-After.
    expect(limiter.snapshot.pausedUntil).not.toBeNull();
  });

  it('retries a Request with a body and an Idempotency-Key, sending the body each time', async () => {
    const s = await start({
      limit: 100,
      windowMs: 1000,
      override: (r) => (r.n === 1 ? { status: 429, headers: { 'Retry-After': '1' } } : undefined),
    });
    const apiFetch = rateLimitedFetch(limiterOf({ provider: generic(), key: TOKEN }));
    const request = new Request(`${s.url}/deals`, {
      method: 'POST',
      headers: { ...auth, 'Idempotency-Key': 'deal-42', 'Content-Type': 'application/json' },
      body: '{"title":"x"}',
    });

    const res = await apiFetch(request);

    expect(res.status).toBe(200);
    expect(request.bodyUsed).toBe(false);
    expect(s.requests.map((r) => [r.status, r.method, r.idempotencyKey, r.body])).toEqual([
      [429, 'POST', 'deal-42', '{"title":"x"}'],
      [200, 'POST', 'deal-42', '{"title":"x"}'],
    ]);
  });

  it('an abort while queued rejects with the signal’s reason and sends nothing', async () => {
    const s = await start({ limit: 5, windowMs: 1000, latencyMs: 300 });
    const limiter = limiterOf({ provider: generic(), key: TOKEN });
    const apiFetch = rateLimitedFetch(limiter);
    const controller = new AbortController();
    const reason = new Error('user navigated away');

    const a = apiFetch(`${s.url}/a`, { headers: auth }); // the cold-start request
    const b = settle(apiFetch(`${s.url}/b`, { headers: auth, signal: controller.signal }));
    await wait(50);
    expect(limiter.snapshot.queued).toBe(1);
    controller.abort(reason);

    expect(await b).toEqual({ ok: false, error: reason });
    expect((await a).status).toBe(200);
    await wait(200);
    expect(s.requests.map((r) => r.url)).toEqual(['/a']);
    expect(limiter.snapshot).toMatchObject({ queued: 0, inFlight: 0 });
  });

  it('an abort in flight rejects like fetch and returns the permit', async () => {
    const s = await start({ limit: 5, windowMs: 1000, latencyMs: 300 });
    const limiter = limiterOf({ provider: generic(), key: TOKEN });
    const controller = new AbortController();

    const out = settle(rateLimitedFetch(limiter)(`${s.url}/a`, { signal: controller.signal }));
    await wait(50);
    controller.abort();

    const result = await out;
    expect(result.ok).toBe(false);
    expect((result as { error: Error }).error.name).toBe('AbortError');
    expect(limiter.snapshot.inFlight).toBe(0);
    await wait(20);
    expect(s.requests.map((r) => [r.url, r.aborted])).toEqual([['/a', true]]);
  });

  it('never shows the token in the snapshot, events or errors', async () => {
    const s = await start({
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
      read: (res, req) =>
        res.status === 403 && typeof res.body === 'string' && res.body.includes('Cloudflare')
          ? { outcome: 'blocked', buckets: [] }
          : base.read(res, req),
    });
    const limiter = limiterOf({ provider: blocking, key: TOKEN, backoffBaseMs: 10, random: () => 0 });
    const other = limiterOf({ provider: generic(), key: TOKEN, maxWaitMs: 2000 });
    const events: LimiterEvent[] = [];
    limiter.events$.subscribe((e) => events.push(e));
    other.events$.subscribe((e) => events.push(e));
    const f1 = rateLimitedFetch(limiter, { maxRetries: 1 });
    const f2 = rateLimitedFetch(other);

    const q = `?api_token=${TOKEN}`;
    expect((await f1(`${s.url}/items/1${q}`, { headers: auth })).status).toBe(200);
    const outs = [
      await settle(f1(`${s.url}/always429${q}`, { headers: auth })),
      await settle(f1(`${s.url}/blocked${q}`, { headers: auth })),
      await settle(f1(`${s.url}/items/2${q}`, { headers: auth })),
      await settle(f2(`${s.url}/long${q}`, { headers: auth })),
      await settle(f2(`${s.url}/items/3${q}`, { headers: auth })),
    ];

    const errors = outs.map((o) => (o.ok ? undefined : o.error));
    expect(isRetryLimitError(errors[0])).toBe(true);
    expect(isRetryLimitError(errors[0]) && rawCauseOf(errors[0]) instanceof Response).toBe(true);
    expect(isBlockedError(errors[1])).toBe(true);
    expect(isBlockedError(errors[2])).toBe(true);
    expect(isQuotaExhaustedError(errors[3])).toBe(true);
    expect(isQuotaExhaustedError(errors[4])).toBe(true);
    expect(s.requests.map((r) => r.url.split('?')[0])).toEqual([
      '/items/1',
      '/always429',
      '/always429',
      '/blocked',
      '/long',
    ]);

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

describe('rateLimitedFetch reading a 429 body over a real socket', () => {
  it('a body that never ends: the call resolves after bodyTimeoutMs, the permit comes back, the headers are read', async () => {
    server = await startTestServer((_req, res) => {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' });
      res.write('{"error":');
      // …and nothing more, ever (the socket is closed by the test's clean-up).
    });
    const limiter = limiterOf({ provider: providers.generic(), key: 'never-ends' });
    const limitedFetch = rateLimitedFetch(limiter, { bodyTimeoutMs: 300 });

    let timer: ReturnType<typeof setTimeout> | undefined;
    const out = await Promise.race([
      limitedFetch(`${server.url}/deals`, { method: 'POST' }).then((r) => r.status),
      new Promise((resolve) => (timer = setTimeout(() => resolve('hung'), 5000))),
    ]);
    clearTimeout(timer);

    expect(out).toBe(429);
    expect(limiter.snapshot.inFlight).toBe(0);
    expect(limiter.snapshot.pausedUntil).not.toBeNull();
  });

  it('an 8 MiB body without Content-Length: the call resolves, the caller reads it whole', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'x');
    server = await startTestServer((_req, res) => {
      res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '1' });
      let left = 128;
      const more = (): void => {
        while (left > 0) {
          left--;
          if (!res.write(chunk)) {
            res.once('drain', more);
            return;
          }
        }
        res.end();
      };
      more();
    });
    const limiter = limiterOf({ provider: providers.generic(), key: 'huge' });

    const res = await rateLimitedFetch(limiter)(`${server.url}/deals`, { method: 'POST' });

    expect(res.status).toBe(429);
    expect(limiter.snapshot.inFlight).toBe(0);
    expect((await res.arrayBuffer()).byteLength).toBe(8 * 1024 * 1024);
  });
});
