// Angular's packages are partially compiled: outside an Angular CLI build they need the JIT compiler.
import '@angular/compiler';

import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  HttpClient,
  HttpErrorResponse,
  HttpEventType,
  HttpHeaderResponse,
  HttpHeaders,
  provideHttpClient,
  withInterceptors,
  type HttpEvent,
} from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { provideZonelessChangeDetection } from '@angular/core';
import { TestBed, TestComponentRenderer } from '@angular/core/testing';
import { BrowserTestingModule, platformBrowserTesting } from '@angular/platform-browser/testing';
import { firstValueFrom, VirtualTimeScheduler } from 'rxjs';
import { createLimiter, isBlockedError, providers, type Limiter } from '../../lib/index.js';
import {
  rateLimitingInterceptor,
  rateLimitInterceptor,
  type RateLimitInterceptorOptions,
} from '../../lib/adapters/angular.js';

const API = 'https://api.pipedrive.com';
let keys = 0;
/** A credential of its own per limiter: limiters of one provider and key share one limit state. */
const freshKey = () => `interceptor-token-${++keys}`;

beforeAll(() => {
  TestBed.initTestEnvironment(BrowserTestingModule, platformBrowserTesting());
});
afterEach(() => {
  TestBed.resetTestingModule();
});

/** An HttpClient whose requests go through `limiter`, answered by HttpTestingController. */
function setup(limiter: Limiter, options: Partial<RateLimitInterceptorOptions> = {}) {
  TestBed.configureTestingModule({
    providers: [
      { provide: TestComponentRenderer, useClass: TestComponentRenderer },
      provideZonelessChangeDetection(),
      provideHttpClient(
        withInterceptors([rateLimitInterceptor({ limiters: () => limiter, onMissingHeaders: false, ...options })]),
      ),
      provideHttpClientTesting(),
    ],
  });
  return { http: TestBed.inject(HttpClient), httpTesting: TestBed.inject(HttpTestingController) };
}

describe('403 bodies read as bytes', () => {
  const html = '<html><body><h1>403 Forbidden</h1><p>You do not have access to this file.</p></body></html>';
  const blockPage = '<html><body><p>This error is produced by Cloudflare.</p></body></html>';
  const bytesOf = (text: string) => new TextEncoder().encode(text).buffer;
  const pipedrive = () => createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: freshKey() });
  const forbidden = { status: 403, statusText: 'Forbidden', headers: { 'Content-Type': 'text/html' } };

  it('an ordinary HTML 403 as an ArrayBuffer reaches the caller as it was, and blocks no credential', async () => {
    const limiter = pipedrive();
    const { http, httpTesting } = setup(limiter);
    const error = firstValueFrom(http.get(`${API}/v1/files/9/download`, { responseType: 'arraybuffer' })).catch(
      (e: unknown) => e,
    );
    httpTesting.expectOne(() => true).flush(bytesOf(html), forbidden);
    expect(await error).toBeInstanceOf(HttpErrorResponse);
    expect(limiter.snapshot.blocked).toBeNull();
  });

  it('an ordinary HTML 403 as a Blob reaches the caller as it was, its blob whole, and blocks no credential', async () => {
    const limiter = pipedrive();
    const { http, httpTesting } = setup(limiter);
    const error = firstValueFrom(http.get(`${API}/v1/files/9/download`, { responseType: 'blob' })).catch(
      (e: unknown) => e,
    );
    httpTesting.expectOne(() => true).flush(new Blob([html], { type: 'text/html' }), forbidden);
    const received = await error;
    expect(received).toBeInstanceOf(HttpErrorResponse);
    expect(await ((received as HttpErrorResponse).error as Blob).text()).toBe(html);
    expect(limiter.snapshot.blocked).toBeNull();
  });

  it("Pipedrive's block page as an ArrayBuffer or a Blob still blocks the credential", async () => {
    for (const [responseType, body] of [
      ['arraybuffer', bytesOf(blockPage)],
      ['blob', new Blob([blockPage], { type: 'text/html' })],
    ] as const) {
      TestBed.resetTestingModule();
      const limiter = pipedrive();
      const { http, httpTesting } = setup(limiter);
      const url = `${API}/v1/files/9/download`;
      const download$ =
        responseType === 'blob'
          ? http.get(url, { responseType: 'blob' })
          : http.get(url, { responseType: 'arraybuffer' });
      const error = firstValueFrom<unknown>(download$).catch((e: unknown) => e);
      httpTesting.expectOne(() => true).flush(body, forbidden);
      expect(isBlockedError(await error)).toBe(true);
      expect(limiter.snapshot.blocked).not.toBeNull();
    }
  });
});

describe("observe: 'events' across a retried 429", () => {
  /** The events a caller sees, as `Sent`, `ResponseHeader(429)`, `DownloadProgress`… */
  const described = (event: HttpEvent<unknown>): string => {
    const name = HttpEventType[event.type];
    return 'status' in event ? `${name}(${event.status})` : name;
  };

  it('the caller sees each attempt sent, and the answer it gets, never the retried 429', () => {
    const scheduler = new VirtualTimeScheduler();
    const limiter = createLimiter({ provider: providers.generic(), key: freshKey(), scheduler });
    const { http, httpTesting } = setup(limiter);
    const seen: string[] = [];
    http
      .get(`${API}/v1/deals`, { observe: 'events', reportProgress: true, responseType: 'text' })
      .subscribe({ next: (e) => seen.push(described(e)), error: () => seen.push('error') });

    const first = httpTesting.expectOne(() => true);
    first.event(new HttpHeaderResponse({ status: 429, headers: new HttpHeaders({ 'Retry-After': '1' }) }));
    first.event({ type: HttpEventType.DownloadProgress, loaded: 9, total: 9 });
    first.flush('slow down', { status: 429, statusText: 'Too Many Requests', headers: { 'Retry-After': '1' } });
    scheduler.flush();
    const second = httpTesting.expectOne(() => true);
    second.event(new HttpHeaderResponse({ status: 200 }));
    second.event({ type: HttpEventType.DownloadProgress, loaded: 2, total: 2 });
    second.flush('ok');

    expect(seen).toEqual(['Sent', 'Sent', 'ResponseHeader(200)', 'DownloadProgress', 'Response(200)']);
  });

  it('the events of an error that is not retried reach the caller, in order, before it', () => {
    const limiter = createLimiter({ provider: providers.generic(), key: freshKey() });
    const { http, httpTesting } = setup(limiter);
    const seen: string[] = [];
    http.get(`${API}/v1/deals/7`, { observe: 'events', reportProgress: true, responseType: 'text' }).subscribe({
      next: (e) => seen.push(described(e)),
      error: (e: HttpErrorResponse) => seen.push(`error ${e.status}`),
    });

    const request = httpTesting.expectOne(() => true);
    request.event(new HttpHeaderResponse({ status: 404 }));
    request.event({ type: HttpEventType.DownloadProgress, loaded: 9, total: 9 });
    request.flush('not found', { status: 404, statusText: 'Not Found' });

    expect(seen).toEqual(['Sent', 'ResponseHeader(404)', 'DownloadProgress', 'error 404']);
  });
});

describe('interceptor options, checked when it is created', () => {
  const limiter = createLimiter({ provider: providers.generic(), key: freshKey() });
  const create = {
    rateLimitInterceptor: (options: object) =>
      rateLimitInterceptor({ limiters: () => limiter, ...options } as RateLimitInterceptorOptions),
    rateLimitingInterceptor: (options: object) => rateLimitingInterceptor(options as RateLimitInterceptorOptions),
  };

  it.each(Object.entries(create))('%s refuses a bad value of each option with a TypeError naming it', (name, make) => {
    const cases: Array<[object, RegExp]> = [
      [{ retryNonIdempotent: 'false' }, /option `retryNonIdempotent` must be a boolean, got "false"/],
      [{ reserve: -5 }, /option `reserve` must be a whole number >= 0, got -5/],
      [{ reserve: 'lots' }, /option `reserve` must be a whole number >= 0, got string/],
      [{ reservePriority: Number.NaN }, /option `reservePriority` must be a number, got NaN/],
      [{ maxRetry: 3 }, /unknown option `maxRetry`/],
    ];
    for (const [options, message] of cases) {
      expect(() => make(options)).toThrow(TypeError);
      expect(() => make(options)).toThrow(new RegExp(`^${name}: ${message.source}`));
    }
  });

  it('accepts every option it documents', () => {
    expect(() =>
      create.rateLimitInterceptor({
        priority: 1,
        maxRetries: 2,
        retryNonIdempotent: true,
        statuses: [429, 503],
        reserve: 100,
        reservePriority: 5,
        onMissingHeaders: false,
        missingHeadersAfter: 2,
        onCorsBlocked: () => undefined,
        baseUrl: 'https://app.example.com/',
      }),
    ).not.toThrow();
  });
});
