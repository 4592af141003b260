/**
 * The requests a process sent on its local share while Redis was away, whose answers are still
 * out. Redis does not hold them in flight, so once it answers again it would take a response's
 * figure (which they may not have reached yet) for what is left and let every process spend the
 * units these requests are about to take. The next call to Redis for the same buckets carries
 * them: Redis holds each as an in-flight lease of this process (`<call>:c<k>`), and the
 * request's answer or release ends that lease like any other.
 */
import type { StoreBucketSpec } from '../../core/store.js';

/**
 * Most local leases kept (a process spends at most its share per window while Redis is away;
 * past the bound the oldest are forgotten, as their answers are long overdue).
 */
const MAX_LOCAL_LEASES = 4096;
/** Most carried by one call (the rest go with the next). */
export const MAX_CARRY = 256;

interface LocalLease {
  /** The request's buckets, by name ('\n'-joined): carried only by a call on the same ones. */
  readonly shape: string;
  /** Units it holds of each bucket, in the order of its buckets. */
  readonly costs: readonly number[];
  /** When it was granted (the store's monotonic ms). */
  readonly at: number;
  /** Its lease in Redis and its index there per bucket, once a call carried it. */
  carried?: { readonly lease: string; readonly index: ReadonlyMap<string, number> };
}

/** The carried name of a local lease and its index per bucket. */
export interface Carried {
  readonly lease: string;
  readonly index: ReadonlyMap<string, number>;
}

const shapeOf = (buckets: readonly StoreBucketSpec[]): string => buckets.map((b) => b.name).join('\n');

export class LocalLeases {
  private readonly out = new Map<string, LocalLease>();

  constructor(private readonly leaseMs: number) {}

  /** Leases granted on the local share, each holding `costs` (per bucket) until answered. */
  add(leases: readonly string[], buckets: readonly StoreBucketSpec[], costs: readonly number[], now: number): void {
    const shape = shapeOf(buckets);
    for (const lease of leases) this.out.set(lease, { shape, costs, at: now });
    for (const oldest of this.out.keys()) {
      if (this.out.size <= MAX_LOCAL_LEASES) break;
      this.out.delete(oldest);
    }
  }

  /**
   * Local leases on exactly these buckets that no call has carried yet, oldest first (at most
   * {@link MAX_CARRY}), and their costs per bucket. Those older than `leaseMs` are forgotten:
   * a lease carried now would outlive its request by then.
   */
  uncarried(buckets: readonly StoreBucketSpec[], now: number): { leases: string[]; costs: number[][] } {
    const shape = shapeOf(buckets);
    const leases: string[] = [];
    const costs: number[][] = buckets.map(() => []);
    for (const [lease, l] of this.out) {
      if (now - l.at > this.leaseMs) {
        this.out.delete(lease);
        continue;
      }
      if (l.carried || l.shape !== shape) continue;
      leases.push(lease);
      l.costs.forEach((c, i) => costs[i]?.push(c));
      if (leases.length >= MAX_CARRY) break;
    }
    return { leases, costs };
  }

  /**
   * Redis holds `leases` as `<prefix>:c<k>` (k from 1), their indices counting from `first` per
   * bucket. Returns each carried name with when its request was sent, and the names of those
   * answered while the call was out (to end at once: no answer will end them).
   */
  carry(
    leases: readonly string[],
    prefix: string,
    first: ReadonlyMap<string, number>,
  ): { carried: Array<{ readonly lease: string; readonly at: number }>; answered: string[] } {
    const carried: Array<{ lease: string; at: number }> = [];
    const answered: string[] = [];
    leases.forEach((lease, k) => {
      const name = `${prefix}:c${k + 1}`;
      const l = this.out.get(lease);
      if (!l) {
        answered.push(name);
        return;
      }
      const index = new Map<string, number>();
      for (const [bucket, i] of first) index.set(bucket, i + k);
      l.carried = { lease: name, index };
      carried.push({ lease: name, at: l.at });
    });
    return { carried, answered };
  }

  /** The request of a local lease was answered or released: forgets it; its carried name if any. */
  end(lease: string): Carried | undefined {
    const l = this.out.get(lease);
    this.out.delete(lease);
    return l?.carried;
  }
}
