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
import { VirtualTimeScheduler } from 'rxjs';
import { createLimiter, providers, type Limiter } from '../../lib/index.js';
import { provideRateLimiting, RATE_LIMITERS, rateLimitingInterceptor } from '../../lib/adapters/angular.js';
import { routeOf } from '../../lib/adapters/angularTransfer.js';
import {
  atlassianEndpoint,
  endpointKey,
  fieldwireEndpoint,
  githubResource,
  isHubspotSearch,
} from '../../lib/providers/index.js';

const API = 'https://api.example.com';
/** The server's wall clock when its limiter reads the render's response (epoch ms). */
const RENDERED = 1_800_000_000_000;

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
 * page requires. Each runs on a clock of its own that stands at {@link RENDERED} (virtual time):
 * a pause or a reset replayed is read off it exactly.
 */
function limitersOf(provider: Limiter['provider']) {
  const user = freshKey();
  const side = (name: string) => () => {
    const scheduler = new VirtualTimeScheduler();
    scheduler.frame = RENDERED;
    const limiter = createLimiter({ provider, key: `${user}-${name}-${++keys}`, label: user, scheduler });
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
 * What a server render writes into its page for `api.example.com`, after the one GET (`path`)
 * it makes is answered by `answer` at {@link RENDERED} on the server's clock; the page is
 * written `servedAfterMs` later on that clock.
 */
function render(
  make: () => Limiter,
  answer: { status: number; headers: Record<string, string>; body?: string | object },
  path = '/v1/deals',
  servedAfterMs = 0,
) {
  const server = app([
    { provide: PLATFORM_ID, useValue: 'server' },
    provideRateLimiting({ limiters: { 'api.example.com': make } }),
  ]);
  const clock = jest.spyOn(Date, 'now').mockReturnValue(RENDERED);
  // A 429 would be sent again later: the render is over once the page is written.
  const get = server.http.get(`${API}${path}`).subscribe({ error: () => undefined });
  const { status, headers, body = {} } = answer;
  server.httpTesting.expectOne(() => true).flush(body, { status, statusText: String(status), headers });
  clock.mockReturnValue(RENDERED + servedAfterMs);
  const page = JSON.parse(server.injector.get(TransferState).toJson()) as Record<string, unknown>;
  clock.mockRestore();
  const serverLimiter = server.limiter();
  get.unsubscribe();
  server.injector.destroy();
  return { page: page['rx-ratelimit'] as Record<string, unknown>, serverLimiter };
}

/**
 * The browser's limiter after it hydrates `page` when the browser's wall clock says `atMs`
 * after {@link RENDERED} (the page's transit and the clocks' difference together). `now` is the
 * limiter's own clock (virtual, standing still), which a pause or a reset is counted on.
 */
function hydrate(make: () => Limiter, page: unknown, atMs: number) {
  const clock = jest.spyOn(Date, 'now').mockReturnValue(RENDERED + atMs);
  const state = new TransferState();
  state.set(makeStateKey<unknown>('rx-ratelimit'), page);
  const browser = app([
    { provide: TransferState, useValue: state },
    provideRateLimiting({ limiters: { 'api.example.com': make } }),
  ]);
  const limiter = browser.limiter();
  clock.mockRestore();
  return { limiter, now: limiter.now(), browser };
}

/** How long `limiter` is paused for, on its own clock; `null` when it is not. */
const pausedFor = ({ limiter, now }: { limiter: Limiter; now: number }) =>
  limiter.snapshot.pausedUntil === null ? null : limiter.snapshot.pausedUntil - now;

const RETRY_30 = { status: 429, headers: { 'Retry-After': '30' } };

/**
 * What the page carries for `api.example.com`'s one limiter, as an older page held it (one
 * entry for the host, not a list of them): the browser reads either.
 */
function onlyEntry(page: Record<string, unknown>): Record<string, unknown> {
  const [entry] = [page['api.example.com']].flat() as Array<Record<string, unknown>>;
  return entry ?? {};
}

describe('server rendering: waits the page carries are shortened by its age when served', () => {
  it('a 429 with Retry-After: 30 in a page served 25 s later pauses the browser for the 5 s left', () => {
    const make = limitersOf(providers.generic());
    const { page } = render(make.server, RETRY_30, '/v1/deals', 25_000);
    expect(pausedFor(hydrate(make.browser, page, 25_000))).toBe(5_000);
  });

  it('a 429 whose Retry-After was over when the page was served is not replayed', () => {
    const make = limitersOf(providers.generic());
    const { page } = render(make.server, RETRY_30, '/v1/deals', 40_000);
    expect(pausedFor(hydrate(make.browser, page, 40_000))).toBeNull();
  });

  it("a reset in seconds left (Pipedrive's) counts down to when the page was served, and a window over is not replayed", () => {
    const make = limitersOf(providers.pipedrive({ plan: 'advanced' }));
    const headers = { 'X-RateLimit-Limit': '40', 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': '10' };
    const soon = hydrate(make.browser, render(make.server, { status: 200, headers }, '/v1/deals', 4_000).page, 4_000);
    const bucket = soon.limiter.snapshot.buckets.find((b) => b.source === 'headers');
    expect(bucket).toMatchObject({ limit: 40, remaining: 0 });
    expect((bucket?.resetAt ?? 0) - soon.now).toBe(6_000);

    // Served twelve seconds on, that window had ended: its figures say nothing of the current one.
    const late = hydrate(make.browser, render(make.server, { status: 200, headers }, '/v1/deals', 12_000).page, 12_000);
    expect(late.limiter.snapshot.buckets.some((b) => b.source === 'headers')).toBe(false);
  });

  it("a reset given as a Unix time (Procore's) is replayed as it is", () => {
    const make = limitersOf(providers.procore());
    const resetAt = RENDERED / 1000 + 30;
    const headers = {
      'X-Rate-Limit-Limit': '3600',
      'X-Rate-Limit-Remaining': '12',
      'X-Rate-Limit-Reset': String(resetAt),
    };
    const { page } = render(make.server, { status: 200, headers }, '/rest/v1.0/projects', 20_000);
    const { limiter } = hydrate(make.browser, page, 20_000);
    const bucket = limiter.snapshot.buckets.find((b) => b.source === 'headers');
    expect(bucket).toMatchObject({ remaining: 12, resetAt: resetAt * 1000 });
  });
});

describe("server rendering: a browser's clock does not shorten the waits the page carries", () => {
  it("a browser clock 20 s or 29.5 s fast still waits out a 429's 29 s left", () => {
    const make = limitersOf(providers.generic());
    // The page leaves the server 1 s after the 429: 29 s of its wait are left.
    const { page } = render(make.server, RETRY_30, '/v1/deals', 1_000);
    // Hydrated a moment later by the browser's clock, which runs 20 s (then 29.5 s) fast.
    expect(pausedFor(hydrate(make.browser, page, 21_000))).toBe(29_000);
    expect(pausedFor(hydrate(make.browser, page, 30_500))).toBe(29_000);
  });

  it('a limiter made 45 s after the page arrived (its first request) does not replay a 30 s wait that is over', () => {
    const make = limitersOf(providers.generic());
    // Served 1 s after the 429: 29 s of its wait left then.
    const { page } = render(make.server, RETRY_30, '/v1/deals', 1_000);
    // The page's first byte came at 1,000 ms of the navigation; its limiter is made at 46,000
    // (the browser's clock says as much: with it alone the page's age is not told).
    const entries = jest
      .spyOn(performance, 'getEntriesByType')
      .mockReturnValue([{ responseStart: 1_000 } as unknown as PerformanceEntry]);
    const clock = jest.spyOn(performance, 'now').mockReturnValue(46_000);
    try {
      expect(pausedFor(hydrate(make.browser, page, 46_000))).toBeNull();
    } finally {
      entries.mockRestore();
      clock.mockRestore();
    }
    // Made 10 s after it arrived: 19 s left.
    const again = limitersOf(providers.generic());
    const { page: page2 } = render(again.server, RETRY_30, '/v1/deals', 1_000);
    const entries2 = jest
      .spyOn(performance, 'getEntriesByType')
      .mockReturnValue([{ responseStart: 1_000 } as unknown as PerformanceEntry]);
    const clock2 = jest.spyOn(performance, 'now').mockReturnValue(11_000);
    try {
      expect(pausedFor(hydrate(again.browser, page2, 11_000))).toBe(19_000);
    } finally {
      entries2.mockRestore();
      clock2.mockRestore();
    }
  });

  it("the page's transit and hydration are not taken from the wait (the server's clock says its age)", () => {
    const make = limitersOf(providers.generic());
    const { page } = render(make.server, RETRY_30);
    // The browser's clock says 25 s went by: whether they did or the clock is fast, no one can tell.
    expect(pausedFor(hydrate(make.browser, page, 25_000))).toBe(30_000);
  });

  it('a page without the time it was served (an older page) replays its waits in full, and not at all once a minute old', () => {
    const make = limitersOf(providers.generic());
    const { page } = render(make.server, RETRY_30, '/v1/deals', 20_000);
    const entry = onlyEntry(page);
    delete entry['servedAt'];
    const older = { 'api.example.com': entry };
    expect(pausedFor(hydrate(make.browser, older, 20_000))).toBe(30_000);
    expect(pausedFor(hydrate(make.browser, older, 61_000))).toBeNull();
  });

  it.each([
    ['a string', String(RENDERED + 25_000)],
    ['before the response was read', RENDERED - 1_000],
    ['more than a minute after it', RENDERED + 61_000],
  ])('a served time that does not fit the readings (%s) shortens no wait', (_what, servedAt) => {
    const make = limitersOf(providers.generic());
    const { page } = render(make.server, RETRY_30, '/v1/deals', 25_000);
    const entry = onlyEntry(page);
    const tampered = { 'api.example.com': { ...entry, servedAt } };
    expect(pausedFor(hydrate(make.browser, tampered, 25_000))).toBe(30_000);
  });
});

describe('server rendering: limiters of a route', () => {
  const hosts = (page: Record<string, unknown>) => Object.keys(page).sort();

  /** A server render whose application limits `api.a.example` and a route of it `api.b.example`, each answered by a 429. */
  function renderWithRoute() {
    const a = limitersOf(providers.generic());
    const b = limitersOf(providers.generic());
    const server = app([
      { provide: PLATFORM_ID, useValue: 'server' },
      provideRateLimiting({ limiters: { 'api.a.example': a.server } }),
    ]);
    const route = createEnvironmentInjector(
      [
        provideRateLimiting({ limiters: { 'api.b.example': b.server } }),
        provideHttpClient(withInterceptors([rateLimitingInterceptor({ onMissingHeaders: false })])),
        provideHttpClientTesting(),
      ],
      server.injector,
    );
    made.injectors.unshift(route);
    const clock = jest.spyOn(Date, 'now').mockReturnValue(RENDERED);
    const gets = [
      server.http.get('https://api.a.example/v1/x').subscribe({ error: () => undefined }),
      route
        .get(HttpClient)
        .get('https://api.b.example/v1/y')
        .subscribe({ error: () => undefined }),
    ];
    for (const ctl of [server.httpTesting, route.get(HttpTestingController)]) {
      ctl.expectOne(() => true).flush({}, { status: 429, statusText: '429', headers: { 'Retry-After': '30' } });
    }
    const page = JSON.parse(server.injector.get(TransferState).toJson()) as Record<string, Record<string, unknown>>;
    clock.mockRestore();
    for (const g of gets) g.unsubscribe();
    return { page: page['rx-ratelimit'] ?? {}, browser: { a: a.browser, b: b.browser } };
  }

  it("the page carries the readings of a route's limiters beside the application's", () => {
    expect(hosts(renderWithRoute().page)).toEqual(['api.a.example', 'api.b.example']);
  });

  it("in the browser, the application's limiters and a route's each replay their own host's readings", () => {
    const { page, browser: make } = renderWithRoute();
    const clock = jest.spyOn(Date, 'now').mockReturnValue(RENDERED);
    const state = new TransferState();
    state.set(makeStateKey<unknown>('rx-ratelimit'), page);
    const browser = app([
      { provide: TransferState, useValue: state },
      provideRateLimiting({ limiters: { 'api.a.example': make.a } }),
    ]);
    const a = browser.limiter('api.a.example');
    // The route's injector is made after the application's limiters read the page.
    const route = createEnvironmentInjector(
      [provideRateLimiting({ limiters: { 'api.b.example': make.b } })],
      browser.injector,
    );
    made.injectors.unshift(route);
    const b = route.get(RATE_LIMITERS).get('api.b.example') as Limiter;
    clock.mockRestore();
    expect(pausedFor({ limiter: a, now: a.now() })).toBe(30_000);
    expect(pausedFor({ limiter: b, now: b.now() })).toBe(30_000);
  });
});

describe('server rendering: the paths a page carries', () => {
  /** The path the page carries for a request of `path`. */
  const carried = (path: string) => routeOf(`${API}${path}`).slice(API.length);

  it('keeps route words and short numbers, and writes every other segment :id', () => {
    const paths = {
      // A token of any length, a person's name or email, a passphrase, a PIN: never in the page.
      '/v1/share/Xk9p2Lm4Qr7sT1z/items': '/v1/share/:id/items',
      '/v1/key/sk_live_4eC39HqLyjWDarjtT1zdp7dc/charges': '/v1/key/:id/charges',
      '/v1/users/john.doe/deals': '/v1/users/:id/deals',
      '/v1/users/john%40doe.example/deals': '/v1/users/:id/deals',
      '/v1/reset/correct-horse-battery-staple/x': '/v1/reset/:id/x',
      '/v1/pin/839201/x': '/v1/pin/:id/x',
      '/v1/a/kq8x2mzt/b': '/v1/a/:id/b',
      '/v1/Admin/x': '/v1/:id/x',
      // What APIs' routes are made of stays.
      '/rest/api/3/issue/ABC-123/worklog': '/rest/api/3/issue/:id/worklog',
      '/api/v3/projects/42/task_check_items': '/api/v3/projects/42/task_check_items',
      '/repos/o/r/dependency-graph/snapshots': '/repos/o/r/dependency-graph/snapshots',
      '/admin/api/2024-01/graphql.json': '/admin/api/2024-01/graphql.json',
      '/rest/v1.0/companies/7/projects': '/rest/v1.0/companies/7/projects',
      '/oauth2/v2/rate_limit': '/oauth2/v2/rate_limit',
    };
    expect(Object.fromEntries(Object.keys(paths).map((p) => [p, carried(p)]))).toEqual(paths);
  });

  it('a path as the page carries it names the bucket the live request counts on', () => {
    const requests: Array<[(r: { method: string; url: string }) => unknown, string, string]> = [
      [fieldwireEndpoint, 'GET', 'https://client-api.us.fieldwire.com/api/v3/projects/123/task_check_items'],
      [fieldwireEndpoint, 'POST', 'https://client-api.us.fieldwire.com/api/v3/projects/123/tasks/9/bubbles'],
      [atlassianEndpoint, 'PUT', 'https://x.atlassian.net/rest/api/3/issue/ABC-123/remotelink'],
      [atlassianEndpoint, 'GET', 'https://x.atlassian.net/wiki/api/v2/pages/98765/footer-comments'],
      [githubResource, 'POST', 'https://api.github.com/repos/octo-cat/Hello.World/dependency-graph/snapshots'],
      [githubResource, 'POST', 'https://api.github.com/repos/octocat/x/code-scanning/sarifs'],
      [githubResource, 'POST', 'https://api.github.com/orgs/Acme/actions/runners/registration-token'],
      [githubResource, 'GET', 'https://api.github.com/search/code'],
      [githubResource, 'POST', 'https://ghe.example/api/graphql'],
      [isHubspotSearch, 'POST', 'https://api.hubapi.com/crm/v3/objects/contacts/search'],
      [endpointKey, 'GET', 'https://api.pipedrive.com/v1/deals/42/participants'],
      [endpointKey, 'GET', 'https://x.myshopify.com/admin/api/2024-01/products.json'],
    ];
    for (const [bucketOf, method, url] of requests) {
      expect([url, bucketOf({ method, url: routeOf(url) })]).toEqual([url, bucketOf({ method, url })]);
    }
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
