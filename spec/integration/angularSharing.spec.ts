// Angular's packages are partially compiled: outside an Angular CLI build they need the JIT compiler.
import '@angular/compiler';

import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { HttpClient, HttpEventType, HttpResponse, provideHttpClient, withInterceptors } from '@angular/common/http';
import { HttpTestingController, provideHttpClientTesting } from '@angular/common/http/testing';
import { provideZonelessChangeDetection } from '@angular/core';
import { TestBed, TestComponentRenderer } from '@angular/core/testing';
import { BrowserTestingModule, platformBrowserTesting } from '@angular/platform-browser/testing';
import { Observable, type Subscription } from 'rxjs';
import { createLimiter, providers, rateLimit } from '../../lib/index.js';
import { extractAngularResponse, rateLimitInterceptor } from '../../lib/adapters/angular.js';

const URL_ = 'https://api.example.com/v1/me';

beforeAll(() => {
  TestBed.initTestEnvironment(BrowserTestingModule, platformBrowserTesting());
});
afterEach(() => {
  TestBed.resetTestingModule();
});

function setup(cache = false) {
  const limiter = createLimiter({
    provider: providers.generic(),
    key: `app-${Math.random()}`,
    coldStartConcurrency: 10,
    ...(cache ? { cache: { ttlMs: 60_000 } } : {}),
  });
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

/** The options of `HttpClient.get` read here (Angular 22's fetch options among them). */
type GetOptions = NonNullable<Parameters<HttpClient['get']>[1]>;

/** Two GETs of one URL at once, their options `a` and `b`: how many reach the backend. */
async function sentFor(a: GetOptions, b: GetOptions): Promise<number> {
  const { http, httpTesting } = setup();
  const subs: Subscription[] = [a, b].map((options) => http.get(URL_, options).subscribe({ error: () => undefined }));
  await new Promise((resolve) => setTimeout(resolve, 0));
  const sent = httpTesting.match(URL_);
  for (const req of sent) req.flush({ ok: true });
  for (const s of subs) s.unsubscribe();
  return sent.length;
}

describe('Angular: GETs that differ in how the browser sends them are not shared', () => {
  it.each<[string, GetOptions, GetOptions]>([
    // Cookies sent or not: the anonymous view must not get the signed-in one, nor the reverse.
    ['credentials', { credentials: 'omit' }, { credentials: 'include' }],
    // An opaque redirect is not the page it points to.
    ['redirect', { redirect: 'manual' }, {}],
    // An opaque no-cors answer is not a readable one.
    ['mode', { mode: 'no-cors' }, { mode: 'cors' }],
    // A request that checks the body's hash must not get a body that was never checked.
    ['integrity', { integrity: 'sha384-abc' }, {}],
    // What may come from the browser's HTTP cache.
    ['cache', { cache: 'only-if-cached' }, { cache: 'reload' }],
    ['referrer policy', { referrerPolicy: 'no-referrer' }, {}],
    ['referrer', { referrer: 'https://app.example.com/a' }, { referrer: 'https://app.example.com/b' }],
    ['timeout', { timeout: 100 }, { timeout: 60_000 }],
  ])('%s', async (_name, a, b) => {
    expect(await sentFor(a, b)).toBe(2);
  });

  it('identical GETs still share', async () => {
    expect(await sentFor({ credentials: 'include' }, { credentials: 'include' })).toBe(1);
  });
});

describe('Angular: a GET made while an identical one is sent but not answered', () => {
  it('joins it (Angular’s Sent event is not the answer) and gets the response', async () => {
    const { http, httpTesting } = setup();
    const got: unknown[] = [];
    http.get(URL_).subscribe((body) => got.push(body));
    await new Promise((resolve) => setTimeout(resolve, 0)); // sent: HttpClient emitted its Sent event
    http.get(URL_).subscribe((body) => got.push(body));
    await new Promise((resolve) => setTimeout(resolve, 0));
    const sent = httpTesting.match(URL_);
    for (const req of sent) req.flush({ type: 0 });
    expect(sent).toHaveLength(1);
    expect(got).toEqual([{ type: 0 }, { type: 0 }]);
  });
});

describe('Angular: a GET that asks for progress events is sent on its own', () => {
  it('reportDownloadProgress (what httpResource asks for) gets its own progress events', async () => {
    const { http, httpTesting } = setup();
    const plain = http.get(URL_).subscribe();
    const types: HttpEventType[] = [];
    const withProgress = http
      .request('GET', URL_, { observe: 'events', reportDownloadProgress: true } as never)
      .subscribe((e) => types.push((e as unknown as { type: HttpEventType }).type));
    await new Promise((resolve) => setTimeout(resolve, 0));
    const sent = httpTesting.match(URL_);
    for (const req of sent) {
      req.event({ type: HttpEventType.DownloadProgress, loaded: 1, total: 2 });
      req.flush({ ok: true });
    }
    plain.unsubscribe();
    withProgress.unsubscribe();
    expect(sent).toHaveLength(2);
    expect(types).toContain(HttpEventType.DownloadProgress);
  });
});

describe('Angular: a component that changes its response changes no other component’s', () => {
  it('in flight and from the cache, each gets an HttpResponse with the body as sent', async () => {
    const { http, httpTesting } = setup(true);
    const seen: string[] = [];
    const get = () =>
      http.get<{ items: Array<{ id: number; mine?: boolean }> }>(URL_, { observe: 'response' }).subscribe((res) => {
        seen.push(`${String(res instanceof HttpResponse)} ${JSON.stringify(res.body)}`);
        for (const item of res.body?.items ?? []) item.mine = true;
        res.body?.items.pop();
      });
    const subs = [get(), get()];
    await new Promise((resolve) => setTimeout(resolve, 0));
    const sent = httpTesting.match(URL_);
    for (const req of sent) req.flush({ items: [{ id: 1 }, { id: 2 }] });
    subs.push(get());
    for (const s of subs) s.unsubscribe();
    expect(sent).toHaveLength(1);
    expect(seen).toEqual(Array(3).fill('true {"items":[{"id":1},{"id":2}]}'));
  });
});

describe('extractAngularResponse on a stream of bodies (http.get(url) piped through rateLimit)', () => {
  it.each([
    ['a body with a numeric type (a Discord message)', { id: 1, type: 0, content: 'hi' }],
    ['a body with type 3 and no progress count', { type: 3, name: 'download' }],
  ])('%s is an answer: a GET made from its handler gets a value of its own', async (_name, body) => {
    const limiter = createLimiter({ provider: providers.generic(), key: `bodies-${Math.random()}` });
    let sent = 0;
    const get = () =>
      new Observable<unknown>((s) => {
        sent++;
        const t = setTimeout(() => {
          s.next(structuredClone(body));
          s.complete();
        }, 5);
        return () => clearTimeout(t);
      }).pipe(
        rateLimit(
          limiter,
          { url: 'https://api.example.com/m', headers: {} },
          { extractResponse: extractAngularResponse },
        ),
      );
    const got = await new Promise<unknown[]>((resolve) => {
      const out: unknown[] = [];
      get().subscribe((first) => {
        out.push(first);
        get().subscribe({ next: (second) => out.push(second), complete: () => resolve(out) });
      });
    });
    expect(got).toEqual([body, body]);
    expect(sent).toBe(2);
  });
});
