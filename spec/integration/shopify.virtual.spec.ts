import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, from, mergeMap, type Observable } from 'rxjs';
import { createLimiter, providers, rateLimit, type Provider } from '../../lib/index.js';
import {
  createSimulatorEngine,
  virtualProvider,
  type SimulatorEngine,
  type SimulatorResponse,
} from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

// Shopify's documented Standard buckets, uncompressed, against the simulator in virtual time
// with 20 ms each way: nothing refused, and within 5 % of the least time the bucket allows.

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
let runs = 0;

interface Query {
  readonly path: string;
  readonly method: string;
  readonly cost?: number;
  readonly headers?: Record<string, string>;
}

function run(
  provider: Provider,
  queries: readonly Query[],
  streams: number,
  before?: (engine: SimulatorEngine) => void,
) {
  return inVirtualTime(({ now }) => {
    const engine = createSimulatorEngine({ latencyMs: 20, now: () => START + asyncScheduler.now() });
    before?.(engine);
    const api = virtualProvider(engine, asyncScheduler);
    // A store of its own per run: one key's limiters share one state, and these are separate runs.
    const limiter = createLimiter({ provider, key: `shop-${++runs}` });
    const answers: SimulatorResponse[] = [];
    let last = 0;
    from(queries)
      .pipe(
        mergeMap((q) => {
          const request$: Observable<SimulatorResponse> = api.request('shopify', {
            method: q.method,
            path: q.path,
            token: 'shpat',
            ...(q.headers ? { headers: q.headers } : {}),
          });
          return request$.pipe(
            rateLimit(limiter, { method: q.method, url: q.path, ...(q.cost ? { cost: q.cost } : {}) }),
          );
        }, streams),
      )
      .subscribe((r) => {
        answers.push(r);
        last = now();
      });
    return () => ({ answers, elapsed: last, stats: Object.values(engine.stats().shopify)[0], limiter });
  })();
}

describe('shopify against the simulator in virtual time (Standard plan, as documented)', () => {
  it('REST: 100 requests on 20 streams: no 429, within 1.05 x (100 − 40) / 2 s', () => {
    const queries = Array.from({ length: 100 }, (_, i) => ({
      method: 'GET',
      path: `/admin/api/2024-10/products/${i}.json`,
    }));
    const out = run(providers.shopify({ api: 'rest' }), queries, 20);
    const least = ((100 - 40) / 2) * 1000;
    expect(out.stats).toMatchObject({ ok: 100, limited: 0 });
    expect(out.elapsed).toBeGreaterThanOrEqual(least);
    expect(out.elapsed / least).toBeLessThanOrEqual(1.05);
  });

  it('GraphQL: 120 queries of 20-200 points, some costing less than asked: no THROTTLED, within 1.05 x the least time', () => {
    const requested = (i: number) => 20 + ((i * 53) % 181);
    const actual = (i: number) => (i % 4 === 0 ? Math.ceil(requested(i) / 3) : requested(i));
    const queries = Array.from({ length: 120 }, (_, i) => ({
      method: 'POST',
      path: '/admin/api/2024-10/graphql.json',
      cost: requested(i),
      headers: { 'x-simulated-query-cost': String(requested(i)), 'x-simulated-actual-cost': String(actual(i)) },
    }));
    const out = run(providers.shopify({ api: 'graphql' }), queries, 20);
    const spent = Array.from({ length: 119 }, (_, i) => actual(i)).reduce((a, b) => a + b, 0);
    const least = ((spent + requested(119) - 1000) / 50) * 1000;
    expect(out.answers.filter((a) => a.body.includes('THROTTLED'))).toEqual([]);
    expect(out.stats).toMatchObject({ ok: 120, limited: 0 });
    expect(out.elapsed).toBeGreaterThanOrEqual(least);
    expect(out.elapsed / least).toBeLessThanOrEqual(1.05);
  });

  it('GraphQL after another app drained the bucket: the first query is THROTTLED, held and sent again; nothing lost', () => {
    const query = () => ({
      method: 'POST',
      path: '/admin/api/2024-10/graphql.json',
      cost: 50,
      headers: { 'x-simulated-query-cost': '50' },
    });
    const out = run(providers.shopify({ api: 'graphql' }), Array.from({ length: 10 }, query), 10, (engine) => {
      // Another app of the same store spends 990 of the 1,000 points.
      engine.handle({
        provider: 'shopify',
        method: 'POST',
        path: '/admin/api/2024-10/graphql.json',
        headers: { Authorization: 'Bearer shpat', 'x-simulated-query-cost': '990' },
      });
    });
    // The cold start's one query learns the bucket the hard way; nothing else is refused, and
    // that one is sent again (a POST: the THROTTLED query never ran), so every caller gets data.
    expect(out.answers).toHaveLength(10);
    expect(out.answers.filter((a) => a.body.includes('THROTTLED'))).toEqual([]);
    expect(out.stats).toMatchObject({ ok: 1 + 10, limited: 1, sentWhileLimited: 0 });
    // (50 − 10) / 50 s for the first to fit, then 50 points a second: 1 query a second.
    expect(out.elapsed).toBeGreaterThanOrEqual(800 + 9 * 1000);
    expect(out.elapsed).toBeLessThanOrEqual((800 + 9 * 1000) * 1.05 + 100);
  });
});
