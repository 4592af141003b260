// Angular's packages are partially compiled: outside an Angular CLI build they need the JIT compiler.
import '@angular/compiler';

import { afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import {
  HttpClient,
  provideHttpClient,
  withInterceptors,
  ɵwithHttpTransferCache as withHttpTransferCache,
} from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import {
  createEnvironmentInjector,
  EnvironmentInjector,
  makeStateKey,
  PLATFORM_ID,
  provideZonelessChangeDetection,
  TransferState,
  type EnvironmentProviders,
  type Provider,
} from '@angular/core';
import { TestBed, TestComponentRenderer } from '@angular/core/testing';
import { BrowserTestingModule, platformBrowserTesting } from '@angular/platform-browser/testing';
import { createLimiter, providers, type Limiter } from '../../lib/index.js';
import { provideRateLimiting, RATE_LIMITERS, rateLimitingInterceptor } from '../../lib/adapters/angular.js';

const API = 'https://api.example.com';
let keys = 0;
/** A credential of its own per limiter: limiters of one provider and key share one limit state. */
const freshKey = () => `transfer-user-${++keys}`;

beforeAll(() => {
  TestBed.initTestEnvironment(BrowserTestingModule, platformBrowserTesting());
});
let configured: EnvironmentInjector | undefined;
/** The applications and limiters a test made, ended after it (their timers with them). */
const made: { injectors: EnvironmentInjector[]; limiters: Limiter[] } = { injectors: [], limiters: [] };
afterEach(async () => {
  for (const injector of made.injectors.splice(0)) if (!injector.destroyed) injector.destroy();
  await Promise.all(made.limiters.splice(0).map((l) => l.close()));
  TestBed.resetTestingModule();
  configured = undefined;
  jest.restoreAllMocks();
});

/**
 * The limiter factories of one user's server render and browser, each limiter ended after the
 * test. Their keys differ (limiters of one provider and key in a process share one limit state,
 * and a server and a browser, or two browsers, share none) and their label is the user's, as the
 * page requires.
 */
function limitersOf(provider: Limiter['provider']) {
  const user = freshKey();
  const side = (name: string) => () => {
    const limiter = createLimiter({ provider, key: `${user}-${name}-${++keys}`, label: user });
    made.limiters.push(limiter);
    return limiter;
  };
  return { server: side('server'), browser: side('browser') };
}

/** The test's root injector (configured once per test). */
function root(): EnvironmentInjector {
  if (configured) return configured;
  TestBed.configureTestingModule({
    providers: [{ provide: TestComponentRenderer, useClass: TestComponentRenderer }, provideZonelessChangeDetection()],
  });
  return (configured = TestBed.inject(EnvironmentInjector));
}

/** An application's injector (one per app in a browser, one per request under SSR). */
function app(providersList: Array<Provider | EnvironmentProviders>) {
  const injector = createEnvironmentInjector(
    [
      // TestBed in Node has no DOCUMENT for the root TransferState; an application's has one.
      { provide: TransferState, useFactory: () => new TransferState() },
      ...providersList,
      provideHttpClient(withInterceptors([rateLimitingInterceptor({ onMissingHeaders: false })])),
      provideHttpClientTesting(),
    ],
    root(),
  );
  made.injectors.push(injector);
  return {
    injector,
    http: injector.get(HttpClient),
    httpTesting: injector.get(HttpTestingController),
    limiter: (host = 'api.example.com') => injector.get(RATE_LIMITERS).get(host) as Limiter,
  };
}

/**
 * What a server render writes into its page for `api.example.com`, after the one GET
 * (`method`, `path`) it makes is answered by `answer`.
 */
function render(
  make: () => Limiter,
  answer: { status: number; headers: Record<string, string>; body?: string | object },
  path = '/v1/deals',
) {
  const server = app([
    { provide: PLATFORM_ID, useValue: 'server' },
    provideRateLimiting({ limiters: { 'api.example.com': make } }),
  ]);
  // A 429 would be sent again later: the render is over once the page is written.
  const get = server.http.get(`${API}${path}`).subscribe({ error: () => undefined });
  const { status, headers, body = {} } = answer;
  server.httpTesting.expectOne(() => true).flush(body, { status, statusText: String(status), headers });
  const page = JSON.parse(server.injector.get(TransferState).toJson()) as Record<string, unknown>;
  const serverLimiter = server.limiter();
  get.unsubscribe();
  server.injector.destroy();
  return { page: page['rx-ratelimit'], serverLimiter };
}

/** The browser's limiter after it hydrates `page`, `afterMs` after the render. */
function hydrate(make: () => Limiter, page: unknown, afterMs: number) {
  const now = Date.now() + afterMs;
  jest.spyOn(Date, 'now').mockReturnValue(now);
  const state = new TransferState();
  state.set(makeStateKey<unknown>('rx-ratelimit'), page);
  const browser = app([
    { provide: TransferState, useValue: state },
    provideRateLimiting({ limiters: { 'api.example.com': make } }),
  ]);
  const limiter = browser.limiter();
  // The limiter's own clock, which a pause or a reset is counted on (`Date.now` is the page's age).
  return { limiter, now: limiter.now(), browser };
}

describe('server rendering: waits the page carries are shortened by its age', () => {
  it('a 429 with Retry-After: 30 hydrated 25 s later pauses the browser for the 5 s left', () => {
    const make = limitersOf(providers.generic());
    const { page } = render(make.server, { status: 429, headers: { 'Retry-After': '30' } });
    const { limiter, now } = hydrate(make.browser, page, 25_000);
    // (Less the moment the test took between the page's hydration and this line.)
    expect((limiter.snapshot.pausedUntil ?? 0) - now).toBeGreaterThan(4_900);
    expect((limiter.snapshot.pausedUntil ?? 0) - now).toBeLessThanOrEqual(5_000);
  });

  it('a 429 whose Retry-After is over by hydration is not replayed', () => {
    const make = limitersOf(providers.generic());
    const { page } = render(make.server, { status: 429, headers: { 'Retry-After': '30' } });
    const { limiter } = hydrate(make.browser, page, 40_000);
    expect(limiter.snapshot.pausedUntil).toBeNull();
  });

  it("a reset in seconds left (Pipedrive's) counts down from the render, and a window over is not replayed", () => {
    const make = limitersOf(providers.pipedrive({ plan: 'advanced' }));
    const headers = { 'X-RateLimit-Limit': '40', 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': '10' };
    const { page } = render(make.server, { status: 200, headers });
    const soon = hydrate(make.browser, page, 4_000);
    const bucket = soon.limiter.snapshot.buckets.find((b) => b.source === 'headers');
    expect(bucket).toMatchObject({ limit: 40, remaining: 0 });
    expect((bucket?.resetAt ?? 0) - soon.now).toBeGreaterThan(5_900);
    expect((bucket?.resetAt ?? 0) - soon.now).toBeLessThanOrEqual(6_000);
    soon.browser.injector.destroy();
    jest.restoreAllMocks();

    // Twelve seconds on, that window has ended: its figures say nothing of the current one.
    const late = hydrate(make.browser, page, 12_000);
    expect(late.limiter.snapshot.buckets.some((b) => b.source === 'headers')).toBe(false);
  });

  it("a reset given as a Unix time (Procore's) is replayed as it is", () => {
    const make = limitersOf(providers.procore());
    const resetAt = Math.ceil(Date.now() / 1000) + 30;
    const headers = {
      'X-Rate-Limit-Limit': '3600',
      'X-Rate-Limit-Remaining': '12',
      'X-Rate-Limit-Reset': String(resetAt),
    };
    const { page } = render(make.server, { status: 200, headers }, '/rest/v1.0/projects');
    const { limiter } = hydrate(make.browser, page, 20_000);
    const bucket = limiter.snapshot.buckets.find((b) => b.source === 'headers');
    expect(bucket).toMatchObject({ remaining: 12, resetAt: resetAt * 1000 });
  });
});

describe('server rendering: error responses the page carries', () => {
  const pipedrive = () => limitersOf(providers.pipedrive({ plan: 'advanced' }));

  it("an ordinary HTML 403 of the render does not block the browser's limiter", () => {
    const make = pipedrive();
    const { page, serverLimiter } = render(make.server, {
      status: 403,
      headers: { 'Content-Type': 'text/html' },
      body: '<h1>Forbidden: you have no access to this deal</h1>',
    });
    expect(serverLimiter.snapshot.blocked).toBeNull();
    const { limiter } = hydrate(make.browser, page, 1_000);
    expect(limiter.snapshot.blocked).toBeNull();
  });

  it("Pipedrive's block page, which blocked the server's limiter, blocks the browser's too", () => {
    const make = pipedrive();
    const { page, serverLimiter } = render(make.server, {
      status: 403,
      headers: { 'Content-Type': 'text/html' },
      body: '<p>This error is produced by Cloudflare.</p>',
    });
    expect(serverLimiter.snapshot.blocked).not.toBeNull();
    const { limiter } = hydrate(make.browser, page, 1_000);
    expect(limiter.snapshot.blocked).not.toBeNull();
  });
});

describe("Angular's HTTP transfer cache", () => {
  /**
   * The page of a server render whose GET of `/v1/deals` Angular's transfer cache stored
   * (`ngServerMode`: what Angular's server build sets, and its interceptor reads to store).
   */
  function renderWithCache(make: () => Limiter): Record<string, unknown> {
    const global = globalThis as { ngServerMode?: boolean };
    global.ngServerMode = true;
    try {
      const server = app([
        { provide: PLATFORM_ID, useValue: 'server' },
        withHttpTransferCache({}),
        provideRateLimiting({ limiters: { 'api.example.com': make }, transferState: false }),
      ]);
      server.http.get(`${API}/v1/deals`).subscribe();
      server.httpTesting.expectOne(`${API}/v1/deals`).flush([{ id: 1 }]);
      const page = JSON.parse(server.injector.get(TransferState).toJson()) as Record<string, unknown>;
      server.injector.destroy();
      return page;
    } finally {
      delete global.ngServerMode;
    }
  }

  it('a GET it answers from the page neither waits for the limiter nor spends a permit', () => {
    const make = limitersOf(providers.generic());
    const page = renderWithCache(make.server);
    const state = new TransferState();
    for (const [key, value] of Object.entries(page)) state.set(makeStateKey<unknown>(key), value);
    const browser = app([
      { provide: TransferState, useValue: state },
      withHttpTransferCache({}),
      provideRateLimiting({ limiters: { 'api.example.com': make.browser }, transferState: false }),
    ]);
    // A pause (a 429 of the render, say) holds what goes to the network, not what the page holds.
    browser.limiter().pause(60_000);

    let cached: unknown;
    browser.http.get(`${API}/v1/deals`).subscribe((body) => (cached = body));
    expect(cached).toEqual([{ id: 1 }]);
    expect(browser.limiter().snapshot).toMatchObject({ queued: 0, inFlight: 0, totals: { sent: 0 } });

    // What the page does not hold, or a request that opts out of the cache, waits as ever.
    const waiting = [
      browser.http.get(`${API}/v1/persons`).subscribe(),
      browser.http.get(`${API}/v1/deals`, { transferCache: false }).subscribe(),
    ];
    expect(browser.limiter().snapshot.queued).toBe(2);
    browser.httpTesting.expectNone(() => true);
    for (const s of waiting) s.unsubscribe();
  });
});
