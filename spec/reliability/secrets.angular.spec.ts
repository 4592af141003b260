/**
 * The Angular interceptor (real HttpClient with `withFetch()`, real sockets to the
 * simulator): Pipedrive's `api_token` in `params` and Procore's Bearer header never appear in
 * what we create. Angular's own `HttpErrorResponse` puts the URL (with its query) in its message
 * and `url`: that one passes through as Angular made it; our errors whose cause it is must not
 * repeat it when printed.
 */
import '@angular/compiler';

import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { HttpClient, HttpHeaders, provideHttpClient, withFetch, withInterceptors } from '@angular/common/http';
import { provideZonelessChangeDetection } from '@angular/core';
import { TestBed, TestComponentRenderer } from '@angular/core/testing';
import { BrowserTestingModule, platformBrowserTesting } from '@angular/platform-browser/testing';
import { lastValueFrom } from 'rxjs';

import { createLimiter, providers, type Limiter } from '../../lib/index.js';
import { rateLimitInterceptor } from '../../lib/adapters/angular.js';
import { startSimulator, type Simulator } from '../../lib/testing/index.js';
import { hammer, makeToken, pathOf, scanLimiter, SecretScan, watch } from './secretScan.js';

const scan = new SecretScan();
let pipedriveSim: Simulator;
let procoreSim: Simulator;

beforeAll(async () => {
  TestBed.initTestEnvironment(BrowserTestingModule, platformBrowserTesting());
  pipedriveSim = await startSimulator({
    latencyMs: 2,
    pipedrive: { plan: 'essential' },
    abuse: { '429sBeforeBlock': 2, blockMs: 1500 },
  });
  procoreSim = await startSimulator({ latencyMs: 2, timeScale: 3600, procore: { limit: 10 } });
});
afterEach(() => {
  TestBed.resetTestingModule();
});
afterAll(async () => {
  await pipedriveSim.close();
  await procoreSim.close();
  console.log(
    `secrets scan (Angular):\n${scan
      .table()
      .map((r) => `${r.surface}\t${r.values}\t${r.strings}`)
      .join('\n')}`,
  );
});

function client(limiter: Limiter, maxRetries: number): HttpClient {
  TestBed.resetTestingModule();
  TestBed.configureTestingModule({
    providers: [
      { provide: TestComponentRenderer, useClass: TestComponentRenderer },
      provideZonelessChangeDetection(),
      provideHttpClient(withFetch(), withInterceptors([rateLimitInterceptor({ limiters: () => limiter, maxRetries })])),
    ],
  });
  return TestBed.inject(HttpClient);
}

describe('Angular rateLimitInterceptor', () => {
  it.each(['pipedrive', 'procore'] as const)(
    '%s: successes, 429s, retries exhausted, blocked, queue full',
    async (target) => {
      const before = scan.leaks.length;
      const token = scan.token(makeToken(`ng${target.slice(0, 4)}`));
      const sim = target === 'pipedrive' ? pipedriveSim : procoreSim;
      const base = sim.urlFor(target);
      const path = (i: number) => pathOf(target, i);
      const provider = () =>
        target === 'procore'
          ? providers.procore({ hints: { hourly: { limit: 10, windowMs: 1000 } } })
          : providers.pipedrive({ plan: 'essential' });
      const errors: unknown[] = [];
      const limiters: Limiter[] = [];
      const make = (o = {}) => {
        // Limiters of one key in a process share one state; the extra ones here stand for other
        // clients of the token (to meet its 429s and block), so each has a key of its own that
        // still holds the token (a leak of it is still found).
        const key = limiters.length === 0 ? token : `${token}/${limiters.length}`;
        const l = createLimiter({ provider: provider(), key, maxWaitMs: 3000, ...o });
        watch(scan, l, ' (Angular)');
        limiters.push(l);
        return l;
      };
      const all = (http: HttpClient, n: number, offset = 0) =>
        Promise.all(
          Array.from({ length: n }, (_, i) =>
            lastValueFrom(
              http.get(/^https?:/.test(path(offset + i)) ? path(offset + i) : `${base}${path(offset + i)}`, {
                ...(target === 'pipedrive'
                  ? { params: { api_token: token } }
                  : { headers: new HttpHeaders({ Authorization: `Bearer ${token}` }) }),
              }),
            ).catch((e: unknown) => {
              errors.push(e);
            }),
          ),
        );

      await all(client(make(), 2), 6);
      await hammer(base, target, token, 30);
      // Procore's windows here last a second: on a busy machine the next one may open before the
      // requests below go, so another client keeps every window spent while they run (their 429s,
      // with no retry left, are the RetryLimitErrors whose text is scanned).
      let running = true;
      const other = (async () => {
        while (running && target === 'procore') await hammer(base, target, token, 12);
      })();
      await all(client(make(), 0), 3, 100);
      running = false;
      await other;
      await all(client(make({ maxWaitMs: 5 }), 3), 3, 200);
      await all(client(make({ maxQueue: 1 }), 0), 5, 300);
      for (const l of limiters) scanLimiter(scan, l, ' (Angular)');
      for (const e of errors) scan.error('errors delivered (Angular)', e);
      const names = new Set(errors.map((e) => (e as Error).name));
      expect(names.has('QueueFullError')).toBe(true);
      expect(names.has(target === 'procore' ? 'RetryLimitError' : 'BlockedError')).toBe(true);
      expect(scan.leaks.slice(before)).toEqual([]);
    },
    30_000,
  );
});

describe('Angular rateLimitInterceptor: what it says of a misconfiguration shows no credential', () => {
  it.each([
    ['a key that is a URL with a query token', (t: string) => ({ [`https://api.example.com/?api_token=${t}`]: 1 })],
    ['a key with user-info, of no limiter', (t: string) => ({ [`svc:${t}@api.example.com`]: 'x' })],
  ])('the TypeError for %s', (_name, limiters) => {
    const t = makeToken('ng-key');
    const real = createLimiter({ provider: providers.generic(), key: 'k' });
    const map = Object.fromEntries(Object.entries(limiters(t)).map(([k, v]) => [k, v === 1 ? real : v]));
    let error: unknown;
    try {
      rateLimitInterceptor({ limiters: map as never });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TypeError);
    expect(String(error)).not.toContain(t);
  });

  it('the warning for a relative URL it cannot place (a protocol-relative one with user-info)', async () => {
    const t = makeToken('ng-warn');
    const warned: string[] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => void warned.push(args.map(String).join(' '));
    try {
      const limiter = createLimiter({ provider: providers.generic(), key: 'k' });
      TestBed.resetTestingModule();
      TestBed.configureTestingModule({
        providers: [
          { provide: TestComponentRenderer, useClass: TestComponentRenderer },
          provideZonelessChangeDetection(),
          provideHttpClient(withInterceptors([rateLimitInterceptor({ limiters: { 'api.example.com': limiter } })])),
        ],
      });
      const http = TestBed.inject(HttpClient);
      // No `location` under Node: the host of a relative URL cannot be told, and it is said once.
      await lastValueFrom(http.get(`//svc:${t}@api.example.com/v1/x?api_token=${t}`)).catch(() => undefined);
    } finally {
      console.warn = warn;
    }
    expect(warned.join('\n')).toContain('//api.example.com/v1/x');
    expect(warned.join('\n')).not.toContain(t);
  });
});
