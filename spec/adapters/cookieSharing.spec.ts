// Angular's packages are partially compiled: outside an Angular CLI build they need the JIT compiler.
import '@angular/compiler';

import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { HttpClient, provideHttpClient, withInterceptors } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { provideZonelessChangeDetection } from '@angular/core';
import { TestBed, TestComponentRenderer } from '@angular/core/testing';
import { BrowserTestingModule, platformBrowserTesting } from '@angular/platform-browser/testing';
import { HttpService } from '@nestjs/axios';
import axios, { type AxiosAdapter, type InternalAxiosRequestConfig } from 'axios';
import { firstValueFrom } from 'rxjs';
import { createLimiter, providers, type Limiter } from '../../lib/index.js';
import { rateLimitInterceptor } from '../../lib/adapters/angular.js';
import { rateLimitedRequest } from '../../lib/adapters/axios.js';
import { rateLimitedHttp } from '../../lib/adapters/nestjs.js';

/** What a server sends when it says nothing of who may see the page: no `private`, `Vary` or `Set-Cookie`. */
const CACHEABLE = { 'cache-control': 'max-age=60', etag: '"v1"' };

/** The page of the user whose session cookie the request carried. */
interface Page {
  readonly user: string;
}

/** One limiter for every user, as an SSR server whose API key is the app's has, with the cache on. */
const appLimiter = (): Limiter =>
  createLimiter({
    provider: providers.generic(),
    key: `app-${Math.random()}`,
    coldStartConcurrency: 10,
    cache: { ttlMs: 60_000 },
  });

/** An axios instance whose server answers, after 20 ms, with the cookie it got; `sent` lists them. */
function api() {
  const sent: string[] = [];
  const adapter: AxiosAdapter = (config: InternalAxiosRequestConfig) =>
    new Promise((resolve) => {
      const user = String(config.headers.get('cookie'));
      sent.push(user);
      setTimeout(() => resolve({ status: 200, statusText: 'OK', headers: CACHEABLE, data: { user }, config }), 20);
    });
  return { instance: axios.create({ baseURL: 'https://api.example.com', adapter }), sent };
}

describe('axios: two users of one limiter, told apart by their Cookie only', () => {
  const me = (limiter: Limiter, instance: ReturnType<typeof api>['instance'], cookie: string) =>
    firstValueFrom(rateLimitedRequest<Page>(limiter, instance, { url: '/me', headers: { Cookie: cookie } })).then(
      (r) => r.data.user,
    );

  it('each gets their own page, at once and later from the cache', async () => {
    const { instance, sent } = api();
    const limiter = appLimiter();
    expect(await Promise.all([me(limiter, instance, 'sid=alice'), me(limiter, instance, 'sid=bob')])).toEqual([
      'sid=alice',
      'sid=bob',
    ]);
    expect(await me(limiter, instance, 'sid=bob')).toBe('sid=bob');
    expect(await me(limiter, instance, 'sid=alice')).toBe('sid=alice');
    expect(sent).toEqual(['sid=alice', 'sid=bob']);
  });

  it('the same cookie still shares: one request, then the cache', async () => {
    const { instance, sent } = api();
    const limiter = appLimiter();
    await Promise.all([me(limiter, instance, 'sid=alice'), me(limiter, instance, 'sid=alice')]);
    expect(await me(limiter, instance, 'sid=alice')).toBe('sid=alice');
    expect(sent).toEqual(['sid=alice']);
  });
});

describe('NestJS: two users of one limiter, told apart by their Cookie only', () => {
  it('each gets their own page, at once and later from the cache; the same cookie shares', async () => {
    const { instance, sent } = api();
    const http = rateLimitedHttp(new HttpService(instance as never), appLimiter());
    const me = (cookie: string) =>
      firstValueFrom(http.get<Page>('/me', { headers: { Cookie: cookie } })).then((r) => r.data.user);
    expect(await Promise.all([me('sid=alice'), me('sid=bob')])).toEqual(['sid=alice', 'sid=bob']);
    expect(await me('sid=bob')).toBe('sid=bob');
    expect(await me('sid=alice')).toBe('sid=alice');
    expect(sent).toEqual(['sid=alice', 'sid=bob']);
  });
});

describe('Angular: two users of one limiter, told apart by their Cookie only', () => {
  const URL_ = 'https://api.example.com/me';

  beforeAll(() => {
    TestBed.initTestEnvironment(BrowserTestingModule, platformBrowserTesting());
  });
  afterEach(() => {
    TestBed.resetTestingModule();
  });

  function setup() {
    const limiter = appLimiter();
    TestBed.configureTestingModule({
      providers: [
        { provide: TestComponentRenderer, useClass: TestComponentRenderer },
        provideZonelessChangeDetection(),
        provideHttpClient(withInterceptors([rateLimitInterceptor({ limiters: () => limiter })])),
        provideHttpClientTesting(),
      ],
    });
    return { http: TestBed.inject(HttpClient), httpTesting: TestBed.inject(HttpTestingController) };
  }

  const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

  it('each gets their own page, at once and later from the cache; the same cookie shares', async () => {
    const { http, httpTesting } = setup();
    const got: unknown[] = [];
    const get = (cookie: string) => http.get<Page>(URL_, { headers: { Cookie: cookie } }).subscribe((b) => got.push(b));
    get('sid=alice');
    get('sid=bob');
    get('sid=bob');
    await tick();
    const sent = httpTesting.match(URL_);
    expect(sent.map((r) => r.request.headers.get('cookie'))).toEqual(['sid=alice', 'sid=bob']);
    for (const r of sent) r.flush({ user: r.request.headers.get('cookie') }, { headers: CACHEABLE });
    await tick();
    get('sid=alice');
    await tick();
    httpTesting.expectNone(URL_);
    expect(got).toEqual([{ user: 'sid=alice' }, { user: 'sid=bob' }, { user: 'sid=bob' }, { user: 'sid=alice' }]);
  });
});
