/**
 * What a process of a Redis store may spend while Redis is away: its share of each bucket,
 * from the last figures Redis gave (the limit divided among the processes then seen), kept on
 * the store's monotonic clock. The shares of all processes add up to at most the budget.
 */
import { LEAKY_EPSILON, LeakyBucket } from '../../core/leakyBucket.js';
import { RollingBucket } from '../../core/rollingBucket.js';
import type { StoreAcquireOptions, StoreBucketSpec, StoreGrant, StoreReading } from '../../core/store.js';
import { projectReset, resetTolerance } from '../../core/window.js';

/** What this process may spend on one bucket while Redis is away. */
export interface Share {
  /** Units per window: the limit divided among the processes last seen. */
  perWindow: number;
  /** Units left in the current window. */
  left: number;
  /** Local epoch ms. */
  resetAt: number | undefined;
  windowMs: number | undefined;
  /** Units spent locally in the current window (debited from Redis when it answers again). */
  spent: number;
  /** Was the share derived from figures Redis gave (or is this process without any)? */
  readonly known: boolean;
  /**
   * `resetAt` is a projection nothing has been sent in yet: the first send bounds the window's
   * end as in `Bucket.take` (a window after the send at the earliest).
   */
  projectedOpen?: boolean;
  /**
   * A sliding window: this process's share as a memory {@link RollingBucket} (its limit is
   * `perWindow`, on the store's monotonic clock), and the times of the calls it sent locally
   * (logged in Redis when it answers again).
   */
  readonly rolling?: { readonly bucket: RollingBucket; readonly sends: number[] };
  /**
   * A leaky bucket: this process's share as a memory {@link LeakyBucket} (the capacity and the
   * restore rate divided among the processes last seen), and what it would have had available
   * had it spent nothing (`start` units at `since`), to tell what its sends still hold.
   */
  readonly leaky?: { readonly bucket: LeakyBucket; readonly since: number; readonly start: number };
}

/** Last figures Redis gave for a bucket, on the local clock. */
export interface Known {
  readonly limit: number | undefined;
  readonly remaining: number | undefined;
  readonly resetAt: number | undefined;
  readonly windowMs: number | undefined;
  /** A leaky bucket's restore rate, units per second. */
  readonly restorePerSecond?: number | undefined;
  /** When Redis gave them (local monotonic ms). */
  readonly at: number;
}

/** What the shares read of their session. */
export interface ShareContext {
  /** Last figures Redis gave per bucket. */
  readonly known: ReadonlyMap<string, Known>;
  /** Processes Redis last reported. */
  peers(): number;
  /** The limiter's `resetGuardMs`, as last told. */
  guardMs(): number;
  /** How often Redis is tried again while away. */
  readonly retryMs: number;
}

/** The local shares of one session's buckets while Redis is away. */
export class LocalShares {
  private readonly shares = new Map<string, Share>();
  /** Numbers the local leases (`local:<n>:<k>`). */
  private seq = 0;

  constructor(private readonly env: ShareContext) {}

  get(name: string): Share | undefined {
    return this.shares.get(name);
  }

  entries(): IterableIterator<[string, Share]> {
    return this.shares.entries();
  }

  clear(): void {
    this.shares.clear();
  }

  /** A 429 named the bucket: nothing more of its share until `until` (the store's clock). */
  exhaust(name: string, until: number): void {
    const share = this.shares.get(name);
    if (!share) return;
    share.left = 0;
    share.rolling?.bucket.exhaust(until);
    share.leaky?.bucket.exhaust(until);
  }

  /**
   * Admission while Redis is away: never more than this process's share of what was left
   * when Redis last answered (the remaining divided by the processes then seen), and in each
   * later window its share of the limit. The shares of all processes add up to at most the
   * budget, so together they stay within it.
   */
  grant(buckets: readonly StoreBucketSpec[], count: number, o: StoreAcquireOptions, now: number): StoreGrant {
    let grant = count;
    let wait = 0;
    // Each request takes `cost` units of a bucket's share, as in Redis.
    const costOf = (i: number) => o.costs?.[i] ?? 1;
    const shares = buckets.map((b, i) => {
      const share = this.shareOf(b, now);
      const cost = costOf(i);
      const leaky = share.leaky?.bucket;
      if (leaky) {
        // A leaky bucket: the memory bucket's rules, with this process's share of its capacity
        // and rate.
        leaky.refill(now, o.resetGuardMs);
        const fits = Math.max(0, Math.floor((leaky.available(now) + LEAKY_EPSILON) / cost));
        share.left = Math.max(0, Math.floor(leaky.available(now) + LEAKY_EPSILON));
        if (fits < 1) {
          const at = leaky.availableAt(now, o.resetGuardMs, Infinity, 0, cost) ?? now + this.env.retryMs;
          wait = Math.max(wait, at - now);
        }
        grant = Math.min(grant, fits);
        return share;
      }
      const rolling = share.rolling?.bucket;
      if (rolling) {
        // A sliding window: the memory bucket's rules, with this process's share as its limit.
        rolling.refill(now, o.resetGuardMs);
        const at = rolling.availableAt(now, o.resetGuardMs, Infinity, 0, cost) ?? now + this.env.retryMs;
        share.left = at <= now ? (rolling.remaining ?? share.perWindow) : 0;
        share.resetAt = rolling.resetAt;
        if (share.left < cost) wait = Math.max(wait, at - now);
        grant = Math.min(grant, Math.max(0, Math.floor(share.left / cost)));
        return share;
      }
      if (share.resetAt !== undefined && now >= share.resetAt + o.resetGuardMs) {
        share.left = share.perWindow;
        share.spent = 0;
        share.resetAt =
          share.windowMs !== undefined && share.windowMs > 0
            ? projectReset(share.resetAt, now, share.windowMs)
            : undefined;
        share.projectedOpen = share.resetAt !== undefined;
      }
      grant = Math.min(grant, Math.max(0, Math.floor(share.left / cost)));
      if (share.left < cost) {
        const w = share.resetAt === undefined ? this.env.retryMs : share.resetAt + o.resetGuardMs - now;
        wait = Math.max(wait, w);
      }
      return share;
    });
    shares.forEach((share, i) => {
      const cost = costOf(i);
      share.left -= grant * cost;
      share.spent += grant * cost;
      const rolling = share.rolling;
      const leaky = share.leaky?.bucket;
      if (leaky) {
        for (let k = 0; k < grant; k++) leaky.release(leaky.take(now, cost), now, cost);
      } else if (rolling) {
        for (let k = 0; k < grant; k++) {
          rolling.bucket.take(now, cost);
          rolling.bucket.release(undefined, undefined, cost);
          for (let u = 0; u < cost; u++) rolling.sends.push(now);
        }
        if (grant > 0) share.resetAt = rolling.bucket.resetAt ?? now + (share.windowMs ?? 0);
      } else if (grant > 0 && share.resetAt === undefined && share.windowMs !== undefined) {
        share.resetAt = now + share.windowMs;
      } else if (grant > 0 && share.projectedOpen === true) {
        // The first send in a projected window: it ends no earlier than a window after it (as
        // Bucket.take; the server's window may open at this request).
        share.projectedOpen = false;
        if (share.resetAt !== undefined && share.windowMs !== undefined && share.windowMs > 0)
          share.resetAt = Math.max(share.resetAt, now + share.windowMs);
      }
    });
    const id = ++this.seq;
    return {
      leases: Array.from({ length: grant }, (_, k) => `local:${id}:${k}`),
      // While Redis is away, wake up at least when it is worth trying it again.
      waitMs: grant > 0 ? undefined : Math.max(1, Math.min(wait, this.env.retryMs)),
      // Never a quota refusal on a local share: the shared figure may well allow it.
      blockedBy: undefined,
      pause: undefined,
      buckets: buckets.map((b, i) => {
        const share = shares[i];
        const leaky = share?.leaky?.bucket;
        if (leaky) {
          // What this process's share has available (its level, for state$), with the bucket's
          // own capacity and rate.
          const known = this.env.known.get(b.name);
          const level = leaky.available(now);
          const rate = known?.restorePerSecond ?? b.restorePerSecond;
          return {
            name: b.name,
            limit: known?.limit ?? b.limit ?? leaky.limit,
            remaining: Math.max(0, Math.floor(level + LEAKY_EPSILON)),
            resetInMs: leaky.resetAt === undefined ? undefined : leaky.resetAt - now,
            windowMs: undefined,
            admitted: 0,
            level,
            ...(rate === undefined ? {} : { restorePerSecond: rate }),
          };
        }
        return {
          name: b.name,
          // The bucket's own limit, not this process's share of it: a request whose cost is
          // above the share but within the limit waits for Redis rather than failing.
          limit: this.env.known.get(b.name)?.limit ?? b.limit ?? share?.perWindow,
          remaining: share?.left,
          resetInMs: share?.resetAt === undefined ? undefined : share.resetAt - now,
          windowMs: share?.windowMs,
          admitted: 0,
        };
      }),
    };
  }

  /**
   * What this process spent locally in the window still running: units, and when that window
   * ends (rolling: when the newest of them leaves it, so that Redis counts them all until then).
   */
  spentOf(share: Share, now: number): { units: number; resetAt: number | undefined } {
    const leaky = share.leaky;
    if (leaky) {
      // What the share would have available had it spent nothing, less what it has: the units
      // its sends still hold (the server restores them at the share's rate).
      const b = leaky.bucket;
      const rate = b.restorePerSecond;
      const untouched = Math.min(b.limit ?? Infinity, leaky.start + (Math.max(0, now - leaky.since) * rate) / 1000);
      const units = Math.max(0, untouched - b.available(now));
      return {
        units: units > LEAKY_EPSILON ? units : 0,
        resetAt: units > LEAKY_EPSILON && rate > 0 ? now + (units / rate) * 1000 : undefined,
      };
    }
    const rolling = share.rolling;
    if (!rolling) return { units: share.spent, resetAt: share.resetAt };
    const window = (share.windowMs ?? 0) + this.env.guardMs();
    const { sends } = rolling;
    while (sends.length > 0 && (sends[0] ?? Infinity) <= now - window) sends.shift();
    const newest = sends[sends.length - 1];
    return { units: sends.length, resetAt: newest === undefined ? undefined : newest + (share.windowMs ?? 0) };
  }

  /**
   * This process's share of a sliding window while Redis is away: a memory `RollingBucket` whose
   * limit is the share. Calls Redis counted before it went away may fill the window until a
   * window has passed since it last answered: nothing is sent locally until then (as a fixed
   * window's share starts at its next window).
   */
  private rollingShare(b: StoreBucketSpec, now: number, windowMs: number): Share {
    const known = this.env.known.get(b.name);
    const perWindow = known ? Math.floor((known.limit ?? b.limit ?? 1) / this.env.peers()) : 1;
    const bucket = new RollingBucket({ name: b.name, limit: perWindow, windowMs, rolling: true }, windowMs);
    if (known) bucket.exhaust(known.at + (known.windowMs ?? windowMs) + this.env.guardMs());
    bucket.refill(now, this.env.guardMs());
    return {
      perWindow,
      left: 0,
      resetAt: bucket.resetAt,
      windowMs,
      spent: 0,
      known: known !== undefined,
      rolling: { bucket, sends: [] },
    };
  }

  /**
   * This process's share of a leaky bucket while Redis is away: a memory `LeakyBucket` with the
   * capacity and the restore rate divided among the processes last seen. What was available when
   * Redis went away may have been spent by the others since: the share starts empty and restores
   * at its rate (as a fixed window's share starts at its next window). A process that never heard
   * from Redis: one unit, then one per time the whole bucket takes to restore (as one request
   * per window).
   */
  private leakyShare(b: StoreBucketSpec, now: number): Share {
    const known = this.env.known.get(b.name);
    const capacity = known?.limit ?? b.limit;
    const rate = known?.restorePerSecond ?? b.restorePerSecond ?? 1;
    const peers = Math.max(1, this.env.peers());
    const share =
      known && capacity !== undefined
        ? { limit: Math.floor(capacity / peers), rate: rate / peers, start: 0 }
        : { limit: 1, rate: capacity !== undefined && capacity > 0 ? rate / capacity : rate, start: 1 };
    const bucket = new LeakyBucket({ name: b.name, limit: share.limit, restorePerSecond: share.rate });
    bucket.refill(now, this.env.guardMs());
    if (share.start === 0) bucket.exhaust(now);
    return {
      perWindow: share.limit,
      left: share.start,
      resetAt: undefined,
      windowMs: undefined,
      spent: 0,
      known: known !== undefined,
      leaky: { bucket, since: now, start: share.start },
    };
  }

  private shareOf(b: StoreBucketSpec, now: number): Share {
    let share = this.shares.get(b.name);
    if (!share && b.restorePerSecond !== undefined) {
      share = this.leakyShare(b, now);
      this.shares.set(b.name, share);
    }
    const windowMs = this.env.known.get(b.name)?.windowMs ?? b.windowMs;
    if (!share && b.rolling && windowMs !== undefined && windowMs > 0) {
      share = this.rollingShare(b, now, windowMs);
      this.shares.set(b.name, share);
    }
    if (!share) {
      const known = this.env.known.get(b.name);
      if (known) {
        // The window Redis went away in may have been spent by the others since this process
        // last asked: nothing more in it. From the next window on, this process's share.
        const windowMs = known.windowMs ?? b.windowMs;
        let resetAt = known.resetAt;
        if (resetAt !== undefined && resetAt <= now && windowMs !== undefined && windowMs > 0)
          resetAt = projectReset(resetAt, now, windowMs);
        share = {
          perWindow: Math.floor((known.limit ?? b.limit ?? 1) / this.env.peers()),
          left: 0,
          resetAt,
          windowMs,
          spent: 0,
          known: true,
        };
      } else {
        // Never heard from Redis: nothing says how many others share the token. One request
        // per window, like a cold start, until Redis answers.
        share = { perWindow: 1, left: 1, resetAt: undefined, windowMs: b.windowMs, spent: 0, known: false };
      }
      this.shares.set(b.name, share);
    }
    return share;
  }

  /** While Redis is away, responses still tell when windows reset (`now`: the store's clock). */
  observe(readings: readonly StoreReading[], now: number): void {
    for (const r of readings) {
      const share = this.shares.get(r.name);
      if (!share) continue;
      const leaky = share.leaky?.bucket;
      if (leaky) {
        // The shared bucket's figures, divided among the processes: they may lower what this
        // share has (never raise it: the others spend too), and set its capacity and rate.
        const peers = Math.max(1, this.env.peers());
        const scaled = (n: number | undefined) => (n === undefined ? undefined : Math.floor(n / peers));
        const limit = share.known ? scaled(r.limit) : undefined;
        const remaining = scaled(r.remaining);
        const rate = share.known && r.restorePerSecond !== undefined ? r.restorePerSecond / peers : undefined;
        leaky.apply(
          {
            name: r.name,
            ...(limit === undefined ? {} : { limit }),
            ...(remaining === undefined ? {} : { remaining }),
            ...(rate === undefined ? {} : { restorePerSecond: rate }),
          },
          undefined,
          undefined,
          now,
        );
        if (limit !== undefined) share.perWindow = limit;
        continue;
      }
      if (r.windowMs !== undefined) share.windowMs = r.windowMs;
      if (r.limit !== undefined && share.known) share.perWindow = Math.floor(r.limit / this.env.peers());
      const rolling = share.rolling?.bucket;
      if (rolling) {
        // The shared window's figures: its limit divides into shares; none left holds this one too.
        if (r.windowMs !== undefined) rolling.windowMs = r.windowMs;
        rolling.limit = share.perWindow;
        if (r.remaining === 0 && r.resetInMs !== undefined) rolling.exhaust(now + r.resetInMs);
        continue;
      }
      if (r.resetInMs === undefined) continue;
      const resetAt = now + r.resetInMs;
      const tol = resetTolerance(share.windowMs);
      if (share.resetAt === undefined || resetAt > share.resetAt + tol) {
        // A window we had not counted: start it with this process's share.
        if (share.resetAt !== undefined) {
          share.left = share.perWindow;
          share.spent = 0;
        }
        share.resetAt = resetAt;
        share.projectedOpen = false;
      }
    }
  }
}
