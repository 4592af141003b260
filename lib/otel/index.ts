/**
 * OpenTelemetry metrics for limiters: `rx-ratelimit/otel`.
 *
 * Built only on a limiter's public `state$` and `events$`, so it works with any limiter (memory or
 * Redis store, `shareLimiter`, the NestJS registry's) and costs nothing for apps that do not import
 * it. OpenTelemetry has no semantic convention for client-side rate limits yet; the names follow
 * its naming rules and the shape of the stable `aspnetcore.rate_limiting.*` metrics, under this
 * library's own `rx_ratelimit.` namespace (see docs/otel.md for the table).
 * @packageDocumentation
 */
import {
  metrics,
  ValueType,
  type Attributes,
  type BatchObservableResult,
  type Meter,
  type MeterProvider,
  type Observable as OtelObservable,
} from '@opentelemetry/api';
import type { Observable, Subscription } from 'rxjs';
import type { LimiterEvent } from '../core/events.js';
import type { LimiterSnapshot } from '../core/state.js';

/** What {@link LimiterMetrics.observe} reads: any limiter (`createLimiter`, `shareLimiter`, the NestJS registry's). */
export interface ObservableLimiter {
  readonly state$: Observable<LimiterSnapshot>;
  readonly events$: Observable<LimiterEvent>;
  /**
   * The limiter's clock (epoch ms), which its buckets' `resetAt` are on: a `Limiter`'s `now()`.
   * `rx_ratelimit.bucket.time_to_reset` is measured on it.
   */
  now?(): number;
}

/** Settings of {@link limiterMetrics}. */
export interface LimiterMetricsConfig {
  /** Where the instruments are created. @default the global provider's meter `rx-ratelimit` */
  readonly meter?: Meter;
  /** Used when no `meter` is given. @default the global meter provider (`metrics.getMeterProvider()`) */
  readonly meterProvider?: MeterProvider;
  /**
   * The limiters' clock, in epoch ms, for the seconds until a bucket resets; given, it is read
   * for every limiter instead of its own. Each limiter's own `now()` is right: with the default
   * scheduler it is monotonic (the wall clock when the limiter was made plus the time since), so
   * `Date.now` would be off by any step of the wall clock since (NTP, a VM resumed).
   * @default each limiter's `now()`; `Date.now` for one without it
   */
  readonly now?: () => number;
}

/** The instruments of {@link limiterMetrics}; observe each limiter once. */
export interface LimiterMetrics {
  /**
   * Starts recording a limiter; unsubscribe the result to stop (its gauges stop reporting).
   * Counters and the histogram count what happens from now on.
   */
  observe(limiter: ObservableLimiter): Subscription;
}

/** Metric and attribute names, exported for dashboards and tests. */
export const METRIC = {
  /** Counter `{request}`: permits asked for, by `rx_ratelimit.result` (and `error.type` when refused). */
  requests: 'rx_ratelimit.requests',
  /** Histogram `s`: time a sent request waited for its permit. */
  timeInQueue: 'rx_ratelimit.request.time_in_queue',
  /** Counter `{response}`: 429s (or the provider's equivalent) received. */
  rateLimitedResponses: 'rx_ratelimit.rate_limited_responses',
  /** Counter `{retry}`: retries scheduled after a 429. */
  retries: 'rx_ratelimit.retries',
  /** UpDownCounter `{request}`: requests waiting for a permit now. */
  queuedRequests: 'rx_ratelimit.queued_requests',
  /** UpDownCounter `{request}`: requests sent and not yet answered now. */
  activeRequests: 'rx_ratelimit.active_requests',
  /** Gauge `{request}`: a bucket's limit per window. */
  bucketLimit: 'rx_ratelimit.bucket.limit',
  /** Gauge `{request}`: requests left in a bucket's window. */
  bucketRemaining: 'rx_ratelimit.bucket.remaining',
  /** Gauge `s`: seconds until a bucket's window resets. */
  bucketTimeToReset: 'rx_ratelimit.bucket.time_to_reset',
} as const;

/** Attribute names used by {@link METRIC}. */
export const ATTRIBUTE = {
  /** The provider profile's name (`procore`, `pipedrive`, …). */
  provider: 'rx_ratelimit.provider',
  /** The key's label: the limiter's `label` option or a keyed hash of the key, never the key. */
  keyLabel: 'rx_ratelimit.key_label',
  /** A bucket's name (`hourly`, `daily`, …); the first 128 names per limiter, then `_other` ({@link OTHER_BUCKET}). */
  bucket: 'rx_ratelimit.bucket',
  /** `acquired` (sent), `shared` (served by an identical request or the cache), `canceled`, `refused`. */
  result: 'rx_ratelimit.result',
  /** Where a shared response came from: `in_flight` or `cache`. */
  sharedFrom: 'rx_ratelimit.shared_from',
  /** On a refusal: `QuotaExhaustedError`, `QueueFullError`, `BlockedError`. */
  errorType: 'error.type',
  /** The status of a rate-limited response (429, or the provider's equivalent). */
  statusCode: 'http.response.status_code',
} as const;

/**
 * Most distinct bucket names recorded per observed limiter, and the longest name recorded. A
 * server names buckets (IETF policies, GitHub resources, TEOS periods): one that names a fresh
 * one every few minutes (a policy named after its window) made a series each time, and the
 * OpenTelemetry JS SDK keeps exporting every series an observable instrument was ever given
 * under cumulative temporality, up to its cardinality limit, past which it folds every other
 * limiter's series into one overflow series. Names past these are recorded as
 * {@link OTHER_BUCKET} by the counters, and not at all by the gauges.
 */
const MAX_BUCKET_NAMES = 128;
const MAX_BUCKET_NAME_LENGTH = 256;

/** The `rx_ratelimit.bucket` of a rate-limited response whose bucket name is past the cap. */
export const OTHER_BUCKET = '_other';

/** Queue-wait boundaries in seconds: aspnetcore's, then the minutes a daily budget can make a request wait. */
const WAIT_BOUNDARIES = [0, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/**
 * Creates the instruments once; `observe` each limiter to record it.
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * import { limiterMetrics } from 'rx-ratelimit/otel';
 *
 * const limiter = createLimiter({ provider: providers.procore(), key: 'procore-token' });
 * const recording = limiterMetrics().observe(limiter); // the global meter provider
 * // later: recording.unsubscribe();
 * ```
 */
export function limiterMetrics(config: LimiterMetricsConfig = {}): LimiterMetrics {
  const meter = config.meter ?? (config.meterProvider ?? metrics.getMeterProvider()).getMeter('rx-ratelimit');
  const int = { valueType: ValueType.INT };

  const requests = meter.createCounter(METRIC.requests, {
    ...int,
    unit: '{request}',
    description: 'Requests that asked a limiter for a permit, by result.',
  });
  const timeInQueue = meter.createHistogram(METRIC.timeInQueue, {
    unit: 's',
    description: 'Time a sent request waited for its permit.',
    advice: { explicitBucketBoundaries: WAIT_BOUNDARIES },
  });
  const rateLimited = meter.createCounter(METRIC.rateLimitedResponses, {
    ...int,
    unit: '{response}',
    description: 'Rate-limited responses (429 or the provider equivalent) received.',
  });
  const retries = meter.createCounter(METRIC.retries, {
    ...int,
    unit: '{retry}',
    description: 'Retries scheduled after a rate-limited response.',
  });
  const queued = meter.createObservableUpDownCounter(METRIC.queuedRequests, {
    ...int,
    unit: '{request}',
    description: 'Requests waiting for a permit.',
  });
  const active = meter.createObservableUpDownCounter(METRIC.activeRequests, {
    ...int,
    unit: '{request}',
    description: 'Requests sent and not yet answered.',
  });
  const limit = meter.createObservableGauge(METRIC.bucketLimit, {
    ...int,
    unit: '{request}',
    description: 'Requests a bucket allows per window.',
  });
  const remaining = meter.createObservableGauge(METRIC.bucketRemaining, {
    ...int,
    unit: '{request}',
    description: 'Requests left in the current window of a bucket.',
  });
  const timeToReset = meter.createObservableGauge(METRIC.bucketTimeToReset, {
    unit: 's',
    description: 'Seconds until the current window of a bucket resets.',
  });

  /** The newest snapshot and the clock of each limiter being observed, and the bucket names it may record. */
  const latest = new Map<BucketNames, { readonly snapshot: LimiterSnapshot; readonly now: () => number }>();
  const observables: OtelObservable[] = [queued, active, limit, remaining, timeToReset];
  const report = (result: BatchObservableResult): void => {
    for (const [names, { snapshot: s, now }] of latest) {
      const at = now();
      const base = baseOf(s);
      result.observe(queued, s.queued, base);
      result.observe(active, s.inFlight, base);
      for (const b of s.buckets) {
        const name = names.recorded(b.name);
        if (name === undefined) continue;
        const attrs = { ...base, [ATTRIBUTE.bucket]: name };
        if (b.limit !== null) result.observe(limit, b.limit, attrs);
        if (b.remaining !== null) result.observe(remaining, b.remaining, attrs);
        if (b.resetAt !== null) result.observe(timeToReset, Math.max(0, b.resetAt - at) / 1000, attrs);
      }
    }
  };
  let registered = false;

  return {
    observe(limiter) {
      const names = new BucketNames();
      // `resetAt` is on the limiter's clock, not the wall clock (see `config.now`).
      const now = config.now ?? limiter.now?.bind(limiter) ?? Date.now;
      if (!registered) {
        meter.addBatchObservableCallback(report, observables);
        registered = true;
      }
      // Refusals by a block have no event of their own: they are the rise of `totals.rejected`
      // that the quota and queue-full events do not explain, while the snapshot shows a block.
      // Any other such rise (a cost no window holds, a closed limiter) is `_OTHER`, as
      // OpenTelemetry names an error type it does not know: counted as a block, it showed a
      // 403 page that never came.
      let baseline: number | undefined;
      let refusals = 0;
      const subscription = limiter.state$.subscribe((s) => {
        latest.set(names, { snapshot: s, now });
        baseline ??= s.totals.rejected;
        const unexplained = s.totals.rejected - baseline - refusals;
        if (unexplained > 0) {
          refusals += unexplained;
          requests.add(unexplained, {
            ...baseOf(s),
            [ATTRIBUTE.result]: 'refused',
            [ATTRIBUTE.errorType]: s.blocked !== null ? 'BlockedError' : '_OTHER',
          });
        }
      });
      subscription.add(
        limiter.events$.subscribe((e) => {
          const base = baseOf(e);
          switch (e.type) {
            case 'admitted':
              requests.add(1, { ...base, [ATTRIBUTE.result]: 'acquired' });
              timeInQueue.record(Math.max(0, e.waitedMs) / 1000, base);
              break;
            case 'shared':
              requests.add(1, {
                ...base,
                [ATTRIBUTE.result]: 'shared',
                [ATTRIBUTE.sharedFrom]: e.from === 'cache' ? 'cache' : 'in_flight',
              });
              break;
            case 'cancelled':
              requests.add(1, { ...base, [ATTRIBUTE.result]: 'canceled' });
              break;
            case 'quota-exhausted':
            case 'queue-full':
              refusals++;
              requests.add(1, {
                ...base,
                [ATTRIBUTE.result]: 'refused',
                [ATTRIBUTE.errorType]: e.type === 'queue-full' ? 'QueueFullError' : 'QuotaExhaustedError',
              });
              break;
            case 'rate-limited':
              rateLimited.add(1, {
                ...base,
                [ATTRIBUTE.statusCode]: e.status,
                ...(e.bucket === null ? {} : { [ATTRIBUTE.bucket]: names.recorded(e.bucket) ?? OTHER_BUCKET }),
              });
              break;
            case 'retry-scheduled':
              retries.add(1, base);
              break;
            default:
              break;
          }
        }),
      );
      subscription.add(() => latest.delete(names));
      return subscription;
    },
  };
}

/** The bucket names one observed limiter has recorded: the first {@link MAX_BUCKET_NAMES}. */
class BucketNames {
  private readonly seen = new Set<string>();

  /** `name` when it is recorded (seen before, or room for it), `undefined` past the cap. */
  recorded(name: string): string | undefined {
    if (this.seen.has(name)) return name;
    if (this.seen.size >= MAX_BUCKET_NAMES || name.length > MAX_BUCKET_NAME_LENGTH) return undefined;
    this.seen.add(name);
    return name;
  }
}

function baseOf(s: { readonly provider: string; readonly key: string }): Attributes {
  return { [ATTRIBUTE.provider]: s.provider, [ATTRIBUTE.keyLabel]: s.key };
}
