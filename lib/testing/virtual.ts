/**
 * The simulator in virtual time: requests as cold Observables answered on an RxJS scheduler.
 */
import { asyncScheduler, Observable, type SchedulerLike } from 'rxjs';

import type { SimulatorEngine } from './engine.js';
import type { PipedriveAuth, SimulatedProvider, SimulatorResponse } from './types.js';

/**
 * One request of {@link VirtualProvider.request}.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, virtualProvider, type VirtualRequest } from 'rx-ratelimit/testing';
 *
 * const request: VirtualRequest = { method: 'POST', path: '/v1/deals', token: 'tok', auth: 'api_token' };
 * virtualProvider(createSimulatorEngine()).request('pipedrive', request).subscribe((res) => console.log(res.status));
 * ```
 */
export interface VirtualRequest {
  /** @default 'GET' */
  readonly method?: string | undefined;
  /** Path under the provider (no prefix); may carry a `?query`. */
  readonly path: string;
  /**
   * The credential. Sent as `Authorization: Bearer <token>`, except for Pipedrive with
   * `auth: 'api_token'` (the default there), where it is the `api_token` query parameter.
   */
  readonly token: string;
  /** Pipedrive only. @default 'api_token' */
  readonly auth?: PipedriveAuth | undefined;
  readonly query?: Readonly<Record<string, string | number | undefined>> | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/**
 * Requests to the simulator in virtual time.
 *
 * @example
 * ```ts
 * import { asyncScheduler } from 'rxjs';
 * import { createSimulatorEngine, virtualProvider, type VirtualProvider } from 'rx-ratelimit/testing';
 *
 * const api: VirtualProvider = virtualProvider(createSimulatorEngine(), asyncScheduler);
 * api.request('procore', { path: '/rest/v1.0/me', token: 't' }).subscribe((res) => console.log(res.headers));
 * ```
 */
export interface VirtualProvider {
  /**
   * A cold Observable: each subscription is one request, handled by the engine at subscription
   * time and answered (one value, then complete; 4xx are values, not errors) `latencyMs` later on
   * the scheduler. Unsubscribing before the answer drops it (the request still counted).
   *
   * @example
   * ```ts
   * import { createSimulatorEngine, virtualProvider } from 'rx-ratelimit/testing';
   *
   * const api = virtualProvider(createSimulatorEngine({ latencyMs: 10 }));
   * const deals$ = api.request('pipedrive', { path: '/v1/deals', token: 'tok' }); // nothing sent yet
   * deals$.subscribe((res) => console.log(res.headers['x-ratelimit-remaining']));
   * ```
   */
  request(provider: SimulatedProvider, request: VirtualRequest): Observable<SimulatorResponse>;
}

/**
 * Adapts an engine to RxJS virtual time. Give the engine the scheduler's clock
 * (`now: () => scheduler.now()`) so that its windows run in virtual time too.
 *
 * @example
 * ```ts
 * import { expect } from '@jest/globals';
 * import { map } from 'rxjs';
 * import { TestScheduler } from 'rxjs/testing';
 * import { createSimulatorEngine, virtualProvider } from 'rx-ratelimit/testing';
 *
 * const scheduler = new TestScheduler((a, b) => expect(a).toEqual(b));
 * scheduler.run(({ expectObservable }) => {
 *   const start = Date.UTC(2026, 0, 1);
 *   const engine = createSimulatorEngine({ now: () => start + scheduler.now(), latencyMs: 10 });
 *   const api = virtualProvider(engine, scheduler);
 *   const remaining$ = api
 *     .request('pipedrive', { method: 'GET', path: '/v1/deals', token: 'tok' })
 *     .pipe(map((res) => res.headers['x-ratelimit-remaining']));
 *   expectObservable(remaining$).toBe('10ms (a|)', { a: '19' }); // essential plan: 20 per 2 s
 * });
 * ```
 */
export function virtualProvider(engine: SimulatorEngine, scheduler: SchedulerLike = asyncScheduler): VirtualProvider {
  return {
    request(provider, req) {
      return new Observable<SimulatorResponse>((subscriber) => {
        const pipedriveToken = provider === 'pipedrive' && (req.auth ?? 'api_token') === 'api_token';
        const headers: Record<string, string> = { ...req.headers };
        const query: Record<string, string | number | undefined> = { ...req.query };
        if (pipedriveToken) query['api_token'] = req.token;
        else headers['Authorization'] = `Bearer ${req.token}`;
        const response = engine.handle({ provider, method: req.method ?? 'GET', path: req.path, query, headers });
        return scheduler.schedule(() => {
          subscriber.next(response);
          subscriber.complete();
        }, engine.latencyMs);
      });
    },
  };
}
