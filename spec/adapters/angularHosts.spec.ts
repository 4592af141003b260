// Angular's packages are partially compiled: outside an Angular CLI build they need the JIT compiler.
import '@angular/compiler';

import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { HttpClient, provideHttpClient, withInterceptors, type HttpInterceptorFn } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { provideZonelessChangeDetection, type EnvironmentProviders } from '@angular/core';
import { TestBed, TestComponentRenderer } from '@angular/core/testing';
import { BrowserTestingModule, platformBrowserTesting } from '@angular/platform-browser/testing';
import { createLimiter, createLimiterPool, providers, type Limiter } from '../../lib/index.js';
import {
  injectLimiter,
  provideRateLimiting,
  rateLimitingInterceptor,
  rateLimitInterceptor,
} from '../../lib/adapters/angular.js';

let keys = 0;
/** A credential of its own per limiter: limiters of one provider and key share one limit state. */
const limiter = () => createLimiter({ provider: providers.generic(), key: `hosts-token-${++keys}` });

beforeAll(() => {
  TestBed.initTestEnvironment(BrowserTestingModule, platformBrowserTesting());
});
afterEach(() => {
  TestBed.resetTestingModule();
});

/** Sends one GET to `url` through `interceptor` (and `extra` providers); true when `paced` sent it. */
function sendsThrough(paced: Limiter, url: string, interceptor: HttpInterceptorFn, extra: EnvironmentProviders[] = []) {
  TestBed.resetTestingModule();
  TestBed.configureTestingModule({
    providers: [
      { provide: TestComponentRenderer, useClass: TestComponentRenderer },
      provideZonelessChangeDetection(),
      ...extra,
      provideHttpClient(withInterceptors([interceptor])),
      provideHttpClientTesting(),
    ],
  });
  const before = paced.snapshot.totals.sent;
  TestBed.inject(HttpClient).get(url).subscribe();
  TestBed.inject(HttpTestingController)
    .expectOne(() => true)
    .flush({});
  return paced.snapshot.totals.sent === before + 1;
}

/** Keys a user may write, each with a URL of the host it names. */
const matching: Array<[string, string]> = [
  // A port named as the request's scheme implies it.
  ['api.example.com:443', 'https://api.example.com/v1/deals'],
  ['api.example.com:80', 'http://api.example.com/v1/deals'],
  // A Unicode name, which a URL holds in its ASCII form (xn--bcher-kva.example).
  ['bücher.example', 'https://bücher.example/v1/deals'],
  ['BÜCHER.example', 'https://xn--bcher-kva.example/v1/deals'],
  // A fully qualified name, on either side.
  ['api.example.com', 'https://api.example.com./v1/deals'],
  ['api.example.com.', 'https://api.example.com/v1/deals'],
  ['API.Example.COM', 'https://api.example.com/v1/deals'],
  ['[::1]:8080', 'http://[::1]:8080/v1/deals'],
];

describe('rateLimitInterceptor: limiters by host', () => {
  it.each(matching)('the key "%s" paces %s', (key, url) => {
    const paced = limiter();
    expect(
      sendsThrough(paced, url, rateLimitInterceptor({ limiters: { [key]: paced }, onMissingHeaders: false })),
    ).toBe(true);
  });

  it('a key with a port matches that port only', () => {
    const paced = limiter();
    const interceptor = rateLimitInterceptor({ limiters: { 'api.example.com:8443': paced }, onMissingHeaders: false });
    expect(sendsThrough(paced, 'https://api.example.com/v1/deals', interceptor)).toBe(false);
    expect(sendsThrough(paced, 'https://api.example.com:8443/v1/deals', interceptor)).toBe(true);
  });

  it('refuses limiters given as a Map or an array, which name no host', () => {
    const paced = limiter();
    const limiters = [new Map([['api.example.com', paced]]), [paced]];
    expect(() => rateLimitInterceptor({ limiters: limiters[0] as never })).toThrow(
      'rateLimitInterceptor: option `limiters` must be an object keyed by host, got a Map',
    );
    expect(() => rateLimitInterceptor({ limiters: limiters[1] as never })).toThrow(
      'rateLimitInterceptor: option `limiters` must be an object keyed by host, got an array',
    );
  });

  it('refuses a key that is no host, naming it, and two keys of one host', () => {
    const paced = limiter();
    expect(() => rateLimitInterceptor({ limiters: { 'api example.com': paced } })).toThrow(
      'rateLimitInterceptor: option `limiters` is keyed by host ("api.example.com" or "localhost:8080"), got "api example.com"',
    );
    for (const key of ['user@api.example.com', 'api.example.com:99999', '', 'api.example.com?x', 'api.example.com:']) {
      expect(() => rateLimitInterceptor({ limiters: { [key]: paced } })).toThrow(/option `limiters` is keyed by host/);
    }
    expect(() => rateLimitInterceptor({ limiters: { 'api.example.com': paced, 'API.example.com.': paced } })).toThrow(
      'rateLimitInterceptor: option `limiters` names one host twice, "api.example.com" and "API.example.com."',
    );
  });
});

describe('provideRateLimiting: limiters and pools by host', () => {
  it.each(matching)('the key "%s" paces %s', (key, url) => {
    const paced = limiter();
    const di = provideRateLimiting({ limiters: { [key]: () => paced }, transferState: false });
    expect(sendsThrough(paced, url, rateLimitingInterceptor({ onMissingHeaders: false }), [di])).toBe(true);
  });

  it('a pool keyed by a Unicode name paces its requests; injectLimiter finds a limiter by such a name', () => {
    const paced = limiter();
    const pool = createLimiterPool({ provider: providers.generic() });
    const di = provideRateLimiting({
      limiters: { 'bücher.example': () => paced },
      pools: { 'straße.example:443': { pool, tenant: 'x-tenant' } },
      transferState: false,
    });
    expect(
      sendsThrough(paced, 'https://bücher.example/', rateLimitingInterceptor({ onMissingHeaders: false }), [di]),
    ).toBe(true);
    expect(TestBed.runInInjectionContext(() => injectLimiter('BÜCHER.example'))).toBe(paced);

    TestBed.inject(HttpClient)
      .get('https://straße.example/v1/deals', { headers: { 'x-tenant': 'acme' } })
      .subscribe();
    TestBed.inject(HttpTestingController)
      .expectOne(() => true)
      .flush({});
    expect(pool.snapshot().size).toBe(1);
    void pool.close();
  });

  it('a tenant header set twice is paced as the pair it is sent as, never as its first value', () => {
    const pool = createLimiterPool({ provider: providers.generic() });
    const di = provideRateLimiting({
      pools: { 'api.example.com': { pool, tenant: 'x-tenant' } },
      transferState: false,
    });
    TestBed.resetTestingModule();
    TestBed.configureTestingModule({
      providers: [
        { provide: TestComponentRenderer, useClass: TestComponentRenderer },
        provideZonelessChangeDetection(),
        di,
        provideHttpClient(withInterceptors([rateLimitingInterceptor({ onMissingHeaders: false })])),
        provideHttpClientTesting(),
      ],
    });
    const http = TestBed.inject(HttpClient);
    http.get('https://api.example.com/v1/deals', { headers: { 'x-tenant': 'acme' } }).subscribe();
    http.get('https://api.example.com/v1/deals', { headers: { 'x-tenant': ['acme', 'globex'] } }).subscribe();
    for (const r of TestBed.inject(HttpTestingController).match(() => true)) r.flush({});
    expect(pool.has('acme')).toBe(true);
    expect(pool.has('acme, globex')).toBe(true);
    expect(pool.snapshot().size).toBe(2);
    void pool.close();
  });

  it('refuses limiters or pools given as a Map or an array, a key that is no host, two keys of one host', () => {
    const make = () => limiter();
    expect(() => provideRateLimiting({ limiters: new Map([['api.example.com', make]]) as never })).toThrow(
      'provideRateLimiting: option `limiters` must be an object keyed by host, got a Map',
    );
    expect(() => provideRateLimiting({ limiters: [make] as never })).toThrow(
      'provideRateLimiting: option `limiters` must be an object keyed by host, got an array',
    );
    expect(() => provideRateLimiting({ pools: [] as never })).toThrow(
      'provideRateLimiting: option `pools` must be an object keyed by host, got an array',
    );
    expect(() => provideRateLimiting({ limiters: { 'api example.com': make } })).toThrow(
      'provideRateLimiting: option `limiters` is keyed by host ("api.example.com" or "localhost:8080"), got "api example.com"',
    );
    expect(() => provideRateLimiting({ limiters: { 'api.example.com': make, 'api.example.com.': make } })).toThrow(
      /names one host twice/,
    );
    const pool = createLimiterPool({ provider: providers.generic() });
    expect(() =>
      provideRateLimiting({
        limiters: { 'bücher.example': make },
        pools: { 'xn--bcher-kva.example': { pool, tenant: 'x' } },
      }),
    ).toThrow(/the host is in `limiters` too/);
    void pool.close();
  });
});
