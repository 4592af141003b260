/**
 * One limit state per provider and credential in a process. Every limiter made for the same
 * provider name and key on the same clock (scheduler), with the memory store, joins one
 * {@link CredentialState}: their buckets are the same objects, and a pause, a block or a
 * `resume()` one of them meets is told to the others, as a shared store tells other processes.
 * Without it, two limiters on one token (two NestJS modules, two services) would each spend the
 * whole budget: twice what the provider allows. The state is counted: it is dropped when the
 * last limiter that joined it is closed. Limiters with a shared store share through the store.
 */
import type { SchedulerLike } from 'rxjs';
import type { Bucket } from './bucket.js';
import type { BucketRegistry } from './buckets.js';
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
}

export class CredentialState {
  readonly members = new Set<CredentialMember>();
  /**
   * The latest time a member read (at a join or a drain). A clock that reads earlier is another
   * time: a new virtual-time run (a `TestScheduler` restarts at 0 on `asyncScheduler`), whose
   * limiters must not meet the buckets and pauses of a run that is over.
   */
  seen = -Infinity;

  constructor(
    /** The clock every member reads, so that the buckets' times are on one clock. */
    readonly now: () => number,
    readonly registry: BucketRegistry,
    private readonly drop: () => void,
  ) {}

  /** Calls `tell` for every limiter of the credential but `from`. */
  others<M extends CredentialMember>(from: M, tell: (m: M) => void): void {
    if (this.members.size < 2) return;
    for (const m of [...this.members]) if (m !== from && this.members.has(m)) tell(m as M);
  }

  leave(member: CredentialMember): void {
    if (this.members.delete(member) && this.members.size === 0) this.drop();
  }
}

/** Per clock, per provider name and key digest: the state in use. */
const states = new WeakMap<SchedulerLike, Map<string, CredentialState>>();

/**
 * The state of the credential `id` (a digest of provider name and key) on `scheduler`, joined
 * by `member`; made with the first limiter's clock and `registry()`.
 */
export function joinCredential(
  scheduler: SchedulerLike,
  id: string,
  member: CredentialMember,
  now: () => number,
  registry: () => BucketRegistry,
): CredentialState {
  let byId = states.get(scheduler);
  if (!byId) {
    byId = new Map();
    states.set(scheduler, byId);
  }
  let state = byId.get(id);
  // The state's clock went back (a new virtual-time run): that state belongs to a time that is over.
  if (state && state.now() < state.seen) state = undefined;
  if (!state) {
    const map = byId;
    const made: CredentialState = new CredentialState(now, registry(), () => {
      if (map.get(id) === made) map.delete(id);
    });
    state = made;
    byId.set(id, state);
  }
  state.members.add(member);
  state.seen = Math.max(state.seen, state.now());
  return state;
}
