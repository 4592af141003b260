// Angular's packages are partially compiled: outside an Angular CLI build they need the JIT compiler.
import '@angular/compiler';

import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  HttpClient,
  provideHttpClient,
  withInterceptors,
  ɵREQUESTS_CONTRIBUTE_TO_STABILITY as STABILITY,
} from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import {
  createEnvironmentInjector,
  EnvironmentInjector,
  PendingTasks,
  PLATFORM_ID,
  provideZonelessChangeDetection,
  TransferState,
} from '@angular/core';
import { TestBed, TestComponentRenderer } from '@angular/core/testing';
import { BrowserTestingModule, platformBrowserTesting } from '@angular/platform-browser/testing';
import { VirtualTimeScheduler } from 'rxjs';
import { createLimiter, isQuotaExhaustedError, providers, type Limiter } from '../../lib/index.js';
import {
  provideRateLimiting,
  rateLimitingInterceptor,
  type RateLimitInterceptorOptions,
} from '../../lib/adapters/angular.js';

beforeAll(() => TestBed.initTestEnvironment(BrowserTestingModule, platformBrowserTesting()));
const made: EnvironmentInjector[] = [];
const limiters: Limiter[] = [];
afterEach(async () => {
  for (const i of made.splice(0)) if (!i.destroyed) i.destroy();
  await Promise.all(limiters.splice(0).map((l) => l.close()));
  TestBed.resetTestingModule();
});

let n = 0;

/**
 * An app on `platform` whose requests to api.example.com go through a limiter on `scheduler`
 * (virtual time), requests holding the app unstable as in a real app (the testing backend turns
 * that off). Returns its HttpClient, the testing backend, and whether a render would still wait.
 */
function app(
  platform: 'server' | 'browser',
  scheduler: VirtualTimeScheduler,
  options: Partial<RateLimitInterceptorOptions> = {},
) {
  TestBed.configureTestingModule({
    providers: [{ provide: TestComponentRenderer, useClass: TestComponentRenderer }, provideZonelessChangeDetection()],
  });
  const injector = createEnvironmentInjector(
    [
      { provide: PLATFORM_ID, useValue: platform },
      { provide: TransferState, useFactory: () => new TransferState() },
      provideRateLimiting({
        limiters: {
          'api.example.com': () => {
            const l = createLimiter({ provider: providers.generic(), key: `server-wait-${++n}`, scheduler });
            limiters.push(l);
            return l;
          },
        },
      }),
      provideHttpClient(withInterceptors([rateLimitingInterceptor({ onMissingHeaders: false, ...options })])),
      provideHttpClientTesting(),
      { provide: STABILITY, useValue: true },
    ],
    TestBed.inject(EnvironmentInjector),
  );
  made.push(injector);
  const tasks = injector.get(PendingTasks) as unknown as { internalPendingTasks: { hasPendingTasks: boolean } };
  return {
    http: injector.get(HttpClient),
    backend: injector.get(HttpTestingController),
    renderWaits: () => tasks.internalPendingTasks.hasPendingTasks,
  };
}

/** Runs virtual time up to `ms`. */
function runUntil(scheduler: VirtualTimeScheduler, ms: number) {
  scheduler.maxFrames = ms;
  scheduler.flush();
}

describe('a server render is not held by a paused limiter', () => {
  it('a 429 with Retry-After: 300 during a render: the request fails within 5 s, and the render may end', async () => {
    const scheduler = new VirtualTimeScheduler();
    const { http, backend, renderWaits } = app('server', scheduler);
    let ended: unknown;
    http.get('https://api.example.com/v1/deals').subscribe({ next: (v) => (ended = v), error: (e) => (ended = e) });
    backend
      .expectOne(() => true)
      .flush({}, { status: 429, statusText: 'Too Many Requests', headers: { 'Retry-After': '300' } });
    runUntil(scheduler, 4_999);
    expect(ended).toBeUndefined();
    expect(renderWaits()).toBe(true);
    runUntil(scheduler, 5_001);
    expect(isQuotaExhaustedError(ended)).toBe(true);
    expect((ended as { bucket: string }).bucket).toBe('pause');
    // Angular's change detection, notified of the request's end, runs on a later task.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(renderWaits()).toBe(false);
    // Nothing was sent again inside the pause.
    expect(backend.match(() => true)).toHaveLength(0);
  });

  it('a request queued behind a paused limiter fails as well; one sent at once is answered as usual', () => {
    const scheduler = new VirtualTimeScheduler();
    const { http, backend } = app('server', scheduler, { serverMaxWaitMs: 2_000 });
    const ends: unknown[] = [];
    http.get('https://api.example.com/v1/a').subscribe({ next: (v) => ends.push(v), error: (e) => ends.push(e) });
    backend.expectOne(() => true).flush({ a: 1 });
    expect(ends).toEqual([{ a: 1 }]);
    http.get('https://api.example.com/v1/b').subscribe({ error: () => undefined });
    backend.expectOne(() => true).flush({}, { status: 429, statusText: 'x', headers: { 'Retry-After': '60' } });
    http.get('https://api.example.com/v1/c').subscribe({ next: (v) => ends.push(v), error: (e) => ends.push(e) });
    runUntil(scheduler, 2_001);
    expect(ends).toHaveLength(2);
    expect(isQuotaExhaustedError(ends[1])).toBe(true);
    expect(backend.match(() => true)).toHaveLength(0);
  });

  it('a window spent for an hour fails the request within 5 s, though another request of the limiter is in flight', () => {
    const scheduler = new VirtualTimeScheduler();
    const { http, backend } = app('server', scheduler);
    const ends: unknown[] = [];
    const headers = (left: number) => ({
      'x-ratelimit-limit': '10',
      'x-ratelimit-remaining': String(left),
      'x-ratelimit-reset': '3600',
    });
    http.get('https://api.example.com/v1/a').subscribe({ next: (v) => ends.push(v) });
    backend.expectOne(() => true).flush({ a: 1 }, { headers: headers(5) });
    // Another visitor's request of a limiter every render shares, in flight all along.
    const held = (limiters[limiters.length - 1] as Limiter).acquire(
      {},
      { granted: () => undefined, rejected: () => undefined },
    );
    http.get('https://api.example.com/v1/b').subscribe({ next: (v) => ends.push(v) });
    backend.expectOne(() => true).flush({ b: 1 }, { headers: headers(0) });
    http.get('https://api.example.com/v1/c').subscribe({ next: (v) => ends.push(v), error: (e) => ends.push(e) });
    runUntil(scheduler, 5_001);
    expect(ends).toHaveLength(3);
    expect(isQuotaExhaustedError(ends[2])).toBe(true);
    // It says when the window ends: an hour on, not "nobody can tell".
    expect((ends[2] as { resumeAt: number }).resumeAt).toBeGreaterThan(3_000_000);
    expect(backend.match(() => true)).toHaveLength(0);
    void held; // never released: in flight to the end
  });

  it('serverMaxWaitMs: Infinity waits the pause out, as a browser does', () => {
    const scheduler = new VirtualTimeScheduler();
    const { http, backend } = app('server', scheduler, { serverMaxWaitMs: Infinity });
    let ended: unknown;
    http.get('https://api.example.com/v1/deals').subscribe({ next: (v) => (ended = v), error: (e) => (ended = e) });
    backend.expectOne(() => true).flush({}, { status: 429, statusText: 'x', headers: { 'Retry-After': '30' } });
    runUntil(scheduler, 29_000);
    expect(ended).toBeUndefined();
    runUntil(scheduler, 31_000);
    backend.expectOne(() => true).flush({ ok: true });
    expect(ended).toEqual({ ok: true });
  });

  it('in a browser the bound does not apply: the request waits the pause out and is sent again', () => {
    const scheduler = new VirtualTimeScheduler();
    const { http, backend } = app('browser', scheduler);
    let ended: unknown;
    http.get('https://api.example.com/v1/deals').subscribe({ next: (v) => (ended = v), error: (e) => (ended = e) });
    backend.expectOne(() => true).flush({}, { status: 429, statusText: 'x', headers: { 'Retry-After': '30' } });
    runUntil(scheduler, 31_000);
    backend.expectOne(() => true).flush({ ok: true });
    expect(ended).toEqual({ ok: true });
  });

  it.each([-1, Number.NaN, '5000'])('serverMaxWaitMs %p is refused, naming it', (bad) => {
    expect(() => rateLimitingInterceptor({ serverMaxWaitMs: bad as number })).toThrow(/`serverMaxWaitMs`/);
  });
});
