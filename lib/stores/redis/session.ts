/**
 * One limiter's connection to the Redis store: admission, responses, releases, pauses and
 * blocks through the scripts, and the local share while Redis is away (localShare.ts).
 */
import { randomBytes } from 'node:crypto';

import type {
  StoreAcquireOptions,
  StoreBlock,
  StoreBucketSpec,
  StoreContext,
  StoreGrant,
  StoreReading,
  StoreSession,
} from '../../core/store.js';
import {
  acquireBucketArgs,
  decodeAcquire,
  duration,
  finite,
  observeArgs,
  observeLearnt,
  parseBlockNotice,
  releaseKinds,
} from './codec.js';
import { type ScriptClient, type SharedSubscriber, within } from './connection.js';
import type { redisKeys } from './keys.js';
import { LocalLeases } from './localLeases.js';
import { LocalShares, type Known } from './localShare.js';
import type { Parsed } from './options.js';
import { PendingEnds } from './pendingEnds.js';
import { MAX_SERVER_WAIT_LIMIT_MS, PROBE_TRIP_MARGIN_MS, PROBE_TRIPS } from '../../core/window.js';

const PEER_TTL_MS = 10_000;

/**
 * Most leases whose send time is kept for OBSERVE (a request's lease lives from its grant to its
 * answer or release; past it, the oldest are forgotten and their answers go without one).
 */
const MAX_SEND_TIMES = 10_000;

/**
 * Most buckets whose last figures are kept for an outage (local shares): a provider names a
 * bucket per endpoint (Atlassian, Fieldwire), one per path a caller sends to. Past it, the least
 * recently read is forgotten: in an outage it gets the share of a bucket never read.
 */
const MAX_KNOWN = 256;

/**
 * The store's clock, for durations only (outage times, local shares): monotonic, so a step
 * of the wall clock (NTP, a VM resumed) neither stalls nor hurries them. Never compared with
 * the limiter's clock or Redis's: every time exchanged is a duration.
 */
const monotonic = (): number => performance.now();

/**
 * How often a limiter that obeys a pause or a block checks that Redis still holds it, writing
 * it back where Redis lost it (restarted empty, failed over, evicted it, or never got the write):
 * one call a second per limiter paused or blocked, none while nothing is in force.
 */
const KEEP_MS = 1000;

/**
 * A pause or block this limiter obeys (its own, or read from Redis), kept in Redis while it is
 * in force: on the store's monotonic clock.
 */
interface Held {
  /** When it ends (`Infinity`: a block until `unblock()`). */
  readonly until: number;
  /** When this process took it on: a lift in Redis after it means it is over (never written back). */
  readonly since: number;
  /** The pause's reason, or the block's status. */
  readonly why: string | number;
}

export class RedisSession implements StoreSession {
  private readonly keys: ReturnType<typeof redisKeys>;
  private readonly redis: ScriptClient;
  private readonly peer = randomBytes(8).toString('hex');
  private seq = 0;
  private peers = 1;
  private readonly known = new Map<string, Known>();
  private down: { since: number; retryAt: number } | undefined;
  /** What this process may spend while Redis is away. */
  private readonly local: LocalShares;
  /** Requests sent on the local share, still out: carried into Redis once it answers. */
  private readonly localLeases: LocalLeases;
  /** Spent locally in a window still running when Redis came back: debited on the next call. */
  private readonly debits = new Map<string, { units: number; resetAt: number }>();
  /** Leases whose end could not be written: ended once Redis answers again. */
  private readonly pendingEnds = new PendingEnds();
  private readonly listeners = new Set<() => void>();
  private readonly blockListeners = new Set<(block: StoreBlock | null) => void>();
  private readonly resumeListeners = new Set<(options: { readonly buckets: boolean }) => void>();
  /** The last call issued before a block was lifted: a block in its answer is out of date. */
  private unblockedSeq = 0;
  /** The last call issued before a resume: a pause in its answer is out of date. */
  private resumedSeq = 0;
  /** Ends this session's subscription to its channel on the store's shared connection. */
  private unsubscribe: (() => void) | undefined;
  private closed = false;
  /**
   * When each lease of ours in flight was asked for (monotonic ms, no later than the request's
   * send): OBSERVE tells a late answer to a request sent before the window's reset from one
   * that opens a new window. Oldest first; at most {@link MAX_SEND_TIMES}.
   */
  private readonly sentAt = new Map<string, number>();
  /** The limiter's reset guard (from its last acquire): how long after its window a rolling call still counts. */
  private guardMs = 0;
  /**
   * The longest round trip of our answered leases, kept for {@link PROBE_TRIPS} answers, then the
   * latest one's (`noteTrip`): a lease let go on its way may still reach the server that long
   * after it went (`release`).
   */
  private tripMs = 0;
  private tripAge = 0;
  /**
   * The pause and the block this limiter obeys: Redis may lose them (restarted empty, failed
   * over, maxmemory, a write that failed while it was away), and the other processes, or the
   * next limiter of a pool, would then send into them. Written back (`keep`) when Redis answers
   * again, when an answer shows none, every {@link KEEP_MS} while in force, and at `close`.
   */
  private heldPause: Held | undefined;
  private heldBlock: Held | undefined;
  private keepTimer: ReturnType<typeof setTimeout> | undefined;
  /** The write-back in flight (one at a time). */
  private keeping: Promise<void> | undefined;

  /** Only `emit`: the context's `key` is the credential, hashed into `keys` and never kept. */
  private readonly emit: StoreContext['emit'];

  constructor(
    private readonly opts: Parsed,
    ctx: StoreContext,
    keys: ReturnType<typeof redisKeys>,
    subscriber: SharedSubscriber | undefined,
  ) {
    this.keys = keys;
    this.emit = ctx.emit;
    this.redis = opts.client as unknown as ScriptClient;
    this.local = new LocalShares({
      known: this.known,
      peers: () => this.peers,
      guardMs: () => this.guardMs,
      retryMs: opts.retryMs,
    });
    this.localLeases = new LocalLeases(opts.leaseMs);
    if (subscriber) this.unsubscribe = subscriber.add(keys.channel, (message) => this.onMessage(message));
  }

  acquire(buckets: readonly StoreBucketSpec[], count: number, o: StoreAcquireOptions): Promise<StoreGrant> {
    return this.ask(buckets, count, o, false);
  }

  /** {@link acquire}; `repaired`: a key of another type was deleted for this request already. */
  private async ask(
    buckets: readonly StoreBucketSpec[],
    count: number,
    o: StoreAcquireOptions,
    repaired: boolean,
  ): Promise<StoreGrant> {
    const now = monotonic();
    this.guardMs = o.resetGuardMs;
    if (this.down && now < this.down.retryAt) return this.localGrant(buckets, count, o, now);
    const keys = [this.keys.pause, this.keys.peers];
    const seq = ++this.seq;
    const args: Array<string | number> = [
      count,
      `${this.peer}:${seq}`,
      this.opts.leaseMs,
      this.opts.keyTtlMs,
      o.resetGuardMs,
      o.coldStartConcurrency,
      this.peer,
      PEER_TTL_MS,
      // Back from an outage: the peers last seen, and how long ago the outage began (up to a
      // call's timeout before it was declared).
      this.down ? `${this.peers}:${Math.ceil(now - this.down.since + this.opts.timeoutMs)}` : '',
      this.reserveMs(),
    ];
    const carry = this.localLeases.uncarried(buckets, now);
    buckets.forEach((b, i) => {
      keys.push(this.keys.bucket(b.name), this.keys.inflight(b.name), this.keys.log(b.name));
      const share = this.down ? (this.local.get(b.name)?.perWindow ?? 1) : '';
      args.push(...acquireBucketArgs(b, this.debitArgs(b.name, now), share, o.costs?.[i] ?? 1, carry.costs[i] ?? []));
    });
    let reply: Array<string | number>;
    const sentAt = monotonic();
    try {
      reply = await this.call(this.redis.rxrlAcquire(keys.length, ...keys, ...args));
    } catch (error) {
      // The call may still run when Redis comes back: its leases are ended then.
      const failedAt = monotonic();
      for (let k = 1; k <= count; k++) this.pend(`${this.peer}:${seq}:${k}`, buckets, failedAt);
      for (let k = 1; k <= carry.leases.length; k++) this.pend(`${this.peer}:${seq}:c${k}`, buckets, failedAt);
      // A key of another type (by hand, another version) failed the script, and would fail
      // every call while it lives: deleted, and asked again once.
      if (!repaired && wrongType(error) && (await this.repair(keys))) return this.ask(buckets, count, o, true);
      return this.failed(error, buckets, count, o);
    }
    const at = monotonic();
    this.recovered(at);
    this.endPending(at);
    for (const b of buckets) this.debits.delete(b.name);
    const { blocking, blockMs, states, ...r } = decodeAcquire(reply, buckets);
    let { granted, wait } = r;
    // A pause or block read before this process resumed the credential is out of date.
    let pauseMs = seq <= this.resumedSeq ? 0 : r.pauseMs;
    let pauseReason = r.pauseReason;
    this.peers = r.peers;
    let blocked: StoreBlock | undefined =
      blockMs === undefined || seq <= this.unblockedSeq || seq <= this.resumedSeq
        ? undefined
        : { ms: blockMs < 0 ? null : blockMs, status: r.blockStatus };
    // What Redis holds is obeyed from now on (a pause past what any limiter obeys is garbage,
    // lifted by the admission); what this limiter holds and Redis lost (taken on before this
    // call was sent: not a write still on its way) is written back, and holds this answer too.
    if (pauseMs > 0 && pauseMs <= MAX_SERVER_WAIT_LIMIT_MS)
      this.heldPause = extend(this.heldPause, at + pauseMs, sentAt, pauseReason);
    if (blocked)
      this.heldBlock = extend(this.heldBlock, blocked.ms === null ? Infinity : at + blocked.ms, sentAt, blocked.status);
    if (this.heldPause || this.heldBlock) this.keepLater();
    const pause = this.inForce(this.heldPause, at);
    const block = this.inForce(this.heldBlock, at);
    if ((pause && pauseMs <= 0 && pause.since <= sentAt) || (block && !blocked && block.since <= sentAt))
      void this.keep();
    if (pause && pauseMs <= 0) {
      pauseMs = pause.until - at;
      pauseReason = String(pause.why);
    }
    if (block && !blocked)
      blocked = { ms: block.until === Infinity ? null : block.until - at, status: Number(block.why) };
    if (granted > 0 && (pauseMs > 0 || blocked)) {
      // Granted by a Redis that lost the pause, or asked for before it was met: nothing goes.
      this.releaseAll(
        Array.from({ length: granted }, (_, k) => `${this.peer}:${seq}:${k + 1}`),
        buckets,
      );
      granted = 0;
      wait = 0;
    }
    for (const state of states) {
      // The most recently read last (the least recently read is forgotten past MAX_KNOWN).
      this.known.delete(state.name);
      this.known.set(state.name, {
        limit: state.limit,
        remaining: state.remaining,
        resetAt: state.resetInMs === undefined ? undefined : at + state.resetInMs,
        windowMs: state.windowMs,
        restorePerSecond: state.restorePerSecond,
        at,
      });
    }
    for (const oldest of this.known.keys()) {
      if (this.known.size <= MAX_KNOWN) break;
      this.known.delete(oldest);
    }
    const prefix = `${this.peer}:${seq}`;
    if (carry.leases.length > 0) {
      const { carried, answered } = this.localLeases.carry(carry.leases, prefix, r.carriedFirst);
      for (const c of carried) this.sentAt.set(c.lease, c.at);
      if (answered.length > 0) this.releaseAll(answered, buckets);
    }
    const leases = Array.from({ length: granted }, (_, k) => `${prefix}:${k + 1}`);
    for (const lease of leases) this.sentAt.set(lease, sentAt);
    for (const oldest of this.sentAt.keys()) {
      if (this.sentAt.size <= MAX_SEND_TIMES) break;
      this.sentAt.delete(oldest);
    }
    return {
      leases,
      // Redis measured the wait when it ran the script, some time between the send and now:
      // counted from the send, the next call reaches Redis about when the wait ends (Redis
      // decides then; asking early only costs another call).
      waitMs: granted > 0 || pauseMs > 0 ? undefined : wait === -1 ? undefined : Math.max(0, wait - (at - sentAt)),
      blockedBy: buckets.find((b) => this.keys.bucket(b.name) === blocking)?.name,
      pause: pauseMs > 0 ? { ms: pauseMs, reason: pauseReason } : undefined,
      buckets: states,
      blocked,
    };
  }

  observe(
    lease: string | undefined,
    readings: readonly StoreReading[],
    buckets: readonly StoreBucketSpec[],
    learnt?: (bucket: string, cost: number) => void,
  ): void | Promise<void> {
    const isLocal = lease !== undefined && lease.startsWith('local:');
    // A local lease that Redis holds in flight answers as that lease, with the index Redis gave it.
    const carried = isLocal ? this.localLeases.end(lease) : undefined;
    const held = isLocal ? carried?.lease : lease;
    const read = carried ? readings.map((r) => ({ ...r, index: carried.index.get(r.name) ?? r.index })) : readings;
    const sent = held === undefined ? undefined : this.sentAt.get(held);
    if (held !== undefined) this.sentAt.delete(held);
    if (this.down || isLocal) {
      this.local.observe(readings, monotonic());
      if (this.down) {
        if (held !== undefined) this.pend(held, buckets, monotonic());
        return;
      }
    }
    if (sent !== undefined) this.noteTrip(monotonic() - sent);
    const sentAgo = sent === undefined ? '' : duration(monotonic() - sent);
    const keys = buckets.flatMap((b) => [this.keys.bucket(b.name), this.keys.inflight(b.name), this.keys.log(b.name)]);
    keys.push(this.keys.pause);
    const args = [held ?? '', this.opts.keyTtlMs, this.keys.channel, sentAgo, this.guardMs];
    args.push(...observeArgs(buckets, read, learnt !== undefined && !isLocal));
    const shared = held === undefined ? undefined : [held];
    const call = this.redis.rxrlObserve(keys.length, ...keys, ...args);
    this.fire(call, keys, shared, buckets);
    // A failed call is handled by `fire`: nothing was learnt. Timed out as `fire` times it: a
    // Redis that stalls ends the learning with nothing learnt (the requests held for it go on
    // the local share) rather than holding them for as long as it stalls.
    if (learnt && !isLocal)
      return this.call(call).then(
        (reply) => {
          if (!this.closed) for (const [name, cost] of observeLearnt(reply, buckets)) learnt(name, cost);
        },
        () => undefined,
      );
  }

  release(lease: string, buckets: readonly StoreBucketSpec[]): void {
    const held = lease.startsWith('local:') ? this.localLeases.end(lease)?.lease : lease;
    if (held === undefined) return;
    const sent = this.sentAt.get(held);
    this.sentAt.delete(held);
    const now = monotonic();
    if (this.down) {
      this.pend(held, buckets, now);
      return;
    }
    // Let go on its way, it may still reach the server until its send plus the longest trip.
    const arrivesIn = sent === undefined || this.tripMs === 0 ? 0 : sent + this.tripMs + PROBE_TRIP_MARGIN_MS - now;
    this.releaseAll([held], buckets, arrivesIn);
  }

  /** An answered lease's round trip (`tripMs`). */
  private noteTrip(ms: number): void {
    const trip = ms > 0 ? Math.ceil(ms) : 0;
    if (trip >= this.tripMs || ++this.tripAge >= PROBE_TRIPS) {
      this.tripMs = trip;
      this.tripAge = 0;
    }
  }

  pause(ms: number, reason: string): void {
    // A pause already over (a Retry-After date in the past) is none: nothing to write.
    if (!(ms > 0)) return;
    const now = monotonic();
    this.heldPause = extend(this.heldPause, now + ms, now, reason);
    this.keepLater();
    this.fire(this.redis.rxrlPause(1, this.keys.pause, duration(ms), reason, this.opts.keyTtlMs, this.keys.channel), [
      this.keys.pause,
    ]);
  }

  resume(options: { readonly buckets: boolean }): void {
    this.resumedSeq = this.seq;
    this.heldPause = undefined;
    if (options.buckets) {
      this.unblockedSeq = this.seq;
      this.heldBlock = undefined;
    }
    this.fire(
      this.redis.rxrlResume(1, this.keys.pause, this.keys.channel, this.opts.keyTtlMs, options.buckets ? 1 : 0),
      [this.keys.pause],
    );
  }

  onResume(listener: (options: { readonly buckets: boolean }) => void): () => void {
    this.resumeListeners.add(listener);
    return () => this.resumeListeners.delete(listener);
  }

  exhaust(bucket: StoreBucketSpec, ms: number, options?: { readonly told?: boolean }): void {
    this.local.exhaust(bucket.name, monotonic() + ms);
    this.fire(
      this.redis.rxrlExhaust(
        3,
        this.keys.bucket(bucket.name),
        this.keys.pause,
        this.keys.inflight(bucket.name),
        duration(ms),
        this.opts.keyTtlMs,
        this.keys.channel,
        finite(bucket.limit),
        finite(bucket.windowMs),
        bucket.rolling ? 1 : 0,
        finite(bucket.restorePerSecond),
        options?.told ? 1 : 0,
      ),
      [this.keys.bucket(bucket.name), this.keys.pause, this.keys.inflight(bucket.name)],
    );
  }

  block(ms: number | null, status: number): void {
    const left = ms === null || !Number.isFinite(ms) ? '' : Math.max(1, duration(ms));
    const now = monotonic();
    this.heldBlock = extend(this.heldBlock, left === '' ? Infinity : now + left, now, status);
    this.keepLater();
    this.fire(this.redis.rxrlBlock(1, this.keys.pause, left, status, this.opts.keyTtlMs, this.keys.channel), [
      this.keys.pause,
    ]);
  }

  unblock(): void {
    this.unblockedSeq = this.seq;
    this.heldBlock = undefined;
    this.fire(this.redis.rxrlUnblock(1, this.keys.pause, this.keys.channel, this.opts.keyTtlMs), [this.keys.pause]);
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onBlock(listener: (block: StoreBlock | null) => void): () => void {
    this.blockListeners.add(listener);
    return () => this.blockListeners.delete(listener);
  }

  async close(): Promise<void> {
    // What this limiter obeys stays in Redis for the next limiter of the credential (a pool's
    // replacement, another process): written back if Redis lost it, before the session goes.
    const kept = this.closed || this.down ? undefined : this.keep();
    this.closed = true;
    clearTimeout(this.keepTimer);
    this.keepTimer = undefined;
    this.listeners.clear();
    this.blockListeners.clear();
    this.resumeListeners.clear();
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await kept;
  }

  /** Units this process spent locally in a window still running, and when it ends (ms from now). */
  private debitArgs(name: string, now: number): [number, number | ''] {
    const share = this.down ? this.local.get(name) : undefined;
    const debit = this.down ? undefined : (this.debits.get(name) ?? undefined);
    const spent = share ? this.local.spentOf(share, now) : undefined;
    const units = spent?.units ?? debit?.units ?? 0;
    const resetAt = spent ? spent.resetAt : debit?.resetAt;
    if (units <= 0 || resetAt === undefined || resetAt <= now) return [0, ''];
    return [units, Math.ceil(resetAt - now)];
  }

  /**
   * How long the shares of processes that may still be on local budgets stay reserved after
   * this one comes back: long enough for them to try Redis again a few times.
   */
  private reserveMs(): number {
    return Math.max(10_000, 5 * (this.opts.retryMs + this.opts.timeoutMs));
  }

  /** A change notice on this credential's channel (another process, or this one). */
  private onMessage(message: string): void {
    if (this.closed) return;
    if (message === 'resume' || message === 'resume:pause') {
      const buckets = message === 'resume';
      this.resumedSeq = this.seq;
      this.heldPause = undefined;
      if (buckets) {
        this.unblockedSeq = this.seq;
        this.heldBlock = undefined;
      }
      for (const l of this.resumeListeners) l({ buckets });
    }
    const block = parseBlockNotice(message);
    if (block === null) {
      this.unblockedSeq = this.seq;
      this.heldBlock = undefined;
    } else if (block !== undefined) {
      const now = monotonic();
      this.heldBlock = extend(this.heldBlock, block.ms === null ? Infinity : now + block.ms, now, block.status);
      this.keepLater();
    }
    if (block !== undefined) for (const l of this.blockListeners) l(block);
    for (const l of this.listeners) l();
  }

  /** The call's answer, or a rejection after `timeoutMs` (connection.ts). */
  private call<T>(promise: Promise<T>): Promise<T> {
    return within(promise, this.opts.timeoutMs);
  }

  /**
   * A write whose answer nobody waits for: a failure marks Redis unavailable. A write that ends
   * leases is repeated once Redis answers (it may never have run; ending a lease twice is harmless).
   * One that met a key of another type (`keys`: those it touched) deletes it instead: Redis
   * answers, and the leases end with the next call.
   */
  private fire(
    promise: Promise<unknown>,
    keys: readonly string[],
    leases?: readonly string[],
    buckets?: readonly StoreBucketSpec[],
  ): void {
    this.call(promise).catch((error: unknown) => {
      if (this.closed) return;
      const now = monotonic();
      if (leases !== undefined && buckets !== undefined) for (const lease of leases) this.pend(lease, buckets, now);
      // A key of another type is deleted; one that could not be is reported as any failure.
      if (!wrongType(error)) this.markDown(error, now);
      else
        void this.repair(keys).then((repaired) => {
          if (!repaired && !this.closed) this.markDown(error, now);
        });
    });
  }

  /**
   * Deletes those of `keys` (this credential's) that hold another type than the store gives
   * them; whether any was. A repair that fails deletes nothing and resolves `false`: the call
   * that met the key reports the failure (store-unavailable), as before.
   */
  private async repair(keys: readonly string[]): Promise<boolean> {
    const base = this.keys.pause.slice(0, -'pause'.length);
    const own: string[] = [];
    const types: string[] = [];
    for (const k of keys) {
      const rest = k.startsWith(base) ? k.slice(base.length) : '';
      const type =
        rest.startsWith('bucket:') || rest === 'pause'
          ? 'hash'
          : rest.startsWith('inflight:') || rest === 'peers'
            ? 'zset'
            : rest.startsWith('log:')
              ? 'list'
              : undefined;
      if (type === undefined) continue;
      own.push(k);
      types.push(type);
    }
    if (own.length === 0) return false;
    try {
      return (await this.call(this.redis.rxrlRepair(own.length, ...own, ...types))) > 0;
    } catch {
      return false;
    }
  }

  /** Ends leases in Redis (one call). */
  private releaseAll(leases: readonly string[], buckets: readonly StoreBucketSpec[], arrivesIn = 0): void {
    const keys = [
      ...buckets.flatMap((b) => [this.keys.inflight(b.name), this.keys.bucket(b.name), this.keys.log(b.name)]),
      this.keys.pause,
    ];
    this.fire(
      this.redis.rxrlRelease(
        keys.length,
        ...keys,
        this.keys.channel,
        this.opts.keyTtlMs,
        this.guardMs,
        releaseKinds(buckets),
        arrivesIn > 0 ? duration(arrivesIn) : '',
        ...leases,
      ),
      keys,
      leases,
      buckets,
    );
  }

  /** Keeps a lease to end once Redis answers (pendingEnds.ts). */
  private pend(lease: string, buckets: readonly StoreBucketSpec[], now: number): void {
    this.pendingEnds.add(lease, buckets, now);
  }

  /** Ends the pending leases, Redis having answered (those past `leaseMs` are dropped). */
  private endPending(now: number): void {
    for (const batch of this.pendingEnds.take(now, this.opts.leaseMs)) this.releaseAll(batch.leases, batch.buckets);
  }

  private markDown(error: unknown, now: number): void {
    if (this.closed) return;
    if (this.down) {
      this.down.retryAt = now + this.opts.retryMs;
      return;
    }
    this.down = { since: now, retryAt: now + this.opts.retryMs };
    this.local.clear();
    this.emit({
      type: 'store-unavailable',
      store: 'redis',
      error: error instanceof Error ? error.message : String(error),
    });
  }

  /** Redis answers again; `rewrite`: the pause and block in force are written back (`keep`). */
  private recovered(now: number, rewrite = true): void {
    if (!this.down) return;
    const downMs = now - this.down.since;
    this.down = undefined;
    // What was spent locally in windows still running is debited on the next call per bucket.
    for (const [name, share] of this.local.entries()) {
      const spent = this.local.spentOf(share, now);
      if (spent.units > 0 && spent.resetAt !== undefined && spent.resetAt > now)
        this.debits.set(name, { units: spent.units, resetAt: spent.resetAt });
    }
    this.local.clear();
    this.emit({ type: 'store-recovered', store: 'redis', downMs });
    // A pause or block met, or read, while Redis was away (its write failed), or that a Redis
    // restarted empty lost: written back before the others ask.
    if (rewrite) void this.keep();
  }

  /** `held` if it is still in force at `now` (else forgotten). */
  private inForce(held: Held | undefined, now: number): Held | undefined {
    return held !== undefined && held.until > now ? held : undefined;
  }

  /** Checks again in {@link KEEP_MS} while a pause or block is in force (one timer per session). */
  private keepLater(): void {
    if (this.keepTimer !== undefined || this.closed) return;
    this.keepTimer = setTimeout(() => {
      this.keepTimer = undefined;
      const now = monotonic();
      if (!this.inForce(this.heldPause, now)) this.heldPause = undefined;
      if (!this.inForce(this.heldBlock, now)) this.heldBlock = undefined;
      if (this.heldPause === undefined && this.heldBlock === undefined) return;
      void this.keep().then(() => this.keepLater());
    }, KEEP_MS);
    // Never what keeps a process alive.
    this.keepTimer.unref?.();
  }

  /**
   * Writes the pause and block in force back where Redis lost them (PAUSE and BLOCK only ever
   * extend, and announce only what they wrote: where Redis holds them this is one call that
   * changes nothing). Not over a lift (resume, unblock) that came after this limiter took them
   * on, which it may not have heard of yet (no subscription, a notice on its way): that drops
   * them here. One round at a time; a failure marks Redis unavailable, an answer ends the outage.
   */
  private keep(): Promise<void> {
    if (this.keeping) return this.keeping;
    const now = monotonic();
    // While Redis is away, only when a call is due (as the admissions': `retryAt`): a client's
    // offline queue keeps each call, and sends it on reconnect with a duration measured when it
    // was queued, so a call a second would have made every process's pause longer by the outage.
    if (this.down && now < this.down.retryAt) return Promise.resolve();
    const pause = this.inForce(this.heldPause, now);
    const block = this.inForce(this.heldBlock, now);
    const calls: Array<Promise<unknown>> = [];
    const k = this.keys;
    // Within what a call may take, a pause or block Redis holds is the one this limiter holds.
    const tolerance = this.opts.timeoutMs;
    if (pause) {
      const ms = duration(pause.until - now);
      const call = this.redis.rxrlPause(
        1,
        k.pause,
        ms,
        String(pause.why),
        this.opts.keyTtlMs,
        k.channel,
        duration(now - pause.since),
        tolerance,
      );
      calls.push(call.then((n) => n === -1 && this.heldPause === pause && (this.heldPause = undefined)));
    }
    if (block) {
      const left = block.until === Infinity ? '' : Math.max(1, duration(block.until - now));
      const call = this.redis.rxrlBlock(
        1,
        k.pause,
        left,
        Number(block.why),
        this.opts.keyTtlMs,
        k.channel,
        duration(now - block.since),
        tolerance,
      );
      calls.push(call.then((n) => n === -1 && this.heldBlock === block && (this.heldBlock = undefined)));
    }
    if (calls.length === 0) return Promise.resolve();
    const keeping = this.call(Promise.all(calls)).then(
      () => {
        if (this.closed || !this.down) return;
        const at = monotonic();
        this.recovered(at, false);
        this.endPending(at);
      },
      (error: unknown) => {
        if (this.closed) return;
        if (!wrongType(error)) this.markDown(error, monotonic());
        else void this.repair([k.pause]);
      },
    );
    this.keeping = keeping.finally(() => (this.keeping = undefined));
    return this.keeping;
  }

  private failed(
    error: unknown,
    buckets: readonly StoreBucketSpec[],
    count: number,
    o: StoreAcquireOptions,
  ): StoreGrant {
    const now = monotonic();
    this.markDown(error, now);
    return this.localGrant(buckets, count, o, now);
  }

  /** Admission on the local share while Redis is away; its leases are kept until answered. */
  private localGrant(
    buckets: readonly StoreBucketSpec[],
    count: number,
    o: StoreAcquireOptions,
    now: number,
  ): StoreGrant {
    const grant = this.local.grant(buckets, count, o, now);
    const costs = buckets.map((_, i) => o.costs?.[i] ?? 1);
    this.localLeases.add(grant.leases, buckets, costs, now);
    return grant;
  }
}

/** A script failed on a key holding another type than the store gives it. */
function wrongType(error: unknown): boolean {
  // Redis 7 answers a script's error as it is; before, wrapped (`ERR Error running script …: WRONGTYPE …`).
  return error instanceof Error && /\bWRONGTYPE\b/.test(error.message.slice(0, 512));
}

/** `held` lengthened to `until` (taken on at `since`), or as it was if it lasts as long. */
function extend(held: Held | undefined, until: number, since: number, why: string | number): Held {
  return held !== undefined && held.until >= until ? held : { until, since, why };
}
