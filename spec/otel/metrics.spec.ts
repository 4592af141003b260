import { afterEach, describe, expect, it } from '@jest/globals';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import {
  asyncScheduler,
  catchError,
  lastValueFrom,
  map,
  of,
  timer,
  VirtualTimeScheduler,
  type SchedulerLike,
} from 'rxjs';
import { createLimiter, defineProvider, providers, rateLimit, responseLike } from '../../lib/index.js';
import { ATTRIBUTE, limiterMetrics, METRIC } from '../../lib/otel/index.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { virtualApi } from '../helpers/virtualApi.js';

/** A meter provider whose metrics are read on demand, as a Prometheus scrape would. */
function sdk(temporality = AggregationTemporality.CUMULATIVE) {
  const exporter = new InMemoryMetricExporter(temporality);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const collect = async (): Promise<Map<string, MetricData>> => {
    exporter.reset();
    await reader.forceFlush();
    const byName = new Map<string, MetricData>();
    for (const rm of exporter.getMetrics())
      for (const sm of rm.scopeMetrics) for (const m of sm.metrics) byName.set(m.descriptor.name, m);
    return byName;
  };
  return { meterProvider, collect, shutdown: () => meterProvider.shutdown() };
}

/** Sum of a counter's points whose attributes include `match`. */
function sum(metric: MetricData | undefined, match: Record<string, unknown> = {}): number {
  let total = 0;
  for (const p of metric?.dataPoints ?? []) {
    if (Object.entries(match).every(([k, v]) => p.attributes[k] === v)) total += p.value as number;
  }
  return total;
}

let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  stop = undefined;
});

describe('rx-ratelimit/otel', () => {
  it('counts admitted requests, 429s and retries, and times the queue wait, labelled by provider and key label', async () => {
    const { meterProvider, collect, shutdown } = sdk();
    stop = shutdown;
    let clock = 0;
    const metrics = limiterMetrics({ meterProvider, now: () => clock });
    const token = 'secret-token-that-must-never-show';
    inVirtualTime(() => {
      const api = virtualApi(asyncScheduler, {
        limit: 2,
        windowMs: 1000,
        override: (n) => (n === 3 ? { status: 429, headers: { 'Retry-After': '1' } } : undefined),
      });
      const limiter = createLimiter({ provider: providers.generic({ resetUnit: 'unix-seconds' }), key: token });
      metrics.observe(limiter);
      for (let i = 0; i < 5; i++) api.request().pipe(rateLimit(limiter)).subscribe();
      // Stop mid-window so the bucket has a reset ahead of the clock the gauges read.
      asyncScheduler.schedule(() => (clock = asyncScheduler.now()), 10_000);
    });
    const m = await collect();

    const requests = m.get(METRIC.requests);
    expect(requests?.descriptor.unit).toBe('{request}');
    // 5 requests, one of which was answered 429 and sent again: 6 permits.
    expect(sum(requests, { [ATTRIBUTE.result]: 'acquired' })).toBe(6);
    expect(sum(m.get(METRIC.rateLimitedResponses), { [ATTRIBUTE.statusCode]: 429 })).toBe(1);
    expect(sum(m.get(METRIC.retries))).toBe(1);

    const wait = m.get(METRIC.timeInQueue);
    expect(wait?.descriptor.unit).toBe('s');
    expect(wait?.dataPointType).toBe(DataPointType.HISTOGRAM);
    const histogram = wait?.dataPoints[0]?.value as { count: number; max?: number };
    expect(histogram.count).toBe(6);
    // Requests 3–5 waited for the next window (a second, then the retry's pause): never zero.
    expect(histogram.max).toBeGreaterThan(0.5);

    const point = requests?.dataPoints[0];
    expect(point?.attributes[ATTRIBUTE.provider]).toBe('generic');
    expect(point?.attributes[ATTRIBUTE.keyLabel]).toMatch(/^key_[0-9a-f]{16}$/);
    expect(JSON.stringify([...m.values()])).not.toContain(token);
  });

  it('reports each bucket\u2019s limit, remaining and seconds until reset as gauges, ', async () => {
    const { meterProvider, collect, shutdown } = sdk();
    stop = shutdown;
    let clock = 0;
    const metrics = limiterMetrics({ meterProvider, now: () => clock });
    inVirtualTime(() => {
      const api = virtualApi(asyncScheduler, { limit: 10, windowMs: 60_000 });
      const limiter = createLimiter({
        provider: providers.generic({ resetUnit: 'unix-seconds' }),
        key: 'k',
        label: 'crm-sync',
      });
      metrics.observe(limiter);
      for (let i = 0; i < 3; i++) api.request().pipe(rateLimit(limiter)).subscribe();
      asyncScheduler.schedule(() => (clock = asyncScheduler.now()), 15_000);
    });
    const m = await collect();
    const attrs = { [ATTRIBUTE.keyLabel]: 'crm-sync', [ATTRIBUTE.bucket]: 'default' };
    expect(sum(m.get(METRIC.bucketLimit), attrs)).toBe(10);
    expect(sum(m.get(METRIC.bucketRemaining), attrs)).toBe(7);
    // The window resets at 60 s on the server's clock; the gauges read the clock at 15 s.
    const reset = sum(m.get(METRIC.bucketTimeToReset), attrs);
    expect(reset).toBeGreaterThan(40);
    expect(reset).toBeLessThanOrEqual(45.1);
    expect(m.get(METRIC.bucketTimeToReset)?.descriptor.unit).toBe('s');
    expect(sum(m.get(METRIC.queuedRequests))).toBe(0);
  });

  it.each([
    ['ahead', 3_600_000],
    ['back', -3_600_000],
  ])(
    'measures seconds until reset on the limiter\u2019s clock, not the wall clock stepped an hour %s',
    async (_, step) => {
      const { meterProvider, collect, shutdown } = sdk();
      stop = shutdown;
      // The limiter's clock stands where the wall clock was before the step, as its monotonic
      // clock does on the default scheduler; no `now` is given to the metrics.
      const clockAt = Date.now() - step;
      const scheduler: SchedulerLike = {
        now: () => clockAt,
        schedule: asyncScheduler.schedule.bind(asyncScheduler),
      };
      const limiter = createLimiter({ provider: providers.generic(), key: 'k', label: 'stepped', scheduler });
      limiterMetrics({ meterProvider }).observe(limiter);
      const headers = { 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': '20' };
      await lastValueFrom(of(responseLike(200, headers)).pipe(rateLimit(limiter, { url: '/a' })));
      const reset = sum((await collect()).get(METRIC.bucketTimeToReset), { [ATTRIBUTE.keyLabel]: 'stepped' });
      // 20 s on the limiter's clock (0 s, or 3,620 s, against the stepped wall clock).
      expect(reset).toBeGreaterThanOrEqual(19);
      expect(reset).toBeLessThanOrEqual(20.5);
      await limiter.close();
    },
  );

  it('counts refusals by error type and responses saved by sharing, and stops on unsubscribe', async () => {
    const { meterProvider, collect, shutdown } = sdk();
    stop = shutdown;
    const metrics = limiterMetrics({ meterProvider });
    inVirtualTime(() => {
      // A provider that blocks on 403.
      const blocking = defineProvider({
        name: 'blocking',
        buckets: [{ name: 'default' }],
        read: (res) => ({ outcome: res.status === 403 ? 'blocked' : 'ok', buckets: [] }),
      });
      const limiter = createLimiter({ provider: blocking, key: 'k', maxConcurrent: 1, maxQueue: 1 });
      metrics.observe(limiter);
      // The first is answered 403 while the second waits for its slot: the block refuses it.
      const forbidden = timer(10).pipe(map(() => ({ status: 403, headers: {} })));
      forbidden
        .pipe(
          rateLimit(limiter),
          catchError(() => of(null)),
        )
        .subscribe();
      forbidden
        .pipe(
          rateLimit(limiter),
          catchError(() => of(null)),
        )
        .subscribe();

      // Three identical GETs at once with one in flight: two are served by it.
      const api = virtualApi(asyncScheduler, { limit: 10, windowMs: 1000 });
      const sharing = createLimiter({
        provider: providers.generic(),
        key: 'k2',
        label: 'sharing',
        coldStartConcurrency: 10,
      });
      metrics.observe(sharing);
      for (let i = 0; i < 3; i++)
        api
          .request()
          .pipe(rateLimit(sharing, { url: '/deals', headers: {} }))
          .subscribe();

      // A full queue: maxQueue 0 and one request in flight.
      const full = createLimiter({ provider: providers.generic(), key: 'k3', maxConcurrent: 1, maxQueue: 0 });
      metrics.observe(full);
      for (let i = 0; i < 2; i++)
        api
          .request()
          .pipe(
            rateLimit(full),
            catchError(() => of(null)),
          )
          .subscribe();

      // A cost no window holds: refused, not a block.
      const dear = createLimiter({ provider: providers.generic(), key: 'k5', label: 'dear' });
      metrics.observe(dear);
      dear.acquire(
        { method: 'GET', url: '/x', cost: 10_000 },
        { granted: (p) => p.release(), rejected: () => undefined },
      );
      dear.observe(responseLike(200, { 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '10' }));
      dear.acquire(
        { method: 'GET', url: '/x', cost: 10_000 },
        { granted: (p) => p.release(), rejected: () => undefined },
      );

      // Unsubscribed: nothing more is counted for it.
      const gone = createLimiter({ provider: providers.generic(), key: 'k4', label: 'gone' });
      metrics.observe(gone).unsubscribe();
      api.request().pipe(rateLimit(gone)).subscribe();
    });
    const requests = (await collect()).get(METRIC.requests);
    const refused = (errorType: string) =>
      sum(requests, { [ATTRIBUTE.result]: 'refused', [ATTRIBUTE.errorType]: errorType });
    expect(refused('BlockedError')).toBe(1);
    expect(refused('QueueFullError')).toBe(1);
    expect(sum(requests, { [ATTRIBUTE.keyLabel]: 'dear', [ATTRIBUTE.errorType]: '_OTHER' })).toBe(1);
    expect(sum(requests, { [ATTRIBUTE.result]: 'shared', [ATTRIBUTE.keyLabel]: 'sharing' })).toBe(2);
    expect(sum(requests, { [ATTRIBUTE.result]: 'acquired', [ATTRIBUTE.keyLabel]: 'sharing' })).toBe(1);
    expect(sum(requests, { [ATTRIBUTE.keyLabel]: 'gone' })).toBe(0);
  });

  it('records a bounded number of bucket names when the server names a fresh bucket every few minutes', async () => {
    const { meterProvider, collect, shutdown } = sdk();
    stop = shutdown;
    const scheduler = new VirtualTimeScheduler();
    const limiter = createLimiter({ provider: providers.ietf(), key: 'k', label: 'fresh-names', scheduler });
    limiterMetrics({ meterProvider, now: () => scheduler.now() }).observe(limiter);
    // A policy named after its window (or a request id): each is a new bucket to the limiter,
    // evicted once idle, so the names a limiter ever shows have no bound.
    const answer = (name: string) =>
      of(responseLike(200, { 'ratelimit-policy': `"${name}";q=100;w=60`, ratelimit: `"${name}";r=99;t=60` }));
    const names = ['x'.repeat(1000), ...Array.from({ length: 299 }, (_, i) => `window-${i}`)];
    const seen = new Set<unknown>();
    for (const [i, name] of names.entries()) {
      scheduler.schedule(() => void answer(name).pipe(rateLimit(limiter)).subscribe(), i * 660_000);
      scheduler.maxFrames = i * 660_000 + 1000;
      scheduler.flush();
      // Scraped between answers, as Prometheus would be every few seconds.
      for (const p of (await collect()).get(METRIC.bucketLimit)?.dataPoints ?? [])
        seen.add(p.attributes[ATTRIBUTE.bucket]);
    }
    expect(seen.has('window-0')).toBe(true);
    expect(seen.has(names[0])).toBe(false);
    expect(seen.size).toBeLessThanOrEqual(128);
  });

  it('stops observing a limiter once it is closed, so a closed limiter is not held', async () => {
    // Delta temporality: only what the callback observed in this collection is exported.
    const { meterProvider, collect, shutdown } = sdk(AggregationTemporality.DELTA);
    stop = shutdown;
    const limiter = createLimiter({ provider: providers.generic(), key: 'k', label: 'closing' });
    const recording = limiterMetrics({ meterProvider }).observe(limiter);
    inVirtualTime(() => {
      virtualApi(asyncScheduler, { limit: 10, windowMs: 1000 }).request().pipe(rateLimit(limiter)).subscribe();
    });
    expect((await collect()).get(METRIC.bucketLimit)?.dataPoints).toHaveLength(1);
    await limiter.close();
    expect(recording.closed).toBe(true);
    expect((await collect()).get(METRIC.bucketLimit)?.dataPoints ?? []).toHaveLength(0);
  });
});
