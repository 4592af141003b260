/**
 * Admission with a shared store: the store decides admission atomically across processes. The
 * head request's group (requests needing the same buckets) asks for a batch of admissions; at
 * most one store call is in flight; its answer admits what was granted, in queue order, or sets
 * the timer for the wait the store reported. Responses, pauses, blocks and held buckets are
 * written back, and what other processes change is adopted when the store tells.
 */
import type { Admission, Lease } from './admission.js';
import type { Bucket } from './bucket.js';
import type { Learning } from './costLearning.js';
import { LimiterClosedError } from './errors.js';
import type { LeakyBucket } from './leakyBucket.js';
import { reasonOf, type AdmissionHost } from './localAdmission.js';
import type { StoreAdmission, StoreBucketSpec, StoreGrant, StoreReading, StoreSession } from './store.js';
import type { Permit, Waiter } from './waiter.js';
import { MAX_SERVER_WAIT_LIMIT_MS } from './window.js';

/** Most admissions asked of a shared store in one call. */
const SHARED_BATCH = 64;
/** How soon to ask again when only a response can tell (a change notice usually comes first). */
const SHARED_POLL_MS = 250;
/**
 * A bucket an answer did not describe: a success that described others of the request (or a
 * server error), and one that described no bucket at all (`StoreReading.blind`).
 */
const SILENT = { silent: true } as const;
const SILENT_BLIND = { silent: true, blind: true } as const;

/**
 * Admission through a shared store's sessions: a store that opens sessions gives it as its
 * `admission` (`redisStore` does). Only such a store brings this code into a bundle.
 *
 * ```ts
 * import { sharedAdmission, type LimiterStore, type StoreContext, type StoreSession } from 'rx-ratelimit';
 * declare function openMySession(context: StoreContext): StoreSession;
 * const store: LimiterStore = { kind: 'mine', admission: sharedAdmission(), open: (ctx) => openMySession(ctx) };
 * ```
 */
export function sharedAdmission(): StoreAdmission {
  return { kind: 'shared', admit: (host: AdmissionHost, session) => new SharedAdmission(host, session) };
}

/** A request of ours of a key not learnt yet, in flight or its drop still being merged. */
interface Probe {
  readonly buckets: readonly Bucket[];
  /** Its permit was let go. */
  released: boolean;
  /** The store is still merging its answer: what it learnt is not in yet. */
  merging: boolean;
}

export class SharedAdmission implements Admission {
  readonly refusesAtCap = true;
  /** The limiter was closed: its session's connection is given up, no request goes through it. */
  private closed = false;
  /** A store call is in flight (at most one per limiter). */
  private busy = false;
  /** Settles once that call's answer is handled. */
  private pending: Promise<void> | undefined;
  /**
   * Per group of waiting requests (same set of buckets): do not ask the store again before this
   * time, unless something changed (`dirty`: a response, a release, a notice from another
   * process, a new group). A group that must wait does not hold up the others.
   */
  private readonly groupWait = new Map<string, number>();
  private dirty = true;
  /**
   * Learning a cost (costLearning.ts): the leases of this process's requests of a key not learnt
   * yet, in flight, and the buckets each learns on. Nothing of ours goes beside one on those
   * buckets, and one goes only with nothing of ours in flight there, so the drop the store
   * attributes can be its own (the store still checks that no other process's was beside it).
   */
  private probes: Map<string, Probe> | undefined;
  /**
   * Each bucket as the store is told it (`specOf`), made once. Here rather than in the bucket
   * registry, so that a bundle whose limiters keep the memory store does not carry it.
   */
  private readonly specs = new WeakMap<Bucket, StoreBucketSpec>();

  constructor(
    private readonly host: AdmissionHost,
    private readonly session: StoreSession,
  ) {
    session.onChange(() => {
      this.dirty = true;
      host.settle();
    });
    session.onBlock?.((block) => host.pauses.adoptBlock(block));
    session.onResume?.(({ buckets }) => host.pauses.resumed(buckets));
  }

  queued(group: string, opened: boolean): void {
    if (opened) this.groupWait.delete(group);
  }

  recheck(): void {}

  left(): void {}

  changed(): void {
    this.dirty = true;
  }

  pause(ms: number, reason: string): void {
    this.session.pause(ms, reason);
  }

  exhaust(bucket: Bucket, ms: number, told = false): void {
    this.session.exhaust(this.specOf(bucket), ms, { told });
  }

  block(ms: number | null, status: number): void {
    this.session.block?.(ms, status);
  }

  unblock(): void {
    this.session.unblock?.();
  }

  resume(options: { readonly buckets: boolean }): void {
    this.session.resume?.(options);
  }

  async close(refuse = false): Promise<void> {
    const host = this.host;
    if (refuse && !this.closed) {
      this.closed = true;
      const error = new LimiterClosedError(host.ctx());
      // The queue is emptied before any handler runs (handlers may ask for more: refused too).
      for (const w of host.queue.drain()) host.reject(w, error);
      host.timer.cancel();
    }
    // A grant asked for before: its leases go back (`onGrant`: nothing waits for them now)
    // before the session closes, and the caller, its client.
    await this.pending;
    return this.session.close();
  }

  refused(w: Waiter): boolean {
    if (this.closed) this.host.reject(w, new LimiterClosedError(this.host.ctx()));
    return this.closed;
  }

  observed(
    lease: Lease | undefined,
    readings: readonly StoreReading[],
    buckets: readonly Bucket[],
    costs?: readonly number[],
    learn?: Learning,
    silentOthers = false,
  ): void {
    const registry = this.host.registry;
    if (!lease) {
      // A response read outside a permit: its figures only.
      this.session.observe(undefined, readings, this.specsNamed(readings.map((r) => r.name)));
    } else {
      const names = new Set([...buckets.map((b) => b.name), ...readings.map((r) => r.name)]);
      const all = [...names].map((name): StoreReading => {
        // What the request really cost of the bucket, when the answer told.
        const cost = costs?.[buckets.findIndex((b) => b.name === name)];
        return {
          ...(readings.find((r) => r.name === name) ?? {
            name,
            limit: undefined,
            remaining: undefined,
            resetInMs: undefined,
            windowMs: undefined,
            ...(silentOthers ? (readings.length === 0 ? SILENT_BLIND : SILENT) : {}),
          }),
          index: lease.index.get(name),
          ...(cost === undefined ? {} : { cost }),
        };
      });
      if (!learn) {
        this.session.observe(lease.lease, all, this.specsNamed(names));
      } else {
        // The costs the store attributes to the request come later: later requests take them,
        // on the buckets the request learns on only (its cost of the others is known otherwise).
        const learning = new Set(buckets.filter((_, i) => learn.learns[i]).map((b) => b.name));
        const merged = this.session.observe(lease.lease, all, this.specsNamed(names), (name, cost) => {
          if (learning.has(name) && registry.learner?.learn(learn.key, name, cost) === true) this.host.regroup();
        });
        // A request of a route not learnt yet holds its buckets until what it taught is in.
        const probe = this.probes?.get(lease.lease);
        if (probe && merged) {
          probe.merging = true;
          void merged.then(() => {
            probe.merging = false;
            if (probe.released) this.ended(lease.lease);
          });
        }
      }
    }
    this.dirty = true;
  }

  released(lease: Lease | undefined, observed: boolean, buckets: readonly Bucket[]): void {
    if (!lease) return;
    const probe = this.probes?.get(lease.lease);
    if (probe) {
      probe.released = true;
      if (!probe.merging) this.ended(lease.lease);
    }
    if (!observed) this.session.release(lease.lease, this.specsOf(buckets));
    this.dirty = true;
  }

  /** The store admits, asynchronously: a request always waits in the queue for its answer. */
  admitAlone(): boolean {
    return false;
  }

  drain(now: number): void {
    const host = this.host;
    const queue = host.queue;
    if (this.busy) return; // the answer drains again
    if (this.dirty) {
      this.dirty = false;
      this.groupWait.clear();
    }
    let head: Waiter | undefined;
    let group = '';
    let next = Infinity;
    // Buckets a costly request earlier in queue order waits on: later requests that need one
    // of them wait too (in this process), so cheaper ones cannot take each unit as it frees.
    let held: Set<Bucket> | undefined;
    const expired = this.expired;
    queue.visit((w, entry) => {
      const deadline = host.deadlineOf(w);
      if (now >= deadline) {
        queue.remove(entry);
        host.rejectQuota(w, w.buckets[0]?.name ?? 'shared', resumeOf(w, now), now);
        return 'removed';
      }
      // No request waits past its deadline: those behind the head (another priority may hold
      // older ones) that are past theirs fail now (none can go before the head), and the
      // timer is set for the earliest deadline of the rest (O(priorities): see `expire`).
      const g = queue.group(entry.group);
      next = Math.min(next, g ? queue.expire(g, host.deadlineOf, now, -Infinity, expired, true) : deadline);
      const until = this.groupWait.get(entry.group) ?? 0;
      if (until > now) {
        next = Math.min(next, until);
        if (w.group?.costs) for (const b of w.buckets) (held ??= new Set()).add(b);
        return 'skip-group';
      }
      if (held && w.buckets.some((b) => held?.has(b))) return 'skip-group';
      if (this.probes && w.buckets.some((b) => this.probing(b))) return 'skip-group';
      // A request of a key not learnt yet waits for ours in flight on its learning buckets to
      // end, and holds them meanwhile (no starvation).
      const learns = w.group?.learn?.probe === true ? w.group.learn.learns : undefined;
      if (learns && w.buckets.some((b, i) => learns[i] === true && b.inFlight > 0)) {
        w.buckets.forEach((b, i) => learns[i] === true && (held ??= new Set()).add(b));
        return 'skip-group';
      }
      head = w;
      group = entry.group;
      return 'stop';
    });
    for (const w of expired.splice(0)) host.rejectExpired([w], undefined, resumeOf(w, now), now);
    const room = host.maxConcurrent - host.inFlight;
    if (!head || room <= 0) {
      if (queue.size === 0) this.groupWait.clear();
      if (queue.size === 0 || next === Infinity) host.timer.cancel();
      else host.timer.schedule(next);
      return;
    }
    const buckets = (head as Waiter).buckets;
    // A group's requests all cost the same (the cost is part of its key).
    const costs = (head as Waiter).group?.costs;
    const probe = (head as Waiter).group?.learn?.probe === true;
    const count = probe ? 1 : Math.min(SHARED_BATCH, room, queue.head(group, SHARED_BATCH).length);
    this.busy = true;
    this.pending = this.session
      .acquire(this.specsOf(buckets), count, {
        coldStartConcurrency: host.coldStartConcurrency,
        resetGuardMs: host.resetGuardMs,
        ...(costs ? { costs } : {}),
      })
      .then(
        (grant) => this.onGrant(buckets, group, grant),
        () => this.onGrant(buckets, group, undefined),
      );
  }

  /** Requests taken out of the queue to fail (reused). */
  private readonly expired: Waiter[] = [];

  /** A request of ours of a key not learnt yet is in flight on `b`, or its drop is being merged. */
  private probing(b: Bucket): boolean {
    for (const probe of this.probes?.values() ?? []) if (probe.buckets.includes(b)) return true;
    return false;
  }

  /** That request is over: its buckets are free for the requests waiting on them. */
  private ended(lease: string): void {
    if (!this.probes?.delete(lease)) return;
    if (this.probes.size === 0) this.probes = undefined;
    this.dirty = true;
    this.host.settle();
  }

  private specsOf(buckets: readonly Bucket[]) {
    return buckets.map((b) => this.specOf(b));
  }

  /** The specs of the buckets named (names the registry does not hold are skipped). */
  private specsNamed(names: Iterable<string>): StoreBucketSpec[] {
    const out: StoreBucketSpec[] = [];
    for (const name of names) {
      const b = this.host.registry.get(name);
      if (b) out.push(this.specOf(b));
    }
    return out;
  }

  /** `b` as the store needs it: the provider's hints, used until a response tells. */
  private specOf(b: Bucket): StoreBucketSpec {
    let spec = this.specs.get(b);
    if (!spec) {
      const hinted = b.hint;
      spec = {
        name: b.name,
        limit: hinted?.limit,
        windowMs: hinted?.windowMs,
        quota: b.quota,
        pacing: b.pacing,
        ...(b.rolling ? { rolling: true } : {}),
        // A leaky bucket is told by its rate: the hint (a spec is made before any answer is read).
        ...(b.leaky ? { restorePerSecond: (b as LeakyBucket).restorePerSecond } : {}),
      };
      this.specs.set(b, spec);
    }
    return spec;
  }

  private onGrant(buckets: readonly Bucket[], group: string, grant: StoreGrant | undefined): void {
    const host = this.host;
    const queue = host.queue;
    this.busy = false;
    const now = host.now();
    if (!grant) {
      // A store must not fail its promise; if one does, ask again shortly.
      this.groupWait.set(group, now + SHARED_POLL_MS);
      host.settle();
      return;
    }
    if (grant.blocked) {
      // Another process met the provider's block: nothing goes; what waits fails with BlockedError.
      for (const lease of grant.leases) this.session.release(lease, this.specsOf(buckets));
      host.pauses.adoptBlock(grant.blocked);
      return;
    }
    const index = new Map<string, number>();
    const cap = host.maxServerWaitMs;
    for (const state of grant.buckets) {
      const sane = state.resetInMs === undefined || state.resetInMs <= cap ? state : { ...state, resetInMs: undefined };
      host.registry.get(state.name)?.adopt(sane, now);
      index.set(state.name, state.admitted);
    }
    if (grant.pause && grant.pause.ms > MAX_SERVER_WAIT_LIMIT_MS) {
      // Past what any process may obey (written by an earlier version): garbage, lifted for every
      // process, as the store grants nothing while it holds; asked again shortly.
      this.session.resume?.({ buckets: false });
      this.groupWait.set(group, now + SHARED_POLL_MS);
    } else if (grant.pause && grant.pause.ms > 0) {
      // A pause longer than this process obeys a server (another process's, whose cap is longer,
      // or a `pause()` of days) is kept up to the cap, then asked about again: the store still
      // holds it. Never lifted for the others: a process with a shorter cap wiped a Retry-After
      // the rest obeyed, and all sent into a server that had asked for quiet.
      host.pauses.setPause(now + Math.min(grant.pause.ms, cap), reasonOf(grant.pause.reason), null, false);
    }
    const granted: Array<[Waiter, Permit]> = [];
    const leases = [...grant.leases];
    if (leases.length > 0) {
      this.groupWait.delete(group);
      for (const { value: w, entry } of queue.head(group, leases.length)) {
        const lease = leases.shift();
        if (lease === undefined) break;
        queue.remove(entry);
        const mine = new Map<string, number>();
        for (const [name, i] of index) mine.set(name, i + granted.length);
        granted.push([w, host.permits.admit(w, now, { lease, index: mine })]);
        const learn = w.group?.learn;
        if (learn?.probe)
          (this.probes ??= new Map()).set(lease, {
            buckets: w.buckets.filter((_, i) => learn.learns[i]),
            released: false,
            merging: false,
          });
      }
      // Granted to requests cancelled meanwhile: no longer in flight (the units stay spent).
      for (const lease of leases) this.session.release(lease, this.specsOf(buckets));
    } else if (!grant.pause) {
      const bucket = grant.blockedBy === undefined ? undefined : host.registry.get(grant.blockedBy);
      if (grant.waitMs === undefined) {
        this.groupWait.set(group, now + SHARED_POLL_MS);
      } else {
        // A wait past the longest the limiter obeys a server is read from state no server could
        // have meant (a store written by an older version, a junk rate): at most that.
        const waitMs = Math.min(grant.waitMs, host.maxServerWaitMs);
        const at = now + waitMs;
        const long = waitMs > host.maxWaitMs;
        // The group's requests go in order, none before `at`: those whose deadline comes first
        // fail now, resuming then (the rest are asked for again then, before their deadlines).
        // Not while answers in flight may give room back (the store's `awaitsAnswers`): asked
        // again once they are in (a change notice, or the poll), failed at their deadlines.
        const g = bucket?.awaitsAnswers ? undefined : queue.group(group);
        if (g) {
          queue.expire(g, host.deadlineOf, now, at, this.expired, false);
          host.rejectExpired(this.expired, bucket?.name ?? grant.blockedBy ?? 'shared', at, now);
        }
        if (queue.has(group)) {
          this.groupWait.set(group, long ? now + SHARED_POLL_MS : at);
          if (bucket && host.permits.firstEmpty(bucket)) {
            host.out.emit({ type: 'paused', until: at, reason: 'bucket-empty', bucket: bucket.name });
          }
        }
      }
    }
    for (const [w] of granted) host.permits.forgetEmpty(w.buckets);
    host.out.touch();
    for (const [w, permit] of granted) host.grant(w, permit);
    host.settle();
  }
}

/**
 * When a request that reached its deadline could go, as far as the store's last figures tell:
 * the latest reset among its buckets with nothing left (Infinity: none is known, as when it
 * waited behind others or for the store).
 */
function resumeOf(w: Waiter, now: number): number {
  let at = -Infinity;
  for (const b of w.buckets)
    if (b.remaining !== undefined && b.remaining < 1 && b.resetAt !== undefined && b.resetAt > now)
      at = Math.max(at, b.resetAt);
  return at === -Infinity ? Infinity : at;
}
