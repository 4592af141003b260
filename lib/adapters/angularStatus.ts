/**
 * A limiter's state as an Angular signal whose countdowns tick while something waits
 * ({@link limiterStatus}), and a drop-in status component ({@link RateLimitStatus}).
 * Re-exported by `rx-ratelimit/angular`.
 *
 * @packageDocumentation
 */
import {
  computed,
  DestroyRef,
  effect,
  inject,
  Injector,
  input,
  PLATFORM_ID,
  signal,
  untracked,
  type Signal,
} from '@angular/core';
import * as i0 from '@angular/core';
import type { Observable, SchedulerLike, Subscription } from 'rxjs';
import type { Limiter } from '../core/limiter.js';
import type { LimiterPool } from '../core/pool.js';
import type { BucketSnapshot, LimiterPoolSnapshot, LimiterSnapshot } from '../core/state.js';

/** One bucket with its countdown. */
export interface BucketStatus extends BucketSnapshot {
  /** Ms until the window resets (0 once it has), or `null` when unknown. */
  readonly resetInMs: number | null;
}

/** A limiter's snapshot with its time-derived fields, as {@link limiterStatus} gives it. */
export interface LimiterStatus extends Omit<LimiterSnapshot, 'buckets'> {
  readonly buckets: readonly BucketStatus[];
  /** The limiter's clock when this status was computed. */
  readonly now: number;
  /** Ms left of the pause after a 429; 0 when not paused. */
  readonly pausedForMs: number;
  /** Ms left of a block; `null` when not blocked or blocked until `unblock()`. */
  readonly blockedForMs: number | null;
  /**
   * Something is waiting on time: requests queued, a pause, a timed block, or an empty bucket
   * before its reset. While it is, the countdowns tick.
   */
  readonly waiting: boolean;
}

/** Options of {@link limiterStatus}. */
export interface LimiterStatusOptions {
  /** How often the countdowns are recomputed while something waits, in ms. @default 1000 */
  readonly tickMs?: number;
  /** The injector whose destruction ends the subscription. @default the current injection context */
  readonly injector?: Injector;
}

/** Computes the status of `s` at `now`. */
export function statusAt(s: LimiterSnapshot, now: number): LimiterStatus {
  const pausedForMs = s.pausedUntil === null ? 0 : Math.max(0, s.pausedUntil - now);
  const blockedForMs = s.blocked?.until == null ? null : Math.max(0, s.blocked.until - now);
  const buckets = s.buckets.map((b) => ({ ...b, resetInMs: b.resetAt === null ? null : Math.max(0, b.resetAt - now) }));
  const waiting =
    s.queued > 0 ||
    pausedForMs > 0 ||
    (blockedForMs ?? 0) > 0 ||
    buckets.some((b) => b.remaining !== null && b.remaining <= 0 && (b.resetInMs ?? 0) > 0);
  // A block whose cool-down has passed is over (its limiter lifts it at the next request).
  return { ...s, blocked: blockedForMs === 0 ? null : s.blocked, buckets, now, pausedForMs, blockedForMs, waiting };
}

/**
 * A signal of `limiter`'s state, for templates and `computed()`: it changes with every change
 * of the limiter, and, while something waits ({@link LimiterStatus.waiting}), every `tickMs` so
 * that countdowns (`resetInMs`, `pausedForMs`) move. While nothing waits no timer runs, and
 * none ever does on the server (a render must be able to finish). The timer is the limiter's
 * scheduler: a `VirtualTimeScheduler` makes it virtual. Call it in an injection context (or pass
 * `injector`); it unsubscribes when that injector is destroyed.
 *
 * ```ts
 * import { Component, computed } from '@angular/core';
 * import { injectLimiter, limiterStatus } from 'rx-ratelimit/angular';
 *
 * @Component({ selector: 'app-budget', template: '<span>{{ text() }}</span>' })
 * export class Budget {
 *   private readonly status = limiterStatus(injectLimiter('api.pipedrive.com'));
 *   readonly text = computed(() => {
 *     const b = this.status().buckets.find((x) => !x.quota && x.limit !== null);
 *     return b ? `${b.remaining}/${b.limit}, resets in ${Math.ceil((b.resetInMs ?? 0) / 1000)} s` : '…';
 *   });
 * }
 * ```
 */
export function limiterStatus(limiter: Limiter, options: LimiterStatusOptions = {}): Signal<LimiterStatus> {
  const tickMs = checkTick('limiterStatus', options.tickMs ?? 1000);
  const injector = options.injector ?? inject(Injector);
  const out = signal<LimiterStatus>(statusAt(limiter.snapshot, limiter.now()));
  const stop = watchStatus(limiter, statusAt, tickMs, injector.get(PLATFORM_ID, null) === 'server', (s) => out.set(s));
  injector.get(DestroyRef).onDestroy(stop);
  return out.asReadonly();
}

function checkTick(name: string, tickMs: unknown): number {
  if (typeof tickMs !== 'number' || !(tickMs >= 10 && tickMs <= 3_600_000)) {
    throw new TypeError(`${name}: option \`tickMs\` must be a number of ms from 10 to 3600000, got ${String(tickMs)}`);
  }
  return tickMs;
}

/** What {@link watchStatus} follows: a limiter or a limiter pool. */
interface Watched<S> {
  readonly state$: Observable<S>;
  readonly scheduler: SchedulerLike;
  now(): number;
}

/**
 * Calls `onStatus` with the status of `source` (made by `statusOf`) now, on each change, and
 * every `tickMs` while it waits (never when `server`). Returns the function that stops it.
 */
function watchStatus<S, T extends { readonly waiting: boolean }>(
  source: Watched<S>,
  statusOf: (s: S, now: number) => T,
  tickMs: number,
  server: boolean,
  onStatus: (s: T) => void,
): () => void {
  let snapshot: S | undefined;
  let timer: Subscription | undefined;
  let stopped = false;
  const update = (): void => {
    if (stopped || snapshot === undefined) return;
    const status = statusOf(snapshot, source.now());
    if (server || !status.waiting) {
      timer?.unsubscribe();
      timer = undefined;
    } else {
      timer ??= source.scheduler.schedule(() => {
        timer = undefined;
        update();
      }, tickMs);
    }
    onStatus(status);
  };
  const subscription = source.state$.subscribe((s) => {
    snapshot = s;
    update();
  });
  return () => {
    stopped = true;
    subscription.unsubscribe();
    timer?.unsubscribe();
    timer = undefined;
  };
}

/** A pool's tenants that need a look, as {@link limiterPoolStatus} gives them. */
export interface LimiterPoolStatus {
  /** Limiters alive in the pool. */
  readonly size: number;
  /** The pool's clock when this status was computed. */
  readonly now: number;
  /** Tenants blocked by the provider (a 403 page, an unpaid plan). */
  readonly blocked: number;
  /** Tenants paused (after a 429, or by hand). */
  readonly paused: number;
  /** Tenants with requests waiting in their queue. */
  readonly queued: number;
  /** Tenants with a bucket at or under `nearRatio` of its limit before its reset. */
  readonly near: number;
  /**
   * Those tenants' statuses (each `key` is the credential's label, never the credential), the
   * blocked first, then the paused, those with requests waiting, those near a limit; at most
   * `maxListed`. Their countdowns tick while one of them waits.
   */
  readonly tenants: readonly LimiterStatus[];
  /** Something in `tenants` waits on time: the countdowns tick. */
  readonly waiting: boolean;
}

/** Options of {@link limiterPoolStatus}. */
export interface LimiterPoolStatusOptions extends LimiterStatusOptions {
  /** A bucket with this fraction of its limit or less left counts as near its limit. @default 0.1 */
  readonly nearRatio?: number;
  /** Most tenants listed in `tenants` (the counts count them all). @default 100 */
  readonly maxListed?: number;
}

/** How much a tenant needs a look: 4 blocked, 3 paused, 2 requests waiting, 1 near a limit, 0 not at all. */
function rankOf(s: LimiterSnapshot, now: number, nearRatio: number): number {
  if (s.blocked !== null && (s.blocked.until ?? Infinity) > now) return 4;
  if (s.pausedUntil !== null && s.pausedUntil > now) return 3;
  if (s.queued > 0) return 2;
  for (const b of s.buckets) {
    if (b.limit === null || b.remaining === null || (b.resetAt !== null && b.resetAt <= now)) continue;
    if (b.remaining <= b.limit * nearRatio) return 1;
  }
  return 0;
}

/** The status of a pool snapshot at `now`: only its notable tenants are looked at closely. */
export function poolStatusAt(p: LimiterPoolSnapshot, now: number, nearRatio = 0.1, maxListed = 100): LimiterPoolStatus {
  const counts = [0, 0, 0, 0, 0];
  const ranked: Array<{ rank: number; s: LimiterSnapshot }> = [];
  for (const s of p.limiters) {
    const rank = rankOf(s, now, nearRatio);
    counts[rank] = (counts[rank] ?? 0) + 1;
    if (rank > 0) ranked.push({ rank, s });
  }
  ranked.sort((x, y) => y.rank - x.rank);
  const tenants = ranked.slice(0, maxListed).map(({ s }) => statusAt(s, now));
  return {
    size: p.size,
    now,
    blocked: counts[4] ?? 0,
    paused: counts[3] ?? 0,
    queued: counts[2] ?? 0,
    near: counts[1] ?? 0,
    tenants,
    waiting: tenants.some((t) => t.waiting),
  };
}

/**
 * A signal of a limiter pool's tenants that need a look: how many are blocked, paused, have
 * requests waiting or a bucket near its limit, and their statuses (most urgent first), for a
 * status page of many tenants. It follows the pool's `state$` (batched every `stateIntervalMs`
 * of the pool), and, while a listed tenant waits, ticks every `tickMs` so that countdowns move
 * (and a tenant whose pause ended leaves the list); while none does no timer runs, and none
 * ever does on the server. Call it in an injection context (or pass `injector`); it
 * unsubscribes when that injector is destroyed.
 *
 * ```ts
 * import { Component } from '@angular/core';
 * import { injectLimiterPool, limiterPoolStatus } from 'rx-ratelimit/angular';
 *
 * @Component({
 *   selector: 'app-tenants',
 *   template: `{{ status().paused }} paused, {{ status().near }} near their limit
 *     @for (t of status().tenants; track t.key) { <p>{{ t.key }}: {{ t.pausedForMs }} ms</p> }`,
 * })
 * export class Tenants {
 *   readonly status = limiterPoolStatus(injectLimiterPool('api.pipedrive.com'), { nearRatio: 0.2 });
 * }
 * ```
 */
export function limiterPoolStatus(
  pool: LimiterPool,
  options: LimiterPoolStatusOptions = {},
): Signal<LimiterPoolStatus> {
  const tickMs = checkTick('limiterPoolStatus', options.tickMs ?? 1000);
  const { nearRatio = 0.1, maxListed = 100 } = options;
  if (!(nearRatio >= 0 && nearRatio <= 1) || !(Number.isInteger(maxListed) && maxListed >= 0)) {
    throw new TypeError('limiterPoolStatus: `nearRatio` must be from 0 to 1 and `maxListed` a whole number >= 0');
  }
  const injector = options.injector ?? inject(Injector);
  const statusOf = (p: LimiterPoolSnapshot, now: number) => poolStatusAt(p, now, nearRatio, maxListed);
  const out = signal(statusOf(pool.snapshot(), pool.now()));
  const server = injector.get(PLATFORM_ID, null) === 'server';
  injector.get(DestroyRef).onDestroy(watchStatus(pool, statusOf, tickMs, server, (s) => out.set(s)));
  return out.asReadonly();
}

/** Seconds, rounded up, for a countdown. */
function seconds(ms: number | null): string {
  return ms === null ? '?' : `${Math.ceil(ms / 1000)} s`;
}

/**
 * `<rx-rate-limit-status [limiter]="…">`: each bucket of a limiter (left, limit, reset
 * countdown, where the numbers came from), its queue, and any pause or block, as a table with a
 * caption and a polite status line for pauses and blocks. Standalone, OnPush, styles scoped to
 * the component. Countdowns tick while something waits (see {@link limiterStatus}).
 *
 * ```ts
 * import { Component } from '@angular/core';
 * import { injectLimiter, RateLimitStatus } from 'rx-ratelimit/angular';
 *
 * @Component({
 *   selector: 'app-footer',
 *   imports: [RateLimitStatus],
 *   template: '<rx-rate-limit-status [limiter]="pipedrive" label="Pipedrive API" />',
 * })
 * export class Footer {
 *   readonly pipedrive = injectLimiter('api.pipedrive.com');
 * }
 * ```
 */
export class RateLimitStatus {
  /** The limiter to show. */
  readonly limiter = input.required<Limiter>();
  /** Accessible name of the table. @default `'API rate limit (<provider>)'` */
  readonly labelText = input<string | undefined>(undefined, { alias: 'label' });
  /** How often countdowns move while something waits, in ms. @default 1000 */
  readonly tickMs = input<number>(1000);

  private readonly server = inject(PLATFORM_ID) === 'server';
  private readonly current = signal<LimiterStatus | null>(null);

  /** Made by Angular; it injects what it needs. */
  constructor() {
    effect((onCleanup) => {
      const limiter = this.limiter();
      const tickMs = checkTick('RateLimitStatus', this.tickMs());
      onCleanup(untracked(() => watchStatus(limiter, statusAt, tickMs, this.server, (s) => this.current.set(s))));
    });
  }

  /** The limiter's current status (from the input until the first update). */
  readonly status = computed(() => this.current() ?? statusAt(this.limiter().snapshot, this.limiter().now()));
  /** The table's caption. */
  readonly label = computed(() => this.labelText() ?? `API rate limit (${this.status().provider})`);
  /** What is holding requests back, if anything. */
  readonly alert = computed(() => {
    const s = this.status();
    if (s.blocked) {
      return `Blocked by the API (HTTP ${s.blocked.status})${s.blockedForMs === null ? '' : ` for ${seconds(s.blockedForMs)}`}`;
    }
    if (s.pausedForMs > 0) return `Paused (${s.pauseReason ?? 'limit'}) for ${seconds(s.pausedForMs)}`;
    return '';
  });

  /** A countdown as text. */
  countdown(ms: number | null): string {
    return seconds(ms);
  }

  // Partial declarations, as `ngc` emits for a library: an Angular CLI build links them (AOT);
  // elsewhere the JIT compiler (`@angular/compiler`) compiles them. The linker reads the
  // metadata as literals: the template and styles must stay single string literals.
  static ɵfac: i0.ɵɵFactoryDeclaration<RateLimitStatus, never> = i0.ɵɵngDeclareFactory({
    minVersion: '12.0.0',
    version: '22.0.0',
    ngImport: i0,
    type: RateLimitStatus,
    deps: [],
    target: i0.ɵɵFactoryTarget.Component,
  } as Parameters<typeof i0.ɵɵngDeclareFactory>[0]) as i0.ɵɵFactoryDeclaration<RateLimitStatus, never>;
  static ɵcmp: i0.ɵɵComponentDeclaration<
    RateLimitStatus,
    'rx-rate-limit-status',
    never,
    {
      limiter: { alias: 'limiter'; required: true; isSignal: true };
      labelText: { alias: 'label'; required: false; isSignal: true };
      tickMs: { alias: 'tickMs'; required: false; isSignal: true };
    },
    Record<never, string>,
    never,
    never,
    true,
    never
  > = i0.ɵɵngDeclareComponent({
    minVersion: '17.1.0',
    version: '22.0.0',
    type: RateLimitStatus,
    isStandalone: true,
    selector: 'rx-rate-limit-status',
    inputs: {
      limiter: {
        classPropertyName: 'limiter',
        publicName: 'limiter',
        isSignal: true,
        isRequired: true,
        transformFunction: null,
      },
      labelText: {
        classPropertyName: 'labelText',
        publicName: 'label',
        isSignal: true,
        isRequired: false,
        transformFunction: null,
      },
      tickMs: {
        classPropertyName: 'tickMs',
        publicName: 'tickMs',
        isSignal: true,
        isRequired: false,
        transformFunction: null,
      },
    },
    ngImport: i0,
    template:
      '<section class="rl" [attr.aria-label]="label()"><table><caption>{{ label() }}</caption><thead><tr><th scope="col">Bucket</th><th scope="col">Left</th><th scope="col">Limit</th><th scope="col">Resets in</th><th scope="col">Source</th></tr></thead><tbody>@for (b of status().buckets; track b.name) {<tr [attr.data-bucket]="b.name"><th scope="row">{{ b.name }}</th><td data-field="remaining">{{ b.remaining ?? \'?\' }}</td><td data-field="limit">{{ b.limit ?? \'?\' }}</td><td data-field="reset">{{ countdown(b.resetInMs) }}</td><td data-field="source">{{ b.source }}</td></tr>}</tbody></table><p data-field="queue">{{ status().queued }} waiting \u00b7 {{ status().inFlight }} in flight</p><p role="status" data-field="alert">{{ alert() }}</p></section>',
    isInline: true,
    styles: [
      ':host{display:block;font:inherit}.rl table{border-collapse:collapse}.rl caption{text-align:start;font-weight:600}.rl th,.rl td{padding:.15em .6em;text-align:start}.rl td[data-field=remaining],.rl td[data-field=limit],.rl td[data-field=reset]{text-align:end;font-variant-numeric:tabular-nums}.rl p{margin:.25em 0}.rl p[data-field=alert]:empty{display:none}',
    ],
    changeDetection: i0.ChangeDetectionStrategy.OnPush,
    encapsulation: i0.ViewEncapsulation.Emulated,
  } as Parameters<typeof i0.ɵɵngDeclareComponent>[0]);
}
