/**
 * A pool of limiters keyed by tenant: one limiter per credential, made on first use and
 * evicted once idle, for a backend that serves hundreds or thousands of customer tokens.
 */
import {
  asyncScheduler,
  BehaviorSubject,
  defer,
  finalize,
  type Observable,
  type SchedulerLike,
  type Subscription,
} from 'rxjs';
import { backgroundTimer, limiterClock } from './clock.js';
import { MAX_TIMER_MS } from './timer.js';
import { LimiterPoolFullError } from './errors.js';
import { showAllAs, showView } from './inspect.js';
import { Heap } from './heap.js';
import { keyLabel } from './keyLabel.js';
import type { Limiter } from './limiter.js';
import type { LimiterOptions } from './options.js';
import { parsePoolOptions, type LimiterPoolOptions } from './poolOptions.js';
import { shareLimiter, type SharedLimiter } from './registry.js';
import type { LimiterPoolSnapshot, LimiterSnapshot } from './state.js';

/**
 * Longest key `get` takes (as a request header line): a key comes from the caller's tenant
 * (a header, a JWT claim), and each new one is hashed three times and kept.
 */
const MAX_KEY_LENGTH = 8192;

interface Entry {
  readonly hold: SharedLimiter;
  /** `hold.limiter`, one object nearer: `get` reads it at every request. */
  readonly limiter: Limiter;
  /**
   * Last `get`: whole ms after the pool's `epoch`, rounded up. A small integer, which V8 keeps
   * in the entry itself; a time on the clock would be a number object of its own, written at
   * every `get` (one more read out of the CPU's caches per request at 10,000 tenants).
   */
  usedAt: number;
  /** Order of the last `get` among all the pool's (ties of `usedAt` within a ms are told apart). */
  usedSeq: number;
  /** `usedSeq` when the entry took its place in the Map (the sweep moves it if it differs). */
  placedSeq: number;
  /** The pool's subscription to its `state$`, while the pool's `state$` is observed. */
  watch: Subscription | undefined;
}

/**
 * A limiter of a pool at its cap that `makeRoom` found holding something: watched (its
 * `state$`) until it holds nothing, then back in the pool's `free`.
 */
interface Held {
  readonly key: string;
  readonly entry: Entry;
  sub: Subscription | undefined;
  /**
   * When what it holds is over, on the pool's clock: the end of the pause, block or spent window
   * in force (memory store), which ends without a change of state; `Infinity` while requests
   * are queued or in flight (its `state$` tells when they end).
   */
  until: number;
  /** Its place in the pool's `due` heap (-1: not in it). */
  i: number;
}

/** A limiter back in `free` from `held`, at its `usedSeq` then; its place in the `returned` heap. */
interface Returned {
  readonly key: string;
  readonly seq: number;
  i: number;
}

/** What `inspect` shows of a pool (made here: see limiter.ts's `inspectLimiter`). */
const inspectPool = /* @__PURE__ */ showView('LimiterPool', (p: LimiterPool) => p.snapshot());

/**
 * One limiter per tenant key; see {@link createLimiterPool}. Limiters are found by the key
 * itself (the credential): the pool keeps each live limiter's key in memory to find it, as the
 * caller does to send requests, and drops it on eviction; the key is never in state, events or
 * errors (each limiter shows its label).
 */
export class LimiterPool {
  /** The provider's name. */
  readonly provider: string;
  private readonly options: Omit<LimiterOptions, 'key'>;
  private readonly idleMs: number;
  private readonly max: number;
  private readonly stateIntervalMs: number;
  /** The limiters' scheduler (the `scheduler` option): the pool's timers run on it too. */
  readonly scheduler: SchedulerLike;
  /** Does the store keep the limit state outside the limiter (Redis)? */
  private readonly sharedStore: boolean;
  private readonly clock: () => number;
  /** When the pool was made, on its clock: entries' `usedAt` count from it. */
  private readonly epoch: number;
  /**
   * By key, in the order of creation or of the last move: the sweep moves each entry used since
   * it was placed to the end, so the order follows `usedAt` roughly, and exactly where it matters.
   */
  private readonly entries = new Map<string, Entry>();
  /**
   * With `max`: the keys of the limiters that held nothing when last looked at, each with its
   * entry's `usedSeq` when placed, in the order placed (so the first ones are the least recently
   * used; one used since it was placed is moved to the end when met, as in `entries`). The
   * others, found holding something by `makeRoom`, are in `held` until they hold nothing, then
   * come back here: `makeRoom` looks at this Map only, so busy tenants never hide idle ones.
   */
  private readonly free: Map<string, number> | undefined;
  /** With `max`: the limiters `makeRoom` found holding something, watched until they hold nothing. */
  private readonly held = new Map<string, Held>();
  /** Those of `held` holding only something in force until a time (`until`), soonest first. */
  private readonly due = new Heap<Held>((a, b) => a.until < b.until, { get: (h) => h.i, set: (h, i) => (h.i = i) });
  /** Limiters back in `free` from `held` (with their `usedSeq` then), least recently used first. */
  private readonly returned = new Heap<Returned>((a, b) => a.seq < b.seq, {
    get: (r) => r.i,
    set: (r, i) => (r.i = i),
  });
  private readonly returnedBy = new Map<string, Returned>();
  private sweepTimer: { unsubscribe(): void } | undefined;
  private sweepAt = Infinity;
  private created = 0;
  /** `get` calls so far: orders the entries' last uses. */
  private uses = 0;
  private evicted = 0;
  private closed = false;
  private readonly state = new BehaviorSubject<LimiterPoolSnapshot>(undefined as unknown as LimiterPoolSnapshot);
  /** Latest snapshot per live limiter, while `state$` is observed. */
  private readonly latest = new Map<Limiter, LimiterSnapshot>();
  /**
   * The pool's clock less a limiter's, for the few limiters whose clock is not the pool's (the
   * wall clock was stepped between the two clocks' making: clock.ts). Both clocks count the same
   * monotonic time, so it holds for the limiter's life. Absent: the same clock.
   */
  private readonly offsets = new Map<Limiter, number>();
  private watching = false;
  /** Subscribers of `state$`. */
  private watchers = 0;
  private publishTimer: Subscription | undefined;

  /**
   * The state of every live limiter, batched (at most one emission per `stateIntervalMs`);
   * replays the latest to each new subscriber, and completes when the pool is closed. For a
   * UI: which tenants are paused, blocked or near their limit.
   */
  readonly state$: Observable<LimiterPoolSnapshot>;

  /** Use {@link createLimiterPool}, which checks the options and names every bad one. */
  constructor(options: LimiterPoolOptions) {
    showAllAs(this, inspectPool);
    const { idleMs, max, stateIntervalMs, limiterOptions } = parsePoolOptions(options);
    this.options = limiterOptions;
    this.provider = limiterOptions.provider.name;
    this.idleMs = idleMs;
    this.max = max;
    this.free = max === Infinity ? undefined : new Map();
    this.stateIntervalMs = stateIntervalMs;
    this.scheduler = limiterOptions.scheduler ?? asyncScheduler;
    this.sharedStore = limiterOptions.store !== undefined && limiterOptions.store.kind !== 'memory';
    this.clock = limiterClock(this.scheduler);
    this.epoch = this.clock();
    this.state$ = defer(() => {
      this.watchers++;
      this.watch();
      this.publish();
      // The last subscriber gone, the pool stops listening to each limiter (a limiter with a
      // listener builds a snapshot on every change).
      return this.state.pipe(finalize(() => --this.watchers === 0 && this.unwatch()));
    });
  }

  /**
   * `JSON.stringify(pool)`, `util.inspect(pool)`, `console.log(pool)`: its snapshot (labels
   * only), not its internals, which hold every live tenant's key and the options' secrets.
   * (`util.inspect` is set in the constructor: `inspect.ts`.)
   */
  toJSON(): LimiterPoolSnapshot {
    return this.snapshot();
  }

  /** Limiters alive now. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The limiter of `key` (the tenant's credential, or any string naming its budget): the same
   * object while it lives, a new one after it was evicted. Call it per request rather than
   * keeping the limiter: a limiter kept past its eviction is no longer the pool's, and once a
   * second one is made for the same key, a request through the first fails with
   * `LimiterClosedError` (with the memory store; with a shared one both count in the store). Throws {@link LimiterPoolFullError} at `max`, and a
   * `TypeError` for a key that is not a string of 1 to 8,192 characters, or after `close()`.
   */
  get(key: string): Limiter {
    const now = this.clock();
    const found = this.entries.get(key);
    if (found) {
      // No reordering here (a Map delete and set cost half a `get` at 10,000 tenants): the
      // order is mended lazily, by the sweep and by `makeRoom`, which read `usedAt`.
      found.usedAt = this.since(now);
      found.usedSeq = ++this.uses;
      return found.limiter;
    }
    if (this.closed) throw new TypeError('rx-ratelimit: the limiter pool is closed');
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
      throw new TypeError(
        `createLimiterPool: pool.get(key): \`key\` must be a string of 1 to ${MAX_KEY_LENGTH} characters`,
      );
    }
    // The limiter to evict is chosen first (a full pool refuses before anything is made), but
    // evicted only once the new one is made: a `DuplicateLimiterError` evicts no one.
    const victim = this.entries.size >= this.max ? this.makeRoom(now, key) : undefined;
    let hold: SharedLimiter;
    try {
      hold = shareLimiter({ ...this.options, key } as LimiterOptions, `limiter pool of ${this.provider}`);
    } catch (error) {
      // Not made: the one chosen stays, first in line again if it was back from `held`.
      if (victim) this.returnedAgain(victim[0], victim[1]);
      throw error;
    }
    if (victim) this.unlist(victim[0], victim[1]);
    // Two clocks differ by more than clock.ts's tolerance (25 ms); two reads of one clock by a
    // fraction of a millisecond, or a few with a collection between them.
    const offset = this.clock() - hold.limiter.now();
    if (Math.abs(offset) >= 12) this.offsets.set(hold.limiter, offset);
    const seq = ++this.uses;
    const entry: Entry = {
      hold,
      limiter: hold.limiter,
      usedAt: this.since(now),
      usedSeq: seq,
      placedSeq: seq,
      watch: undefined,
    };
    this.entries.set(key, entry);
    this.free?.set(key, seq);
    this.created++;
    if (this.watching) this.watchEntry(entry);
    this.scheduleSweep(now + this.idleMs);
    // Last, with the pool in order: the evicted limiter's `state$` completes here, and a
    // subscriber may call the pool again (a `get` of that key, even `close()`).
    if (victim) this.retire(victim[1]);
    return hold.limiter;
  }

  /**
   * The pool's clock, epoch ms (virtual under a `TestScheduler`): its limiters', unless the wall
   * clock was stepped between the pool's making and a limiter's (clock.ts). Its snapshots show
   * every limiter's times on this clock.
   */
  now(): number {
    return this.clock();
  }

  /** `now` as an entry's `usedAt` (a small integer while it fits in one: about 12 days). */
  private since(now: number): number {
    const t = Math.ceil(now - this.epoch);
    return t === (t | 0) ? t | 0 : t;
  }

  /** Is a limiter alive for `key`? (Does not count as a use.) */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Each live limiter's current state, computed now. */
  snapshot(): LimiterPoolSnapshot {
    const limiters: LimiterSnapshot[] = [];
    for (const e of this.entries.values()) limiters.push(this.onPoolClock(e.hold.limiter, e.hold.limiter.snapshot));
    return this.snapshotOf(limiters);
  }

  /**
   * Closes every limiter (their `state$` complete, a shared store's connections close: such a
   * limiter then fails what waits and what is asked of it with `LimiterClosedError`) and the
   * pool's `state$`. Later `get` calls throw. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sweepTimer?.unsubscribe();
    this.sweepTimer = undefined;
    this.publishTimer?.unsubscribe();
    const all = [...this.entries.values()];
    this.entries.clear();
    this.free?.clear();
    this.returned.clear();
    this.returnedBy.clear();
    for (const h of [...this.held.values()]) this.release(h);
    for (const e of all) e.watch?.unsubscribe();
    this.latest.clear();
    this.offsets.clear();
    this.state.complete();
    await Promise.all(all.map((e) => e.hold.release()));
  }

  /**
   * Evicts the least recently used limiter that holds nothing, or throws (the error names
   * `wanted`, the new key, by its label) when none does. Those of `held` whose pause, block or
   * spent window is over by now go back to `free` first. Then looks at `free` only, from its
   * front: an entry used since it was placed there moves to the end (each move paid for by a
   * `get`), and one found holding something leaves it for `held` (paid for by its placing in
   * `free`), so the cost is O(1) amortised per `get` (O(log n) for a limiter leaving `due`),
   * whatever the number of busy tenants. The entries moved are looked at again, in the order of
   * their last use, if none before them was evictable: the pool refuses only when every limiter
   * holds something.
   */
  private makeRoom(now: number, wanted: string): [string, Entry] {
    for (let h = this.due.peek(); h !== undefined && h.until <= now; h = this.due.peek()) {
      this.due.remove(h);
      h.until = -Infinity;
      this.recheck(h, h.entry.limiter.snapshot);
    }
    const free = this.free as Map<string, number>;
    let victim: [string, Entry] | undefined;
    for (let pass = 0; pass < 2 && !victim && free.size > 0; pass++) {
      const moved: Array<[string, Entry]> = [];
      for (const [key, seq] of free) {
        const e = this.entries.get(key) as Entry;
        if (e.usedSeq !== seq) {
          moved.push([key, e]);
          continue;
        }
        if (this.evictable(e, now)) {
          victim = [key, e];
          break;
        }
        free.delete(key);
        this.hold(key, e);
      }
      moved.sort((x, y) => x[1].usedSeq - y[1].usedSeq);
      // One met on the way and used last before the one found (placed before it, used since)
      // is the least recently used: the first of them that holds nothing goes instead.
      if (victim) {
        const found = victim[1].usedSeq;
        const earlier = moved.find(([, e]) => e.usedSeq < found && this.evictable(e, now));
        if (earlier) victim = earlier;
      }
      for (const [key, e] of moved) {
        if (key === victim?.[0]) continue;
        free.delete(key);
        free.set(key, e.usedSeq);
      }
    }
    // So may one back from `held` (placed at the end when it came back, but used before).
    if (victim) victim = this.earlierReturned(victim, now);
    if (!victim) {
      const key = keyLabel(wanted, this.options.labelSecret);
      throw new LimiterPoolFullError({ provider: this.provider, key, max: this.max });
    }
    return victim;
  }

  /**
   * `victim`, or one back in `free` from `held` that was used before it and holds nothing: those
   * come back at the end of `free`, behind limiters used since. Looked at in the order of their
   * last use, each once (one found holding something again is left to the scan of `free`).
   */
  private earlierReturned(victim: [string, Entry], now: number): [string, Entry] {
    const free = this.free as Map<string, number>;
    for (let r = this.returned.peek(); r !== undefined && r.seq < victim[1].usedSeq; r = this.returned.peek()) {
      this.returned.remove(r);
      this.returnedBy.delete(r.key);
      const e = this.entries.get(r.key);
      if (e && free.get(r.key) === r.seq && e.usedSeq === r.seq && this.evictable(e, now)) return [r.key, e];
    }
    return victim;
  }

  /** Puts `key` back among those back from `held`, when it is in `free` at its last use. */
  private returnedAgain(key: string, e: Entry): void {
    if (this.returnedBy.has(key) || this.free?.get(key) !== e.usedSeq) return;
    const r: Returned = { key, seq: e.usedSeq, i: -1 };
    this.returnedBy.set(key, r);
    this.returned.push(r);
  }

  /** Watches `e`, found holding something, until it holds nothing: then it is back in `free`. */
  private hold(key: string, entry: Entry): void {
    const h: Held = { key, entry, sub: undefined, until: -Infinity, i: -1 };
    this.held.set(key, h);
    // Replays the current state at once (a snapshot that holds something: just looked at).
    const sub = entry.limiter.state$.subscribe((s) => this.recheck(h, s));
    if (this.held.get(key) === h) h.sub = sub;
    else sub.unsubscribe();
  }

  /** A watched limiter's state changed (or what it held in force is over): free again? */
  private recheck(h: Held, s: LimiterSnapshot): void {
    if (this.held.get(h.key) !== h) return;
    const now = this.clock();
    const until = this.heldUntil(h.entry.limiter, s, now);
    if (until <= now) {
      this.release(h);
      this.free?.set(h.key, h.entry.usedSeq);
      const r: Returned = { key: h.key, seq: h.entry.usedSeq, i: -1 };
      const before = this.returnedBy.get(h.key);
      if (before) this.returned.remove(before);
      this.returnedBy.set(h.key, r);
      this.returned.push(r);
      return;
    }
    if (until === h.until) return;
    h.until = until;
    if (until === Infinity) this.due.remove(h);
    else if (this.due.has(h)) this.due.update(h);
    else this.due.push(h);
  }

  /** Stops watching `h`. */
  private release(h: Held): void {
    this.held.delete(h.key);
    h.sub?.unsubscribe();
    h.sub = undefined;
    this.due.remove(h);
  }

  /** Moves `moved` to the end of the Map in the order of their last use (`placedSeq` follows). */
  private moveToEnd(moved: Array<[string, Entry]>): void {
    moved.sort((x, y) => x[1].usedSeq - y[1].usedSeq);
    for (const [key, e] of moved) {
      e.placedSeq = e.usedSeq;
      this.entries.delete(key);
      this.entries.set(key, e);
    }
  }

  /**
   * Nothing queued or in flight, and nothing in force it would forget: a pause, a block (with
   * any store), a bucket spent until a reset still ahead (with the memory store).
   */
  private evictable(e: Entry, now: number): boolean {
    return this.heldUntil(e.hold.limiter, e.hold.limiter.snapshot, now) <= now;
  }

  /**
   * Until when, on the pool's clock, `limiter` in state `s` (on its own clock) holds something
   * its eviction would forget ({@link evictable} from then on): `-Infinity` if nothing,
   * `Infinity` while requests are queued or in flight (or a block has no end), else the end of
   * the last pause, block or spent bucket in force.
   */
  private heldUntil(limiter: Limiter, s: LimiterSnapshot, now: number): number {
    if (s.queued > 0 || s.inFlight > 0) return Infinity;
    const offset = this.offsets.get(limiter) ?? 0;
    const own = now - offset;
    let until = -Infinity;
    // A pause or block is kept with a shared store too: Redis may lose it (restarted empty,
    // failed over, evicted), and only a limiter that obeys it writes it back; evicted, the next
    // limiter of the tenant would be granted inside it. One Map entry until it ends.
    if (s.blocked !== null) until = s.blocked.until ?? Infinity;
    if (s.pausedUntil !== null && s.pausedUntil > own) until = Math.max(until, s.pausedUntil);
    // A shared store keeps spent buckets: the next limiter reads them back.
    if (!this.sharedStore)
      for (const b of s.buckets) {
        if (b.inFlight > 0) return Infinity;
        if (b.remaining === 0 && b.resetAt !== null && b.resetAt > own) until = Math.max(until, b.resetAt);
      }
    return until === -Infinity || until === Infinity ? until : until + offset;
  }

  /** `limiter`'s snapshot `s` with its instants on the pool's clock (most are already). */
  private onPoolClock(limiter: Limiter, s: LimiterSnapshot): LimiterSnapshot {
    const offset = this.offsets.get(limiter);
    if (offset === undefined) return s;
    const at = (t: number | null): number | null => (t === null ? null : t + offset);
    return {
      ...s,
      buckets: s.buckets.map((b) => ({ ...b, resetAt: at(b.resetAt) })),
      pausedUntil: at(s.pausedUntil),
      blocked: s.blocked && { ...s.blocked, since: s.blocked.since + offset, until: at(s.blocked.until) },
      updatedAt: s.updatedAt + offset,
    };
  }

  /** Takes an evicted limiter out of the pool's books (then {@link retire} it, once they are in order). */
  private unlist(key: string, e: Entry): void {
    this.entries.delete(key);
    this.free?.delete(key);
    const r = this.returnedBy.get(key);
    if (r) {
      this.returned.remove(r);
      this.returnedBy.delete(key);
    }
    const h = this.held.get(key);
    if (h) this.release(h);
    this.evicted++;
    e.watch?.unsubscribe();
    this.latest.delete(e.hold.limiter);
    this.offsets.delete(e.hold.limiter);
    if (this.watching) this.schedulePublish();
  }

  /**
   * Closes an evicted limiter (its state$ completes) unless another holder (a NestJS
   * registration of the same provider and key) still uses it. A closed limiter of a shared
   * store refuses requests; one the pool evicted (`retire`) goes on answering a request that
   * still holds it (a retry after a pause longer than `idleMs`). Runs its `state$` subscribers.
   */
  private retire(e: Entry): void {
    void e.hold.retire();
  }

  /** One timer for the whole pool, at the oldest entry's idle deadline. */
  private scheduleSweep(at: number): void {
    if (this.closed || (this.sweepTimer && this.sweepAt <= at)) return;
    this.sweepTimer?.unsubscribe();
    this.sweepAt = at;
    this.sweepTimer = backgroundTimer(
      this.scheduler,
      () => {
        this.sweepTimer = undefined;
        this.sweepAt = Infinity;
        this.sweep();
      },
      // Past 2^31 - 1 ms Node fires after 1 ms: a longer `idleMs` is slept in pieces (a sweep
      // that finds nothing idle sets the timer again).
      Math.min(MAX_TIMER_MS, Math.max(0, at - this.clock())),
    );
  }

  /**
   * Evicts the limiters idle for `idleMs` that hold nothing. One still busy (or with a pause in
   * force) is looked at again `idleMs` later. Walks from the front of the Map: an entry used
   * since it was placed moves to the end (its place now follows its `usedAt`), and the walk
   * stops at the first entry that was not used since it was placed and is not yet idle. Each
   * entry moves at most once per sweep, and only if it was used since the last: the cost is
   * that of the limiters due plus those used since, never a walk of every tenant per `get`.
   * (An entry moved behind others placed earlier may be evicted up to an `idleMs` late.)
   */
  private sweep(): void {
    const now = this.clock();
    const moved: Array<[string, Entry]> = [];
    const evicted: Entry[] = [];
    for (const [key, e] of this.entries) {
      const idle = e.usedAt + this.idleMs <= now - this.epoch;
      if (!idle && e.usedSeq !== e.placedSeq) {
        moved.push([key, e]);
        continue;
      }
      if (!idle) break;
      if (this.evictable(e, now)) {
        this.unlist(key, e);
        evicted.push(e);
      } else {
        e.usedAt = this.since(now);
        e.usedSeq = ++this.uses;
        moved.push([key, e]);
      }
    }
    // Moved in the order of their last use, so the Map stays ordered by it from here on.
    this.moveToEnd(moved);
    const oldest = this.entries.values().next();
    if (!oldest.done) this.scheduleSweep(this.epoch + oldest.value.usedAt + this.idleMs);
    // Last, with the pool in order (their subscribers may call it again, even close it).
    for (const e of evicted) this.retire(e);
  }

  private watch(): void {
    if (this.watching || this.closed) return;
    this.watching = true;
    for (const e of this.entries.values()) this.watchEntry(e);
  }

  private unwatch(): void {
    this.watching = false;
    for (const e of this.entries.values()) {
      e.watch?.unsubscribe();
      e.watch = undefined;
    }
    this.latest.clear();
    this.publishTimer?.unsubscribe();
    this.publishTimer = undefined;
  }

  private watchEntry(e: Entry): void {
    const limiter = e.hold.limiter;
    e.watch = limiter.state$.subscribe((s) => {
      this.latest.set(limiter, s);
      this.schedulePublish();
    });
  }

  /** Batches changes: one snapshot of the pool per `stateIntervalMs`. */
  private schedulePublish(): void {
    if (this.publishTimer && !this.publishTimer.closed) return;
    this.publishTimer = this.scheduler.schedule(
      () => {
        this.publishTimer = undefined;
        this.publish();
      },
      Math.min(MAX_TIMER_MS, this.stateIntervalMs),
    );
  }

  private publish(): void {
    if (this.closed) return;
    const limiters: LimiterSnapshot[] = [];
    for (const e of this.entries.values()) {
      const s = this.latest.get(e.hold.limiter);
      if (s) limiters.push(this.onPoolClock(e.hold.limiter, s));
    }
    this.state.next(this.snapshotOf(limiters));
  }

  private snapshotOf(limiters: LimiterSnapshot[]): LimiterPoolSnapshot {
    return {
      size: this.entries.size,
      max: this.max === Infinity ? null : this.max,
      limiters,
      created: this.created,
      evicted: this.evicted,
      updatedAt: this.clock(),
    };
  }
}

/**
 * A pool of limiters, one per tenant key (each customer's token), for a backend that serves
 * many: `pool.get(key)` returns the key's limiter, made on first use with the pool's options,
 * and evicted once idle for `idleMs` with nothing queued, in flight or in force (its `state$`
 * completes). One timer serves the whole pool. A limiter with a pause or a block in force is
 * not evicted until it is over (with `redisStore` too: it writes them back to a Redis that lost
 * them). With `redisStore`, every limiter shares the store's one subscriber connection, and a
 * spent budget outlives an eviction in Redis; with the memory store, a limiter with a spent
 * bucket in force is not evicted until its reset.
 *
 * ```ts
 * import { createLimiterPool, providers, rateLimit } from 'rx-ratelimit';
 * import { defer } from 'rxjs';
 *
 * const pool = createLimiterPool({ provider: providers.pipedrive({ plan: 'advanced' }), idleMs: 300_000 });
 * const deals$ = (token: string) => {
 *   const request$ = defer(() => fetch('https://api.pipedrive.com/v1/deals', { headers: { 'x-api-token': token } }));
 *   // `pool.get` at each subscription: the live limiter, and a LimiterPoolFullError reaches `error`.
 *   return defer(() => request$.pipe(rateLimit(pool.get(token), { method: 'GET', url: '/v1/deals' })));
 * };
 * pool.state$.subscribe((s) => console.log(s.limiters.filter((l) => l.pausedUntil !== null).length, 'paused'));
 * ```
 */
export function createLimiterPool(options: LimiterPoolOptions): LimiterPool {
  return new LimiterPool(options);
}
