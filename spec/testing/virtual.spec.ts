import { describe, expect, it } from '@jest/globals';
import { concat, map, merge, mergeMap, timer, toArray } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';

import { createSimulatorEngine, virtualProvider } from '../../lib/testing/index.js';

const newScheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

describe('simulator: virtualProvider (virtual time)', () => {
  it('answers a cold request after latencyMs on the scheduler; each subscription is one request', () => {
    const scheduler = newScheduler();
    scheduler.run(({ expectObservable, cold }) => {
      const engine = createSimulatorEngine({
        now: () => scheduler.now(),
        latencyMs: 10,
        pipedrive: { plan: 'essential' },
      });
      const api = virtualProvider(engine, scheduler);
      const request$ = api.request('pipedrive', { method: 'GET', path: '/v1/deals', token: 'tok' });
      const remaining$ = request$.pipe(map((r) => `${r.status}:${r.headers['x-ratelimit-remaining']}`));
      // Two subscriptions, at 0 and 5 ms: two requests, answered at 10 and 15 ms.
      const both$ = cold('a 4ms b|').pipe(mergeMap(() => remaining$));
      expectObservable(both$).toBe('10ms a 4ms (b|)', { a: '200:19', b: '200:18' });
    });
  });

  it("runs windows on the scheduler's clock: a Planning Center period passes in virtual time", () => {
    const scheduler = newScheduler();
    scheduler.run(({ expectObservable }) => {
      const engine = createSimulatorEngine({ now: () => scheduler.now(), latencyMs: 1, planningCenter: { limit: 2 } });
      const api = virtualProvider(engine, scheduler);
      const one = () =>
        api
          .request('planningCenter', { path: '/people/v2/me', token: 'user' })
          .pipe(map((r) => `${scheduler.now()}:${r.status}/${r.headers['X-PCO-API-Request-Rate-Count']}`));
      // Three at once (the third is limited), then one when the period that began at 0 ms is over.
      const run$ = merge(one(), one(), one(), timer(20_000).pipe(mergeMap(one))).pipe(toArray());
      expectObservable(run$).toBe('20001ms (a|)', { a: ['1:200/1', '1:200/2', '1:429/3', '20001:200/1'] });
    });
  });

  it('sends Pipedrive OAuth as a Bearer token and others as Authorization', () => {
    const scheduler = newScheduler();
    scheduler.run(({ expectObservable }) => {
      const engine = createSimulatorEngine({ now: () => scheduler.now(), pipedrive: { plan: 'advanced' } });
      const api = virtualProvider(engine, scheduler);
      const limit$ = api
        .request('pipedrive', { method: 'POST', path: '/v1/deals', token: 't', auth: 'oauth' })
        .pipe(map((r) => `${r.headers['x-ratelimit-limit']}/${r.headers['x-daily-requests-left'] ?? '-'}`));
      expectObservable(limit$).toBe('(a|)', { a: '160/-' });
      const procore$ = api.request('procore', { path: '/rest/v1.0/me', token: 't' }).pipe(map((r) => r.status));
      expectObservable(procore$).toBe('(a|)', { a: 200 });
      scheduler.flush();
      expect(engine.statsFor('pipedrive', 'Bearer t').ok).toBe(1);
      expect(engine.statsFor('procore', 'Bearer t').ok).toBe(1);
    });
  });

  it('paces to the reset in virtual time: waiting until X-Rate-Limit-Reset gets a 200', () => {
    const scheduler = newScheduler();
    scheduler.run(({ expectObservable }) => {
      const start = Date.UTC(2026, 0, 1, 0, 59, 59, 500); // 500 ms before Procore's hour ends
      const engine = createSimulatorEngine({
        now: () => start + scheduler.now(),
        latencyMs: 100,
        procore: { limit: 1 },
      });
      const api = virtualProvider(engine, scheduler);
      const req = () => api.request('procore', { path: '/x', token: 't' });
      const run$ = concat(req(), req()).pipe(
        toArray(),
        mergeMap(([ok, limited]) => {
          expect([ok!.status, limited!.status]).toEqual([200, 429]);
          const wait = Number(limited!.headers['X-Rate-Limit-Reset']) * 1000 - engine.now();
          return timer(wait).pipe(mergeMap(req));
        }),
        map((r) => r.status),
      );
      // Answers at 100 and 200 ms; the reset is at 500 ms; the third request is answered at 600 ms.
      expectObservable(run$).toBe('600ms (a|)', { a: 200 });
    });
  });

  it('dropping the subscription before the answer cancels the delivery (the request was still counted)', () => {
    const scheduler = newScheduler();
    scheduler.run(({ expectObservable }) => {
      const engine = createSimulatorEngine({ now: () => scheduler.now(), latencyMs: 50 });
      const api = virtualProvider(engine, scheduler);
      expectObservable(api.request('teos', { path: '/a', token: 'k' }), '^ 10ms !').toBe('');
      scheduler.flush();
      expect(engine.statsFor('teos', 'Bearer k').total).toBe(1);
    });
  });
});
