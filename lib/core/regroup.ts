/**
 * Requests moved to other buckets while they wait: a response can teach the provider the buckets
 * of a route (it named the route's resource), and the requests queued for that route then count
 * against those. The engine (engine.ts) runs this before the next admission.
 */
import type { Admission } from './admission.js';
import type { Bucket } from './bucket.js';
import type { BucketRegistry } from './buckets.js';
import { overLimit } from './localAdmission.js';
import type { Provider } from './provider.js';
import type { GroupedQueue } from './queue.js';
import type { BucketGroup, Waiter } from './waiter.js';

/** What moving the queued requests needs of the engine. */
export interface RegroupHost {
  readonly provider: Provider;
  readonly registry: BucketRegistry;
  readonly queue: GroupedQueue<Waiter, BucketGroup>;
  readonly admission: Admission;
  /** Fails `w` with `CostExceedsLimitError`: it costs more of `bucket` than its limit. */
  rejectCost(w: Waiter, bucket: Bucket, cost: number): void;
}

/**
 * Moves each queued request whose buckets the provider now chooses otherwise (a response
 * named the resource of its route) to the group of its new buckets, in queue order. Moved
 * requests join their new group behind those already in it: these were queued after the
 * response that taught the provider, so after them only in the same drain.
 */
export function moveRegrouped(host: RegroupHost): void {
  const waiting = host.queue.entries().sort((a, b) => a.value.id - b.value.id);
  for (const { value: w, entry } of waiting) {
    const from = w.group;
    if (!from || w.level === undefined) continue;
    let to: BucketGroup;
    try {
      to = host.registry.groupFor(w.info, host.provider, host.queue);
    } catch {
      // Its cost was checked when it was queued; a provider that throws now leaves it where it is.
      continue;
    }
    if (to.key === from.key || !host.queue.remove(entry)) continue;
    host.admission.left(w);
    w.group = to;
    const over = to.costs && overLimit(to.buckets, to.costs);
    if (over) {
      host.rejectCost(w, over.bucket, over.cost);
      continue;
    }
    host.admission.queued(to.key, !host.queue.has(to.key));
    host.queue.link(to.key, w, to);
  }
}
