/**
 * Shopify's leaky buckets under arbitrary traffic, in virtual time against the simulator:
 * GraphQL queries of random requested and actual costs (the request's `cost` given, as the
 * profile asks), REST calls, 1–30 streams, latency jittered each way (requests counted in
 * another order than sent), arrivals spread or all at once, and another app of the store that
 * may have drained part of the bucket. No THROTTLED and no 429 (but the one a drained bucket
 * makes unavoidable: the cold start's first request, sent before any answer told the level);
 * every request ends with data; and the run takes no longer than the bucket's restore rate
 * allows, plus round trips.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { providers } from '../../lib/index.js';
import { assertEndedOnce } from './harness.js';
import { limitedCount, runProvider, type RunRequest } from './providerRun.js';

const GQL = '/admin/api/2024-10/graphql.json';
const RATE = 50;
const CAPACITY_REST = 40;

const latency = fc.array(fc.integer({ min: 0, max: 60 }), { minLength: 1, maxLength: 12 });

describe('Shopify GraphQL: random query costs (virtual time, the simulator)', () => {
  it('no THROTTLED, every query answered with data, within the restore rate of the least time', () => {
    fc.assert(
      fc.property(
        fc.record({
          queries: fc.array(
            fc.record({
              requested: fc.integer({ min: 1, max: 1000 }),
              actualShare: fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
              at: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20_000 })),
            }),
            { minLength: 1, maxLength: 60 },
          ),
          streams: fc.integer({ min: 1, max: 30 }),
          up: latency,
          down: latency,
          drained: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1000 })),
          limiters: fc.integer({ min: 1, max: 3 }),
        }),
        (o) => {
          const requests: RunRequest[] = o.queries.map((q, i) => {
            const actual = Math.max(1, Math.floor(q.requested * q.actualShare));
            return {
              at: q.at,
              method: 'POST',
              path: GQL,
              cost: q.requested,
              limiter: i,
              headers: { 'x-simulated-query-cost': String(q.requested), 'x-simulated-actual-cost': String(actual) },
            };
          });
          const out = runProvider({
            simulated: 'shopify',
            provider: () => providers.shopify({ api: 'graphql' }),
            phaseMs: 0,
            requests,
            streams: o.streams,
            limiters: o.limiters,
            up: o.up,
            down: o.down,
            before:
              o.drained > 0
                ? (engine) =>
                    void engine.handle({
                      provider: 'shopify',
                      method: 'POST',
                      path: GQL,
                      headers: { Authorization: 'Bearer other', 'x-simulated-query-cost': String(o.drained) },
                    })
                : undefined,
          });
          const ends = assertEndedOnce(out.ledgers);
          expect(ends).toEqual({ 'status 200': requests.length });
          for (const l of out.ledgers) expect(l.values[0]!.body).not.toContain('THROTTLED');
          const throttled = out.arrivals.filter((a) => a.response.body.includes('THROTTLED')).length;
          expect(throttled).toBe(limitedCount(out, 'shopify'));
          // Only the cold start's first query may meet a bucket another app drained.
          // Several limiters on the token share its state: still only one such query.
          expect(throttled).toBeLessThanOrEqual(o.drained > 0 ? 1 : 0);
          // An ideal pacer serves what is asked after the last arrival within its restore time
          // (each query waits for its requested cost, not its actual one), and streams that
          // must wait for their answers add a round trip per request they carry.
          const rtt = Math.max(...o.up) + Math.max(...o.down);
          const work = requests.reduce((n, r) => n + (r.cost ?? 0), o.drained);
          const lastAt = Math.max(...requests.map((r) => r.at));
          const perStream = Math.ceil(requests.length / (o.streams * o.limiters));
          expect(out.lastEnd).toBeLessThanOrEqual(lastAt + 1.05 * (work / RATE) * 1000 + (perStream + 2) * (rtt + 10));
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('Shopify REST: a bucket of 40 restoring 2 a second (virtual time, the simulator)', () => {
  it('no 429, every call answered, within the restore rate of the least time', () => {
    fc.assert(
      fc.property(
        fc.record({
          calls: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 30_000 })), {
            minLength: 1,
            maxLength: 120,
          }),
          streams: fc.integer({ min: 1, max: 40 }),
          up: latency,
          down: latency,
          drained: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 })),
          limiters: fc.integer({ min: 1, max: 3 }),
        }),
        (o) => {
          const requests: RunRequest[] = o.calls.map((at, i) => ({
            at,
            method: i % 3 === 0 ? 'POST' : 'GET',
            path: `/admin/api/2024-10/products/${i}.json`,
            limiter: i,
          }));
          const out = runProvider({
            simulated: 'shopify',
            provider: () => providers.shopify({ api: 'rest' }),
            phaseMs: 0,
            requests,
            streams: o.streams,
            limiters: o.limiters,
            up: o.up,
            down: o.down,
            before: (engine) => {
              for (let k = 0; k < o.drained; k++)
                engine.handle({
                  provider: 'shopify',
                  method: 'GET',
                  path: '/admin/api/2024-10/shop.json',
                  headers: { Authorization: 'Bearer other' },
                });
            },
          });
          const ends = assertEndedOnce(out.ledgers);
          expect(Object.keys(ends).every((k) => k === 'status 200' || k === 'status 201')).toBe(true);
          // Only the cold start's first call may meet a bucket another app filled.
          expect(limitedCount(out, 'shopify')).toBeLessThanOrEqual(o.drained >= CAPACITY_REST ? 1 : 0);
          const rtt = Math.max(...o.up) + Math.max(...o.down);
          const lastAt = Math.max(...o.calls);
          const perStream = Math.ceil(requests.length / (o.streams * o.limiters));
          const work = requests.length + o.drained;
          expect(out.lastEnd).toBeLessThanOrEqual(lastAt + 1.05 * (work / 2) * 1000 + (perStream + 2) * (rtt + 10));
        },
      ),
      { numRuns: 60 },
    );
  });
});
