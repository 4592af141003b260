// Angular's packages are partially compiled: outside an Angular CLI build they need the JIT compiler.
import '@angular/compiler';

import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  HttpClient,
  HttpContext,
  HttpHeaders,
  provideHttpClient,
  withFetch,
  withInterceptors,
} from '@angular/common/http';
import { provideZonelessChangeDetection } from '@angular/core';
import { TestBed, TestComponentRenderer } from '@angular/core/testing';
import { BrowserTestingModule, platformBrowserTesting } from '@angular/platform-browser/testing';
import { HttpService } from '@nestjs/axios';
import axios from 'axios';
import { AsyncLocalStorage } from 'node:async_hooks';
import { firstValueFrom } from 'rxjs';
import { fromFetch } from 'rxjs/fetch';
import { createLimiter, providers, rateLimit, type Limiter } from '../../lib/index.js';
import { RATE_LIMIT_SHARE_KEY, rateLimitInterceptor } from '../../lib/adapters/angular.js';
import { attachRateLimiter, rateLimitedRequest } from '../../lib/adapters/axios.js';
import { rateLimitedFetch } from '../../lib/adapters/fetch.js';
import { rateLimitedHttp } from '../../lib/adapters/nestjs.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// Two users of one app call the same URL through one limiter, over loopback sockets: each must
// get their own body, whether the calls overlap or follow each other with the cache on.

const ALICE = 'Bearer alice-0123456789';
const BOB = 'Bearer bob-9876543210';

/** Answers `{ user, lang }` from the request's headers after 100 ms (so that calls overlap). */
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const vary = url.searchParams.get('vary');
    if (vary) headers['vary'] = vary;
    const cacheControl = url.searchParams.get('cache-control');
    if (cacheControl) headers['cache-control'] = cacheControl;
    const body = JSON.stringify({
      user: req.headers.authorization ?? null,
      lang: req.headers['accept-language'] ?? null,
    });
    setTimeout(() => res.writeHead(200, headers).end(body), 100);
  });
  TestBed.initTestEnvironment(BrowserTestingModule, platformBrowserTesting());
});
afterEach(() => {
  server.requests.length = 0;
  TestBed.resetTestingModule();
});
afterAll(() => server.close());

interface Body {
  readonly user: string | null;
  readonly lang: string | null;
}

/** GETs `path` from the test server as `authorization`, with extra headers; resolves with the body. */
type Get = (path: string, authorization: string, headers?: Record<string, string>) => Promise<Body>;

const limiterWith = (cache: boolean): Limiter =>
  createLimiter({
    provider: providers.generic(),
    key: 'one-limiter-for-the-app',
    coldStartConcurrency: 10,
    ...(cache ? { cache: { ttlMs: 60_000 } } : {}),
  });

function angularGet(limiter: Limiter): Get {
  TestBed.configureTestingModule({
    providers: [
      { provide: TestComponentRenderer, useClass: TestComponentRenderer },
      provideZonelessChangeDetection(),
      provideHttpClient(withFetch(), withInterceptors([rateLimitInterceptor({ limiters: () => limiter })])),
    ],
  });
  const http = TestBed.inject(HttpClient);
  return (path, authorization, headers = {}) =>
    firstValueFrom(
      http.get<Body>(`${server.url}${path}`, {
        headers: new HttpHeaders({ ...headers, Authorization: authorization }),
      }),
    );
}

/** Every way in; `shares`: whether it shares identical GETs at all. */
const WAYS: Array<{ name: string; shares: boolean; make: (limiter: Limiter) => Get }> = [
  {
    name: 'rateLimit + fromFetch',
    shares: true,
    make:
      (limiter) =>
      async (path, authorization, extra = {}) => {
        const url = `${server.url}${path}`;
        const headers = { ...extra, Authorization: authorization };
        const res = await firstValueFrom(fromFetch(url, { headers }).pipe(rateLimit(limiter, { url, headers })));
        return (await res.json()) as Body;
      },
  },
  {
    name: 'rateLimitedFetch',
    shares: false,
    make: (limiter) => {
      const get = rateLimitedFetch(limiter);
      return async (path, authorization, extra = {}) =>
        (await (
          await get(`${server.url}${path}`, { headers: { ...extra, Authorization: authorization } })
        ).json()) as Body;
    },
  },
  {
    name: 'axios rateLimitedRequest, headers in the config',
    shares: true,
    make: (limiter) => {
      const api = axios.create({ baseURL: server.url });
      return async (path, authorization, extra = {}) =>
        (
          await firstValueFrom(
            rateLimitedRequest<Body>(limiter, api, { url: path, headers: { ...extra, Authorization: authorization } }),
          )
        ).data;
    },
  },
  {
    name: 'axios rateLimitedRequest, one instance per user',
    shares: true,
    make: (limiter) => {
      const instances = new Map<string, ReturnType<typeof axios.create>>();
      return async (path, authorization, extra = {}) => {
        let api = instances.get(authorization);
        if (!api)
          instances.set(
            authorization,
            (api = axios.create({ baseURL: server.url, headers: { Authorization: authorization } })),
          );
        return (await firstValueFrom(rateLimitedRequest<Body>(limiter, api, { url: path, headers: extra }))).data;
      };
    },
  },
  {
    name: 'axios attachRateLimiter',
    shares: false,
    make: (limiter) => {
      const api = axios.create({ baseURL: server.url });
      attachRateLimiter(api, limiter);
      return async (path, authorization, extra = {}) =>
        (await api.get<Body>(path, { headers: { ...extra, Authorization: authorization } })).data;
    },
  },
  {
    name: 'NestJS rateLimitedHttp',
    shares: true,
    make: (limiter) => {
      const api = rateLimitedHttp(new HttpService(axios.create()), limiter);
      return async (path, authorization, extra = {}) =>
        (
          await firstValueFrom(
            api.get<Body>(`${server.url}${path}`, { headers: { ...extra, Authorization: authorization } }),
          )
        ).data;
    },
  },
  {
    // Not shared: the headers an interceptor adds are unknown when the request is queued.
    name: 'NestJS rateLimitedHttp, Authorization added by an interceptor',
    shares: false,
    make: (limiter) => {
      // As apps do: the current user's token, set by a request interceptor (invisible to us).
      const user = new AsyncLocalStorage<string>();
      const instance = axios.create();
      instance.interceptors.request.use((config) => {
        config.headers.Authorization = user.getStore() ?? null;
        return config;
      });
      const api = rateLimitedHttp(new HttpService(instance), limiter);
      return async (path, authorization, headers = {}) =>
        (await user.run(authorization, () => firstValueFrom(api.get<Body>(`${server.url}${path}`, { headers })))).data;
    },
  },
  { name: 'Angular rateLimitInterceptor (withFetch)', shares: true, make: angularGet },
];

const usersSeen = () => server.requests.map((r) => r.authorization);

describe.each(WAYS)('$name: two users, one URL, one limiter', ({ make, shares }) => {
  it('at once: each gets their own body (an identical request of the same user may share)', async () => {
    const get = make(limiterWith(false));
    const bodies = await Promise.all([get('/me', ALICE), get('/me', BOB), get('/me', ALICE)]);
    expect(bodies.map((b) => b.user)).toEqual([ALICE, BOB, ALICE]);
    expect(usersSeen().filter((u) => u === BOB)).toHaveLength(1);
  });

  it('one after the other with the cache on: each gets their own body', async () => {
    const get = make(limiterWith(true));
    const users = [ALICE, BOB, ALICE, BOB];
    const bodies: Body[] = [];
    for (const user of users) bodies.push(await get('/me', user));
    expect(bodies.map((b) => b.user)).toEqual(users);
    expect(usersSeen().filter((u) => u === BOB)).toHaveLength(shares ? 1 : 2);
  });

  it('a response that varies on Accept-Language is cached per language', async () => {
    const get = make(limiterWith(true));
    const langs = ['de', 'fr', 'de'];
    const bodies: Body[] = [];
    for (const lang of langs) bodies.push(await get('/me?vary=Accept-Language', ALICE, { 'Accept-Language': lang }));
    expect(bodies.map((b) => b.lang)).toEqual(langs);
  });

  it('a Cache-Control: no-store response is not served again', async () => {
    const get = make(limiterWith(true));
    await get('/me?cache-control=no-store', ALICE);
    await get('/me?cache-control=no-store', ALICE);
    expect(server.requests).toHaveLength(2);
  });
});

describe('per-request opt-out', () => {
  it('Angular: RATE_LIMIT_SHARE_KEY false sends an identical GET on its own', async () => {
    const limiter = limiterWith(false);
    angularGet(limiter);
    const http = TestBed.inject(HttpClient);
    const context = new HttpContext().set(RATE_LIMIT_SHARE_KEY, false);
    const url = `${server.url}/me`;
    await Promise.all([firstValueFrom(http.get(url, { context })), firstValueFrom(http.get(url, { context }))]);
    expect(server.requests).toHaveLength(2);
  });

  it('NestJS: config.rateLimit.shareKey false sends an identical GET on its own', async () => {
    const api = rateLimitedHttp(new HttpService(axios.create()), limiterWith(false));
    const url = `${server.url}/me`;
    const get = () => firstValueFrom(api.get(url, { rateLimit: { shareKey: false } }));
    await Promise.all([get(), get()]);
    expect(server.requests).toHaveLength(2);
  });
});

describe('request interceptors', () => {
  it("attachRateLimiter's own interceptor adds no header: rateLimitedRequest on that instance still shares", async () => {
    const limiter = limiterWith(false);
    const api = axios.create({ baseURL: server.url });
    attachRateLimiter(api, limiter);
    const get = () =>
      firstValueFrom(rateLimitedRequest(limiter, api, { url: '/me', headers: { Authorization: ALICE } }));
    await Promise.all([get(), get()]);
    expect(server.requests).toHaveLength(1);
  });

  it('an app interceptor on the instance stops sharing; a shareKey shares again', async () => {
    const api = axios.create({ baseURL: server.url });
    api.interceptors.request.use((config) => config);
    const limiter = limiterWith(false);
    const get = (shareKey?: string) =>
      firstValueFrom(rateLimitedRequest(limiter, api, { url: '/me' }, shareKey === undefined ? {} : { shareKey }));
    await Promise.all([get(), get()]);
    expect(server.requests).toHaveLength(2);
    await Promise.all([get('me'), get('me')]);
    expect(server.requests).toHaveLength(3);
  });
});
