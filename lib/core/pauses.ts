/**
 * What a limiter does when a provider pushes back: a 429 pauses every request (or only those on
 * the bucket the server named), with the server's wait or a backoff that grows with each 429 in
 * a row; a block (Pipedrive's 403 page) refuses every request until its cool-down ends or
 * `unblock()`. Pauses and blocks are also written to the admission, which shares them with
 * every process when the store is shared.
 */
import type { SkewEstimator } from './clock.js';
import type { Bucket } from './bucket.js';
import { inWholeSeconds, sharperWait } from './toldWait.js';
import type { RequestSummary } from './events.js';
import type { CapacityInference } from './inference.js';
import type { ResponseReading, RetrySource } from './provider.js';
import type { EventPayload, Publisher } from './publisher.js';
import type { LimiterEvent } from './events.js';
import type { StoreBlock } from './store.js';
import { RELATIVE_SLACK_MS } from './window.js';

/** How pauses and blocks reach the other limiters of the credential (the admission's side). */
export interface PolicyShare {
  /** Pauses every other limiter of the credential for `ms`. */
  pause(ms: number, reason: string): void;
  /**
   * Holds `bucket` empty for `ms` on every other limiter. `told`: the answer said what the bucket
   * has available (a leaky bucket keeps that figure instead of emptying).
   */
  exhaust(bucket: Bucket, ms: number, told?: boolean): void;
  block(ms: number | null, status: number): void;
  unblock(): void;
  resume(options: { readonly buckets: boolean }): void;
  /** What the admission knows of the shared state is stale: ask again. */
  changed(): void;
}

/** What the policy needs of its limiter. */
export interface PolicyHost {
  now(): number;
  readonly maxServerWaitMs: number;
  readonly blockCooldownMs: number;
  readonly backoff: { readonly baseMs: number; readonly maxMs: number; readonly random: () => number };
  readonly skew: SkewEstimator;
  readonly inference: CapacityInference;
  readonly out: Publisher;
  bucket(name: string): Bucket | undefined;
  buckets(): Iterable<Bucket>;
  /** Admits what can go now and publishes the state. */
  settle(): void;
}

export interface Block {
  readonly status: number;
  readonly since: number;
  readonly until: number | null;
}

/** The units a request holds, per bucket (a permit still in flight). */
export interface HeldUnits {
  readonly buckets: readonly Bucket[];
  unitsAt(k: number): number;
}

/** The units `held` holds of `bucket` (0: none, or not among its buckets). */
function heldOn(held: HeldUnits | undefined, bucket: Bucket): number {
  const k = held ? held.buckets.indexOf(bucket) : -1;
  return held && k >= 0 ? held.unitsAt(k) : 0;
}

export class PausePolicy {
  pausedUntil = 0;
  pauseReason: RetrySource | 'manual' | null = null;
  blocked: Block | null = null;
  private consecutive429 = 0;
  /** When the last 429 was read: 429s to requests sent before it are the same burst. */
  private lastLimitedAt = -Infinity;
  private wasPaused = false;

  constructor(
    private readonly host: PolicyHost,
    private readonly share: PolicyShare,
  ) {}

  private emit(event: EventPayload<LimiterEvent>): void {
    this.host.out.emit(event);
  }

  /** Was a pause set whose end the drain has not told (`resumed`) yet? */
  get resumePending(): boolean {
    return this.wasPaused;
  }

  /** A pause ended since the last call: the drain emits `resumed` once. */
  takeResumed(): boolean {
    const was = this.wasPaused;
    this.wasPaused = false;
    return was;
  }

  /** A response that was not a 429: the next 429 is the first in a row. */
  succeeded(): void {
    this.consecutive429 = 0;
  }

  /**
   * A 429 to a request on `mine` (sent at `sentAt`): pause, or hold the bucket the server named.
   * `holding`: the request's units, while they still count among its buckets' in flight.
   */
  limited(
    reading: ResponseReading,
    status: number,
    mine: Bucket[],
    summary: RequestSummary | null,
    now: number,
    sentAt?: number,
    holding?: HeldUnits,
  ): void {
    const { host } = this;
    host.out.rateLimited++;
    // A 429 in a row is one to a request sent after the last 429 was read. Requests already on
    // their way then (a burst of concurrent streams) are answered 429 together; counting each
    // would double the backoff per stream and stall every stream for minutes.
    if (sentAt === undefined || sentAt > this.lastLimitedAt) this.consecutive429++;
    else this.consecutive429 = Math.max(1, this.consecutive429);
    this.lastLimitedAt = now;
    let at: number | undefined;
    let source: RetrySource = 'backoff';
    // The buckets the server said it throttled by (names it made up, or of buckets we do not
    // have, are ignored).
    const by = reading.limitedBy;
    const named: Bucket[] = [];
    for (const name of typeof by === 'string' ? [by] : (by ?? [])) {
      const b = host.bucket(name);
      if (b && !named.includes(b)) named.push(b);
    }
    const told = !reading.retryAfter
      ? undefined
      : sharperWait(
          'at' in reading.retryAfter ? host.skew.toLocal(reading.retryAfter.at) : now + reading.retryAfter.delayMs,
          inWholeSeconds(reading.retryAfter),
          mine,
          now,
          reading.limitedBy,
        );
    // A wait past `maxServerWaitMs` is garbage, not obeyed: the backoff below applies instead.
    // So is a time more than a second (its rounding, the clock offset) before the request was
    // even sent: no window that refused it can have ended then (a reset of 2001, of 1970).
    // Obeyed, it sent the request again at once, into the window that had just refused it.
    const stale = told !== undefined && sentAt !== undefined && told < sentAt - RELATIVE_SLACK_MS;
    if (told !== undefined && !stale && told - now <= host.maxServerWaitMs) {
      at = Math.max(now, told);
      source = reading.retrySource ?? 'retry-after';
    }
    if (at === undefined || at <= now) {
      // No usable wait, or a wait of nothing (a reset of 2001, of "0"): the request would go
      // again into the window that refused it. The buckets the server named, or else those we
      // know are empty, or that it shows empty and whose end a server told for the current
      // window, hold until that end. (After a wait of nothing only such a told end: our own
      // projection of a window past one that really ended now would hold a window for nothing.)
      const serverEnd = (b: Bucket) => b.resetKind === 'server';
      const shownEmpty = (b: Bucket) => reading.buckets.some((r) => r.name === b.name && r.remaining === 0);
      const candidates = named.length
        ? named
        : mine.filter(
            (b) => (at === undefined && b.remaining === 0) || (serverEnd(b) && (b.remaining === 0 || shownEmpty(b))),
          );
      // A leaky bucket holds until one unit is back, not until it is full again (its `resetAt`:
      // a 40-unit Shopify REST bucket, 20 s for what comes back in 0.5 s). Either end comes from
      // what a server told, so one past `maxServerWaitMs` is not held for, as a wait told is not
      // (a capacity of 10^15 read as 15 million years).
      const resets = candidates
        .filter((b) => at === undefined || serverEnd(b))
        .map((b) => (b.leaky ? b.availableAt(now, 0, Infinity) : b.resetAt))
        .filter((x): x is number => x !== undefined && x > now && x - now <= host.maxServerWaitMs);
      if (resets.length) {
        at = Math.max(...resets);
        source = 'reset';
      }
    }
    // Past the first 429 in a row, back off further, but never wait less than the server said.
    if (at === undefined || this.consecutive429 > 1) {
      const { backoff } = host;
      const exp = Math.min(backoff.maxMs, backoff.baseMs * 2 ** (this.consecutive429 - 1));
      const backoffAt = now + exp * (0.5 + 0.5 * backoff.random());
      if (at === undefined || backoffAt > at) {
        at = backoffAt;
        source = 'backoff';
      }
    }
    this.emit({
      type: 'rate-limited',
      request: summary,
      status,
      retryAt: at,
      source,
      bucket: named[0]?.name ?? null,
    });
    if (named.length) {
      // A 429 read after its window ended (its reset, on our clock as late as the clock offset's
      // interval allows, has passed): that window is gone, and the bucket's current one is not
      // held for it. Held, it stayed empty until the end of a window it had room in.
      const over =
        told !== undefined &&
        told <= now &&
        reading.retryAfter !== undefined &&
        'at' in reading.retryAfter &&
        reading.retryAfter.at - host.skew.lowerMs <= now;
      // The server said which windows it throttled by: only requests on those buckets wait.
      for (const bucket of named) {
        if (!over) bucket.exhaust(at);
        if (told !== undefined && told <= at && sentAt !== undefined)
          host.inference.limited(
            bucket,
            sentAt,
            told,
            now,
            reading.retryAfter && 'at' in reading.retryAfter ? reading.retryAfter.at : undefined,
            heldOn(holding, bucket),
          );
        if (over) continue;
        this.share.exhaust(
          bucket,
          at - now,
          reading.buckets.some((r) => r.name === bucket.name && r.remaining !== undefined),
        );
        this.emit({ type: 'paused', until: at, reason: source, bucket: bucket.name });
      }
    } else {
      this.setPause(at, source, null, true);
    }
  }

  /** Pauses until `until` (only ever lengthens a pause); `share`: on the other limiters too. */
  setPause(until: number, reason: RetrySource | 'manual', bucket: string | null, share: boolean): void {
    // A pause already over (a Retry-After date in the past) is no pause: nothing is written.
    const now = this.host.now();
    if (until <= this.pausedUntil || until <= now) return;
    if (share) this.share.pause(until - now, reason);
    this.pausedUntil = until;
    this.pauseReason = reason;
    this.wasPaused = true;
    this.emit({ type: 'paused', until, reason, bucket });
    this.host.out.touch();
  }

  /** `limiter.pause(ms)`: `ms <= 0` ends the pause, here and on every limiter of the credential. */
  pause(ms: number, reason: RetrySource | 'manual'): void {
    if (!(ms > 0)) {
      this.share.resume({ buckets: false });
      this.endPause();
    } else {
      this.setPause(this.host.now() + ms, reason, null, true);
    }
    this.host.settle();
  }

  /** `limiter.resume()`: on every limiter of the credential, then here. */
  resume(): void {
    this.share.resume({ buckets: true });
    this.forget();
  }

  /** Another limiter resumed: the same here. */
  resumed(buckets: boolean): void {
    if (buckets) {
      this.forget();
      return;
    }
    this.endPause();
    this.host.settle();
  }

  /** Lifts the pause and the block and forgets every bucket's reset, in this limiter only. */
  private forget(): void {
    this.endPause();
    this.consecutive429 = 0;
    this.lastLimitedAt = -Infinity;
    for (const b of this.host.buckets()) b.forget();
    if (this.blocked) {
      this.blocked = null;
      this.emit({ type: 'unblocked' });
    }
    this.share.changed();
    this.host.out.touch();
    this.host.settle();
  }

  /** Ends the pause in this limiter (a drain then emits `resumed`). */
  private endPause(): void {
    if (this.pausedUntil === 0) return;
    this.pausedUntil = 0;
    this.pauseReason = null;
    this.share.changed();
    this.host.out.touch();
  }

  /** The provider blocked the credential (answered with `status`). */
  blockedBy(status: number, now: number): void {
    this.host.out.rateLimited++;
    const until = this.host.blockCooldownMs === Infinity ? null : now + this.host.blockCooldownMs;
    this.blocked = { status, since: now, until };
    this.share.block(until === null ? null : until - now, status);
    this.emit({ type: 'blocked', status, until });
    this.host.out.touch();
  }

  /** A block another limiter met, or its lifting (`null`). */
  adoptBlock(block: StoreBlock | null): void {
    if (block === null) {
      this.lift(false);
      return;
    }
    if (!this.blocked) {
      const now = this.host.now();
      const until = block.ms === null ? null : now + block.ms;
      this.blocked = { status: block.status, since: now, until };
      this.emit({ type: 'blocked', status: block.status, until });
      this.host.out.touch();
    }
    this.host.settle();
  }

  /** Ends a block whose cool-down is over. */
  checkUnblock(now: number): void {
    if (this.blocked?.until != null && now >= this.blocked.until) this.lift(false);
  }

  /** Lifts the block: `share`, on every limiter of the credential too (not when a cool-down ends). */
  lift(share: boolean): void {
    if (share) this.share.unblock();
    if (!this.blocked) return;
    this.blocked = null;
    this.emit({ type: 'unblocked' });
    this.host.out.touch();
    this.host.settle();
  }
}
