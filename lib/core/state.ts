import type { RetrySource } from './provider.js';

/** Where a bucket's current numbers came from. */
export type BucketSource = 'hint' | 'headers' | 'inferred';

/** One bucket as shown to applications. Plain data, safe to render or serialize. */
export interface BucketSnapshot {
  readonly name: string;
  /** Requests per window; `null` when unknown (no limit known yet). */
  readonly limit: number | null;
  /** Requests left in the current window, after those this process has in flight. */
  readonly remaining: number | null;
  /** Epoch ms (limiter clock) when the window resets; `null` when unknown. */
  readonly resetAt: number | null;
  readonly windowMs: number | null;
  /** `hint`: documented numbers, no response yet; `headers`: the server's; `inferred`: ours. */
  readonly source: BucketSource;
  /**
   * Where each number came from, field by field: a bucket whose `remaining` the server reports
   * may still show a documented `limit` (Pipedrive's daily budget reports only what is left),
   * which is then `hint` here. `null` where the field is `null`.
   */
  readonly sources: {
    readonly limit: BucketSource | null;
    readonly windowMs: BucketSource | null;
    /** `headers`: a reset the server told; `inferred`: our projection or our first send. */
    readonly resetAt: Exclude<BucketSource, 'hint'> | null;
  };
  /** A long budget that requests never wait for (daily quota). */
  readonly quota: boolean;
  readonly inFlight: number;
  /**
   * A leaky (token) bucket only: units that come back per second. Its `limit` is the capacity,
   * `remaining` the whole units available now, `resetAt` when it will be full again (`null`:
   * full), `windowMs` `null`.
   */
  readonly restorePerSecond?: number;
}

/** Counters since the limiter was created. */
export interface LimiterTotals {
  /** Requests sent (each retry counts again). */
  readonly sent: number;
  /** Responses read. */
  readonly responses: number;
  /** 429s (or the provider's equivalent) received. */
  readonly rateLimited: number;
  /** Requests failed by the limiter itself (quota, queue full, blocked). */
  readonly rejected: number;
  /** Requests not sent because an identical one was in flight or a cached response served. */
  readonly saved: number;
}

/** The limit state of one credential at one provider, as `limiter.state$` emits it. */
export interface LimiterSnapshot {
  readonly provider: string;
  /** A hash of the key, never the key. */
  readonly key: string;
  readonly buckets: readonly BucketSnapshot[];
  readonly queued: number;
  readonly inFlight: number;
  /** Epoch ms until which nothing is sent after a 429, or `null`. */
  readonly pausedUntil: number | null;
  readonly pauseReason: RetrySource | 'manual' | null;
  /** Set while the provider has cut the credential off. */
  readonly blocked: { readonly status: number; readonly since: number; readonly until: number | null } | null;
  readonly totals: LimiterTotals;
  /** Epoch ms (limiter clock) of the change this snapshot reflects. */
  readonly updatedAt: number;
}

/** The state of a whole pool, as {@link LimiterPool.state$} emits it. Plain data. */
export interface LimiterPoolSnapshot {
  /** Limiters alive now. */
  readonly size: number;
  /** The `max` option (`null` without one). */
  readonly max: number | null;
  /**
   * Each live limiter's snapshot (its `key` is the credential's label, never the credential),
   * its instants (`pausedUntil`, `resetAt`, …) on the pool's clock ({@link LimiterPool.now}).
   */
  readonly limiters: readonly LimiterSnapshot[];
  /** Limiters made since the pool was created. */
  readonly created: number;
  /** Limiters evicted since the pool was created. */
  readonly evicted: number;
  /** Epoch ms (pool clock) of this snapshot. */
  readonly updatedAt: number;
}
