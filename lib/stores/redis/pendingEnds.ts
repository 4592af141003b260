/**
 * Leases whose end could not be written (their response came while Redis was unavailable, the
 * write timed out, or they come from an acquire that timed out and may still have run), and
 * when: ended once Redis answers again, so that they do not count as in flight, and shrink every
 * refill, until `leaseMs` lapses.
 */
import type { StoreBucketSpec } from '../../core/store.js';

/**
 * Most lease ends kept to write once Redis answers again (leases granted by Redis whose end
 * could not be written, and those of calls that timed out and may still have run). Past it the
 * oldest are dropped: each then counts as in flight in Redis until its `leaseMs` lapses, no
 * longer. Without a bound, an outage of hours kept one entry per retry and replayed them all.
 */
const MAX_PENDING_ENDS = 1024;
/** Leases ended by one RELEASE call when the pending ends are written. */
const RELEASE_BATCH = 256;

/** Leases to end in one RELEASE call, all on the same buckets. */
export interface ReleaseBatch {
  readonly buckets: readonly StoreBucketSpec[];
  readonly leases: string[];
}

/** Oldest first; at most {@link MAX_PENDING_ENDS}. */
export class PendingEnds {
  private readonly ends = new Map<string, { readonly buckets: readonly StoreBucketSpec[]; readonly at: number }>();

  /** Keeps a lease to end once Redis answers: the newest {@link MAX_PENDING_ENDS}, oldest dropped first. */
  add(lease: string, buckets: readonly StoreBucketSpec[], now: number): void {
    this.ends.delete(lease);
    this.ends.set(lease, { buckets, at: now });
    for (const oldest of this.ends.keys()) {
      if (this.ends.size <= MAX_PENDING_ENDS) break;
      this.ends.delete(oldest);
    }
  }

  /**
   * Takes every pending end, Redis having answered: those older than `leaseMs` are dropped
   * (Redis has let them lapse), the others come in one batch per set of buckets and
   * {@link RELEASE_BATCH} leases.
   */
  take(now: number, leaseMs: number): ReleaseBatch[] {
    if (this.ends.size === 0) return [];
    const groups = new Map<string, { buckets: readonly StoreBucketSpec[]; leases: string[] }>();
    for (const [lease, p] of this.ends) {
      if (now - p.at > leaseMs) continue;
      const key = p.buckets.map((b) => b.name).join('\n');
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { buckets: p.buckets, leases: [] }));
      g.leases.push(lease);
    }
    this.ends.clear();
    const batches: ReleaseBatch[] = [];
    for (const g of groups.values())
      for (let i = 0; i < g.leases.length; i += RELEASE_BATCH)
        batches.push({ buckets: g.buckets, leases: g.leases.slice(i, i + RELEASE_BATCH) });
    return batches;
  }
}
