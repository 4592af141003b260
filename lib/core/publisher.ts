/**
 * What a limiter shows: its `state$` (a snapshot, pushed when something changed and someone
 * listens) and its `events$`. Every part marks the state changed (`touch`); the snapshot is
 * built and pushed in one place, `flush`, which the limiter calls at the end of each of its
 * entry points (a request queued, a response read, a permit given back, the timer).
 */
import { BehaviorSubject, Observable, Subject } from 'rxjs';
import type { LimiterEvent } from './events.js';
import type { LimiterSnapshot } from './state.js';

/** Distributes a limited payload across the event type union. */
export type EventPayload<E> = E extends LimiterEvent ? Omit<E, 'at' | 'provider' | 'key'> : never;

/** The limiter's counters, shown in its snapshot. */
export interface Totals {
  sent: number;
  responses: number;
  rateLimited: number;
  rejected: number;
  saved: number;
}

/** What the publisher reads: the limiter's clock, and its snapshot at an instant. */
export interface PublisherHost {
  readonly now: () => number;
  snapshotAt(now: number): LimiterSnapshot;
}

export class Publisher implements Totals {
  /**
   * `state$`: the latest snapshot replayed to each new subscriber, pushed when something
   * changed and someone listens. Its subject is made on the first subscription, and who listens
   * is counted here: the checks at every request (`flush`, `emit`) read this object's fields
   * only, not two subjects and their observer lists, which at 10,000 tenants are out of the
   * CPU's caches (most limiters of a pool are never watched).
   */
  get state$(): Observable<LimiterSnapshot> {
    return (this.stateObservable ??= new Observable<LimiterSnapshot>((subscriber) => {
      this.stateWatchers++;
      this.flush(true);
      const subject = (this.stateSubject ??= this.made(new BehaviorSubject(this.value as LimiterSnapshot)));
      const subscription = subject.subscribe(subscriber);
      return () => {
        this.stateWatchers--;
        subscription.unsubscribe();
      };
    }));
  }

  /** `events$`: hot. Made, as `state$`, when first asked for: an observable and a closure less on a limiter nobody watches. */
  get events$(): Observable<LimiterEvent> {
    return (this.eventsObservable ??= new Observable<LimiterEvent>((subscriber) => {
      this.eventWatchers++;
      const subscription = (this.eventsSubject ??= this.made(new Subject<LimiterEvent>())).subscribe(subscriber);
      return () => {
        this.eventWatchers--;
        subscription.unsubscribe();
      };
    }));
  }

  /**
   * The counters ({@link Totals}), in this object's own fields rather than an object of their
   * own: `sent` is counted at every request, and at 10,000 tenants one more object per limiter
   * is one more read out of the CPU's caches.
   */
  sent = 0;
  responses = 0;
  rateLimited = 0;
  rejected = 0;
  saved = 0;
  private stateObservable: Observable<LimiterSnapshot> | undefined;
  private eventsObservable: Observable<LimiterEvent> | undefined;
  private stateSubject: BehaviorSubject<LimiterSnapshot> | undefined;
  private eventsSubject: Subject<LimiterEvent> | undefined;
  /** The latest snapshot pushed (kept, as a BehaviorSubject keeps it, after `close`). */
  private value: LimiterSnapshot | undefined;
  private stateWatchers = 0;
  private eventWatchers = 0;
  private closed = false;
  private dirty = true;

  constructor(
    private readonly host: PublisherHost,
    private readonly provider: string,
    private readonly key: string,
  ) {}

  /** The counters, as the snapshot shows them (a copy). */
  totals(): Totals {
    const { sent, responses, rateLimited, rejected, saved } = this;
    return { sent, responses, rateLimited, rejected, saved };
  }

  /** Something the snapshot shows changed: the next `flush` pushes a fresh one. */
  touch(): void {
    this.dirty = true;
  }

  /** Does anyone subscribe to `state$`? */
  get watched(): boolean {
    return this.stateWatchers > 0;
  }

  /** Is anyone listening to events? (Payloads that cost something are built only then.) */
  get listened(): boolean {
    return this.eventWatchers > 0;
  }

  emit(event: EventPayload<LimiterEvent>): void {
    if (this.eventWatchers === 0) return;
    this.eventsSubject?.next({ ...event, at: this.host.now(), provider: this.provider, key: this.key } as LimiterEvent);
  }

  /** Pushes a fresh snapshot if anything changed and someone listens (or `force`). */
  flush(force = false): void {
    if (!force && (!this.dirty || this.stateWatchers === 0)) return;
    this.dirty = false;
    const host = this.host;
    const snapshot = host.snapshotAt(host.now());
    // Closed, the subject is complete and keeps its last value (as `next` on it would).
    if (this.closed) return;
    this.value = snapshot;
    this.stateSubject?.next(snapshot);
  }

  /** The current snapshot, computed now. */
  snapshot(): LimiterSnapshot {
    // Closed (or evicted while a request still holds it), `state$` keeps its last value, but the
    // snapshot is still the state now: `undefined` broke `JSON.stringify(limiter)`.
    if (this.closed) return this.host.snapshotAt(this.host.now());
    this.flush(true);
    return this.value as LimiterSnapshot;
  }

  /** Completes `state$` and `events$`. */
  close(): void {
    this.closed = true;
    this.stateSubject?.complete();
    this.eventsSubject?.complete();
  }

  /** A subject made after `close` is complete at once, as the one made before would be. */
  private made<S extends { complete(): void }>(subject: S): S {
    if (this.closed) subject.complete();
    return subject;
  }
}
