/**
 * Admission: which waiting request goes when. One interface, two implementations: the memory
 * store's (`localAdmission.ts`: the buckets are in the process, a request is admitted
 * synchronously) and a shared store's (`sharedAdmission.ts`: a store such as Redis admits
 * atomically for every process of the credential). The limiter and its parts talk to this
 * interface only; they never ask which store is in use.
 */
import type { Bucket } from './bucket.js';
import type { Learning } from './costLearning.js';
import type { PolicyShare } from './pauses.js';
import type { StoreReading } from './store.js';
import type { Waiter } from './waiter.js';

/** A shared store's hold on an admitted request: its lease, and its admission index per bucket. */
export interface Lease {
  readonly lease: string;
  readonly index: ReadonlyMap<string, number>;
}

export interface Admission extends PolicyShare {
  /**
   * Refuse a request at once when the queue is at `maxQueue`: where admission is
   * asynchronous, asking for it would spend a unit for a request about to be refused.
   */
  readonly refusesAtCap: boolean;
  /**
   * `false`: `observed` does not read the figures of a response now (the memory store, with no
   * other limiter of the credential to tell), so they are not made (an array and an object per
   * response) and `observed` is given `undefined` for them; absent or `true`: they are.
   */
  readonly readsFigures?: boolean;
  /** A request was queued in `group`; `opened`: the group had no waiting request before. */
  queued(group: string, opened: boolean): void;
  /** Admits what can go now (the queue is not empty, nothing pauses or blocks it). */
  drain(now: number): void;
  /**
   * Admits `w` now if it can go, as `drain` would admit it alone in the queue (nothing else
   * waits, nothing pauses or blocks it), without queueing it first; false (and nothing done)
   * when it must wait, or when admission is never immediate (a shared store).
   */
  admitAlone(w: Waiter, now: number): boolean;
  /** `b` changed (a response, a release, a 429 that named it): requests waiting on it may go. */
  recheck(b: Bucket, now: number): void;
  /**
   * A response was read: `readings` are its figures (durations from now); `lease`, the
   * request's if it was admitted here, and `buckets`, the ones it counted against; `costs`,
   * what it really cost of each of them, when the answer told (a shared store keeps what it
   * admitted, and gives a leaky bucket the difference back); `learn`, a request learning its
   * cost (costLearning.ts): a shared store attributes the drop, over every process.
   */
  observed(
    lease: Lease | undefined,
    readings: readonly StoreReading[],
    buckets: readonly Bucket[],
    costs?: readonly number[],
    learn?: Learning,
    /**
     * A success that described some of the request's buckets: those it did not describe stay
     * in their cold start, which it only widens (`Bucket.confirm`'s `silent`).
     */
    silentOthers?: boolean,
  ): void;
  /** A permit came back (`observed`: its response was read). */
  released(lease: Lease | undefined, observed: boolean, buckets: readonly Bucket[]): void;
  /** `w` left the queue without being admitted here (cancelled, failed). */
  left(w: Waiter): void;
  /**
   * Closes what the admission opened. `refuse` (the user's `limiter.close()`): an admission
   * that held a connection takes no more requests, and those waiting fail now; without it (a
   * pool's eviction), it goes on answering any request still made through the limiter. The
   * memory store's goes on answering either way: it holds nothing to close.
   */
  close(refuse?: boolean): Promise<void>;
  /** Fails `w` (`LimiterClosedError`) and returns true if the admission takes no more requests. */
  refused?(w: Waiter): boolean;
}
