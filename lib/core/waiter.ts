/**
 * A request waiting for a permit, and the permit it gets: the objects the limiter's parts pass
 * between them (the queue holds waiters, admission turns them into permits).
 */
import { config } from 'rxjs';
import type { Learning } from './costLearning.js';
import type { ResponseReading } from './provider.js';
import type { Bucket } from './bucket.js';
import type { RateLimitError } from './errors.js';
import type { RequestSummary } from './events.js';
import type { Level, QueueNode } from './priorityQueue.js';
import type { RequestInfo } from './request.js';
import type { ResponseLike } from './response.js';

/** Permission to send one request, returned to the limiter when the request settles. */
export interface Permit {
  readonly request: RequestSummary;
  /**
   * Reads the response to this request (once; later calls are ignored) and returns what the
   * provider made of it.
   */
  observe(response: ResponseLike, raw?: unknown): ResponseReading;
  /**
   * The request really cost `actual` units (a number for each of its buckets, or per bucket
   * name), not what it was admitted with: the difference is taken from (or given back to) its
   * buckets at once, and what it holds until `release()` becomes `actual`. For a cost estimated
   * before and told after (Shopify's `requestedQueryCost`, then `actualQueryCost`); a later
   * response's `remaining` corrects the buckets anyway. With a shared store the cost goes to
   * the store with the response (`observe`), before its figures are read; a permit released
   * unanswered keeps what it was admitted with. Ignored after `release()`; a value that is not a
   * cost throws a `TypeError`.
   */
  reconcile(actual: number | Readonly<Record<string, number>>): void;
  /** Returns the permit: the request is over (response read, failed, or unsubscribed). */
  release(): void;
}

/** Callbacks of {@link Limiter.acquire}. Exactly one of them is called, at most once. */
export interface AcquireHandlers {
  /** The request may go: send it, then `permit.observe(response)` and `permit.release()`. */
  granted(permit: Permit): void;
  /** The request will not go (quota, full queue, block): fail it with `error`. */
  rejected(error: RateLimitError): void;
}

/** The handle of a waiting request; `cancel()` removes it from the queue. */
export interface Ticket {
  /** Removes the request from the queue (no handler is called); does nothing once it was granted or rejected. */
  cancel(): void;
}

/** The buckets a request counts against, and their key: one per set of buckets, shared by its waiters. */
export interface BucketGroup {
  readonly key: string;
  readonly buckets: readonly Bucket[];
  /** Units taken of each bucket, in the order of `buckets`; absent when every one is 1. */
  readonly costs?: readonly number[];
  /** The cost is learnt from the drop in `remaining` (`Provider.learnCost`). */
  readonly learn?: Learning;
}

/**
 * A request waiting for a permit (internal to the library: the operators' subscribers and
 * {@link Limiter.acquire}'s handlers are waiters). One object per waiting request: it is its own
 * queue node and its own {@link Ticket}, and it receives the outcome (`granted` or
 * `rejected`, exactly one, at most once per {@link Limiter.enqueue}). The request summary is
 * made only when something reads it (an observed event, a permit). An operator's subscriber
 * can be its waiter, and enqueue itself again for a retry.
 */
export abstract class Waiter implements QueueNode<Waiter>, Ticket {
  /** @internal */ prev: QueueNode<Waiter> | undefined = undefined;
  /** @internal */ next: QueueNode<Waiter> | undefined = undefined;
  /** @internal */ level: Level<Waiter> | undefined = undefined;
  /** Its priority (from the request). */ priority = 0;
  /** @internal Sequence number (the summary's `id`). */ id = 0;
  /**
   * @internal When it was queued, in ms after the limiter's `epoch`: a small integer, which V8
   * keeps in the object (an epoch time would be a boxed double, 16 bytes more per waiter).
   */
  queuedAt = 0;
  /** @internal */ group: BucketGroup | undefined = undefined;
  /** @internal */ summary: RequestSummary | undefined = undefined;

  /** This node's value (the queue's view of it). */
  get value(): Waiter {
    return this;
  }

  /** @internal The buckets it counts against. */
  get buckets(): readonly Bucket[] {
    return this.group?.buckets ?? NO_BUCKETS;
  }

  /** @internal The units it takes of its `i`th bucket. */
  costAt(i: number): number {
    return this.group?.costs?.[i] ?? 1;
  }

  /** The request. */
  abstract readonly info: RequestInfo;
  /** Admitted: send the request now, and release the permit when it settles. */
  abstract granted(permit: Permit): void;
  /** It will never be admitted in time (blocked, queue full, wait too long, …). */
  abstract rejected(error: RateLimitError): void;
  /** Removes it from the queue, if it is still there. */
  abstract cancel(): void;
}

const NO_BUCKETS: readonly Bucket[] = [];

/** The waiter of {@link Limiter.acquire}: calls the handlers it was given. */
export class HandlerWaiter extends Waiter {
  constructor(
    private readonly engine: { cancel(w: Waiter): void },
    readonly info: RequestInfo,
    private readonly handlers: AcquireHandlers,
  ) {
    super();
  }

  granted(permit: Permit): void {
    this.handlers.granted(permit);
  }

  rejected(error: RateLimitError): void {
    this.handlers.rejected(error);
  }

  cancel(): void {
    this.engine.cancel(this);
  }
}

/**
 * Reports an error no caller can receive (a handler threw) as RxJS does: to
 * `config.onUnhandledError` when set, else thrown on a later task, where the host's
 * uncaught-exception handling sees it.
 */
export function reportUnhandledError(error: unknown): void {
  // A real timer, not the limiter's scheduler: a throw inside a scheduled action would cancel
  // the other actions of its flush.
  setTimeout(() => {
    const report = config.onUnhandledError;
    if (report) report(error);
    else throw error;
  });
}
