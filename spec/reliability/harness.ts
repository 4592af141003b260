/**
 * Shared pieces of the fault suite: a per-subscriber ledger that proves every request
 * ended exactly once, and a virtual-time front for the simulator engine that injects faults
 * (5xx storms, garbage headers, dropped connections) between the client and the engine.
 */
import { expect } from '@jest/globals';
import { Observable, type SchedulerLike, type Subscription } from 'rxjs';
import { isRateLimitError } from '../../lib/index.js';
import type {
  SimulatedProvider,
  SimulatorEngine,
  SimulatorRequest,
  SimulatorResponse,
} from '../../lib/testing/index.js';

/** What one subscriber saw. */
export interface Ledger<T> {
  readonly id: number;
  readonly values: T[];
  readonly errors: unknown[];
  completes: number;
  /** Clock time of the end (complete or error), `undefined` while it has not ended. */
  endedAt: number | undefined;
  subscription: Subscription | undefined;
}

/** Subscribes `source` and records every notification. */
export function track<T>(id: number, source: Observable<T>, now: () => number): Ledger<T> {
  const ledger: Ledger<T> = { id, values: [], errors: [], completes: 0, endedAt: undefined, subscription: undefined };
  ledger.subscription = source.subscribe({
    next: (v) => ledger.values.push(v),
    error: (e: unknown) => {
      ledger.errors.push(e);
      ledger.endedAt ??= now();
    },
    complete: () => {
      ledger.completes++;
      ledger.endedAt ??= now();
    },
  });
  return ledger;
}

/**
 * Every ledger ended exactly once: one value then complete, or one error and no value. Returns
 * how many ended each way (`status <n>` for values, the error's `name` for errors).
 */
export function assertEndedOnce<T>(
  ledgers: ReadonlyArray<Ledger<T>>,
  statusOf: (v: T) => number = (v) => (v as { status: number }).status,
): Record<string, number> {
  const bad = ledgers.filter(
    (l) =>
      !(
        (l.values.length === 1 && l.completes === 1 && l.errors.length === 0) ||
        (l.values.length === 0 && l.completes === 0 && l.errors.length === 1)
      ),
  );
  expect(
    bad.map((l) => ({ id: l.id, values: l.values.length, errors: l.errors.length, completes: l.completes })),
  ).toEqual([]);
  return outcomes(ledgers, statusOf);
}

/** Outcomes by kind: `status 200`, `QueueFullError`, `TypeError`… */
export function outcomes<T>(
  ledgers: ReadonlyArray<Ledger<T>>,
  statusOf: (v: T) => number = (v) => (v as { status: number }).status,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of ledgers) {
    const kind =
      l.errors.length > 0
        ? errorKind(l.errors[0])
        : l.values.length > 0
          ? `status ${statusOf(l.values[0] as T)}`
          : 'open';
    out[kind] = (out[kind] ?? 0) + 1;
  }
  return out;
}

function errorKind(e: unknown): string {
  if (isRateLimitError(e)) return e.name;
  if (e instanceof Error) return e.name;
  return typeof e;
}

/** What the fault front does with one request. */
export type FaultAction =
  /** Hand it to the engine and answer as it says (optionally rewritten). */
  | { readonly kind: 'pass'; readonly rewrite?: (res: SimulatorResponse) => SimulatorResponse }
  /** Answer this instead; the engine never sees the request. */
  | { readonly kind: 'respond'; readonly response: SimulatorResponse }
  /** The connection fails with this error after `latencyMs`; the engine never sees the request. */
  | { readonly kind: 'error'; readonly error: unknown };

/** Decides the fate of the `seq`-th request (from 1) arriving at clock time `at`. */
export type FaultPlan = (request: SimulatorRequest, seq: number, at: number) => FaultAction;

/** A network error as Node raises it for a dropped connection. */
export function connectionReset(): Error & { code: string } {
  return Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
}

/**
 * The simulator in virtual time with a fault plan in front of the engine, like
 * `virtualProvider`: each subscription is one request, handled when subscribed and answered
 * `latencyMs` later. Counts what arrived (per path, to spot duplicates), and can drop every
 * request in flight (a server restart) with an error of its own.
 */
export function faultyProvider(engine: SimulatorEngine, scheduler: SchedulerLike, plan: FaultPlan = () => PASS) {
  let seq = 0;
  const received = new Map<string, number>();
  const inFlight = new Set<{ fail: (e: unknown) => void }>();
  /** Errors the front raised, in order, to check identity against what subscribers got. */
  const raised: unknown[] = [];

  function request(
    provider: SimulatedProvider,
    req: { method?: string; path: string; token: string },
  ): Observable<SimulatorResponse> {
    return new Observable<SimulatorResponse>((subscriber) => {
      const method = req.method ?? 'GET';
      received.set(`${method} ${req.path}`, (received.get(`${method} ${req.path}`) ?? 0) + 1);
      const pipedriveToken = provider === 'pipedrive';
      const headers: Record<string, string> = pipedriveToken ? {} : { Authorization: `Bearer ${req.token}` };
      const query: Record<string, string> = pipedriveToken ? { api_token: req.token } : {};
      const simReq: SimulatorRequest = { provider, method, path: req.path, query, headers };
      const action = plan(simReq, ++seq, scheduler.now());
      let answer: SimulatorResponse | undefined;
      let error: unknown;
      if (action.kind === 'pass') {
        const res = engine.handle(simReq);
        answer = action.rewrite ? action.rewrite(res) : res;
      } else if (action.kind === 'respond') {
        answer = action.response;
      } else {
        error = action.error;
      }
      const entry = {
        fail: (e: unknown) => {
          inFlight.delete(entry);
          timer.unsubscribe();
          raised.push(e);
          subscriber.error(e);
        },
      };
      inFlight.add(entry);
      const timer = scheduler.schedule(() => {
        inFlight.delete(entry);
        if (answer) {
          subscriber.next(answer);
          subscriber.complete();
        } else {
          raised.push(error);
          subscriber.error(error);
        }
      }, engine.latencyMs);
      return () => {
        inFlight.delete(entry);
        timer.unsubscribe();
      };
    });
  }

  return {
    request,
    raised,
    /** Requests that arrived, all paths. */
    get total(): number {
      let n = 0;
      for (const c of received.values()) n += c;
      return n;
    },
    /** Paths that arrived more than once, with their counts. */
    duplicates(): Record<string, number> {
      return Object.fromEntries([...received].filter(([, c]) => c > 1));
    },
    get inFlight(): number {
      return inFlight.size;
    },
    /** Drops every request in flight: each fails with its own `connectionReset()`. */
    dropAll(): number {
      const all = [...inFlight];
      for (const e of all) e.fail(connectionReset());
      return all.length;
    },
  };
}

export const PASS: FaultAction = { kind: 'pass' };

export const START = Date.UTC(2026, 0, 1);
