/**
 * The buckets of one credential (shared by its limiters in a process: credential.ts): made
 * from the provider's specs on first use, discovered from
 * responses that name buckets the provider did not declare, and evicted once idle (per-endpoint
 * buckets are named by URLs, and a server may name any number).
 */
import { Bucket } from './bucket.js';
import type { CostLearner } from './costLearning.js';
import type { BucketKind, BucketReading, BucketSpec, Provider } from './provider.js';
import { costOf, type RequestInfo } from './request.js';
import type { BucketGroup } from './waiter.js';

/**
 * How long a bucket nothing uses is kept before it may be evicted (when it also holds no
 * window in force). An evicted bucket starts again cold, so a credential idle for less keeps
 * what it learned.
 */
const IDLE_MS = 600_000;
/**
 * Most buckets a server may name that the provider did not declare (IETF policy names, TEOS
 * periods). Each counts for every request; a reading naming one more is ignored until one of
 * them is evicted.
 */
const MAX_DISCOVERED = 32;

/**
 * The bucket for a spec: leaky when it has a restore rate, sliding when it says `rolling` and
 * has a window (each of the kind `provider.bucketKinds` brings), fixed otherwise. Throws a
 * `TypeError` naming the fix when the provider does not bring the kind.
 */
export function createBucket(spec: BucketSpec, provider?: Pick<Provider, 'name' | 'bucketKinds'>): Bucket {
  const leaky = spec.restorePerSecond !== undefined;
  if (!leaky && !(spec.rolling && spec.windowMs !== undefined)) return new Bucket(spec);
  const [want, field, name] = leaky
    ? ['leaky', 'restorePerSecond', 'leakyBuckets']
    : ['rolling', 'rolling', 'rollingWindows'];
  const kinds = provider?.bucketKinds;
  const kind = Array.isArray(kinds) ? kinds.find((k: BucketKind | undefined) => k?.name === want) : undefined;
  if (kind) return kind.make(spec) as Bucket;
  throw new TypeError(
    `provider "${provider?.name.slice(0, 80)}": bucket "${spec.name.slice(0, 80)}" has \`${field}\` but the provider's \`bucketKinds\` lacks ${name}; add \`bucketKinds: [${name}]\` (from rx-ratelimit)`,
  );
}

/** No bucket discovered (never written to: `discover` makes a registry its own list). */
const NONE_DISCOVERED: Bucket[] = [];

export class BucketRegistry {
  private readonly buckets = new Map<string, Bucket>();
  /**
   * Buckets a response revealed that the provider did not declare: they count for every
   * request. The shared empty array until the first (read at every request: no visit to a
   * list of this registry's own while there is none).
   */
  private discovered: Bucket[] = NONE_DISCOVERED;
  /**
   * Buckets that may have fallen idle, by when they did, oldest first: each is looked at once
   * `IDLE_MS` has passed, and evicted if nothing needs it (see `sweep`).
   */
  private readonly idle: Array<{ readonly bucket: Bucket; readonly since: number }> = [];
  /** Where `idle` starts (entries before it were looked at). */
  private idleHead = 0;
  /**
   * When the first entry of `idle` is due (Infinity: none). `sweep` runs at every request and
   * returns at once before it, reading this field only, not the queue and its first entry.
   */
  private dueAt = Infinity;
  /**
   * The group `groupFor` made last for a request of no cost of its own (nor from its
   * provider), while no bucket is discovered: the next request on the same buckets gets it
   * again, without a visit to the map of buckets (a table of this registry's own, out of the
   * CPU's caches at 10,000 tenants) nor a new group. Dropped when a bucket is evicted or
   * discovered.
   */
  private last: BucketGroup | undefined;
  /** Costs learnt from the drop in `remaining`, when the provider asks (`Provider.learnCost`). */
  learner: CostLearner | undefined;

  constructor(
    private readonly provider: Provider,
    private readonly now: () => number,
    private readonly resetGuardMs: number,
    /** A bucket was evicted (the snapshot changed). */
    private readonly evicted: (b: Bucket) => void,
  ) {}

  get(name: string): Bucket | undefined {
    return this.buckets.get(name);
  }

  all(): IterableIterator<Bucket> {
    return this.buckets.values();
  }

  /** The buckets `info` counts against: the discovered ones, then the provider's (made on first use). */
  bucketsFor(info: RequestInfo, provider: Provider = this.provider, specs?: Map<string, BucketSpec>): Bucket[] {
    return this.bucketsOf(provider, provider.buckets(info), specs);
  }

  /** The buckets of `list`, `provider`'s specs: the discovered ones, then those (made on first use). */
  private bucketsOf(provider: Provider, list: readonly BucketSpec[], specs?: Map<string, BucketSpec>): Bucket[] {
    const out: Bucket[] = this.discovered === NONE_DISCOVERED ? [] : [...this.discovered];
    for (const spec of list) {
      specs?.set(spec.name, spec);
      let b = this.buckets.get(spec.name);
      if (!b) {
        b = createBucket(spec, provider);
        this.buckets.set(spec.name, b);
        b.hint = spec;
        this.markIdle(b, this.now());
      }
      if (!out.includes(b)) out.push(b);
    }
    return out;
  }

  /**
   * The buckets of a request, as a group: the waiters queued with the same buckets share one
   * (one key string and one array for all of them); `queued` finds the group already waiting.
   */
  groupFor(
    info: RequestInfo,
    provider: Provider,
    queued: { group(key: string): { readonly meta: BucketGroup } | undefined },
  ): BucketGroup {
    const learner = provider.learnCost ? (this.learner ??= provider.learnCost()) : undefined;
    const costKey = learner?.keyOf(info);
    const specs =
      info.cost === undefined && provider.cost === undefined && costKey === undefined
        ? undefined
        : new Map<string, BucketSpec>();
    const list = provider.buckets(info);
    const last = this.last;
    if (!specs && last !== undefined && sameNames(list, last.buckets)) return queued.group(last.key)?.meta ?? last;
    const buckets = this.bucketsOf(provider, list, specs);
    // A cost learnt (or, for a key not learnt yet, guessed) where neither the request nor the
    // provider tells one.
    let learns: boolean[] | undefined;
    let probe = false;
    const learnt =
      learner && costKey !== undefined
        ? (b: Bucket, i: number): number | undefined => {
            if (!learner.learns(b)) return undefined;
            (learns ??= buckets.map(() => false))[i] = true;
            const known = learner.estimate(costKey, b.name);
            if (known === undefined) probe = true;
            // At most the bucket's limit: a cost learnt above it (the limit cut since) refused every
            // request unsent, and nothing sent, nothing was learnt again.
            const cost = known ?? learner.guess(b.name);
            return b.limit !== undefined && b.limit > 0 ? Math.min(cost, b.limit) : cost;
          }
        : undefined;
    const costs = specs && costsOf(info, provider, buckets, specs, learnt);
    // Requests of other costs are other groups: a group's waiters are admitted alike (a shared
    // store grants a batch for one shape), and each group's head is judged by its own cost.
    const names = buckets.length === 1 ? (buckets[0] as Bucket).name : buckets.map((b) => b.name).join('\n');
    const shape = costs ? `${names}\u0000${costs.join(',')}` : names;
    // Requests learning their cost: a group per key, whose answers teach that key.
    const learn = learns && costKey !== undefined ? { key: costKey, learns, probe } : undefined;
    const key = learn ? `${shape}\u0001${probe ? '?' : ''}${learn.key}` : shape;
    const group =
      queued.group(key)?.meta ??
      (learn
        ? { key, buckets, ...(costs ? { costs } : {}), learn }
        : costs
          ? { key, buckets, costs }
          : { key, buckets });
    if (!specs && this.discovered === NONE_DISCOVERED) this.last = group;
    return group;
  }

  /**
   * The bucket `name` when `provider` counts `info` against it now (made on first use), else
   * `undefined`. A response may teach the provider where a request belongs (a resource its
   * server named): that bucket is declared, not discovered for every request.
   */
  declaredFor(info: RequestInfo, name: string, provider: Provider = this.provider): Bucket | undefined {
    let specs: readonly BucketSpec[];
    try {
      specs = provider.buckets(info);
    } catch {
      return undefined;
    }
    if (!specs.some((s) => s.name === name)) return undefined;
    return this.bucketsFor(info, provider).find((b) => b.name === name);
  }

  /**
   * A bucket a response named that the provider did not declare; none past `MAX_DISCOVERED`.
   * A sliding window when the reading says so and `provider` brings the kind, fixed otherwise.
   */
  discover(
    name: string,
    now: number,
    told?: Pick<BucketReading, 'rolling' | 'windowMs'>,
    provider: Pick<Provider, 'name' | 'bucketKinds'> = this.provider,
  ): Bucket | undefined {
    if (this.discovered.length >= MAX_DISCOVERED) return undefined;
    const rolling =
      told?.rolling === true &&
      told.windowMs !== undefined &&
      provider.bucketKinds?.some((k) => k.name === 'rolling') === true;
    const b = createBucket(rolling ? { name, windowMs: told.windowMs, rolling } : { name }, provider);
    this.buckets.set(name, b);
    this.last = undefined;
    if (this.discovered === NONE_DISCOVERED) this.discovered = [];
    this.discovered.push(b);
    this.markIdle(b, now);
    return b;
  }

  /**
   * Counts groups of waiting requests on `buckets` (`delta` 1: a group opened; -1: closed), on
   * the buckets themselves (`Bucket.pins`): a map set and deleted at every request churns its
   * table, and at 10,000 tenants each churned table is garbage that outlives the young generation.
   */
  /** A group of waiting requests on `g.buckets` opened (the limiter's queue's hook). */
  opened(g: { readonly buckets: readonly Bucket[] }): void {
    this.pin(g.buckets, 1);
  }

  /** A group of waiting requests on `g.buckets` closed (the limiter's queue's hook). */
  closed(g: { readonly buckets: readonly Bucket[] }): void {
    this.pin(g.buckets, -1);
  }

  pin(buckets: readonly Bucket[], delta: 1 | -1): void {
    let now: number | undefined;
    for (const b of buckets) {
      b.pins = Math.max(0, b.pins + delta);
      if (b.pins === 0) this.markIdle(b, (now ??= this.now()));
    }
  }

  /** `b` may be unused from `now` on: it is looked at again `IDLE_MS` later. */
  markIdle(b: Bucket, now: number): void {
    if (b.inFlight > 0 || b.pins > 0) return;
    // One entry per bucket: a later use only moves its time (the sweep reads it), so the queue
    // holds at most one entry per bucket, whatever the request rate.
    const queued = !Number.isNaN(b.idleSince);
    b.idleSince = now;
    if (queued) return;
    this.idle.push({ bucket: b, since: now });
    if (this.idle.length - this.idleHead === 1) this.dueAt = now + IDLE_MS;
  }

  /**
   * Evicts the buckets idle for `IDLE_MS` that nothing needs: none in flight, no request waiting
   * on them, and no state in force (a window with a reset to come, a pacing slot, units spent).
   * One that still holds state is looked at again `IDLE_MS` later. A new request on an evicted
   * bucket starts it again from the provider's hints, with a cold start. Amortized O(1) per
   * bucket use.
   */
  sweep(now: number): void {
    if (now < this.dueAt) return;
    const guard = this.resetGuardMs;
    // A queue in an array, not a Map re-set on each use: a Map iterated from its start walks
    // every deleted entry before the first live one.
    const idle = this.idle;
    while (this.idleHead < idle.length) {
      const { bucket: b, since } = idle[this.idleHead] as (typeof idle)[number];
      if (since + IDLE_MS > now) break;
      this.idleHead++;
      const last = b.idleSince;
      if (Number.isNaN(last)) continue;
      if (last + IDLE_MS > now) {
        // Used again since: looked at again `IDLE_MS` after that use (maybe a little later).
        idle.push({ bucket: b, since: last });
        continue;
      }
      b.idleSince = Number.NaN;
      if (b.inFlight > 0 || b.pins > 0 || this.buckets.get(b.name) !== b) continue;
      b.refill(now, guard);
      if (b.resetAt !== undefined || b.availableAt(now, guard, Infinity) !== now) this.markIdle(b, now);
      else this.evict(b);
    }
    if (this.idleHead > 1024 && this.idleHead * 2 > idle.length) {
      idle.splice(0, this.idleHead);
      this.idleHead = 0;
    }
    const first = idle[this.idleHead];
    this.dueAt = first === undefined ? Infinity : first.since + IDLE_MS;
  }

  private evict(b: Bucket): void {
    this.last = undefined;
    this.buckets.delete(b.name);
    b.idleSince = Number.NaN;
    const i = this.discovered.indexOf(b);
    if (i >= 0) this.discovered.splice(i, 1);
    this.evicted(b);
  }
}

/** Does `list` name `buckets`, in their order? (A provider's specs, and the buckets of a group.) */
function sameNames(list: readonly BucketSpec[], buckets: readonly Bucket[]): boolean {
  if (list.length !== buckets.length) return false;
  for (let i = 0; i < list.length; i++) if ((list[i] as BucketSpec).name !== (buckets[i] as Bucket).name) return false;
  return true;
}

/**
 * The units `info` takes of each of `buckets` (its own `cost`, else the provider's), or
 * `undefined` when every one is 1. Throws a `TypeError` for a bad cost; a provider's hook that
 * throws says nothing.
 */
function costsOf(
  info: RequestInfo,
  provider: Provider,
  buckets: readonly Bucket[],
  specs: ReadonlyMap<string, BucketSpec>,
  learnt?: (b: Bucket, i: number) => number | undefined,
): number[] | undefined {
  let costs: number[] | undefined;
  buckets.forEach((b, i) => {
    const cost = costFor(info, provider, b.name, specs.get(b.name), learnt && (() => learnt(b, i)));
    if (cost !== 1) (costs ??= buckets.map(() => 1))[i] = cost;
  });
  return costs;
}

/**
 * The units `info` takes of bucket `name` (its own `cost`, else the provider's, else `learnt`'s,
 * else 1).
 */
export function costFor(
  info: RequestInfo,
  provider: Provider,
  name: string,
  spec: BucketSpec | undefined,
  learnt?: () => number | undefined,
): number {
  const told =
    provider.cost || learnt
      ? () => {
          let cost: number | undefined;
          try {
            cost = provider.cost?.(info, spec ?? { name });
          } catch {
            // A hook that throws says nothing.
          }
          return cost ?? learnt?.();
        }
      : undefined;
  return costOf(info, name, told);
}
