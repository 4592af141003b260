/**
 * One limit state per provider and credential in a process. Every limiter made for the same
 * provider name and key on the same clock (scheduler), with the memory store, joins one
 * {@link CredentialState}: their buckets are the same objects, and a pause, a block or a
 * `resume()` one of them meets is told to the others, as a shared store tells other processes.
 * Without it, two limiters on one token (two NestJS modules, two services) would each spend the
 * whole budget: twice what the provider allows. The state is counted: it is dropped when the
 * last limiter that joined it is closed or garbage-collected (members are held weakly, so a
 * limiter dropped without `close()` is not kept alive by its credential). A closed limiter
 * leaves once nothing of it waits or is in flight, and joins again for a request sent through
 * it later (`LocalAdmission.close`), putting its state back as the credential's, unless a newer
 * limiter of the key made another meanwhile: then it refuses the request (`CredentialState.live`).
 * Limiters with a shared store share through the store.
 *
 * Limiters of one provider and key whose provider reports other buckets (other hints, another
 * plan) keep separate states, since one registry cannot hold both sets of rules; that is almost
 * always a mistake, so it is reported once with `console.warn` (the provider and the limiter's
 * label, never the key).
 */
import type { SchedulerLike } from 'rxjs';
import type { Bucket } from './bucket.js';
import type { BucketRegistry } from './buckets.js';
import type { Provider } from './provider.js';
import type { StoreBlock } from './store.js';

/** A limiter of the credential, as the others see it. */
export interface CredentialMember {
  /** A bucket changed elsewhere (a response, a release, a 429 that named it): wake what waits on it. */
  recheck(b: Bucket, now: number): void;
  /** Another limiter paused the credential for `ms`. */
  paused(ms: number, reason: string): void;
  /** Another limiter met a block (`StoreBlock`) or lifted it (`null`). */
  blocked(block: StoreBlock | null): void;
  /** Another limiter resumed (`buckets`: forgot every reset too). */
  resumed(buckets: boolean): void;
  /** Admits what can go now and publishes the state. */
  settle(): void;
  /** Drains on the limiter's timer (at `now`: after the caller's current job). */
  later(now: number): void;
  /** A bucket of the credential was evicted: the limiter's snapshot changed. */
  touch(): void;
  /** When the oldest request waiting in the limiter was queued (`Infinity`: none waits). */
  oldest(): number;
}

export class CredentialState {
  private readonly refs = new Set<WeakRef<CredentialMember>>();
  private readonly byMember = new WeakMap<CredentialMember, WeakRef<CredentialMember>>();
  /**
   * The latest time a member read (at a join or a drain). A clock that reads earlier is another
   * time: a new virtual-time run (a `TestScheduler` restarts at 0 on `asyncScheduler`), whose
   * limiters must not meet the buckets and pauses of a run that is over.
   */
  seen = -Infinity;

  constructor(
    /** The clock every member reads, so that the buckets' times are on one clock. */
    readonly now: () => number,
    registry: (evicted: () => void) => BucketRegistry,
    private readonly drop: () => void,
    /**
     * Puts the state back as its credential's after `drop` (a closed limiter of it is used
     * again); false when a newer state holds the credential now.
     */
    private readonly revive: () => boolean,
  ) {
    // The registry tells every member, not the one that made it: it must hold no limiter alive.
    this.registry = registry(() => {
      for (const ref of [...this.refs]) ref.deref()?.touch();
    });
  }

  readonly registry: BucketRegistry;

  /**
   * `refs.size`, kept in a field: read at every response and release, it spares a visit to the
   * set (out of the CPU's caches with 10,000 tenants).
   */
  private members = 0;

  /** How many limiters share the state (a collected one may count until its finalizer runs). */
  get size(): number {
    return this.members;
  }

  join(member: CredentialMember): void {
    if (this.byMember.has(member)) return;
    const ref = new WeakRef(member);
    this.refs.add(ref);
    this.members = this.refs.size;
    this.byMember.set(member, ref);
    collected.register(member, { state: this, ref }, ref);
  }

  /** Calls `tell` for every limiter of the credential but `from`. */
  others<M extends CredentialMember>(from: M, tell: (m: M) => void): void {
    if (this.refs.size < 2) return;
    for (const ref of [...this.refs]) {
      const m = ref.deref();
      if (m !== undefined && m !== from && this.refs.has(ref)) tell(m as M);
    }
  }

  /**
   * May `member` (a closed limiter) count its requests against this state again? Yes while it
   * is a member; after it left, only if no newer state holds the credential: the state is then
   * the credential's again, and a limiter made later joins it. When a newer one does (the
   * credential's limiters were all closed, then another was made), the closed limiter would
   * spend the budget a second time beside it: it must take no more requests.
   */
  live(member: CredentialMember): boolean {
    return this.byMember.has(member) || this.revive();
  }

  leave(member: CredentialMember): void {
    const ref = this.byMember.get(member);
    if (ref === undefined) return;
    this.byMember.delete(member);
    collected.unregister(ref);
    this.forget(ref);
  }

  /** @internal A member left or was collected. */
  forget(ref: WeakRef<CredentialMember>): void {
    if (!this.refs.delete(ref)) return;
    this.members = this.refs.size;
    if (this.members === 0) this.drop();
  }
}

/** A limiter dropped without `close()`: it leaves its credential when collected. */
const collected = new FinalizationRegistry<{ state: CredentialState; ref: WeakRef<CredentialMember> }>(
  ({ state, ref }) => state.forget(ref),
);

/** Per clock, per provider name and key digest, per set of bucket rules: the state in use. */
const states = new WeakMap<SchedulerLike, Map<string, Map<string, CredentialState>>>();
/** Credentials already warned about (by digest), so the warning comes once. */
const warned = new Set<string>();

/** What a limiter that joins brings: the credential, its provider's rules, how to name it. */
export interface CredentialJoin {
  /** A digest of the provider's name and the key. */
  readonly id: string;
  /** The provider's buckets as JSON: limiters with other rules keep another state. */
  readonly rules: string;
  /** For the warning: the provider's name and the limiter's label (never the key). */
  readonly name: string;
}

/** The states of the credential `id` on `scheduler`, by rules (made empty if there are none). */
function slotOf(scheduler: SchedulerLike, id: string): Map<string, CredentialState> {
  let byId = states.get(scheduler);
  if (!byId) {
    byId = new Map();
    states.set(scheduler, byId);
  }
  let byRules = byId.get(id);
  if (!byRules) {
    byRules = new Map();
    byId.set(id, byRules);
  }
  return byRules;
}

/** A state whose clock went back: a new virtual-time run, whose limiters must not meet it. */
const over = (state: CredentialState) => state.now() < state.seen;

/**
 * The state of the credential `join.id` on `scheduler` for the provider rules `join.rules`,
 * joined by `member`; made with the first limiter's clock and `registry(evicted)`.
 */
export function joinCredential(
  scheduler: SchedulerLike,
  join: CredentialJoin,
  member: CredentialMember,
  now: () => number,
  registry: (evicted: () => void) => BucketRegistry,
): CredentialState {
  const byRules = slotOf(scheduler, join.id);
  let state = byRules.get(join.rules);
  // The state's clock went back (a new virtual-time run): that state belongs to a time that is over.
  if (state && over(state)) state = undefined;
  if (!state) {
    const made: CredentialState = new CredentialState(
      now,
      registry,
      () => {
        const rules = states.get(scheduler)?.get(join.id);
        if (rules?.get(join.rules) === made) rules.delete(join.rules);
        if (rules?.size === 0) states.get(scheduler)?.delete(join.id);
      },
      () => {
        const held = slotOf(scheduler, join.id);
        const other = held.get(join.rules);
        if (other !== undefined && other !== made && !over(other)) return false;
        held.set(join.rules, made);
        return true;
      },
    );
    state = made;
    byRules.set(join.rules, state);
    if (byRules.size > 1 && !warned.has(join.id)) {
      if (warned.size >= 1024) warned.clear();
      warned.add(join.id);
      console.warn(
        `rx-ratelimit: two limiters for ${join.name} with one key have different buckets (other provider ` +
          `options): they keep separate limit states and together can spend the budget twice. Give every ` +
          `limiter of a credential the same provider options, or close() the old one first.`,
      );
    }
  }
  state.join(member);
  state.seen = Math.max(state.seen, state.now());
  return state;
}

/**
 * A provider's rules as JSON: the buckets it names for a plain GET and POST. Two limiters of one
 * credential share a limit state only when these agree (`joinCredential`).
 */
export function rulesOf(provider: Provider): string {
  try {
    return JSON.stringify([
      provider.buckets({ method: 'GET', url: '/' }),
      provider.buckets({ method: 'POST', url: '/' }),
    ]);
  } catch {
    return '';
  }
}
