// Angular's packages are partially compiled: outside an Angular CLI build they need the JIT compiler.
import '@angular/compiler';

import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import {
  HttpClient,
  HttpContext,
  HttpErrorResponse,
  HttpHeaders,
  HttpResponse,
  provideHttpClient,
  withFetch,
  withInterceptors,
  type HttpInterceptorFn,
} from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { inject, InjectionToken, provideZonelessChangeDetection } from '@angular/core';
import { TestBed, TestComponentRenderer } from '@angular/core/testing';
import { BrowserTestingModule, platformBrowserTesting } from '@angular/platform-browser/testing';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  firstValueFrom,
  from,
  lastValueFrom,
  mergeMap,
  tap,
  toArray,
  VirtualTimeScheduler,
  type Observable,
} from 'rxjs';
import {
  createLimiter,
  describeEvent,
  isRetryLimitError,
  providers,
  type Limiter,
  type LimiterEvent,
  rawCauseOf,
  type RateLimitError,
} from '../../lib/index.js';
import {
  extractAngularResponse,
  RATE_LIMIT_COST,
  RATE_LIMIT_PRIORITY,
  RATE_LIMIT_RETRY,
  RATE_LIMIT_SKIP,
  rateLimitInterceptor,
  type MissingHeadersReport,
  type RateLimitInterceptorOptions,
} from '../../lib/adapters/angular.js';
import { startSimulator, type Simulator } from '../../lib/testing/index.js';

const TOKEN = 'sk_live_TOPSECRET_angular_0123456789';
/**
 * A key of its own for each limiter made here (limiters of one provider and key in a process
 * share one limit state, and these stand for independent credentials); each still holds the
 * token, so a leak of it is still found.
 */
let keys = 0;
const tokenKey = () => `${TOKEN}-${++keys}`;
const API = 'https://api.example.com';

beforeAll(() => {
  TestBed.initTestEnvironment(BrowserTestingModule, platformBrowserTesting());
});
afterEach(() => {
  TestBed.resetTestingModule();
  jest.restoreAllMocks();
});

/**
 * An HttpClient with `rateLimitInterceptor(options)` and, after it, a recorder of what goes
 * on to the backend. `'fetch'` sends over real sockets (`withFetch()`), `'testing'` to
 * HttpTestingController.
 */
function setup(backend: 'fetch' | 'testing', options: RateLimitInterceptorOptions, now: () => number = Date.now) {
  const sent: Array<{ method: string; url: string; at: number }> = [];
  const errors: unknown[] = [];
  const recorder: HttpInterceptorFn = (req, next) => {
    sent.push({ method: req.method, url: req.urlWithParams, at: now() });
    return next(req).pipe(tap({ error: (e: unknown) => errors.push(e) }));
  };
  const interceptors = withInterceptors([rateLimitInterceptor(options), recorder]);
  TestBed.configureTestingModule({
    providers: [
      // No DOM in Node: the browser test renderer would look for `document` on teardown.
      { provide: TestComponentRenderer, useClass: TestComponentRenderer },
      provideZonelessChangeDetection(),
      backend === 'fetch' ? provideHttpClient(withFetch(), interceptors) : provideHttpClient(interceptors),
      ...(backend === 'testing' ? [provideHttpClientTesting()] : []),
    ],
  });
  const http = TestBed.inject(HttpClient);
  const httpTesting = backend === 'testing' ? TestBed.inject(HttpTestingController) : undefined;
  return { http, httpTesting, sent, errors };
}

function testing(options: RateLimitInterceptorOptions, now?: () => number) {
  const s = setup('testing', options, now);
  if (!s.httpTesting) throw new Error('no HttpTestingController');
  return { ...s, httpTesting: s.httpTesting };
}

/** Outcome of a subscription, observed synchronously. */
function watch<T>(source: Observable<T>) {
  const out: { values: T[]; error?: unknown; done: boolean } = { values: [], done: false };
  const subscription = source.subscribe({
    next: (v) => out.values.push(v),
    error: (e: unknown) => {
      out.error = e;
      out.done = true;
    },
    complete: () => {
      out.done = true;
    },
  });
  return Object.assign(out, { subscription });
}

function eventsOf(limiter: Limiter): LimiterEvent[] {
  const events: LimiterEvent[] = [];
  limiter.events$.subscribe((e) => events.push(e));
  return events;
}

const limitHeaders = (remaining: number, limit = 100, resetUnixS = 60) => ({
  'X-RateLimit-Limit': String(limit),
  'X-RateLimit-Remaining': String(remaining),
  'X-RateLimit-Reset': String(resetUnixS),
});

describe('rateLimitInterceptor with a real HttpClient (withFetch) against the simulator', () => {
  let sim: Simulator;
  let procoreSim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ latencyMs: 2, pipedrive: { plan: 'advanced' } });
    // Procore's hour compressed to 2 s.
    procoreSim = await startSimulator({ latencyMs: 2, timeScale: 1800, procore: { limit: 30 } });
  });
  afterAll(async () => {
    await sim.close();
    await procoreSim.close();
  });

  it('60 calls from 20 concurrent streams: all succeed, zero 429s, at the pace the headers allow', async () => {
    const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: 'token-A' });
    const { http } = setup('fetch', { limiters: () => limiter });
    const base = sim.urlFor('pipedrive');
    const others = new Set(Object.keys(sim.stats().pipedrive));

    const started = Date.now();
    const statuses = await lastValueFrom(
      from(Array.from({ length: 60 }, (_, i) => i)).pipe(
        mergeMap(
          (i) =>
            http
              .get<{ success: boolean }>(`${base}/v1/deals/${i}`, {
                params: { api_token: 'token-A' },
                observe: 'response',
              })
              .pipe(mergeMap(async (res) => [res.status, res.body?.success] as const)),
          20,
        ),
        toArray(),
      ),
    );
    const elapsed = Date.now() - started;

    expect(statuses).toHaveLength(60);
    expect(statuses.filter(([status, ok]) => status !== 200 || ok !== true)).toEqual([]);
    const counts = Object.entries(sim.stats().pipedrive).filter(([cred]) => !others.has(cred));
    expect(counts).toHaveLength(1);
    expect(counts[0]?.[1]).toMatchObject({ ok: 60, limited: 0, blocked: 0, sentWhileLimited: 0 });
    // 40 per 2 s: the last 20 had to wait for the second window.
    expect(elapsed).toBeGreaterThanOrEqual(1900);
    expect(limiter.snapshot).toMatchObject({ queued: 0, inFlight: 0, totals: { sent: 60, rateLimited: 0 } });
    expect(limiter.snapshot.buckets.some((b) => b.limit === 40 && b.source === 'headers')).toBe(true);
  }, 20_000);

  it('picks the limiter by host (with port first); other hosts pass through untouched', async () => {
    const pipedrive = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: 'token-H' });
    const procore = createLimiter({ provider: providers.procore(), key: 'token-P' });
    const pdUrl = new URL(sim.urlFor('pipedrive'));
    const pcUrl = new URL(procoreSim.urlFor('procore'));
    const { http, sent } = setup('fetch', { limiters: { [pdUrl.host]: pipedrive, [pcUrl.host]: procore } });

    await firstValueFrom(http.get(`${pdUrl.href}/v1/deals/1`, { params: { api_token: 'token-H' } }));
    await firstValueFrom(
      http.get(`${pcUrl.href}/rest/v1.0/projects`, { headers: { Authorization: 'Bearer token-P' } }),
    );
    // Same server, another host name: no limiter for it.
    const other = `http://localhost:${pdUrl.port}/pipedrive/v1/deals/2`;
    await firstValueFrom(http.get(other, { params: { api_token: 'token-H' } }));

    expect(sent).toHaveLength(3);
    expect(pipedrive.snapshot.totals.sent).toBe(1);
    expect(procore.snapshot.totals.sent).toBe(1);
    expect(pipedrive.snapshot.buckets.some((b) => b.source === 'headers')).toBe(true);
    expect(procore.snapshot.buckets.some((b) => b.source === 'headers')).toBe(true);
  });

  it('a `limiters` function runs in the injection context: it can inject() the limiter', async () => {
    const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: 'token-I' });
    const LIMITER = new InjectionToken<Limiter>('limiter', { providedIn: 'root', factory: () => limiter });
    const { http } = setup('fetch', {
      limiters: (req) => (req.url.includes('/pipedrive/') ? inject(LIMITER) : undefined),
    });

    await firstValueFrom(http.get(`${sim.urlFor('pipedrive')}/v1/deals/1`, { params: { api_token: 'token-I' } }));

    expect(limiter.snapshot.totals.sent).toBe(1);
  });

  it('a 429 (an HttpErrorResponse) pauses the limiter, and the GET is sent again and succeeds', async () => {
    const limiter = createLimiter({ provider: providers.procore(), key: 'token-R' });
    const events = eventsOf(limiter);
    const { http, sent } = setup('fetch', { limiters: () => limiter });
    const url = `${procoreSim.urlFor('procore')}/rest/v1.0/projects`;
    const headers = { Authorization: 'Bearer token-R' };

    // Start at the beginning of a window (2 s here), so that it cannot end halfway through.
    const reset = Number((await fetch(url, { headers })).headers.get('x-rate-limit-reset'));
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, reset * 1000 - Date.now()) + 20));
    // The limiter learns the budget, then another client spends all of it behind its back.
    await firstValueFrom(http.get(url, { headers }));
    const left = Number((await fetch(url, { headers })).headers.get('x-rate-limit-remaining') ?? Number.NaN);
    expect(left).toBeGreaterThan(0);
    await Promise.all(Array.from({ length: left }, () => fetch(url, { headers }).then((r) => r.arrayBuffer())));

    const res = await firstValueFrom(http.get(url, { headers, observe: 'response' }));

    expect(res.status).toBe(200);
    expect(sent).toHaveLength(3);
    expect(Object.values(procoreSim.stats().procore).find((c) => c.limited > 0)).toMatchObject({
      limited: 1,
      sentWhileLimited: 0,
    });
    expect(events.filter((e) => e.type === 'rate-limited')).toHaveLength(1);
    expect(limiter.snapshot.totals.rateLimited).toBe(1);
  }, 15_000);

  it('a network error ends the call with the original HttpErrorResponse, not retried, permit returned', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const limiter = createLimiter({ provider: providers.generic(), key: tokenKey() });
    const { http, sent, errors } = setup('fetch', { limiters: () => limiter });

    const error = await firstValueFrom(http.get(`http://127.0.0.1:${port}/v1/items`)).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(HttpErrorResponse);
    expect((error as HttpErrorResponse).status).toBe(0);
    expect(errors).toHaveLength(1);
    expect(error).toBe(errors[0]);
    expect(sent).toHaveLength(1);
    expect(limiter.snapshot).toMatchObject({ inFlight: 0, queued: 0, pausedUntil: null });
  });
});

describe('rateLimitInterceptor with HttpTestingController', () => {
  it('retries a GET after the 429’s Retry-After (virtual time), holding the other requests as long', () => {
    const scheduler = new VirtualTimeScheduler();
    const limiter = createLimiter({ provider: providers.generic(), key: tokenKey(), scheduler });
    const { http, httpTesting, sent } = testing({ limiters: { 'api.example.com': limiter } }, () => scheduler.now());

    const first = watch(http.get(`${API}/v1/items/1`));
    httpTesting
      .expectOne(`${API}/v1/items/1`)
      .flush({ error: 'slow down' }, { status: 429, statusText: 'Too Many Requests', headers: { 'Retry-After': '2' } });
    const second = watch(http.get(`${API}/v1/items/2`));
    expect(httpTesting.match(() => true)).toEqual([]);
    expect(first.done).toBe(false);

    scheduler.flush();
    // Nothing is sent before the 2 s are up; then the retry and the held request go.
    const open = httpTesting.match(() => true);
    expect(open.map((r) => r.request.url).sort()).toEqual([`${API}/v1/items/1`, `${API}/v1/items/2`]);
    open.forEach((r, i) => r.flush({ id: r.request.url.slice(-1) }, { headers: limitHeaders(98 - i) }));
    httpTesting.verify();

    expect(first).toMatchObject({ values: [{ id: '1' }], done: true });
    expect(first.error).toBeUndefined();
    expect(second).toMatchObject({ values: [{ id: '2' }], done: true });
    expect(sent.map((s) => [s.url.slice(API.length), s.at]).sort()).toEqual([
      ['/v1/items/1', 0],
      ['/v1/items/1', 2000],
      ['/v1/items/2', 2000],
    ]);
    expect(limiter.snapshot.totals).toMatchObject({ sent: 3, rateLimited: 1 });
  });

  it('a POST without an Idempotency-Key is not retried: the caller gets the 429 HttpErrorResponse', () => {
    const scheduler = new VirtualTimeScheduler();
    const limiter = createLimiter({ provider: providers.generic(), key: tokenKey(), scheduler });
    const { http, httpTesting } = testing({ limiters: () => limiter });

    const post = watch(http.post(`${API}/v1/deals`, { title: 'x' }));
    httpTesting
      .expectOne({ method: 'POST', url: `${API}/v1/deals` })
      .flush({ error: 'slow down' }, { status: 429, statusText: 'Too Many Requests', headers: { 'Retry-After': '5' } });
    scheduler.flush();
    httpTesting.verify();

    expect(post.error).toBeInstanceOf(HttpErrorResponse);
    expect(post.error).toMatchObject({ status: 429, error: { error: 'slow down' } });
    // The limiter read it all the same: every request waits out the Retry-After.
    expect(limiter.snapshot.totals.rateLimited).toBe(1);
  });

  it('retries a POST with an Idempotency-Key, or with RATE_LIMIT_RETRY; RATE_LIMIT_RETRY false stops a GET', () => {
    const scheduler = new VirtualTimeScheduler();
    const limiter = createLimiter({ provider: providers.generic(), key: tokenKey(), scheduler });
    const { http, httpTesting } = testing({ limiters: () => limiter });
    const limited = { status: 429, statusText: 'Too Many Requests', headers: { 'Retry-After': '1' } };

    const keyed = watch(http.post(`${API}/v1/a`, {}, { headers: { 'Idempotency-Key': 'k-1' } }));
    httpTesting.expectOne(`${API}/v1/a`).flush(null, limited);
    scheduler.flush();
    httpTesting.expectOne(`${API}/v1/a`).flush({ ok: 'a' }, { headers: limitHeaders(50) });

    const forced = watch(http.post(`${API}/v1/b`, {}, { context: new HttpContext().set(RATE_LIMIT_RETRY, true) }));
    httpTesting.expectOne(`${API}/v1/b`).flush(null, limited);
    scheduler.flush();
    httpTesting.expectOne(`${API}/v1/b`).flush({ ok: 'b' }, { headers: limitHeaders(49) });

    const forbidden = watch(http.get(`${API}/v1/c`, { context: new HttpContext().set(RATE_LIMIT_RETRY, false) }));
    httpTesting.expectOne(`${API}/v1/c`).flush(null, limited);
    scheduler.flush();
    httpTesting.verify();

    expect(keyed.values).toEqual([{ ok: 'a' }]);
    expect(forced.values).toEqual([{ ok: 'b' }]);
    expect(forbidden.error).toBeInstanceOf(HttpErrorResponse);
    expect((forbidden.error as HttpErrorResponse).status).toBe(429);
  });

  it('past maxRetries the call fails with RetryLimitError, its cause the last HttpErrorResponse', () => {
    const scheduler = new VirtualTimeScheduler();
    const limiter = createLimiter({ provider: providers.generic(), key: tokenKey(), scheduler });
    const { http, httpTesting } = testing({ limiters: () => limiter, maxRetries: 1 });

    const call = watch(http.get(`${API}/v1/items`));
    for (let i = 0; i < 2; i++) {
      httpTesting
        .expectOne(`${API}/v1/items`)
        .flush(null, { status: 429, statusText: 'Too Many Requests', headers: { 'Retry-After': '1' } });
      scheduler.flush();
    }
    httpTesting.verify();

    expect(isRetryLimitError(call.error)).toBe(true);
    const cause = rawCauseOf(call.error as RateLimitError);
    expect(cause).toBeInstanceOf(HttpErrorResponse);
    expect((cause as HttpErrorResponse).status).toBe(429);
  });

  it('RATE_LIMIT_PRIORITY orders waiting requests; the `priority` option is the default', () => {
    const limiter = createLimiter({ provider: providers.generic(), key: tokenKey() });
    const { http, httpTesting } = testing({ limiters: () => limiter, priority: 1 });
    const withPriority = (p: number) => ({ context: new HttpContext().set(RATE_LIMIT_PRIORITY, p) });

    // Cold start: one request goes first; its headers tell the budget.
    watch(http.get(`${API}/v1/first`));
    watch(http.get(`${API}/v1/low`, withPriority(0)));
    watch(http.get(`${API}/v1/default`));
    watch(http.get(`${API}/v1/high`, withPriority(10)));
    watch(http.get(`${API}/v1/mid`, withPriority(5)));
    expect(limiter.snapshot.queued).toBe(4);
    httpTesting.expectOne(`${API}/v1/first`).flush({}, { headers: limitHeaders(99, 100, 1e10) });

    const order = httpTesting.match(() => true).map((r) => r.request.url.slice(`${API}/v1/`.length));
    expect(order).toEqual(['high', 'mid', 'default', 'low']);
  });

  it('RATE_LIMIT_COST takes that many units of the request’s buckets', () => {
    const limiter = createLimiter({ provider: providers.generic(), key: tokenKey() });
    const { http, httpTesting } = testing({ limiters: () => limiter });
    watch(http.get(`${API}/v1/first`));
    httpTesting.expectOne(`${API}/v1/first`).flush({}, { headers: limitHeaders(99, 100, 1e10) });
    watch(http.post(`${API}/v1/heavy`, {}, { context: new HttpContext().set(RATE_LIMIT_COST, 7) }));
    httpTesting.expectOne(`${API}/v1/heavy`);
    expect(limiter.snapshot.buckets[0]).toMatchObject({ remaining: 92, inFlight: 7 });
  });

  it('RATE_LIMIT_SKIP sends the request around the limiter: not held by a pause, response not read', () => {
    const limiter = createLimiter({ provider: providers.generic(), key: tokenKey() });
    const { http, httpTesting } = testing({ limiters: () => limiter });
    limiter.pause(60_000);

    const pausedUntil = limiter.snapshot.pausedUntil;
    const gated = watch(http.get(`${API}/v1/gated`));
    const skipped = watch(http.get(`${API}/v1/health`, { context: new HttpContext().set(RATE_LIMIT_SKIP, true) }));

    httpTesting.expectNone(`${API}/v1/gated`);
    httpTesting
      .expectOne(`${API}/v1/health`)
      .flush(null, { status: 429, statusText: 'Too Many Requests', headers: { 'Retry-After': '600' } });

    // Not retried, not read: the limiter still waits for its own pause only.
    expect(skipped.error).toBeInstanceOf(HttpErrorResponse);
    expect(limiter.snapshot).toMatchObject({
      queued: 1,
      inFlight: 0,
      pausedUntil,
      totals: { sent: 0, rateLimited: 0 },
    });
    expect(gated.done).toBe(false);
    gated.subscription.unsubscribe();
  });

  it('identical GETs in flight are sent once and shared; other headers make another request', () => {
    const limiter = createLimiter({ provider: providers.generic(), key: tokenKey() });
    const { http, httpTesting } = testing({ limiters: () => limiter });
    const headers = { 'Accept-Language': 'de' };

    // Cold start: the first goes alone, the rest wait behind it.
    const first = watch(http.get(`${API}/v1/boot`));
    const a = watch(http.get(`${API}/v1/deals`, { headers }));
    const b = watch(http.get(`${API}/v1/deals`, { headers }));
    const c = watch(http.get(`${API}/v1/deals`, { headers: { 'Accept-Language': 'fr' } }));
    httpTesting.expectOne(`${API}/v1/boot`).flush({}, { headers: limitHeaders(99, 100, 1e10) });
    const sent = httpTesting.match(`${API}/v1/deals`);
    expect(sent.map((r) => r.request.headers.get('Accept-Language'))).toEqual(['de', 'fr']);
    sent.forEach((r) => r.flush({ lang: r.request.headers.get('Accept-Language') }, { headers: limitHeaders(97) }));

    expect(first.done).toBe(true);
    expect([a.values, b.values, c.values]).toEqual([[{ lang: 'de' }], [{ lang: 'de' }], [{ lang: 'fr' }]]);
    expect(limiter.snapshot.totals).toMatchObject({ sent: 3, saved: 1 });
  });

  it('unsubscribing from a queued request removes it from the queue: nothing is sent', () => {
    const limiter = createLimiter({ provider: providers.generic(), key: tokenKey() });
    const events = eventsOf(limiter);
    const { http, httpTesting, sent } = testing({ limiters: () => limiter });

    const first = watch(http.get(`${API}/v1/first`));
    const queued = watch(http.get(`${API}/v1/queued`));
    expect(limiter.snapshot.queued).toBe(1);
    queued.subscription.unsubscribe();
    expect(limiter.snapshot.queued).toBe(0);

    httpTesting.expectOne(`${API}/v1/first`).flush({}, { headers: limitHeaders(99, 100, 1e10) });
    httpTesting.verify();
    expect(first.done).toBe(true);
    expect(sent.map((s) => s.url)).toEqual([`${API}/v1/first`]);
    expect(events.filter((e) => e.type === 'cancelled')).toHaveLength(1);
    expect(limiter.snapshot).toMatchObject({ queued: 0, inFlight: 0 });
  });
});

describe('missing rate-limit headers', () => {
  /** Answers `n` GETs with `headers`, one after the other. */
  function answer(
    http: HttpClient,
    httpTesting: HttpTestingController,
    n: number,
    headers: Record<string, string>,
    from = 0,
  ): void {
    for (let i = from; i < from + n; i++) {
      watch(http.get(`${API}/v1/deals/${i}?api_token=${TOKEN}`));
      httpTesting.expectOne((r) => r.url.startsWith(`${API}/v1/deals/${i}?`)).flush({ success: true }, { headers });
    }
  }
  const corsVisible = { 'Content-Type': 'application/json', 'Content-Length': '16' };

  it('says so once per limiter, naming the host, the headers expected and Access-Control-Expose-Headers', () => {
    const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: tokenKey() });
    const reports: MissingHeadersReport[] = [];
    const { http, httpTesting } = testing({
      limiters: { 'api.example.com': limiter },
      onMissingHeaders: (r) => reports.push(r),
    });

    answer(http, httpTesting, 2, corsVisible);
    expect(reports).toHaveLength(0);
    answer(http, httpTesting, 5, corsVisible, 2);

    expect(reports).toHaveLength(1);
    const [report] = reports;
    expect(report).toMatchObject({
      host: 'api.example.com',
      provider: 'pipedrive',
      key: limiter.key,
      responses: 3,
      likelyCors: true,
      visible: ['content-type', 'content-length'],
    });
    expect(report?.expected).toEqual(
      expect.arrayContaining(['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'retry-after']),
    );
    expect(report?.message).toContain('api.example.com');
    expect(report?.message).toContain('Access-Control-Expose-Headers: x-ratelimit-limit, x-ratelimit-remaining');
    expect(report?.message).toContain('CORS-safelisted');
    expect(JSON.stringify(reports)).not.toContain(TOKEN);

    // Another interceptor with the same limiter (a lazy-loaded route's HttpClient): still once.
    TestBed.resetTestingModule();
    const again = testing({ limiters: () => limiter, onMissingHeaders: (r) => reports.push(r) });
    answer(again.http, again.httpTesting, 4, corsVisible);
    expect(reports).toHaveLength(1);
  });

  it('warns through console.warn by default', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const limiter = createLimiter({ provider: providers.procore(), key: tokenKey() });
    const { http, httpTesting } = testing({ limiters: () => limiter, missingHeadersAfter: 1 });

    answer(http, httpTesting, 3, { 'Content-Type': 'application/json', 'X-Request-Id': 'r-1' });

    expect(warn).toHaveBeenCalledTimes(1);
    const message = String(warn.mock.calls[0]?.[0]);
    expect(message).toContain('"procore" limiter');
    expect(message).toContain('x-rate-limit-remaining');
    expect(message).toContain('Access-Control-Expose-Headers');
    // Other headers were visible: not the browser's doing, most likely.
    expect(message).toContain('does not send them');
  });

  it('stays silent once a response has carried limit headers, and when turned off', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: tokenKey() });
    const { http, httpTesting } = testing({ limiters: () => limiter });
    answer(http, httpTesting, 1, {
      'X-RateLimit-Limit': '40',
      'X-RateLimit-Remaining': '39',
      'X-RateLimit-Reset': '2',
    });
    answer(http, httpTesting, 5, corsVisible, 1);

    TestBed.resetTestingModule();
    const other = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: 'other' });
    const off = testing({ limiters: () => other, onMissingHeaders: false });
    answer(off.http, off.httpTesting, 5, corsVisible);

    expect(warn).not.toHaveBeenCalled();
  });
});

describe('rateLimitInterceptor options and responses', () => {
  it('extractAngularResponse reads HttpResponse and HttpErrorResponse, joining repeated headers', () => {
    const headers = new HttpHeaders({ 'Retry-After': '2', 'X-Multi': ['a', 'b'] });
    expect(extractAngularResponse(new HttpErrorResponse({ status: 429, headers, error: { e: 1 } }))).toMatchObject({
      status: 429,
      body: { e: 1 },
    });
    expect(extractAngularResponse(new HttpResponse({ status: 200, headers }))?.header('x-multi')).toBe('a, b');
    expect(extractAngularResponse(new HttpErrorResponse({ status: 0, error: new Error('offline') }))).toBeUndefined();
  });

  it('rejects bad options with a TypeError naming the option', () => {
    const limiter = createLimiter({ provider: providers.generic(), key: tokenKey() });
    expect(() => rateLimitInterceptor({ limiters: { 'https://api.example.com/': limiter } })).toThrow(
      /`limiters` is keyed by host/,
    );
    expect(() => rateLimitInterceptor({ limiters: { 'api.example.com': {} as Limiter } })).toThrow(TypeError);
    expect(() => rateLimitInterceptor({ limiters: () => limiter, missingHeadersAfter: 0 })).toThrow(
      /missingHeadersAfter/,
    );
    expect(() => rateLimitInterceptor({ limiters: () => limiter, priority: Number.NaN })).toThrow(/priority/);
    expect(() => rateLimitInterceptor({ limiters: () => limiter, maxRetries: -1 })).toThrow(/maxRetries/);
    expect(() => rateLimitInterceptor({ limiters: () => limiter, statuses: [4290] })).toThrow(/statuses/);
  });

  it('never shows the token in events, snapshots or errors', () => {
    const scheduler = new VirtualTimeScheduler();
    const limiter = createLimiter({ provider: providers.generic(), key: tokenKey(), scheduler });
    const events = eventsOf(limiter);
    const { http, httpTesting } = testing({ limiters: () => limiter, maxRetries: 0 });

    const call = watch(
      http.get(`${API}/v1/items?api_token=${TOKEN}`, { headers: { Authorization: `Bearer ${TOKEN}` } }),
    );
    httpTesting
      .expectOne(() => true)
      .flush(null, { status: 429, statusText: 'Too Many Requests', headers: { 'Retry-After': '1' } });
    scheduler.flush();

    expect(isRetryLimitError(call.error)).toBe(true);
    const texts = [
      JSON.stringify(limiter.snapshot),
      JSON.stringify(events),
      ...events.map(describeEvent),
      String(call.error),
      JSON.stringify(call.error),
    ];
    expect(events.length).toBeGreaterThan(3);
    for (const t of texts) expect(t).not.toContain(TOKEN);
  });
});
