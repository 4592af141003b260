/**
 * Where a limiter keeps its buckets. The memory store (the default) keeps them in the limiter
 * itself and admits synchronously; a shared store (`rx-ratelimit/redis`) keeps them outside the
 * process so that every process using one credential admits against one budget.
 *
 * The limiter keeps its queue, priorities and single timer in every case. With a shared store,
 * its drain asks the store for a batch of admissions for the head request's set of buckets (at
 * most one such call in flight per limiter), admits what is granted, and otherwise sets its
 * timer for the wait the store reports. Responses, pauses and held buckets are written back.
 * All times exchanged with a shared store are durations (ms from now), so processes whose
 * clocks differ still agree: the store keeps absolute times on its own clock.
 */

/** A bucket as a shared store needs it: the provider's hints, used until a response tells. */
export interface StoreBucketSpec {
  readonly name: string;
  readonly limit: number | undefined;
  readonly windowMs: number | undefined;
  readonly quota: boolean;
  readonly pacing: 'burst' | 'smooth';
  /** A sliding window (TEOS): each request counts for `windowMs` after it was admitted. */
  readonly rolling?: boolean;
  /**
   * A leaky (token) bucket (Shopify): `limit` is its capacity, and this many units come back per
   * second (the provider's hint, until a response tells); there is no window.
   */
  readonly restorePerSecond?: number;
}

/** One bucket as the shared store sees it after a call (for `state$` and `resumeAt`). */
export interface StoreBucketState {
  readonly name: string;
  readonly limit: number | undefined;
  readonly remaining: number | undefined;
  /** Ms from the store's now to the bucket's reset. */
  readonly resetInMs: number | undefined;
  readonly windowMs: number | undefined;
  /** Admission index of the first request of this grant (for the response's age). */
  readonly admitted: number;
  /** A leaky bucket: the units that come back per second, as the store knows it. */
  readonly restorePerSecond?: number;
  /**
   * A leaky bucket: the units available (a fraction, below 0 when more was taken than there
   * was); absent while no capacity is known. `remaining` is its whole units, and `resetInMs`
   * when it is full again.
   */
  readonly level?: number;
  /**
   * Answers in flight (of any process) may give room back: `remaining` took requests off the
   * window's lowest figure that it may count already; or a rolling window's wait only bounds
   * when another client's calls leave (they may leave any time before). Until then, the bucket
   * is not known to be spent, whatever its wait: what waits on it is not failed for `maxWaitMs`.
   */
  readonly awaitsAnswers?: boolean;
}

/** The answer to {@link StoreSession.acquire}. */
export interface StoreGrant {
  /** Leases granted, one per admitted request, in order (may be fewer than asked, or none). */
  readonly leases: readonly string[];
  /**
   * When none could be granted: ms until one could (`number`), or `undefined` when only a
   * response (from any process) can tell: the store notifies `onChange` then.
   */
  readonly waitMs: number | undefined;
  /** The bucket that held the request back, if one did. */
  readonly blockedBy: string | undefined;
  /** A pause every process observes (after a 429): ms left, and why. */
  readonly pause: { readonly ms: number; readonly reason: string } | undefined;
  readonly buckets: readonly StoreBucketState[];
  /** The credential is blocked (another process met the provider's block): nothing was granted. */
  readonly blocked?: StoreBlock | undefined;
}

/** A block of the credential (Pipedrive's 403 page) as a shared store holds it. */
export interface StoreBlock {
  /** Ms left, or `null` until someone calls `unblock()`. */
  readonly ms: number | null;
  /** The HTTP status the provider blocked with. */
  readonly status: number;
}

/** One bucket's figures from a response, as durations. */
export interface StoreReading {
  readonly name: string;
  readonly limit: number | undefined;
  readonly remaining: number | undefined;
  readonly resetInMs: number | undefined;
  /** The reset as an instant on the server's clock, when the server told one (not a time left). */
  readonly resetServerAt?: number;
  /** That instant read through the least clock offset the `Date` headers allow, from now: the latest it may be. */
  readonly resetLatestInMs?: number;
  readonly windowMs: number | undefined;
  /** Admission index this request had on the bucket, if it counted against it. */
  readonly index: number | undefined;
  /** A leaky bucket's restore rate, units per second, when the response tells. */
  readonly restorePerSecond?: number;
  /**
   * What the request really cost of this bucket, when the response tells (Shopify GraphQL's
   * `actualQueryCost`) and it differs from what it was admitted with: a leaky bucket gives the
   * difference back, or takes it.
   */
  readonly cost?: number;
  /**
   * The answer, a success, described other buckets of the request and not this one (its
   * entry is here to end the request's lease): it says nothing of this bucket's limit, which
   * its own answers may still tell, so a cold start only widens (each such answer lets one
   * more be in flight, as in memory) rather than ending.
   */
  readonly silent?: boolean;
  /**
   * With `silent`: the answer described none of the server's limits (a gateway's error page).
   * It leaves a refilled window's probe unanswered; a success that described other buckets of
   * the request answers it (as `Bucket.confirm`'s `blind`).
   */
  readonly blind?: boolean;
  /**
   * The server counted the request (it was not refused): its figure counts it, and may prove
   * that the server's window slides (as `Bucket.apply`'s `counted`).
   */
  readonly counted?: boolean;
}

/** A limiter's connection to a shared store. All methods must not throw; failures are the store's to handle. */
export interface StoreSession {
  /**
   * Grants up to `count` admissions for a request that counts against every bucket of
   * `buckets`, taking `options.costs` units of each (1 when absent).
   */
  acquire(buckets: readonly StoreBucketSpec[], count: number, options: StoreAcquireOptions): Promise<StoreGrant>;
  /** Merges one response's readings (and ends its lease: it is no longer in flight). */
  observe(lease: string | undefined, readings: readonly StoreReading[], buckets: readonly StoreBucketSpec[]): void;
  /**
   * Merges one response's readings (and ends its lease: it is no longer in flight), and the
   * request learns its cost from the drop in `remaining` (costLearning.ts): `learnt` is called,
   * later, for each fixed window whose drop the store could attribute to this request alone,
   * over every process, with its cost there. It may then return a promise that settles once
   * every `learnt` call is made: until it does, a request of a route not learnt yet keeps its
   * buckets alone, so the next of the route takes what it taught.
   */
  observe(
    lease: string | undefined,
    readings: readonly StoreReading[],
    buckets: readonly StoreBucketSpec[],
    learnt: (bucket: string, cost: number) => void,
  ): void | Promise<void>;
  /** Ends a lease whose response was not observed (error, unsubscribe). */
  release(lease: string, buckets: readonly StoreBucketSpec[]): void;
  /** Pauses every process for `ms`. */
  pause(ms: number, reason: string): void;
  /**
   * Holds one bucket empty for `ms` on every process (a 429 that named it). `told`: the answer
   * said what the bucket has available (a leaky bucket keeps that figure instead of emptying).
   */
  exhaust(bucket: StoreBucketSpec, ms: number, options?: { readonly told?: boolean }): void;
  /** Calls `listener` when another process changed the shared state (a response, a pause). */
  onChange(listener: () => void): () => void;
  /** Blocks the credential on every process: for `ms`, or until {@link unblock} (`null`). */
  block?(ms: number | null, status: number): void;
  /** Lifts a block on every process. */
  unblock?(): void;
  /** Calls `listener` when a process blocks the credential (a {@link StoreBlock}) or lifts the block (`null`). */
  onBlock?(listener: (block: StoreBlock | null) => void): () => void;
  /**
   * Lifts the pause on every process (`limiter.pause(0)`); with `buckets`, also the block, and
   * every bucket forgets its reset (`limiter.resume()`). Other processes are told (`onResume`).
   */
  resume?(options: { readonly buckets: boolean }): void;
  /** Calls `listener` when another process called {@link resume} (with the same options). */
  onResume?(listener: (options: { readonly buckets: boolean }) => void): () => void;
  /** Closes connections the session opened (not the client the user passed). */
  close(): Promise<void>;
}

/** The limiter's options a store applies when it admits a request. */
export interface StoreAcquireOptions {
  /** The limiter's `coldStartConcurrency`. */
  readonly coldStartConcurrency: number;
  /** The limiter's `resetGuardMs`. */
  readonly resetGuardMs: number;
  /**
   * The units each request takes of each bucket, in the order of `buckets` (absent: 1 each):
   * a grant takes `count × cost` units of every bucket at once.
   */
  readonly costs?: readonly number[];
}

/** What a store learns about the limiter it serves. */
export interface StoreContext {
  /** The credential, to derive key names from (hashed; never stored). */
  readonly key: string;
  readonly provider: string;
  /** Emits a limiter event (store-unavailable, store-recovered). */
  readonly emit: (event: StoreEvent) => void;
}

/** Events a store reports through the limiter's `events$`. */
export type StoreEvent =
  | { readonly type: 'store-unavailable'; readonly store: string; readonly error: string }
  | { readonly type: 'store-recovered'; readonly store: string; readonly downMs: number };

/**
 * Where a limiter keeps its buckets: give one to `createLimiter({ store })`. `open` returns
 * `undefined` for the embedded memory store, a session for a shared one.
 */
export interface LimiterStore {
  /** `memory`, `redis`, …: shown in events. */
  readonly kind: string;
  /**
   * The store holds leaky (token) buckets (`BucketSpec.restorePerSecond`, Shopify): the Redis
   * store does. `createLimiter` refuses a provider that uses one with a shared store without it.
   * @default false
   */
  readonly leaky?: boolean;
  /**
   * How limiters admit through the sessions `open` returns: `sharedAdmission()` (from
   * `rx-ratelimit`). Required of a store that opens sessions; a limiter with the memory store
   * never loads that code, so a browser bundle does not carry it.
   */
  readonly admission?: StoreAdmission;
  /** Called once by each limiter that uses the store: its session, or `undefined` to keep buckets in the limiter. */
  open(context: StoreContext): StoreSession | undefined;
}

/**
 * Admission through a shared store's sessions, as a store's `admission`: made by
 * `sharedAdmission()`. Opaque: a store passes it along.
 */
export interface StoreAdmission {
  readonly kind: 'shared';
  /** @internal The limiter's admission over `session` (`host`: the limiter's engine). */
  readonly admit: (host: never, session: StoreSession) => unknown;
}

/**
 * The default store: buckets live in the limiter, admission is synchronous, nothing is shared
 * between processes.
 *
 * ```ts
 * import { createLimiter, memoryStore, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.procore(), key: 'token', store: memoryStore() });
 * ```
 */
export function memoryStore(): LimiterStore {
  return MEMORY_STORE;
}

/** The memory store is stateless: one object, so that every `memoryStore()` is the same store. */
const MEMORY_STORE: LimiterStore = Object.freeze({ kind: 'memory', open: () => undefined });
