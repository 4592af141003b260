/**
 * Costs learnt from the drop in `remaining`: for an API that charges each request an unknown
 * number of units and tells only what is left (`Provider.learnCost`). The drop between two
 * readings of one window is a request's cost only when that request is the only one of ours the
 * server can have counted between them; anything else (requests in flight beside it, answers
 * out of order, a request ended without a figure, another window) is not attributed, and what
 * other clients spend in between counts against the request (an estimate on the high side).
 */
import { isCost, type RequestInfo } from './request.js';
import { resetTolerance } from './window.js';

/**
 * What the learner reads of a bucket (a `Bucket`; structural, so that the provider contract,
 * which names this class, does not depend on the bucket's file).
 */
export interface LearningBucket {
  readonly name: string;
  readonly rolling: boolean;
  readonly leaky: boolean;
  readonly windowMs: number | undefined;
  /** Its limit, when known. */
  readonly limit: number | undefined;
  /** Admissions so far. */
  readonly admitted: number;
  /** Units in flight. */
  readonly inFlight: number;
}

/** What the learner reads of an answer's figures for a bucket. */
interface Figures {
  readonly limit?: number | undefined;
  readonly remaining?: number | undefined;
}

/** Drops remembered per key and bucket: the estimate is the largest of them. */
const SAMPLES = 4;
/** Longest key kept (a longer one is cut): keys are caller input. */
const MAX_KEY_LENGTH = 256;
/**
 * Most bucket names remembered per key and for the dearest cost: a server may name buckets
 * (IETF policies, TEOS periods) that come and go, each a new name. Past it the least recently
 * learnt name is forgotten; a name in use is learnt again at every answer and stays.
 */
const MAX_NAMES = 128;

/** A bucket's lowest reading of its current window, and the admissions made when it was read. */
export interface LearnStart {
  remaining: number;
  resetAt: number;
  limit: number | undefined;
  /** `Bucket.admitted` when the reading came with nothing else of ours in flight (else NaN). */
  admitted: number;
}

/** What a request learning its cost holds: its key, and per bucket the reading it started from. */
export interface Learning {
  readonly key: string;
  /** Per bucket of the request: learnt here (true), or its cost is known otherwise. */
  readonly learns: readonly boolean[];
  /** No cost known for the key yet: it goes alone on the buckets it learns (see `probing`). */
  readonly probe: boolean;
}

/**
 * Costs learnt per key, for one credential's buckets: made by `learnCosts()` (a profile's
 * `learnCost`), one per credential.
 */
export class CostLearner {
  /** Key → bucket name → the last drops attributed; a Map's order is the LRU order. */
  private readonly costs = new Map<string, Map<string, number[]>>();
  /** Per bucket, the largest cost learnt of any key: what a request of a key not learnt yet takes. */
  private readonly dearest = new Map<string, number>();
  private readonly bases = new WeakMap<LearningBucket, LearnStart>();
  /** Requests of keys not learnt yet in flight, per bucket: nothing else goes beside them. */
  private readonly probes = new WeakMap<LearningBucket, number>();

  constructor(
    /** Which requests cost alike (`RequestInfo.costKey` wins); `undefined`: not learnt. */
    private readonly key: (request: RequestInfo) => string | undefined,
    /** Most keys remembered; the least recently used is forgotten past it. */
    private readonly maxKeys: number,
  ) {}

  /** The key `request` learns under, or `undefined`. @internal */
  keyOf(request: RequestInfo): string | undefined {
    let key: unknown = request.costKey;
    if (key === undefined) {
      try {
        key = this.key(request);
      } catch {
        return undefined;
      }
    }
    return typeof key === 'string' && key !== '' ? key.slice(0, MAX_KEY_LENGTH) : undefined;
  }

  /** Does this bucket's kind allow learning? A fixed window: its units come back only at a reset. @internal */
  learns(b: LearningBucket): boolean {
    return !b.rolling && !b.leaky;
  }

  /** The cost learnt for `key` on bucket `name`, or `undefined` (not learnt yet). @internal */
  estimate(key: string, name: string): number | undefined {
    const entry = this.costs.get(key);
    if (!entry) return undefined;
    // Used: most recent in the LRU order.
    this.costs.delete(key);
    this.costs.set(key, entry);
    const drops = entry.get(name);
    if (drops) setRecent(entry, name, drops);
    return drops ? Math.max(...drops) : undefined;
  }

  /** What a request of a key not learnt yet takes of bucket `name`: the dearest learnt, else 1. @internal */
  guess(name: string): number {
    const dearest = this.dearest.get(name);
    // Asked for: in use, kept among the names remembered.
    if (dearest !== undefined) setRecent(this.dearest, name, dearest);
    return dearest ?? 1;
  }

  /** A request of a key not learnt yet in flight on `b` holds it alone; a request waits beside one. @internal */
  probing(b: LearningBucket): boolean {
    return (this.probes.get(b) ?? 0) > 0;
  }

  /**
   * A request learning its cost is admitted on `buckets` (before their `take`): the readings
   * its drops count from, per bucket; a probe holds its buckets alone until `ended`.
   * @internal
   */
  admit(learn: Learning, buckets: readonly LearningBucket[]): Array<LearnStart | undefined> {
    return buckets.map((b, i) => {
      if (!learn.learns[i]) return undefined;
      if (learn.probe) this.probes.set(b, (this.probes.get(b) ?? 0) + 1);
      return this.starting(b);
    });
  }

  /** That request ended (answered or not): a probe's buckets are free again. @internal */
  ended(learn: Learning, buckets: readonly LearningBucket[]): void {
    if (!learn.probe) return;
    buckets.forEach((b, i) => {
      if (!learn.learns[i]) return;
      const n = (this.probes.get(b) ?? 0) - 1;
      if (n > 0) this.probes.set(b, n);
      else this.probes.delete(b);
    });
  }

  /**
   * Admission `index` on `b`, holding `units`, was answered with figures `r` (and the told reset
   * `resetAt`): the reading is kept, and when the request learns its cost (`learning`: its key
   * and start here; not for a refused answer or one that told its cost) and its drop can be
   * attributed, it is learnt (`changed` is called when the key's estimate moved) and returned:
   * what the permit holds from now on.
   * @internal
   */
  answered(
    b: LearningBucket,
    index: number,
    units: number,
    learning: { readonly key: string; readonly start: LearnStart | undefined } | undefined,
    r: Figures,
    resetAt: number | undefined,
    changed: () => void,
  ): number | undefined {
    if (!this.learns(b)) return undefined;
    const cost = learning && this.attribute(b, index, learning.start, r, resetAt);
    if (learning && cost !== undefined && this.learn(learning.key, b.name, cost)) changed();
    this.read(b, index, units, r, resetAt);
    return cost;
  }

  /**
   * Called before `b.take` for a request learning its cost: the reading it starts from, when
   * the drop to its own will be its alone (nothing of ours in flight, nothing admitted since a
   * reading that counted every request before it).
   * @internal
   */
  starting(b: LearningBucket): Readonly<LearnStart> | undefined {
    const base = this.bases.get(b);
    return base && b.inFlight === 0 && base.admitted === b.admitted ? { ...base } : undefined;
  }

  /**
   * The cost of admission `index` on `b`, from its answer's reading `r` and
   * the told reset `resetAt`, when it can be attributed: it started from `start`, nothing was
   * admitted on `b` after it, and the reading is of the same window and limit. `undefined`
   * otherwise.
   * @internal
   */
  attribute(
    b: LearningBucket,
    index: number,
    start: Readonly<LearnStart> | undefined,
    r: Figures,
    resetAt: number | undefined,
  ): number | undefined {
    if (!start || r.remaining === undefined || resetAt === undefined || b.admitted !== index + 1) return undefined;
    if (Math.abs(resetAt - start.resetAt) > resetTolerance(b.windowMs)) return undefined;
    if (r.limit !== undefined && start.limit !== undefined && r.limit !== start.limit) return undefined;
    // 0 left is a floor, not a count: an API that charges after running a request and never
    // reports below 0 answers 0 however much more than was left the request cost.
    if (!(r.remaining > 0)) return undefined;
    const drop = start.remaining - r.remaining;
    // No request costs more than the whole bucket (the server would have refused it): a larger
    // drop is figures that do not agree (a `remaining` above the limit told after), not a cost.
    const limit = r.limit ?? start.limit ?? b.limit;
    if (limit !== undefined && drop > limit) return undefined;
    return isCost(drop) ? drop : undefined;
  }

  /**
   * A reading of `b` came, for admission `index` holding `units`: the window's lowest figure
   * is kept, and when nothing else of ours is in flight it counted every request admitted.
   * @internal
   */
  read(b: LearningBucket, index: number | undefined, units: number, r: Figures, resetAt: number | undefined): void {
    if (index === undefined || r.remaining === undefined || resetAt === undefined) return;
    const base = this.bases.get(b);
    const same =
      base !== undefined &&
      Math.abs(resetAt - base.resetAt) <= resetTolerance(b.windowMs) &&
      (r.limit === undefined || base.limit === undefined || r.limit === base.limit);
    const remaining = same ? Math.min(base.remaining, r.remaining) : r.remaining;
    const alone = b.inFlight - units <= 0;
    this.bases.set(b, {
      remaining,
      resetAt: same ? base.resetAt : resetAt,
      limit: r.limit ?? (same ? base.limit : undefined),
      admitted: alone ? b.admitted : Number.NaN,
    });
  }

  /** Learns that a request of `key` cost `cost` of bucket `name`; true when the estimate changed. @internal */
  learn(key: string, name: string, cost: number): boolean {
    const before = this.estimate(key, name);
    let entry = this.costs.get(key);
    if (!entry) {
      entry = new Map();
      this.costs.set(key, entry);
      for (const oldest of this.costs.keys()) {
        if (this.costs.size <= this.maxKeys) break;
        this.costs.delete(oldest);
      }
    }
    const drops = entry.get(name) ?? [];
    drops.push(cost);
    if (drops.length > SAMPLES) drops.shift();
    setRecent(entry, name, drops);
    setRecent(this.dearest, name, Math.max(this.dearest.get(name) ?? 1, cost));
    return Math.max(...drops) !== before;
  }
}

/** Sets `name` as the most recent of `map`, forgetting the least recent past {@link MAX_NAMES}. */
function setRecent<T>(map: Map<string, T>, name: string, value: T): void {
  map.delete(name);
  map.set(name, value);
  if (map.size > MAX_NAMES) map.delete(map.keys().next().value as string);
}

/**
 * Costs an API tells in its answers (Shopify's `requestedQueryCost`), learnt per key from what
 * the profile reads, not from drops: on any kind of bucket (a leaky one too), for the buckets
 * named only: a request of a key takes the largest of the last costs told for it (read by the
 * limiter, or by the profile's own `cost`, which Shopify's does to keep `queryCost` a floor); one
 * of a key not told yet takes `first` and, read by the limiter, goes alone, as with drops. Made
 * by the profile, which tells it each answer (`told`); one for all the credentials of the
 * profile (a query costs what it costs on any store), bounded as {@link CostLearner}. When a
 * key's cost moves, the waiting requests are regrouped at their next answer.
 */
export class ToldCostLearner extends CostLearner {
  /** Moves each time a key's estimate changes: each bucket's waiting requests are regrouped once. */
  private version = 0;
  private readonly seen = new WeakMap<LearningBucket, number>();

  constructor(
    key: (request: RequestInfo) => string | undefined,
    maxKeys: number,
    /** The buckets whose costs the answers tell. */
    private readonly names: ReadonlySet<string>,
    /** What a request of a key not told yet takes. */
    private readonly first: number,
  ) {
    super(key, maxKeys);
  }

  /** Only the buckets whose costs are told, whatever their kind. @internal */
  override learns(b: LearningBucket): boolean {
    return this.names.has(b.name);
  }

  /** A key not told yet takes the profile's estimate. @internal */
  override guess(_name: string): number {
    return this.first;
  }

  /** The answer to `request` told what it costs of bucket `name` (not a cost: ignored). @internal */
  told(request: RequestInfo, name: string, cost: number): void {
    const key = this.keyOf(request);
    if (key === undefined || !this.names.has(name) || !isCost(cost)) return;
    if (this.learn(key, name, cost)) this.version++;
  }

  /**
   * An answer was read on `b` (after the profile's `read`, which told its cost): nothing is
   * learnt from the drop; when a key's estimate moved since `b` last looked, `changed` has the
   * waiting requests take it.
   * @internal
   */
  override answered(
    b: LearningBucket,
    _index: number,
    _units: number,
    _learning: { readonly key: string; readonly start: LearnStart | undefined } | undefined,
    _r: Figures,
    _resetAt: number | undefined,
    changed: () => void,
  ): number | undefined {
    if (this.learns(b) && (this.seen.get(b) ?? 0) !== this.version) {
      this.seen.set(b, this.version);
      changed();
    }
    return undefined;
  }
}
