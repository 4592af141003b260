/**
 * What a limiter shows: its `state$` (a snapshot, pushed when something changed and someone
 * listens) and its `events$`. Every part marks the state changed (`touch`); the snapshot is
 * built and pushed in one place, `flush`, which the limiter calls at the end of each of its
 * entry points (a request queued, a response read, a permit given back, the timer).
 */
import { BehaviorSubject, Subject } from 'rxjs';
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

export class Publisher {
  readonly state = new BehaviorSubject<LimiterSnapshot>(undefined as unknown as LimiterSnapshot);
  readonly events = new Subject<LimiterEvent>();
  readonly totals: Totals = { sent: 0, responses: 0, rateLimited: 0, rejected: 0, saved: 0 };
  private dirty = true;

  constructor(
    private readonly now: () => number,
    private readonly provider: string,
    private readonly key: string,
    /** Builds the snapshot at `now`. */
    private readonly build: (now: number) => LimiterSnapshot,
  ) {}

  /** Something the snapshot shows changed: the next `flush` pushes a fresh one. */
  touch(): void {
    this.dirty = true;
  }

  /** Is anyone listening to events? (Payloads that cost something are built only then.) */
  get listened(): boolean {
    return this.events.observed;
  }

  emit(event: EventPayload<LimiterEvent>): void {
    if (!this.events.observed) return;
    this.events.next({ ...event, at: this.now(), provider: this.provider, key: this.key } as LimiterEvent);
  }

  /** Pushes a fresh snapshot if anything changed and someone listens (or `force`). */
  flush(force = false): void {
    if (!force && (!this.dirty || !this.state.observed)) return;
    this.dirty = false;
    this.state.next(this.build(this.now()));
  }

  /** The current snapshot, computed now. */
  snapshot(): LimiterSnapshot {
    this.flush(true);
    return this.state.value;
  }

  /** Completes `state$` and `events$`. */
  close(): void {
    this.state.complete();
    this.events.complete();
  }
}
