import type { CostLearner } from './costLearning.js';
import type { ResponseLike } from './response.js';
import type { RequestInfo } from './request.js';
import type { ResetValue } from '../headers/reset.js';
import type { RetryAfter } from '../headers/retryAfter.js';

/**
 * One window a provider enforces, as documented. The numbers are hints used only until a
 * response's headers report the real ones.
 */
export interface BucketSpec {
  /** Stable name, unique within the limiter: `"default"`, `"daily"`, `"GET /projects:minute"`. */
  readonly name: string;
  /** Documented requests per window; omit when unknown (no limit until headers tell). */
  readonly limit?: number;
  /** Documented window length in ms. */
  readonly windowMs?: number;
  /**
   * `burst` sends as long as the bucket has room; `smooth` spreads the remaining budget evenly
   * over the time left in the window (TEOS asks for that). @default 'burst'
   */
  readonly pacing?: 'burst' | 'smooth';
  /**
   * A long budget (daily), checked before a request is queued: when it is empty, a request
   * waits for its next slot if that frees within `maxWaitMs`, and otherwise fails at once with
   * `QuotaExhaustedError` and `resumeAt`. @default false
   */
  readonly quota?: boolean;
  /**
   * A sliding window: each request counts for `windowMs` after it is sent (TEOS's rolling 24
   * hours), instead of a fixed window that resets all at once. Needs `windowMs`. @default false
   */
  readonly rolling?: boolean;
  /**
   * A leaky (token) bucket (Shopify): `limit` is its capacity, and this many units come back
   * per second, continuously; there is no window and no reset. A request waits exactly until
   * enough units have come back for its cost. Not with `rolling` or `windowMs`. The memory
   * store and the Redis store hold it; `createLimiter` refuses it with a shared store of your
   * own that does not say it does (`LimiterStore.leaky`).
   */
  readonly restorePerSecond?: number;
}

/**
 * A kind of bucket beyond the fixed window, which a provider whose specs use it lists in
 * {@link Provider.bucketKinds}: `rollingWindows` (specs with `rolling: true`) and `leakyBuckets`
 * (specs with `restorePerSecond`), from `rx-ratelimit`. Listed, not built in, so that an app
 * bundles only the kinds of the providers it uses.
 */
export interface BucketKind {
  /** Which specs it makes: `rolling` (a sliding window), `leaky` (a token bucket). */
  readonly name: 'rolling' | 'leaky';
  /** @internal Makes the bucket of `spec` (a `Bucket`; typed loosely, as this file is below bucket.ts). */
  readonly make: (spec: BucketSpec) => unknown;
}

/** What one response says about one bucket. Every number is optional. */
export interface BucketReading {
  readonly name: string;
  readonly limit?: number;
  readonly remaining?: number;
  /** When the window resets: absolute (server clock) or relative to the response. */
  readonly reset?: ResetValue;
  /** The window length, when the response reports it (Planning Center's period, TEOS's "1m"). */
  readonly windowMs?: number;
  /**
   * The window slides (each call counts for `windowMs` after the server logged it), as every
   * TEOS period does: a bucket the provider did not declare is then made a sliding window, when
   * its `bucketKinds` bring one and the reading has a `windowMs`.
   */
  readonly rolling?: boolean;
  /** A leaky bucket's restore rate, units per second, when the response tells (Shopify GraphQL's `restoreRate`). */
  readonly restorePerSecond?: number;
}

/** Where a retry time came from, in the order the limiter prefers them. */
export type RetrySource = 'retry-after' | 'reset' | 'body' | 'backoff';

/** A provider's reading of one response. */
export interface ResponseReading {
  /** `limited`: a 429 (or the provider's equivalent); `blocked`: the credential is cut off. */
  readonly outcome: 'ok' | 'limited' | 'blocked';
  readonly buckets: readonly BucketReading[];
  /** When the server says to try again (Retry-After, or a body field). */
  readonly retryAfter?: RetryAfter;
  readonly retrySource?: RetrySource;
  /**
   * The bucket the server says it throttled by, when it says (Fieldwire's `throttled_by`), or
   * several (the IETF problem type's `violated-policies`): only those are held. Names of
   * buckets the limiter does not have are ignored; with none left, the whole limiter pauses.
   */
  readonly limitedBy?: string | readonly string[];
  /**
   * What the request really cost, when the response tells (Shopify's `actualQueryCost`): the
   * units its permit holds become this (a number for each of its buckets, or per bucket name),
   * as `permit.reconcile` does. A value that is not a cost is ignored.
   */
  readonly cost?: number | Readonly<Record<string, number>>;
  /**
   * The server refused the request before acting on it, so sending it again cannot apply it
   * twice (Shopify runs a GraphQL query only once its requested cost fits the bucket): with a
   * `limited` outcome, the request is sent again even when its method is not idempotent, unless
   * it says `retry: false`. Leave it out when the API does not say so.
   */
  readonly notProcessed?: boolean;
  /**
   * With a `limited` outcome: what the request costs, per bucket name, as the server counted it
   * before refusing it (Shopify's `requestedQueryCost` in a throttled answer). Sent again, the
   * request takes this many units of those buckets instead of its estimate, so it waits until
   * they have come back rather than being refused again. Buckets not named keep their cost; a
   * value that is not a cost is ignored. Applied by `rateLimit` and the adapters (a composed
   * `throttleByHeaders` keeps the cost it was given).
   */
  readonly retryCost?: Readonly<Record<string, number>>;
}

/**
 * A provider profile: which buckets a request counts against, and how to read a response.
 * Pure: no I/O, no clock, no RxJS. Build one with `defineProvider()`.
 */
export interface Provider {
  /** Short name shown in state, events and errors, e.g. `"procore"`. */
  readonly name: string;
  /** The buckets `request` counts against; it is admitted only when all have room. */
  buckets(request: RequestInfo): readonly BucketSpec[];
  /**
   * What `response` (to `request`) says about limits. Must not throw. `now`: the calendar time
   * (epoch ms) as the limiter reads the response, from its scheduler (the wall clock, or virtual
   * time under a `TestScheduler`), for a reset the response does not place in time itself (a
   * daily budget that resets at midnight, read from an answer without a `Date`, which browsers
   * hide from cross-origin scripts): tell such a reset as a delay from `now` (`{ inMs }`), which
   * the limiter counts from this response. Absent when the caller has no limiter (a probe):
   * `Date.now()` then.
   */
  read(response: ResponseLike, request: RequestInfo, now?: number): ResponseReading;
  /**
   * How many units of `bucket` `request` takes, when the provider knows (GitHub's secondary
   * points: 1 for a read, 5 for a write); `undefined` for 1. The request's own `cost` wins.
   * A number that is not finite, above 0 and at most `MAX_COST` makes the request fail with a
   * `TypeError`; a hook that throws counts as `undefined`.
   */
  cost?(request: RequestInfo, bucket: BucketSpec): number | undefined;
  /**
   * Does `read` need the body of an answer with this status to `request`, beyond the 429s and
   * 403s whose bodies the adapters always read? Shopify's GraphQL tells its bucket, and a
   * throttled query, in the body of a 200. An adapter that must read a body itself
   * (`rateLimitedFetch`: a fetch `Response`'s body can be read once) reads a copy of it only
   * when this says so, capped as for a 429. Clients that parse bodies (axios, Angular, `ajax`)
   * pass them anyway. A hook that throws counts as `false`. @default false
   */
  readsBody?(status: number, request: RequestInfo): boolean;
  /**
   * The API charges each request an unknown number of units and tells only what is left: the
   * limiter learns each request's cost from the drop in `remaining` it can attribute to it
   * alone, per key (requests that cost alike), and admits later requests of the key at that
   * cost. Only fixed windows whose answers tell `remaining` and a reset; only with the memory
   * store. The request's own `cost`, and `cost` above, win. Made by `learnCosts()`: called once
   * per credential for the learner of its buckets. A profile whose answers state each request's
   * cost (Shopify's `requestedQueryCost`) gives a `ToldCostLearner` instead, on any bucket kind:
   * it learns from what the answers tell, and its `cost` reads the learner.
   */
  readonly learnCost?: () => CostLearner;
  /**
   * The bucket kinds its specs use beyond fixed windows: `[rollingWindows]` for specs with
   * `rolling: true`, `[leakyBuckets]` for specs with `restorePerSecond`. A spec of a kind not
   * listed makes `createLimiter` (or the request) throw a `TypeError` naming it. @default []
   */
  readonly bucketKinds?: readonly BucketKind[];
  /**
   * The most requests the API lets one credential have in flight at once (GitHub's secondary
   * limit: 100). The limiter's `maxConcurrent` when its options give none; an option given wins.
   * A whole number of at least 1; anything else makes `createLimiter` throw a `TypeError` naming
   * it. @default no limit
   */
  readonly maxConcurrent?: number;
}
