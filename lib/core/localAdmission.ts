/**
 * Admission with the memory store: the buckets are in the process, and a request is admitted
 * synchronously when every bucket it counts against has room. Ready groups are looked at in
 * global order; a group whose head must wait is parked on the bucket that holds it (its lot),
 * and looked at again only when that bucket may have room (its time came, or a response or
 * release changed it) or its head's wait with no known end runs out. Each admission costs
 * O(log groups).
 */
import type { Admission } from './admission.js';
import type { Bucket } from './bucket.js';
import type { BucketRegistry } from './buckets.js';
import type { CredentialMember, CredentialState } from './credential.js';
import type { PausePolicy } from './pauses.js';
import { LimiterClosedError, type ErrorContext, type RateLimitError } from './errors.js';
import type { RetrySource } from './provider.js';
import type { Publisher } from './publisher.js';
import type { Permits } from './permits.js';
import type { StoreBlock, StoreReading } from './store.js';
import type { GroupedQueue, Lot } from './queue.js';
import type { DrainTimer } from './timer.js';
import type { BucketGroup, Permit, Waiter } from './waiter.js';

/** What admission needs of its limiter. */
export interface AdmissionHost {
  now(): number;
  readonly epoch: number;
  readonly maxWaitMs: number;
  readonly maxConcurrent: number;
  readonly resetGuardMs: number;
  /** `resetGuardMs` left to its default with the memory store (`Bucket.refill`). */
  readonly tightGuard: boolean;
  readonly coldStartConcurrency: number;
  readonly queue: GroupedQueue<Waiter, BucketGroup>;
  readonly timer: DrainTimer;
  readonly out: Publisher;
  readonly permits: Permits;
  /** Requests admitted and not given back. */
  readonly inFlight: number;
  /** Fails `w` with `QuotaExhaustedError`: it would wait past `maxWaitMs` (or for ever). */
  rejectQuota(w: Waiter, bucket: string, resumeAt: number, now: number): void;
  /** When `w`'s wait ends at the latest: `maxWaitMs` after it was queued. */
  readonly deadlineOf: (w: Waiter) => number;
  /**
   * `rejectQuota` of each of `expired` (out of the queue; `bucket` undefined: each one's first),
   * which is emptied first: their handlers may queue more.
   */
  rejectExpired(expired: Waiter[], bucket: string | undefined, resumeAt: number, now: number): void;
  /** Fails `w` with `CostExceedsLimitError`: it costs more of `bucket` than its limit. */
  rejectCost(w: Waiter, bucket: Bucket, cost: number): void;
  /** Fails `w` with `error` (a handler that throws is reported, not thrown). */
  reject(w: Waiter, error: RateLimitError): void;
  /** Error context: provider and key label. */
  ctx(): ErrorContext;
  /** Hands `permit` to `w` (a handler that throws does not stop the others). */
  grant(w: Waiter, permit: Permit): void;
  readonly maxServerWaitMs: number;
  readonly registry: BucketRegistry;
  readonly pauses: PausePolicy;
  drain(): void;
  /** Queued requests may count other buckets or costs: looked at before the next admission. */
  regroup(): void;
  /** Drains on the limiter's timer, at `at`. */
  schedule(at: number): void;
  /** Admits what can go now and publishes the state. */
  settle(): void;
}

/** A pause reason told by another limiter or process, as the limiter names them. */
export function reasonOf(reason: string): RetrySource | 'manual' {
  return (['retry-after', 'reset', 'body', 'backoff'] as const).find((r) => r === reason) ?? 'manual';
}

/** The outcome of checking whether a request could go now. */
type Verdict = { go: true } | { go: false; at: number | undefined; bucket: Bucket };

/**
 * A costly request that waits on a bucket where a cheaper one would fit (it needs more units
 * than are left): requests after it in queue order wait on that bucket too, until it goes or
 * leaves the queue, so cheap ones cannot take each unit as it frees and starve it.
 */
interface Claim {
  readonly w: Waiter;
  /** The waiter's id when it claimed (a waiter queued again is another request). */
  readonly id: number;
  /** When it may go, as last judged (`undefined`: only a response can tell). */
  at: number | undefined;
}

/** The verdict of a request that can go (one object, not one per admission). */
const GO: Verdict = { go: true };

/** Does `a` come before `b` in queue order (priority, then arrival)? */
const before = (a: Waiter, b: Waiter) => a.priority > b.priority || (a.priority === b.priority && a.id < b.id);

/** A drain of older limiters' queues is under way (`olderFirst`): theirs do not start another. */
let fairDrain = false;

export class LocalAdmission implements Admission, CredentialMember {
  readonly refusesAtCap = false;
  /**
   * Per bucket, the requests parked on it; made when the first one is (a weak map's table is
   * about 130 bytes, on each of 10,000 tenants' limiters, most of which never park one).
   */
  private lots: WeakMap<Bucket, Lot<Waiter, BucketGroup>> | undefined = undefined;
  /**
   * Per bucket, the costly request it is held for (see {@link Claim}); made at the first claim.
   * Until then `verdict` does not look the buckets up (a weak map's table, out of the CPU's
   * caches at 10,000 tenants, for the costly requests only a few limiters see).
   */
  private claims: WeakMap<Bucket, Claim> | undefined = undefined;
  /**
   * The credential's state in the process, shared with its other limiters. Kept after `close()`:
   * the engine goes on counting its requests against the state's buckets.
   */
  private credential: CredentialState | undefined;
  /**
   * `close()` was called. The limiter stays a member of its credential while a request of it
   * waits or is in flight, and leaves when the last is settled: until then its answers and
   * releases change the credential's buckets, and the other limiters' requests waiting on them
   * must be woken (and its own by theirs). A request sent through it later joins it again.
   */
  private closed = false;

  constructor(private readonly host: AdmissionHost) {}

  /** Joins the credential's state (`credential.ts`), made or found by the engine. */
  join(credential: CredentialState | undefined): this {
    this.credential = credential;
    return this;
  }

  queued(): void {
    if (this.closed) this.credential?.join(this);
  }

  /**
   * A request sent through the limiter after `close()` fails (`LimiterClosedError`) when the
   * limiter left its credential's state and a newer limiter of the key made another: counted on
   * the old state, it would spend the budget a second time (a pool's limiter kept past its
   * eviction, used beside the one the pool made since).
   */
  refused(w: Waiter): boolean {
    if (!this.closed || this.credential === undefined || this.credential.live(this)) return false;
    this.host.reject(w, new LimiterClosedError(this.host.ctx()));
    return true;
  }
  changed(): void {}
  exhaust(): void {}

  // What this limiter learns is told to the credential's other limiters in the process (none,
  // usually: then nothing is done).

  observed(_lease: unknown, readings: readonly StoreReading[], buckets: readonly Bucket[]): void {
    if (!this.others) return;
    const registry = this.host.registry;
    const changed = new Set(buckets);
    for (const r of readings) {
      const b = registry.get(r.name);
      if (b) changed.add(b);
    }
    this.tell((m, now) => {
      for (const b of changed) m.recheck(b, now);
      m.settle();
    });
  }

  released(_lease: unknown, _observed: boolean, buckets: readonly Bucket[]): void {
    if (this.others) {
      // As for this limiter's own queue: the room goes to the next request on the timer.
      this.tell((m, now) => {
        for (const b of buckets) m.recheck(b, now);
        m.later(now);
      });
    }
    // The permit still counts in `inFlight` here (it is told before it stops counting).
    if (this.closed) this.leaveIfIdle(this.host.inFlight - 1);
  }

  pause(ms: number, reason: string): void {
    if (this.others) this.tell((m) => m.paused(ms, reason));
  }

  block(ms: number | null, status: number): void {
    if (this.others) this.tell((m) => m.blocked({ ms, status }));
  }

  unblock(): void {
    if (this.others) this.tell((m) => m.blocked(null));
  }

  resume(options: { readonly buckets: boolean }): void {
    if (this.others) this.tell((m) => m.resumed(options.buckets));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.leaveIfIdle(this.host.inFlight);
  }

  /**
   * A closed limiter with nothing queued and nothing of `inFlight` out leaves its credential:
   * it holds none of the credential's units, and the state is dropped with its last member.
   */
  private leaveIfIdle(inFlight: number): void {
    if (inFlight <= 0 && this.host.queue.size === 0) this.credential?.leave(this);
  }

  // As a member of the credential: what another limiter of it tells.

  paused(ms: number, reason: string): void {
    this.host.pauses.setPause(this.host.now() + ms, reasonOf(reason), null, false);
    this.host.settle();
    // A pause past `maxWaitMs` fails the whole queue at once (not one by one through `left`).
    if (this.closed) this.leaveIfIdle(this.host.inFlight);
  }

  blocked(block: StoreBlock | null): void {
    this.host.pauses.adoptBlock(block);
    // As for a pause: a block fails the whole queue at once.
    if (this.closed) this.leaveIfIdle(this.host.inFlight);
  }

  resumed(buckets: boolean): void {
    this.host.pauses.resumed(buckets);
  }

  settle(): void {
    this.host.settle();
  }

  later(now: number): void {
    this.host.schedule(now);
  }

  touch(): void {
    this.host.out.touch();
  }

  /** The figures of a response are read only to tell the credential's other limiters. */
  get readsFigures(): boolean {
    return this.others;
  }

  private get others(): boolean {
    return this.credential !== undefined && this.credential.size > 1;
  }

  private tell(what: (m: LocalAdmission, now: number) => void): void {
    const now = this.host.now();
    this.credential?.others(this, (m) => what(m as LocalAdmission, now));
  }

  oldest(): number {
    const queue = this.host.queue;
    if (queue.size === 0) return Infinity;
    let at = Infinity;
    for (const g of queue.allGroups()) {
      const w = g.head?.value;
      if (w !== undefined && w.queuedAt < at) at = w.queuedAt;
    }
    return this.host.epoch + at;
  }

  /**
   * The credential's other limiters whose oldest request waits longer than ours drain first, so
   * that room that frees goes to the request that waited longest, whichever limiter holds it:
   * each limiter drains its own queue on its own timer, and the one whose timer ran first took
   * every slot as it freed (a request of another waited two days on a rolling day and failed).
   */
  private olderFirst(credential: CredentialState): void {
    const mine = this.oldest();
    // Each limiter's oldest request, read once (a walk of its queue's groups).
    let older: Array<{ readonly at: number; readonly member: LocalAdmission }> | undefined;
    credential.others(this, (m) => {
      const at = (m as LocalAdmission).oldest();
      if (at < mine) (older ??= []).push({ at, member: m as LocalAdmission });
    });
    if (older === undefined) return;
    if (older.length > 1) older.sort((a, b) => a.at - b.at);
    fairDrain = true;
    try {
      for (const o of older) o.member.settle();
    } finally {
      fairDrain = false;
    }
  }

  drain(now: number): void {
    const credential = this.credential;
    if (credential && now > credential.seen) credential.seen = now;
    const host = this.host;
    const queue = host.queue;
    if (credential !== undefined && credential.size > 1 && !fairDrain && queue.size > 0) this.olderFirst(credential);
    for (let lot = queue.dueLot(now); lot; lot = queue.dueLot(now)) queue.wake(lot);
    while (queue.wakeDue(now));
    // The admitted waiters and their permits, in pairs (no tuple per admission), made on the
    // first admission (an array grown by `push` from empty holds 17 slots).
    let grant: Array<Waiter | Permit> | undefined;
    let next = Infinity;
    for (let g = queue.nextReady(); g; g = queue.nextReady()) {
      const node = g.head;
      if (!node) break;
      const w = node.value;
      // No request waits past its deadline, `maxWaitMs` after it was queued: one that cannot
      // go by then fails with QuotaExhaustedError, at the latest then (a wait with no known
      // end: a response that never comes, maxConcurrent), at once when its wait is known to
      // end later.
      const deadline = host.deadlineOf(w);
      if (host.inFlight >= host.maxConcurrent) {
        if (now < deadline) {
          next = Math.min(next, this.capped(now));
          break;
        }
        queue.removeFrom(g, node);
        host.rejectQuota(w, 'concurrency', Infinity, now);
        this.left(w);
        continue;
      }
      const over = this.overLimit(w);
      if (over) {
        queue.removeFrom(g, node);
        host.rejectCost(w, over.bucket, over.cost);
        this.left(w);
        queue.settled(g);
        continue;
      }
      const v = this.verdict(w, now, queue.size);
      if (v.go) {
        queue.removeFrom(g, node);
        const permit = host.permits.admit(w, now);
        if (grant) grant.push(w, permit);
        else grant = [w, permit];
        this.left(w);
        queue.settled(g);
        continue;
      }
      const bucket = v.bucket;
      // Quota buckets too: a daily budget that resets, or a rolling day whose oldest call ages
      // out, by the deadline is waited for like any window. A known wait is not trusted while
      // answers may give room back (`awaitsAnswers`: the bucket's `remaining` took units of
      // ours in flight off a figure that may count them already): such a request is not
      // failed early, only at its deadline (`recheck` looks again once the answers are in).
      const known = v.at !== undefined && !bucket.awaitsAnswers ? v.at : -Infinity;
      if (now >= deadline || known > deadline) {
        queue.removeFrom(g, node);
        host.rejectQuota(w, bucket.name, v.at ?? Infinity, now);
        this.left(w);
        queue.settled(g);
        continue;
      }
      // The requests behind the head go after it (first in, first out within a priority; a
      // lower priority waits for the higher), so none can go before the head's time: those
      // whose deadline comes before it fail now, resuming then. Their deadlines rise along
      // each priority (`GroupedQueue.expire`), so this reads the first of each priority, not
      // the group: no timer and no step per request. The rest are looked at again when the lot
      // wakes or, at the latest, at the earliest of their deadlines (the parked group's own),
      // on the limiter's one timer; a request queued later has a later deadline.
      const expired = this.expired;
      const earliest = queue.expire(g, host.deadlineOf, now, known, expired, true);
      const lot = this.lotOf(bucket);
      queue.park(g, lot, earliest);
      if (v.at !== undefined) {
        // A costly request may wait longer than the cheaper ones parked here: it never puts
        // off the lot's wake time, which the first of them in queue order needs.
        queue.wakeLotAt(lot, g.meta.costs ? Math.min(v.at, lot.wakeAt) : v.at);
        if (bucket.remaining === 0 && host.permits.firstEmpty(bucket)) {
          host.out.emit({ type: 'paused', until: v.at, reason: 'bucket-empty', bucket: bucket.name });
        }
      }
      host.rejectExpired(expired, bucket.name, known > now ? known : Infinity, now);
    }
    next = Math.min(next, queue.nextWake());
    if (queue.size === 0 || next === Infinity) host.timer.cancel();
    else host.timer.schedule(next);
    host.out.touch();
    if (grant) for (let i = 0; i < grant.length; i += 2) host.grant(grant[i] as Waiter, grant[i + 1] as Permit);
  }

  /** Requests taken out of the queue to fail (reused: no array per drain). */
  private readonly expired: Waiter[] = [];

  /**
   * At `maxConcurrent`, nothing goes until a request in flight ends (no known time): each ready
   * group's requests past their deadline fail now, and the drain is looked at again at the
   * earliest deadline of the rest, which this returns (parked groups keep their own). O(levels)
   * per ready group; one group, usually.
   */
  private capped(now: number): number {
    const { queue, deadlineOf } = this.host;
    const expired = this.expired;
    let min = Infinity;
    const ready = queue.readyGroups();
    // Groups whose head is past its deadline leave or change the ready heap: read it first.
    let stale: Array<(typeof ready)[number]> | undefined;
    for (const g of ready) {
      const head = g.head;
      if (head && deadlineOf(head.value) <= now) (stale ??= []).push(g);
      else min = Math.min(min, queue.expire(g, deadlineOf, now, -Infinity, expired, true));
    }
    for (const g of stale ?? []) min = Math.min(min, queue.expire(g, deadlineOf, now, -Infinity, expired, false));
    this.host.rejectExpired(expired, 'concurrency', Infinity, now);
    return min;
  }

  /**
   * `drain` for a queue that holds `w` alone, without the group the queue would open and close
   * for it: a request admitted at once (the usual case) costs no map entry, heap slot or group.
   */
  admitAlone(w: Waiter, now: number): boolean {
    const host = this.host;
    if (host.inFlight >= host.maxConcurrent || !this.verdict(w, now, 1).go) return false;
    const credential = this.credential;
    if (credential && now > credential.seen) credential.seen = now;
    // As the group's closing would: its buckets may fall idle from now on.
    for (const b of w.buckets) host.registry.markIdle(b, now);
    // A request sent through a closed limiter: it counts against the credential's buckets.
    if (this.closed) credential?.join(this);
    const permit = host.permits.admit(w, now);
    host.timer.cancel();
    host.out.touch();
    host.grant(w, permit);
    return true;
  }

  recheck(b: Bucket, now: number): void {
    // Nothing waits, or nothing was ever parked on `b`: the lots (a weak map) are not looked up.
    if (this.host.queue.size === 0 || !b.lotted) return;
    const lot = this.lots?.get(b);
    if (!lot || lot.size === 0) return;
    const { resetGuardMs, tightGuard, coldStartConcurrency } = this.host;
    b.refill(now, resetGuardMs, tightGuard);
    const at = b.availableAt(now, resetGuardMs, coldStartConcurrency, this.host.queue.size, 1, tightGuard);
    // Undefined: only a response can tell; the parked heads' deadlines still end their wait.
    if (at === undefined) return;
    // With no answer in flight left to give room back, the wait is known: past a parked
    // request's deadline (the lot's bound of them), the drain looks at the lot again now and
    // fails what cannot go in time at once, not at its deadline. The bound is reset: the
    // groups looked at set it again (one that is not keeps its own deadline, on the timer).
    if (at <= now || (!b.awaitsAnswers && at > lot.minDeadline)) {
      if (at > now) lot.minDeadline = Infinity;
      this.host.queue.wake(lot);
    } else this.host.queue.wakeLotAt(lot, at);
  }

  /**
   * `w` left the queue (admitted, failed, cancelled): the buckets it held for itself (its
   * claims) let the requests parked behind it be looked at again.
   */
  left(w: Waiter): void {
    // The last request of a closed limiter failed or was cancelled (one admitted is in flight).
    if (this.closed) this.leaveIfIdle(this.host.inFlight);
    const group = w.group;
    const claims = this.claims;
    if ((!group?.costs && !group?.learn?.probe) || !claims) return;
    for (const b of group.buckets) {
      const c = claims.get(b);
      if (c?.w !== w) continue;
      claims.delete(b);
      const lot = this.lots?.get(b);
      if (lot && lot.size > 0) this.host.queue.wake(lot);
    }
  }

  /** A bucket whose known limit is below what `w` costs of it: no window can ever admit it. */
  private overLimit(w: Waiter): { bucket: Bucket; cost: number } | undefined {
    const costs = w.group?.costs;
    if (!costs) return undefined;
    return overLimit(w.buckets, costs);
  }

  /** Could `w` go now? `waiting`: requests in the queue, `w` included. */
  private verdict(w: Waiter, now: number, waiting: number): Verdict {
    const { resetGuardMs, tightGuard, coldStartConcurrency } = this.host;
    let at: number | undefined = now;
    let blocking: Bucket | undefined;
    const costs = w.group?.costs;
    const learner = this.host.registry.learner;
    const probe = w.group?.learn?.probe === true ? w.group.learn.learns : undefined;
    // Buckets where this costly request does not fit now; it claims them if it must wait.
    let short: Bucket[] | undefined;
    for (let i = 0; i < w.buckets.length; i++) {
      const b = w.buckets[i] as Bucket;
      b.refill(now, resetGuardMs, tightGuard);
      const cost = costs?.[i] ?? 1;
      let when = b.availableAt(now, resetGuardMs, coldStartConcurrency, waiting, cost, tightGuard);
      // Learning a cost (costLearning.ts): a request of a key not learnt yet goes with nothing
      // else of ours in flight on the bucket, and nothing goes beside it, so the drop in
      // `remaining` is its own. It claims the bucket while it waits (no starvation).
      const alone = probe?.[i] === true;
      if (learner && (learner.probing(b) || (alone && b.inFlight > 0))) when = undefined;
      // Held for a costly request before this one: this one waits until that one goes.
      const claim = this.claims?.get(b);
      if (claim && claim.w !== w) {
        if (claim.w.level === undefined || claim.w.id !== claim.id) this.claims?.delete(b);
        else if (before(claim.w, w))
          when = claim.at === undefined || when === undefined ? undefined : Math.max(when, claim.at, now + 1);
      }
      if (when !== now && (cost > 1 || alone)) (short ??= []).push(b);
      // The first bucket that waits for a response holds the request (as it always has); a
      // costly request still looks at the rest, for the ones it must claim.
      if (when === now || at === undefined) continue;
      if (when === undefined || when > at) {
        blocking = b;
        at = when;
      }
      if (at === undefined && !costs && !probe) break;
    }
    if (!blocking) return GO;
    if (short) {
      // Holds these buckets for itself, unless a request before it already does.
      const claims = (this.claims ??= new WeakMap());
      for (const b of short) {
        const claim = claims.get(b);
        if (claim && claim.w !== w && claim.w.level !== undefined && claim.w.id === claim.id && before(claim.w, w))
          continue;
        claims.set(b, { w, id: w.id, at });
      }
    }
    return { go: false, at, bucket: blocking };
  }

  /** The lot of requests parked on `b` (made on first use). */
  private lotOf(b: Bucket): Lot<Waiter, BucketGroup> {
    const lots = (this.lots ??= new WeakMap());
    let lot = lots.get(b);
    if (!lot) {
      lot = this.host.queue.lot();
      lots.set(b, lot);
      b.lotted = true;
    }
    return lot;
  }
}

/** The first of `buckets` whose known limit is below what `costs` asks of it. */
export function overLimit(
  buckets: readonly Bucket[],
  costs: readonly number[],
): { bucket: Bucket; cost: number } | undefined {
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i] as Bucket;
    const cost = costs[i] ?? 1;
    if (cost > 1 && b.limit !== undefined && b.limit > 0 && cost > b.limit) return { bucket: b, cost };
  }
  return undefined;
}
