import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, from, map, mergeMap, timer, type Observable } from 'rxjs';
import { createLimiter, providers, rateLimit, type Provider } from '../../lib/index.js';
import { createSimulatorEngine, virtualProvider, type SimulatorResponse } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

// Shopify runs a GraphQL query only once its requested cost is available, and takes its actual
// cost (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits). Queries sent with
// no `cost` of their own: the limiter learns each kind's requested cost from the answers'
// `requestedQueryCost` and admits the next ones only when that much is free. Virtual time, the
// simulator (Standard: 1,000 points restoring 50 a second), 20 ms each way.

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
const PATH = '/admin/api/2025-01/graphql.json';
let runs = 0;

interface Query {
  /** When it is queued (virtual ms). */
  readonly at?: number;
  readonly requested: number;
  readonly actual: number;
  readonly costKey?: string;
}

function run(
  provider: Provider,
  queries: readonly Query[],
  streams: number,
  rewrite?: (r: SimulatorResponse) => SimulatorResponse,
) {
  return inVirtualTime(({ now }) => {
    const engine = createSimulatorEngine({ latencyMs: 20, now: () => START + asyncScheduler.now() });
    const api = virtualProvider(engine, asyncScheduler);
    const limiter = createLimiter({ provider, key: `shop-${++runs}.myshopify.com`, maxWaitMs: 3_600_000 });
    const answers: SimulatorResponse[] = [];
    const errors: unknown[] = [];
    let last = 0;
    from(queries)
      .pipe(
        mergeMap(
          (q) =>
            timer(q.at ?? 0).pipe(
              mergeMap(() => {
                const request$: Observable<SimulatorResponse> = api
                  .request('shopify', {
                    method: 'POST',
                    path: PATH,
                    token: 'shpat',
                    headers: {
                      'x-simulated-query-cost': String(q.requested),
                      'x-simulated-actual-cost': String(q.actual),
                    },
                  })
                  .pipe(map((r) => (rewrite ? rewrite(r) : r)));
                return request$.pipe(
                  rateLimit(limiter, { method: 'POST', url: PATH, ...(q.costKey ? { costKey: q.costKey } : {}) }),
                );
              }),
            ),
          streams,
        ),
      )
      .subscribe({
        next: (r) => {
          answers.push(r);
          last = now();
        },
        error: (e: unknown) => errors.push(e),
      });
    return () => ({ answers, errors, elapsed: last, stats: Object.values(engine.stats().shopify)[0] });
  })();
}

/** `n` queries of one kind (`costKey`) asking `requested` points and taking `actual`, all queued at once. */
const alike = (n: number, requested: number, actual: number): Query[] =>
  Array.from({ length: n }, () => ({ requested, actual, costKey: 'orders' }));

/** The least time the bucket allows: every query's actual cost back, and the last one's requested. */
const leastMs = (n: number, requested: number, actual: number) => (((n - 1) * actual + requested - 1000) / 50) * 1000;

describe('Shopify GraphQL: a query without `cost` waits for its requested cost, learnt from the answers', () => {
  it.each([
    [200, 20],
    [200, 200],
    [100, 10],
  ])(
    'queries of one costKey asking %i points and taking %i, 50 streams, no cost given: no THROTTLED answer, at the rate the bucket allows',
    (requested, actual) => {
      const n = 150;
      const out = run(providers.shopify({ api: 'graphql' }), alike(n, requested, actual), 50);
      expect(out.errors).toEqual([]);
      expect(out.answers).toHaveLength(n);
      expect(out.stats).toMatchObject({ ok: n, limited: 0, sentWhileLimited: 0 });
      const least = leastMs(n, requested, actual);
      expect(out.elapsed).toBeGreaterThanOrEqual(least);
      expect(out.elapsed).toBeLessThanOrEqual(least * 1.05 + 1000);
    },
  );

  it('a new kind of query (its own costKey) joining a bucket kept near empty is throttled at most once, the others never', () => {
    // Queries of 100 points keep the bucket near empty; 5 s in, exports of 600 points join.
    const lists: Query[] = Array.from({ length: 60 }, () => ({ requested: 100, actual: 100, costKey: 'list' }));
    const exports: Query[] = Array.from({ length: 6 }, () => ({
      at: 5000,
      requested: 600,
      actual: 600,
      costKey: 'export',
    }));
    const out = run(providers.shopify({ api: 'graphql' }), [...lists, ...exports], 20);
    expect(out.errors).toEqual([]);
    expect(out.answers).toHaveLength(66);
    expect(out.stats?.limited).toBeLessThanOrEqual(1);
    expect(out.stats).toMatchObject({ sentWhileLimited: 0 });
  });

  it('a query without costKey is taken at queryCost: one dear query does not hold back cheap ones of another kind', () => {
    const queries: Query[] = [
      { requested: 1000, actual: 1000 },
      ...Array.from({ length: 8 }, () => ({ requested: 10, actual: 10 })),
    ];
    const out = run(providers.shopify({ api: 'graphql' }), queries, 1);
    expect(out.errors).toEqual([]);
    expect(out.answers).toHaveLength(9);
    // One at a time (1 stream): each cheap query goes as the one before is answered, not when
    // 1,000 points have come back (20 s).
    expect(out.elapsed).toBeLessThan(5_000);
  });

  it('learnCost: false takes every query at queryCost, as before (Shopify throttles the dear ones)', () => {
    const out = run(providers.shopify({ api: 'graphql', learnCost: false }), alike(40, 200, 200), 20);
    expect(out.errors).toEqual([]);
    expect(out.answers).toHaveLength(40);
    expect(out.stats?.limited).toBeGreaterThan(0);
  });

  it('a requestedQueryCost past the most a query may cost is taken as 1,000: later queries still go, none refused unsent', () => {
    // A garbled answer says a query asked for a billion points.
    let first = true;
    const rewrite = (r: SimulatorResponse): SimulatorResponse => {
      if (!first) return r;
      first = false;
      const body = JSON.parse(String(r.body)) as { extensions: { cost: { requestedQueryCost: number } } };
      body.extensions.cost.requestedQueryCost = 1e9;
      return { ...r, body: JSON.stringify(body) };
    };
    const out = run(providers.shopify({ api: 'graphql' }), alike(10, 50, 50), 5, rewrite);
    expect(out.errors).toEqual([]);
    expect(out.answers).toHaveLength(10);
    expect(out.stats).toMatchObject({ ok: 10, limited: 0 });
  });

  it('a bad learnCost option names the field', () => {
    expect(() => providers.shopify({ learnCost: 'yes' as never })).toThrow(/learnCost/);
    expect(() => providers.shopify({ learnCost: { maxKeys: 0 } })).toThrow(/learnCost/);
  });
});
