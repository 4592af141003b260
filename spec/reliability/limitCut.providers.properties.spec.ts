/**
 * Limits cut without notice mid-run, for the providers whose windows slide, start at a first
 * request or leak (spec/reliability/limitCut.virtual.spec.ts and providerWindows cover the fixed
 * ones): TEOS's rolling minute, HubSpot's rolling burst limit, GitHub's primary `core` window and
 * Shopify's REST bucket, each cut to 30–100 % at any moment, in virtual time against the
 * simulator, with arrivals at any time, 1–30 streams, latency jittered each way and one to
 * three limiters on the credential. A cut is seen only in an answer, so the requests already in
 * flight when it lands may be refused (at most the streams); each is sent again, and every
 * request ends with a success.
 *
 * GitHub answers here with 429 (`limitedStatus: 429`): its default 403 is retried only when the
 * caller lists 403 in `statuses` (docs/architecture.md, Retries), so an in-flight 403 would reach
 * the caller as it is.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { providers, type Provider } from '../../lib/index.js';
import type { SimulatedProvider, SimulatorEngine, SimulatorOptions } from '../../lib/testing/index.js';
import { assertEndedOnce } from './harness.js';
import { limitedCount, runProvider, type RunRequest, traffic } from './providerRun.js';

interface Case {
  readonly simulated: SimulatedProvider;
  readonly provider: (limit: number) => Provider;
  readonly engine: (limit: number) => Omit<SimulatorOptions, 'now' | 'latencyMs'>;
  readonly cut: (engine: SimulatorEngine, to: number) => void;
  readonly path: (i: number) => string;
  readonly span: number;
}

const cases: Array<[string, Case]> = [
  [
    'TEOS rolling minute (a minute in 1 s)',
    {
      simulated: 'teos',
      provider: (limit) =>
        providers.teos({ hints: { minute: { limit, windowMs: 1000 }, day: { windowMs: 1_440_000 } } }),
      engine: (limit) => ({ timeScale: 60, teos: { perMinute: limit, headersAfter: 1 } }),
      cut: (e, to) => e.changeLimits('teos', { perMinute: to }),
      path: (i) => `/api/v1/items/${i}`,
      span: 5000,
    },
  ],
  [
    'HubSpot rolling burst limit (10 s in 2 s)',
    {
      simulated: 'hubspot',
      provider: (limit) => providers.hubspot({ hints: { interval: { limit, windowMs: 2000 } } }),
      engine: (limit) => ({ timeScale: 5, hubspot: { perInterval: limit } }),
      cut: (e, to) => e.changeLimits('hubspot', { perInterval: to }),
      path: (i) => `/crm/v3/objects/contacts/${i}`,
      span: 5000,
    },
  ],
  [
    'GitHub core (an hour in 2 s)',
    {
      simulated: 'github',
      provider: (limit) => providers.github({ hints: { core: { limit, windowMs: 2000 } } }),
      engine: (limit) => ({ timeScale: 1800, github: { core: limit, limitedStatus: 429 } }),
      cut: (e, to) => e.changeLimits('github', { core: to }),
      path: (i) => `/repos/octo/hello/issues/${i}`,
      span: 5000,
    },
  ],
  [
    'Shopify REST bucket (40 restoring 2 a second)',
    {
      simulated: 'shopify',
      provider: () => providers.shopify({ api: 'rest' }),
      engine: () => ({}),
      cut: (e, to) => e.changeLimits('shopify', { restBucket: to }),
      path: (i) => `/admin/api/2024-10/products/${i}.json`,
      span: 20_000,
    },
  ],
];

describe('a limit cut without notice mid-run (virtual time, the simulator)', () => {
  it.each(cases)(
    '%s: refusals only for requests in flight at the cut, each sent again; every request succeeds',
    (_, c) => {
      fc.assert(
        fc.property(
          fc.record({
            limit: fc.integer({ min: 6, max: 40 }),
            to: fc.double({ min: 0.3, max: 1, noNaN: true }),
            cutAt: fc.integer({ min: 0, max: c.span }),
            calls: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: c.span })), {
              minLength: 1,
              maxLength: 100,
            }),
            ...traffic,
          }),
          (o) => {
            const to = Math.max(1, Math.floor(o.limit * o.to));
            const requests: RunRequest[] = o.calls.map((at, i) => ({ at, method: 'GET', path: c.path(i), limiter: i }));
            const out = runProvider({
              simulated: c.simulated,
              provider: () => c.provider(o.limit),
              engine: c.engine(o.limit),
              during: [{ at: o.cutAt, act: (e) => c.cut(e, to) }],
              phaseMs: 0,
              requests,
              streams: o.streams,
              limiters: o.limiters,
              up: o.up,
              down: o.down,
            });
            expect(assertEndedOnce(out.ledgers)).toEqual({ 'status 200': requests.length });
            expect(limitedCount(out, c.simulated)).toBeLessThanOrEqual(o.streams * o.limiters);
          },
        ),
        { numRuns: 40 },
      );
    },
  );
});
