// Angular's packages are partially compiled: outside an Angular CLI build they need the JIT compiler.
import '@angular/compiler';

import { afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import {
  HttpClient,
  HttpErrorResponse,
  HttpResponse,
  provideHttpClient,
  withInterceptors,
  type HttpInterceptorFn,
} from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import {
  createEnvironmentInjector,
  EnvironmentInjector,
  inject,
  InjectionToken,
  makeStateKey,
  PLATFORM_ID,
  provideZonelessChangeDetection,
  reflectComponentType,
  REQUEST,
  TransferState,
  type EnvironmentProviders,
  type Provider,
} from '@angular/core';
import { TestBed, TestComponentRenderer } from '@angular/core/testing';
import { BrowserTestingModule, platformBrowserTesting } from '@angular/platform-browser/testing';
import { config as rxjsConfig, of, VirtualTimeScheduler } from 'rxjs';
import {
  createLimiter,
  createLimiterPool,
  defineProvider,
  providers,
  shareLimiter,
  type Limiter,
  type LimiterPool,
} from '../../lib/index.js';
import {
  injectLimiter,
  injectLimiterPool,
  limiterPoolStatus,
  limiterStatus,
  provideRateLimiting,
  RATE_LIMITERS,
  RateLimitStatus,
  rateLimitingInterceptor,
  rateLimitInterceptor,
  type CorsBlockedReport,
  type MissingHeadersReport,
} from '../../lib/adapters/angular.js';

const TOKEN = 'sk_live_TOPSECRET_angular_di_0123456789';
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

let configured: EnvironmentInjector | undefined;
afterEach(() => {
  configured = undefined;
});

/** The test's root injector (configured once per test). */
function root(): EnvironmentInjector {
  if (configured) return configured;
  TestBed.configureTestingModule({
    providers: [{ provide: TestComponentRenderer, useClass: TestComponentRenderer }, provideZonelessChangeDetection()],
  });
  return (configured = TestBed.inject(EnvironmentInjector));
}

/** An application's injector (one per app in a browser, one per request under SSR). */
function app(providersList: Array<Provider | EnvironmentProviders>, parent = root()) {
  const injector = createEnvironmentInjector(
    // TestBed in Node has no DOCUMENT for the root TransferState; an application's has one.
    [
      { provide: TransferState, useFactory: () => new TransferState() },
      ...providersList,
      provideHttpClient(withInterceptors([rateLimitingInterceptor()])),
      provideHttpClientTesting(),
    ],
    parent,
  );
  return {
    injector,
    http: injector.get(HttpClient),
    httpTesting: injector.get(HttpTestingController),
    limiters: injector.get(RATE_LIMITERS),
  };
}

const limitHeaders = (remaining: number, limit = 40, resetInS = 2) => ({
  'X-RateLimit-Limit': String(limit),
  'X-RateLimit-Remaining': String(remaining),
  'X-RateLimit-Reset': String(resetInS),
});

describe('provideRateLimiting', () => {
  it('makes the limiters in each application injector, where the factory can inject the user', () => {
    const USER_TOKEN = new InjectionToken<string>('user token');
    const made: Limiter[] = [];
    const rateLimiting = provideRateLimiting({
      limiters: {
        'api.example.com': () => {
          const limiter = createLimiter({
            provider: providers.pipedrive({ plan: 'advanced' }),
            key: inject(USER_TOKEN),
          });
          made.push(limiter);
          return limiter;
        },
      },
    });
    const parent = root();
    const alice = app([rateLimiting, { provide: USER_TOKEN, useValue: 'alice-token' }], parent);
    const bob = app([rateLimiting, { provide: USER_TOKEN, useValue: 'bob-token' }], parent);

    alice.http.get(`${API}/v1/deals`).subscribe();
    alice.httpTesting.expectOne(`${API}/v1/deals`).flush({}, { headers: limitHeaders(39) });

    expect(made).toHaveLength(2);
    const [a, b] = made;
    expect(a?.key).not.toBe(b?.key);
    expect(alice.limiters.get('api.example.com')).toBe(a);
    expect(bob.limiters.get('api.example.com')).toBe(b);
    // Alice's request spent Alice's budget only.
    expect(a?.snapshot.totals.sent).toBe(1);
    expect(b?.snapshot.totals.sent).toBe(0);
    expect(a?.snapshot.buckets.find((x) => x.source === 'headers')?.remaining).toBe(39);
    expect(alice.injector.runInContext(() => injectLimiter('API.example.com'))).toBe(a);
    expect(() => alice.injector.runInContext(() => injectLimiter('api.other.com'))).toThrow(
      /"api.other.com".*api\.example\.com/,
    );
    alice.injector.destroy();
    bob.injector.destroy();
  });

  it('releases a limiter from shareLimiter when its injector is destroyed (the end of a server request)', async () => {
    const options = { provider: providers.procore(), key: tokenKey() };
    const first = app([provideRateLimiting({ limiters: { 'api.example.com': () => shareLimiter(options, 'ssr') } })]);
    const second = app([provideRateLimiting({ limiters: { 'api.example.com': () => shareLimiter(options, 'ssr') } })]);
    // Two renders of the same user at once share one budget.
    expect(first.limiters.get('api.example.com')).toBe(second.limiters.get('api.example.com'));
    first.injector.destroy();
    second.injector.destroy();
    await new Promise((resolve) => setTimeout(resolve, 0));
    const third = app([provideRateLimiting({ limiters: { 'api.example.com': () => shareLimiter(options, 'ssr') } })]);
    expect(third.limiters.get('api.example.com')).not.toBe(first.limiters.get('api.example.com'));
    third.injector.destroy();
  });

  it('rejects bad options naming them', () => {
    expect(() =>
      provideRateLimiting({
        limiters: { 'https://api.example.com/': () => createLimiter({ provider: providers.generic(), key: 'k' }) },
      }),
    ).toThrow(/keyed by host/);
    expect(() => provideRateLimiting({ limiters: { 'api.example.com': 'x' as never } })).toThrow(/"api.example.com"/);
    expect(() => provideRateLimiting({} as never)).toThrow(/limiters/);
    expect(() => app([provideRateLimiting({ limiters: { 'api.example.com': () => ({}) as Limiter } })])).toThrow(
      /factory of "api.example.com"/,
    );
  });
});

describe('server rendering', () => {
  it('resolves relative URLs against the incoming REQUEST, so they are paced on the server too', () => {
    const limiter = createLimiter({ provider: providers.generic(), key: tokenKey() });
    const s = app([
      { provide: PLATFORM_ID, useValue: 'server' },
      { provide: REQUEST, useValue: new Request('http://shop.example:4000/deals?page=2') },
      provideRateLimiting({ limiters: { 'shop.example:4000': () => limiter }, transferState: false }),
    ]);
    s.http.get('/api/deals').subscribe();
    s.httpTesting.expectOne('/api/deals').flush({}, { headers: limitHeaders(10) });
    expect(limiter.snapshot.totals.sent).toBe(1);
    s.injector.destroy();
  });

  it('says so once when a relative URL has no host to resolve against', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const limiter = createLimiter({ provider: providers.generic(), key: tokenKey() });
    const s = app([
      { provide: PLATFORM_ID, useValue: 'server' },
      provideRateLimiting({ limiters: { 'shop.example': () => limiter }, transferState: false }),
    ]);
    for (const path of ['/api/a?api_token=' + TOKEN, '/api/b']) {
      s.http.get(path).subscribe();
      s.httpTesting.expectOne(() => true).flush({});
    }
    expect(warn).toHaveBeenCalledTimes(1);
    const message = String(warn.mock.calls[0]?.[0]);
    expect(message).toContain('"/api/a"');
    expect(message).toContain('baseUrl');
    expect(message).not.toContain(TOKEN);
    s.injector.destroy();
  });

  it("carries the server's last readings to the browser's limiter, for the same user only", () => {
    const key = makeStateKey<unknown>('rx-ratelimit');
    const user = tokenKey();
    const server = app([
      { provide: PLATFORM_ID, useValue: 'server' },
      provideRateLimiting({
        limiters: {
          'api.example.com': () => createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: user }),
        },
      }),
    ]);
    server.http.get(`${API}/v1/deals?api_token=${TOKEN}`).subscribe();
    server.httpTesting
      .expectOne(() => true)
      .flush({}, { headers: { ...limitHeaders(7, 40, 2), 'Set-Cookie': 'session=secret', 'X-Other': 'x' } });
    // What the server writes into the page.
    const page = server.injector.get(TransferState).toJson();
    expect(page).not.toContain(TOKEN);
    expect(page).not.toContain('session=secret');
    expect(page).not.toContain('x-other');
    server.injector.destroy();

    const browserState = (): TransferState => {
      const state = new TransferState();
      state.set(key, (JSON.parse(page) as Record<string, unknown>)['rx-ratelimit']);
      return state;
    };
    const browser = app([
      { provide: TransferState, useFactory: browserState },
      provideRateLimiting({
        limiters: {
          'api.example.com': () => createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: user }),
        },
      }),
    ]);
    const seeded = browser.limiters.get('api.example.com');
    const bucket = seeded?.snapshot.buckets.find((b) => b.source === 'headers');
    expect(bucket).toMatchObject({ limit: 40, remaining: 7 });
    expect(seeded?.snapshot.totals.sent).toBe(0);

    const other = app([
      { provide: TransferState, useFactory: browserState },
      provideRateLimiting({
        limiters: {
          'api.example.com': () =>
            createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: 'another-user' }),
        },
      }),
    ]);
    expect(other.limiters.get('api.example.com')?.snapshot.buckets.some((b) => b.source === 'headers')).toBe(false);
    browser.injector.destroy();
    other.injector.destroy();
  });
});

describe('server rendering: what a page carries of the limiter', () => {
  it('another visitor’s requests never, with one limiter shared by every render', () => {
    // One limiter for the server's API key, shared by every render of the process.
    const shared = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: tokenKey() });
    const render = (path: string) => {
      const r = app([
        { provide: PLATFORM_ID, useValue: 'server' },
        provideRateLimiting({ limiters: { 'api.example.com': () => shared } }),
      ]);
      r.http.get(`${API}${path}`).subscribe();
      r.httpTesting.expectOne(() => true).flush({}, { headers: limitHeaders(7) });
      // The page's JSON, read back (`/` is written as `\u002F` in it).
      const page = JSON.stringify(JSON.parse(r.injector.get(TransferState).toJson()));
      r.injector.destroy();
      return page;
    };
    const alice = render('/v1/persons/alice.smith@example.com/deals');
    const bob = render('/v1/deals/42');
    expect(bob).not.toContain('persons');
    expect(bob).toContain('/v1/deals/42');
    // Nor a secret in a path of its own (an email, a bot token, a webhook's): a route's words only.
    expect(alice).not.toContain('alice');
    expect(alice).toContain('/v1/persons/:id/deals');
    const bot = render('/bot123456:AAHsecretBotToken/getMe');
    const hook = render('/webhooks/1234/aZ9kLq2wXv8RtY5uPo3nMb7c');
    expect(bot).not.toContain('AAHsecret');
    expect(hook).not.toContain('aZ9kLq2w');
    // A number of four digits or more may be a PIN or a phone number: an id too.
    expect(hook).toContain('/webhooks/:id/:id');
    // A token of letters only (no digit) is one too.
    expect(render('/hooks/AbCdEfGhIjKlMnOpQrStUvWx')).not.toContain('AbCdEf');
  });
});

describe('server rendering: a page served later from a cache', () => {
  it('does not replay a 429 of its render into the limiter of a browser that loads it minutes later', () => {
    const user = tokenKey();
    const make = () => createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: user });
    const server = app([
      { provide: PLATFORM_ID, useValue: 'server' },
      provideRateLimiting({ limiters: { 'api.example.com': make } }),
    ]);
    // (The GET would be sent again in 10 minutes: it is given up once the page is written.)
    const get = server.http.get(`${API}/v1/deals`).subscribe({ error: () => undefined });
    server.httpTesting
      .expectOne(() => true)
      .flush({}, { status: 429, statusText: 'Too Many Requests', headers: { 'Retry-After': '600' } });
    const page = JSON.parse(server.injector.get(TransferState).toJson()) as Record<string, unknown>;
    get.unsubscribe();
    server.injector.destroy();
    const load = (afterMs: number) => {
      jest.spyOn(Date, 'now').mockReturnValue(Date.now() + afterMs);
      const state = new TransferState();
      state.set(makeStateKey<unknown>('rx-ratelimit'), page['rx-ratelimit']);
      const browser = app([
        { provide: TransferState, useValue: state },
        provideRateLimiting({ limiters: { 'api.example.com': make } }),
      ]);
      const paused = browser.limiters.get('api.example.com')?.snapshot.pausedUntil ?? null;
      jest.restoreAllMocks();
      browser.injector.destroy();
      return paused;
    };
    // Hydrated at once: the server's 429 holds the browser too.
    expect(load(0)).not.toBeNull();
    // The same page from a cache ten minutes later: nothing of it is obeyed.
    expect(load(10 * 60_000)).toBeNull();
  });
});

describe("Angular's HTTP transfer cache", () => {
  it('a response replayed without the network (given synchronously) is not read by the limiter', () => {
    const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: tokenKey() });
    const reports: MissingHeadersReport[] = [];
    // What withHttpTransferCache does in the browser for a GET of the server render.
    const cache: HttpInterceptorFn = () => of(new HttpResponse({ status: 200, body: { cached: true } }));
    TestBed.configureTestingModule({
      providers: [
        { provide: TestComponentRenderer, useClass: TestComponentRenderer },
        provideZonelessChangeDetection(),
        provideHttpClient(
          withInterceptors([
            rateLimitInterceptor({ limiters: () => limiter, onMissingHeaders: (r) => reports.push(r) }),
            cache,
          ]),
        ),
      ],
    });
    const http = TestBed.inject(HttpClient);
    const bodies: unknown[] = [];
    for (let i = 0; i < 4; i++) http.get(`${API}/v1/deals/${i}`).subscribe((b) => bodies.push(b));

    expect(bodies).toHaveLength(4);
    expect(reports).toEqual([]);
    expect(limiter.snapshot).toMatchObject({ inFlight: 0, queued: 0, totals: { responses: 0 } });
  });
});

describe('limiterStatus', () => {
  it('ticks while something waits, and runs no timer once nothing does', () => {
    const scheduler = new VirtualTimeScheduler();
    const limiter = createLimiter({ provider: providers.generic(), key: tokenKey(), scheduler });
    const injector = root();
    const status = injector.runInContext(() => limiterStatus(limiter, { tickMs: 500 }));
    expect(status()).toMatchObject({ waiting: false, pausedForMs: 0 });
    expect(scheduler.actions).toHaveLength(0);

    limiter.pause(3000);
    expect(status()).toMatchObject({ waiting: true, pausedForMs: 3000 });
    scheduler.maxFrames = 1000;
    scheduler.flush();
    expect(status().pausedForMs).toBe(2000);
    scheduler.maxFrames = 2500;
    scheduler.flush();
    expect(status().pausedForMs).toBe(500);
    scheduler.maxFrames = Infinity;
    scheduler.flush();
    expect(status()).toMatchObject({ waiting: false, pausedForMs: 0 });
    // Nothing waits: no timer is left.
    expect(scheduler.actions).toHaveLength(0);
  });

  it('counts a bucket down to its reset while it is empty; never ticks on the server', () => {
    const scheduler = new VirtualTimeScheduler();
    const limiter = createLimiter({ provider: providers.generic(), key: tokenKey(), scheduler });
    limiter.observe({
      status: 200,
      header: (n) => ({ 'ratelimit-limit': '5', 'ratelimit-remaining': '0', 'ratelimit-reset': '4' })[n.toLowerCase()],
    });
    const injector = root();
    const status = injector.runInContext(() => limiterStatus(limiter));
    const countdown = () => status().buckets.find((b) => b.source === 'headers')?.resetInMs;
    expect(countdown()).toBe(4000);
    scheduler.maxFrames = 1000;
    scheduler.flush();
    expect(countdown()).toBe(3000);

    const onServer = createEnvironmentInjector([{ provide: PLATFORM_ID, useValue: 'server' }], injector);
    const scheduler2 = new VirtualTimeScheduler();
    const limiter2 = createLimiter({ provider: providers.generic(), key: tokenKey(), scheduler: scheduler2 });
    limiter2.pause(3000);
    const serverStatus = limiterStatus(limiter2, { injector: onServer });
    expect(serverStatus()).toMatchObject({ waiting: true, pausedForMs: 3000 });
    expect(scheduler2.actions.filter((a) => a.delay === 1000)).toHaveLength(0);
    onServer.destroy();
  });

  it('RateLimitStatus is a standalone component with a limiter input', () => {
    const mirror = reflectComponentType(RateLimitStatus);
    expect(mirror?.selector).toBe('rx-rate-limit-status');
    expect(mirror?.isStandalone).toBe(true);
    expect(mirror?.inputs.map((i) => i.templateName).sort()).toEqual(['label', 'limiter', 'tickMs']);
  });
});

describe('CORS that tells', () => {
  function browserApp(
    limiter: Limiter,
    options: { onCorsBlocked?: (r: CorsBlockedReport) => void; onMissingHeaders?: (r: MissingHeadersReport) => void },
  ) {
    TestBed.configureTestingModule({
      providers: [
        { provide: TestComponentRenderer, useClass: TestComponentRenderer },
        provideZonelessChangeDetection(),
        provideHttpClient(
          withInterceptors([
            rateLimitInterceptor({ limiters: () => limiter, baseUrl: 'http://localhost:4200/', ...options }),
          ]),
        ),
        provideHttpClientTesting(),
      ],
    });
    return { http: TestBed.inject(HttpClient), httpTesting: TestBed.inject(HttpTestingController) };
  }

  it('a response the browser refused (status 0) is reported once per origin', () => {
    const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: tokenKey() });
    const reports: CorsBlockedReport[] = [];
    const { http, httpTesting } = browserApp(limiter, { onCorsBlocked: (r) => reports.push(r) });
    for (const url of [
      `${API}/v1/a?api_token=${TOKEN}`,
      `${API}/v1/b`,
      'https://other.example/x',
      'http://localhost:4200/api/y',
    ]) {
      http.get(url).subscribe({ error: () => undefined });
      httpTesting.expectOne(() => true).error(new DOMException('blocked', 'NetworkError') as unknown as ProgressEvent);
    }
    expect(reports.map((r) => r.origin)).toEqual([API, 'https://other.example']);
    expect(reports[0]).toMatchObject({ pageOrigin: 'http://localhost:4200', provider: 'pipedrive', key: limiter.key });
    expect(reports[0]?.message).toContain('Access-Control-Allow-Origin');
    expect(JSON.stringify(reports)).not.toContain(TOKEN);
  });

  it('a report callback that throws takes nothing from the request: its response, or its own error', async () => {
    const unhandled: unknown[] = [];
    const before = rxjsConfig.onUnhandledError;
    rxjsConfig.onUnhandledError = (e) => unhandled.push(e);
    try {
      const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: tokenKey() });
      const { http, httpTesting } = browserApp(limiter, {
        onMissingHeaders: () => {
          throw new Error('report sink down');
        },
        onCorsBlocked: () => {
          throw new Error('report sink down');
        },
      });
      const ended: string[] = [];
      for (let i = 0; i < 3; i++) {
        http.get<{ n: number }>(`${API}/v1/deals/${i}`).subscribe({
          next: (body) => ended.push(`value ${body.n}`),
          error: (e: Error) => ended.push(`error ${e.message}`),
        });
        httpTesting.expectOne(() => true).flush({ n: i }, { headers: { 'Content-Type': 'application/json' } });
      }
      // An origin no other test reports (reports are once per origin, per process).
      http.get(`https://cors-throws.example/v1/blocked`).subscribe({
        error: (e: unknown) => ended.push(e instanceof HttpErrorResponse ? `status ${e.status}` : String(e)),
      });
      httpTesting.expectOne(() => true).error(new DOMException('blocked', 'NetworkError') as unknown as ProgressEvent);

      expect(ended).toEqual(['value 0', 'value 1', 'value 2', 'status 0']);
      expect(limiter.snapshot.inFlight).toBe(0);
      // The callbacks' errors are not lost either: reported as RxJS reports an unhandled one.
      await new Promise((r) => setTimeout(r, 10));
      expect(unhandled.map((e) => (e as Error).message)).toEqual(['report sink down', 'report sink down']);
    } finally {
      rxjsConfig.onUnhandledError = before;
    }
  });

  it("asks to expose Pipedrive's X-Daily-Requests-Left too", () => {
    const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: tokenKey() });
    const reports: MissingHeadersReport[] = [];
    const { http, httpTesting } = browserApp(limiter, { onMissingHeaders: (r) => reports.push(r) });
    for (let i = 0; i < 3; i++) {
      http.get(`${API}/v1/deals/${i}`).subscribe();
      httpTesting.expectOne(() => true).flush({}, { headers: { 'Content-Type': 'application/json' } });
    }
    expect(reports[0]?.expected).toEqual(expect.arrayContaining(['x-ratelimit-remaining', 'x-daily-requests-left']));
    expect(reports[0]?.message).toContain('x-daily-requests-left');
  });
});

describe('limiter pools through DI: a limiter per tenant, picked per request', () => {
  const pipedrivePool = () => createLimiterPool({ provider: providers.pipedrive({ plan: 'advanced' }) });

  it("paces each request by its tenant's limiter, the tenant read from a header", () => {
    const made: LimiterPool[] = [];
    const { injector, http, httpTesting } = app([
      provideRateLimiting({
        pools: { 'api.example.com': { pool: () => (made[made.length] = pipedrivePool()), tenant: 'x-api-token' } },
      }),
    ]);
    const as = (token: string) => ({ headers: { 'x-api-token': token } });
    http.get(`${API}/v1/deals`, as('tenant-a-token')).subscribe();
    httpTesting.expectOne(`${API}/v1/deals`).flush({}, { headers: limitHeaders(39) });
    for (let i = 0; i < 2; i++) {
      http.get(`${API}/v1/deals`, as('tenant-b-token')).subscribe();
      httpTesting.expectOne(`${API}/v1/deals`).flush({}, { headers: limitHeaders(30 - i) });
    }
    const pool = injector.runInContext(() => injectLimiterPool('api.example.com'));
    expect(made).toEqual([pool]);
    expect(pool.size).toBe(2);
    const [a, b] = [pool.get('tenant-a-token'), pool.get('tenant-b-token')];
    // Each tenant's requests spent its own budget, and its limiter read its own headers.
    expect(a.snapshot.totals.sent).toBe(1);
    expect(b.snapshot.totals.sent).toBe(2);
    expect(a.snapshot.buckets.find((x) => x.source === 'headers')?.remaining).toBe(39);
    expect(b.snapshot.buckets.find((x) => x.source === 'headers')?.remaining).toBe(29);
    // A pause of one tenant holds its requests only.
    a.pause(60_000);
    const held = http.get(`${API}/v1/deals?held`, as('tenant-a-token')).subscribe();
    http.get(`${API}/v1/deals?free`, as('tenant-b-token')).subscribe();
    httpTesting.expectNone(`${API}/v1/deals?held`);
    httpTesting.expectOne(`${API}/v1/deals?free`).flush({}, { headers: limitHeaders(28) });
    expect(a.snapshot.queued).toBe(1);
    held.unsubscribe();
    // The pool this injector made ends with it (under SSR: with the request).
    injector.destroy();
    expect(() => pool.get('tenant-a-token')).toThrow(/closed/);
  });

  it('reads the tenant with a function of the request; a request naming none goes unpaced, said once', () => {
    const shared = pipedrivePool();
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    const rateLimiting = provideRateLimiting({
      pools: {
        'api.example.com': { pool: shared, tenant: (req) => req.params.get('company') ?? undefined },
      },
    });
    const first = app([rateLimiting]);
    const second = app([rateLimiting]);
    first.http.get(`${API}/v1/deals`, { params: { company: 'c-7' } }).subscribe();
    first.httpTesting.expectOne(`${API}/v1/deals?company=c-7`).flush({}, { headers: limitHeaders(39) });
    second.http.get(`${API}/v1/deals`, { params: { company: 'c-7' } }).subscribe();
    second.httpTesting.expectOne(`${API}/v1/deals?company=c-7`).flush({}, { headers: limitHeaders(38) });
    // A pool given as an instance is shared by every injector that provides it.
    expect(shared.get('c-7').snapshot.totals.sent).toBe(2);
    for (let i = 0; i < 2; i++) {
      first.http.get(`${API}/v1/public`).subscribe();
      first.httpTesting.expectOne(`${API}/v1/public`).flush({});
    }
    expect(shared.size).toBe(1);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]?.[0])).toMatch(/api\.example\.com names no tenant/);
    // ...and is the caller's to close: destroying an injector leaves it open.
    first.injector.destroy();
    second.injector.destroy();
    expect(shared.get('c-7').snapshot.totals.sent).toBe(2);
    void shared.close();
  });

  it('rejects bad pool options naming them; never shows a tenant key', () => {
    const limiter = () => createLimiter({ provider: providers.generic(), key: 'k' });
    expect(() =>
      provideRateLimiting({
        limiters: { 'api.example.com': limiter },
        pools: { 'API.example.com': { pool: pipedrivePool, tenant: 'x-api-token' } },
      }),
    ).toThrow(/"API.example.com": the host is in `limiters` too/);
    expect(() => provideRateLimiting({ pools: { 'api.example.com': { pool: {} as never, tenant: 'x' } } })).toThrow(
      /"api.example.com": `pool` must be a LimiterPool/,
    );
    expect(() => provideRateLimiting({ pools: { 'api.example.com': { pool: pipedrivePool, tenant: 'a b' } } })).toThrow(
      /`tenant` must be a header name or a function/,
    );
    expect(() =>
      provideRateLimiting({ pools: { 'https://api.example.com': { pool: pipedrivePool, tenant: 'x' } } }),
    ).toThrow(/keyed by host/);
    const { http, injector } = app([
      provideRateLimiting({ pools: { 'api.example.com': { pool: pipedrivePool, tenant: 'authorization' } } }),
    ]);
    let error: unknown;
    const secretKey = `Bearer ${TOKEN}${'x'.repeat(9000)}`;
    http.get(`${API}/v1/deals`, { headers: { authorization: secretKey } }).subscribe({ error: (e) => (error = e) });
    expect(String(error)).toMatch(/a string of at most 8192 characters/);
    expect(String(error)).not.toContain(TOKEN);
    injector.destroy();
  });
});

describe('limiterPoolStatus', () => {
  const generic = (remaining: number) => ({
    status: 200,
    header: (n: string) =>
      ({ 'ratelimit-limit': '20', 'ratelimit-remaining': String(remaining), 'ratelimit-reset': '10' })[n.toLowerCase()],
  });

  it('lists the tenants paused or near their limit, ticks while one waits, and runs no timer once none does', () => {
    const scheduler = new VirtualTimeScheduler();
    const pool = createLimiterPool({ provider: providers.generic(), scheduler, stateIntervalMs: 50 });
    const [paused, near, fine] = ['paused-token', 'near-token', 'fine-token'].map((k) => pool.get(k)) as [
      Limiter,
      Limiter,
      Limiter,
    ];
    near.observe(generic(1));
    fine.observe(generic(15));
    const status = root().runInContext(() => limiterPoolStatus(pool, { tickMs: 500, nearRatio: 0.1 }));
    expect(status()).toMatchObject({ size: 3, paused: 0, near: 1, waiting: false });
    expect(status().tenants.map((t) => t.key)).toEqual([near.snapshot.key]);
    // Nothing waits on time (a bucket near its limit is not empty): no ticking timer.
    expect(scheduler.actions.filter((a) => a.delay === 500)).toHaveLength(0);

    paused.pause(2000);
    scheduler.maxFrames = 50;
    scheduler.flush(); // the pool's batched emission
    expect(status()).toMatchObject({ paused: 1, near: 1, waiting: true });
    // Most urgent first; keys are labels, never the tokens.
    expect(status().tenants.map((t) => t.key)).toEqual([paused.snapshot.key, near.snapshot.key]);
    expect(JSON.stringify(status())).not.toContain('paused-token');
    // Paused at 0 for 2 s, published at 50 (the pool's batch), then every 500 ms.
    expect(status().tenants[0]?.pausedForMs).toBe(1950);
    scheduler.maxFrames = 1050;
    scheduler.flush();
    expect(status().tenants[0]?.pausedForMs).toBe(950);
    scheduler.maxFrames = 3000;
    scheduler.flush();
    // The pause over: the tenant leaves the list and the ticking stops.
    expect(status()).toMatchObject({ paused: 0, near: 1, waiting: false });
    expect(scheduler.actions.filter((a) => a.delay === 500)).toHaveLength(0);
    void pool.close();
  });

  it('stops counting a tenant as blocked once its cool-down is over, without a new emission', () => {
    const scheduler = new VirtualTimeScheduler();
    const blocking = defineProvider({
      name: 'blocky',
      buckets: [{ name: 'main', limit: 5, windowMs: 10_000 }],
      read: (res) => ({ outcome: res.status === 403 ? 'blocked' : 'ok', buckets: [] }),
    });
    const pool = createLimiterPool({ provider: blocking, scheduler, stateIntervalMs: 50, blockCooldownMs: 2000 });
    pool.get('blocked-token').observe({ status: 403, header: () => undefined });
    const status = root().runInContext(() => limiterPoolStatus(pool, { tickMs: 500 }));
    expect(status()).toMatchObject({ blocked: 1, waiting: true });
    expect(status().tenants[0]?.blockedForMs).toBe(2000);
    // The pool publishes nothing when the cool-down ends (no request, no eviction yet): the
    // status's own ticks must see it is over.
    scheduler.maxFrames = 3000;
    scheduler.flush();
    expect(pool.size).toBe(1);
    expect(status()).toMatchObject({ blocked: 0, waiting: false });
    expect(status().tenants).toEqual([]);
    void pool.close();
  });

  it('shows a tenant made after the wall clock stepped paused for its pause, not for the step', () => {
    const pool = createLimiterPool({ provider: providers.generic(), idleMs: 60_000 });
    const realNow = Date.now.bind(Date);
    const step = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 3_600_000);
    try {
      // The tenant's limiter, made after the step, reads the wall clock: an hour ahead of the pool's.
      pool.get('tenant-made-after-the-step').pause(5000);
      const status = root().runInContext(() => limiterPoolStatus(pool, { tickMs: 500 }));
      expect(status()).toMatchObject({ paused: 1, waiting: true });
      // Before, an hour and 5 s.
      expect(status().tenants[0]?.pausedForMs).toBeGreaterThan(4000);
      expect(status().tenants[0]?.pausedForMs).toBeLessThanOrEqual(5000);
    } finally {
      step.mockRestore();
      void pool.close();
    }
  });

  it('counts every tenant but lists at most maxListed; never ticks on the server', () => {
    const scheduler = new VirtualTimeScheduler();
    const pool = createLimiterPool({ provider: providers.generic(), scheduler, stateIntervalMs: 50 });
    for (let i = 0; i < 30; i++) pool.get(`tenant-${i}-token`).pause(5000);
    const onServer = createEnvironmentInjector([{ provide: PLATFORM_ID, useValue: 'server' }], root());
    const status = limiterPoolStatus(pool, { injector: onServer, maxListed: 5 });
    expect(status()).toMatchObject({ size: 30, paused: 30, waiting: true });
    expect(status().tenants).toHaveLength(5);
    scheduler.maxFrames = 50;
    scheduler.flush();
    expect(scheduler.actions.filter((a) => a.delay === 1000)).toHaveLength(0);
    expect(() => limiterPoolStatus(pool, { injector: onServer, nearRatio: 2 })).toThrow(/`nearRatio`/);
    onServer.destroy();
    void pool.close();
  });
});
