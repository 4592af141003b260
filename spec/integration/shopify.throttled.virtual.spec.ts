import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, from, map, mergeMap, Observable, VirtualTimeScheduler } from 'rxjs';
import { createLimiter, isRetryLimitError, providers, rateLimit, type Limiter } from '../../lib/index.js';
import { rateLimitedFetch } from '../../lib/adapters/fetch.js';
import {
  createSimulatorEngine,
  virtualProvider,
  type SimulatorEngine,
  type SimulatorResponse,
} from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { runPromisesVirtually, virtualFetch } from '../helpers/virtualFetch.js';

// Shopify's GraphQL answers a query that does not fit its bucket with a 200 whose body says
// THROTTLED (and took nothing). Many concurrent queries whose costs add up to several buckets,
// after another app of the store drained it: the one throttle the limiter cannot avoid (its cold
// start's first query, sent before any answer told it the bucket was empty) is waited out and
// sent again, through the operators and through rateLimitedFetch, in virtual time against the
// simulator (Standard: 1,000 points restoring 50 a second; 20 ms each way).

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
const PATH = '/admin/api/2024-10/graphql.json';
const QUERIES = 40;
const STREAMS = 20;
/** Requested 60..250 points (10,000 in all: ten buckets); every fourth costs a third of that. */
const requested = (i: number) => 60 + ((i * 53) % 191);
const actual = (i: number) => (i % 4 === 0 ? Math.ceil(requested(i) / 3) : requested(i));
const costHeaders = (i: number) => ({
  'x-simulated-query-cost': String(requested(i)),
  'x-simulated-actual-cost': String(actual(i)),
});

let keys = 0;
/**
 * The backoff's jitter, fixed: throttles in a row add a backoff to the body's wait, and a random
 * jitter would make each run's timing (and which requests meet which) differ.
 */
const HALF = () => 0.5;
const shopKey = () => `shop-${++keys}.myshopify.com`;

/** Another app of the store spends 990 of the 1,000 points just before we start. */
function drain(engine: SimulatorEngine): void {
  engine.handle({
    provider: 'shopify',
    method: 'POST',
    path: PATH,
    headers: { Authorization: 'Bearer shpat', 'x-simulated-query-cost': '990' },
  });
}

/** One query as the caller saw it end. */
interface Outcome {
  readonly i: number;
  readonly status: number;
  readonly body: string;
}

/** One request as the server saw it: which query, when sent and answered (client clock), throttled or not. */
interface Trip {
  readonly i: number;
  readonly sentAt: number;
  answeredAt: number;
  throttled: boolean;
}

/** Every query ended 200 with data, once each, and the simulator counted what we saw. */
function expectNoneLost(outcomes: readonly Outcome[], trips: readonly Trip[], engine: SimulatorEngine) {
  expect(outcomes).toHaveLength(QUERIES);
  expect(new Set(outcomes.map((o) => o.i)).size).toBe(QUERIES);
  for (const o of outcomes) {
    expect(o.status).toBe(200);
    const body = JSON.parse(o.body) as { data?: unknown; errors?: unknown };
    expect(body.data).toBeDefined();
    expect(body.errors).toBeUndefined();
  }
  const throttled = trips.filter((t) => t.throttled).length;
  // Ours, plus the other app's one query; every throttle was sent again.
  expect(engine.statsFor('shopify', 'Bearer shpat')).toMatchObject({ ok: QUERIES + 1, limited: throttled });
  expect(trips).toHaveLength(QUERIES + throttled);
}

/**
 * With each query's cost given, the simulator throttled only what the limiter could not avoid:
 * requests sent before any answer could tell it the bucket was drained (before the first answer
 * came back), and at least that one, so the retry ran.
 */
function expectOnlyUnavoidable(trips: readonly Trip[]) {
  const throttled = trips.filter((t) => t.throttled);
  const firstAnswer = Math.min(...trips.map((t) => t.answeredAt));
  expect(throttled.length).toBeGreaterThanOrEqual(1);
  for (const t of throttled) expect(t.sentAt).toBeLessThan(firstAnswer);
}

/**
 * Without costs the limiter takes each query at `queryCost` (50) and cannot know better until an
 * answer says: a query that asked for more than was left is throttled. The throttle tells its
 * cost, and sent again it takes that, waiting until that much has come back: mostly it goes
 * through then, unless another stream's underestimated query reached the server first.
 */
function expectFewThrottles(trips: readonly Trip[]) {
  const per = new Map<number, number>();
  for (const t of trips) if (t.throttled) per.set(t.i, (per.get(t.i) ?? 0) + 1);
  const throttles = [...per.values()];
  expect(throttles.length).toBeGreaterThanOrEqual(1);
  expect(throttles.reduce((a, b) => a + b, 0)).toBeLessThan(QUERIES);
  expect(Math.max(...throttles)).toBeLessThanOrEqual(2);
}

/**
 * The least time: the bucket holds 10 points at the start and restores 50 a second; every query
 * but the last must have its actual cost back, and the last its requested cost.
 */
const leastMs = () => {
  const spent = Array.from({ length: QUERIES - 1 }, (_, i) => actual(i)).reduce((a, b) => a + b, 0);
  return ((spent + requested(QUERIES - 1) - 10) / 50) * 1000;
};

/** What one run gives back. */
interface Run {
  readonly outcomes: Outcome[];
  readonly trips: Trip[];
  readonly errors: unknown[];
  readonly engine: SimulatorEngine;
  /** When the last query ended, ms after the start. */
  readonly elapsed: number;
  readonly limiter: Limiter;
}

/** `rateLimit` over the virtual provider, `STREAMS` queries at a time; with or without each query's cost. */
function runOperators(costGiven: boolean): Run {
  return inVirtualTime(({ now }) => {
    const engine = createSimulatorEngine({ latencyMs: 20, now: () => START + asyncScheduler.now() });
    drain(engine);
    const api = virtualProvider(engine, asyncScheduler);
    const limiter = createLimiter({ provider: providers.shopify({ api: 'graphql' }), key: shopKey(), random: HALF });
    const outcomes: Outcome[] = [];
    const trips: Trip[] = [];
    const errors: unknown[] = [];
    let last = 0;
    from(Array.from({ length: QUERIES }, (_, i) => i))
      .pipe(
        mergeMap((i) => {
          const request$ = new Observable<SimulatorResponse>((subscriber) => {
            const trip: Trip = { i, sentAt: now(), answeredAt: Infinity, throttled: false };
            trips.push(trip);
            return api
              .request('shopify', { method: 'POST', path: PATH, token: 'shpat', headers: costHeaders(i) })
              .subscribe({
                next: (res) => {
                  trip.answeredAt = now();
                  trip.throttled = res.body.includes('THROTTLED');
                  subscriber.next(res);
                },
                complete: () => subscriber.complete(),
              });
          });
          // A GraphQL query is a POST: it goes again because the THROTTLED query never ran.
          return request$.pipe(
            rateLimit(limiter, { method: 'POST', url: PATH, ...(costGiven ? { cost: requested(i) } : {}) }),
            map((res) => ({ i, status: res.status, body: res.body })),
          );
        }, STREAMS),
      )
      .subscribe({
        next: (o) => {
          outcomes.push(o);
          last = now();
        },
        error: (e) => errors.push(e),
      });
    return () => ({ outcomes, trips, errors, engine, elapsed: last, limiter });
  })();
}

/** `rateLimitedFetch` over a virtual fetch, `STREAMS` calls at a time; with or without each query's cost. */
async function runFetch(costGiven: boolean): Promise<Run> {
  const scheduler = new VirtualTimeScheduler();
  const engine = createSimulatorEngine({ latencyMs: 20, now: () => START + scheduler.now() });
  drain(engine);
  const limiter = createLimiter({
    provider: providers.shopify({ api: 'graphql' }),
    key: shopKey(),
    scheduler,
    random: HALF,
  });
  const trips: Trip[] = [];
  const sim = virtualFetch(engine, scheduler, 'shopify');
  // The query's number rides in the URL's fragment (never sent), for the trace and the cost.
  const queryOf = (url: string) => Number(new URL(url).hash.slice(1));
  const traced: typeof fetch = async (input, init) => {
    const trip: Trip = { i: queryOf(String(input)), sentAt: scheduler.now(), answeredAt: Infinity, throttled: false };
    trips.push(trip);
    const res = await sim(input, init);
    trip.answeredAt = scheduler.now();
    trip.throttled = (await res.clone().text()).includes('THROTTLED');
    return res;
  };
  const apiFetch = rateLimitedFetch(limiter, {
    fetch: traced,
    ...(costGiven ? { cost: ({ url }: { url: string }) => requested(queryOf(url)) } : {}),
  });
  const outcomes: Outcome[] = [];
  const errors: unknown[] = [];
  let last = 0;
  // STREAMS at a time, each starting its next query when the last one settled.
  let next = 0;
  const stream = async (): Promise<void> => {
    while (next < QUERIES) {
      const i = next++;
      try {
        const res = await apiFetch(`https://my-shop.myshopify.com${PATH}#${i}`, {
          method: 'POST',
          headers: { Authorization: 'Bearer shpat', 'Content-Type': 'application/json', ...costHeaders(i) },
          body: JSON.stringify({ query: '{ shop { name } }' }),
        });
        outcomes.push({ i, status: res.status, body: await res.text() });
        last = scheduler.now();
      } catch (e) {
        errors.push(e);
      }
    }
  };
  const streams = Array.from({ length: STREAMS }, stream);
  await runPromisesVirtually(scheduler, () => outcomes.length + errors.length === QUERIES);
  await Promise.all(streams);
  return { outcomes, trips, errors, engine, elapsed: last, limiter };
}

const paths = { rateLimit: async () => runOperators, rateLimitedFetch: async () => runFetch } as const;

describe('Shopify GraphQL: a THROTTLED 200 is waited out and sent again (virtual time, the simulator)', () => {
  it.each(Object.keys(paths) as Array<keyof typeof paths>)(
    '%s, each query’s cost given: all end 200 with data; only the cold start’s throttle, and it is retried',
    async (path) => {
      const out = await (await paths[path]())(true);
      expect(out.errors).toEqual([]);
      expectNoneLost(out.outcomes, out.trips, out.engine);
      expectOnlyUnavoidable(out.trips);
      // Nothing reached the server while a throttle's wait was running.
      expect(out.engine.statsFor('shopify', 'Bearer shpat').sentWhileLimited).toBe(0);
      expect(out.limiter.snapshot.totals).toMatchObject({ rateLimited: 1 });
      // The throttle's wait is the body's (the requested cost back), not a backoff: the run
      // takes the least time the bucket allows, plus a few round trips.
      expect(out.elapsed).toBeGreaterThanOrEqual(leastMs());
      expect(out.elapsed / leastMs()).toBeLessThanOrEqual(1.05);
    },
  );

  it.each(Object.keys(paths) as Array<keyof typeof paths>)(
    '%s, no cost given: all end 200 with data; each throttled query is sent again with the cost it told',
    async (path) => {
      const out = await (await paths[path]())(false);
      expect(out.errors).toEqual([]);
      expectNoneLost(out.outcomes, out.trips, out.engine);
      expectFewThrottles(out.trips);
      expect(out.elapsed / leastMs()).toBeLessThanOrEqual(1.05);
    },
  );

  it('rateLimitedFetch: past maxRetries a THROTTLED call rejects with RetryLimitError (status 200, the last answer)', async () => {
    const scheduler = new VirtualTimeScheduler();
    const engine = createSimulatorEngine({ latencyMs: 20, now: () => START + scheduler.now() });
    drain(engine);
    const limiter: Limiter = createLimiter({
      provider: providers.shopify({ api: 'graphql' }),
      key: shopKey(),
      scheduler,
    });
    const apiFetch = rateLimitedFetch(limiter, { fetch: virtualFetch(engine, scheduler, 'shopify'), maxRetries: 0 });
    let error: unknown;
    let settled = false;
    apiFetch(`https://my-shop.myshopify.com${PATH}`, {
      method: 'POST',
      headers: { Authorization: 'Bearer shpat', 'x-simulated-query-cost': '50' },
    }).then(
      () => (settled = true),
      (e: unknown) => {
        error = e;
        settled = true;
      },
    );
    await runPromisesVirtually(scheduler, () => settled);
    expect(isRetryLimitError(error)).toBe(true);
    expect(error).toMatchObject({ name: 'RetryLimitError', attempts: 1, status: 200 });
    expect(engine.statsFor('shopify', 'Bearer shpat')).toMatchObject({ limited: 1 });
  });
});
