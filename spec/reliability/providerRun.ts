/**
 * The provider simulator behind a jittered network, in virtual time, driven through the public
 * `rateLimit` operator by one or several limiters on one credential. Each request is subscribed
 * at its own arrival time (at most `streams` of a limiter's at once), reaches the engine an uplink
 * delay after its send and is answered a downlink delay after that: requests sent in one order
 * may be counted in another. What a user sees is recorded per request (a ledger), what the server
 * saw per arrival.
 */
import fc from 'fast-check';
import { asyncScheduler, defer, from, mergeMap, Observable, Subscription, timer } from 'rxjs';
import { createLimiter, rateLimit, type Limiter, type LimiterOptions, type Provider } from '../../lib/index.js';
import {
  createSimulatorEngine,
  type SimulatedProvider,
  type SimulatorEngine,
  type SimulatorOptions,
  type SimulatorResponse,
} from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { outcomes, type Ledger } from './harness.js';

/** A network delay per request, cycled: 0–40 ms each way. */
export const latency = fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 12 });

/** The traffic shape most runs draw: 1–30 streams, jittered delays each way, 1–3 limiters. */
export const traffic = {
  streams: fc.integer({ min: 1, max: 30 }),
  up: latency,
  down: latency,
  limiters: fc.integer({ min: 1, max: 3 }),
};

/** One request of a run. */
export interface RunRequest {
  /** When it is subscribed (virtual ms from the start), or once a stream is free if later. */
  readonly at: number;
  readonly method: string;
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** `cost` of the request info. */
  readonly cost?: number;
  /** Which limiter (index) it goes through. @default 0 */
  readonly limiter?: number;
}

export interface ProviderRun {
  readonly simulated: SimulatedProvider;
  /** A profile per limiter (called once for each). */
  readonly provider: (limiter: number) => Provider;
  readonly engine?: Omit<SimulatorOptions, 'now' | 'latencyMs'>;
  /** Start time past a round UTC hour (the simulator's aligned windows), ms. */
  readonly phaseMs: number;
  readonly requests: readonly RunRequest[];
  /** Concurrent requests per limiter. */
  readonly streams: number;
  /** Uplink delays, ms, used in turn per send. */
  readonly up: readonly number[];
  /** Downlink delays, ms, used in turn per answer. */
  readonly down: readonly number[];
  /** How many limiters share the credential. @default 1 */
  readonly limiters?: number;
  /** Extra limiter options. */
  readonly options?: Partial<LimiterOptions>;
  /** Called with the engine before the first request (another client spending the same token). */
  readonly before?: ((engine: SimulatorEngine) => void) | undefined;
  /** Called at virtual ms `at` with the engine. */
  readonly during?: ReadonlyArray<{ readonly at: number; readonly act: (engine: SimulatorEngine) => void }>;
  /** Give up on requests still open after this much virtual time. @default 600_000 */
  readonly horizonMs?: number;
}

/** One request as the server saw it. */
export interface Arrival {
  /** Client clock, ms from the start. */
  readonly at: number;
  readonly sentAt: number;
  readonly status: number;
  readonly method: string;
  readonly path: string;
  readonly response: SimulatorResponse;
}

export interface RunResult {
  readonly ledgers: ReadonlyArray<Ledger<SimulatorResponse>>;
  readonly arrivals: readonly Arrival[];
  readonly outcomes: Record<string, number>;
  /** Last end of any ledger, ms from the start. */
  readonly lastEnd: number;
  readonly limiters: readonly Limiter[];
  readonly engine: SimulatorEngine;
  readonly token: string;
}

export const ROUND_START = Date.UTC(2026, 10, 23, 12, 0, 0);
let runs = 0;

export function runProvider(o: ProviderRun): RunResult {
  return inVirtualTime(({ now }) => {
    const start = ROUND_START + o.phaseMs;
    const token = `token-${o.simulated}-${++runs}`;
    const engine = createSimulatorEngine({ ...o.engine, latencyMs: 0, now: () => start + asyncScheduler.now() });
    o.before?.(engine);
    for (const d of o.during ?? []) asyncScheduler.schedule(() => d.act(engine), d.at);
    const arrivals: Arrival[] = [];
    let sends = 0;
    let answers = 0;
    const send = (r: RunRequest): Observable<SimulatorResponse> =>
      new Observable<SimulatorResponse>((subscriber) => {
        const trip = new Subscription();
        const sentAt = now();
        const up = o.up[sends++ % o.up.length] ?? 0;
        trip.add(
          asyncScheduler.schedule(() => {
            const pipedriveToken = o.simulated === 'pipedrive';
            const headers: Record<string, string> = { ...r.headers };
            const query: Record<string, string> = {};
            if (pipedriveToken) query['api_token'] = token;
            else headers['Authorization'] = `Bearer ${token}`;
            const response = engine.handle({ provider: o.simulated, method: r.method, path: r.path, query, headers });
            arrivals.push({ at: now(), sentAt, status: response.status, method: r.method, path: r.path, response });
            const down = o.down[answers++ % o.down.length] ?? 0;
            trip.add(
              asyncScheduler.schedule(() => {
                subscriber.next(response);
                subscriber.complete();
              }, down),
            );
          }, up),
        );
        return trip;
      });
    const n = o.limiters ?? 1;
    const limiters = Array.from({ length: n }, (_, i) =>
      createLimiter({ provider: o.provider(i), key: token, maxWaitMs: 3_600_000, ...o.options }),
    );
    const ledgers: Array<Ledger<SimulatorResponse>> = [];
    for (let l = 0; l < n; l++) {
      const mine = o.requests.map((r, i) => ({ r, i })).filter(({ r }) => (r.limiter ?? 0) % n === l);
      from(mine)
        .pipe(
          mergeMap(
            ({ r, i }) =>
              timer(Math.max(0, r.at - now())).pipe(
                mergeMap(
                  () =>
                    new Observable<never>((stream) => {
                      const ledger: Ledger<SimulatorResponse> = {
                        id: i,
                        values: [],
                        errors: [],
                        completes: 0,
                        endedAt: undefined,
                        subscription: undefined,
                      };
                      ledgers.push(ledger);
                      // The stream is busy until the request ends.
                      ledger.subscription = defer(() => send(r))
                        .pipe(
                          rateLimit(limiters[l]!, {
                            method: r.method,
                            url: r.path,
                            ...(r.cost !== undefined ? { cost: r.cost } : {}),
                          }),
                        )
                        .subscribe({
                          next: (v) => ledger.values.push(v),
                          error: (e: unknown) => {
                            ledger.errors.push(e);
                            ledger.endedAt ??= now();
                            stream.complete();
                          },
                          complete: () => {
                            ledger.completes++;
                            ledger.endedAt ??= now();
                            stream.complete();
                          },
                        });
                      return ledger.subscription;
                    }),
                ),
              ),
            o.streams,
          ),
        )
        .subscribe();
    }
    asyncScheduler.schedule(() => {
      for (const l of ledgers) l.subscription?.unsubscribe();
      for (const l of limiters) void l.close();
    }, o.horizonMs ?? 600_000);
    return () => {
      const lastEnd = Math.max(0, ...ledgers.map((l) => l.endedAt ?? Infinity));
      return { ledgers, arrivals, outcomes: outcomes(ledgers), lastEnd, limiters, engine, token };
    };
  })();
}

/** Statuses the server answered, with counts. */
export function serverStatuses(arrivals: readonly Arrival[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const a of arrivals) out[a.status] = (out[a.status] ?? 0) + 1;
  return out;
}

/** Requests the server refused for their rate or blocked, by the engine's count. */
export function limitedCount(r: RunResult, simulated: SimulatedProvider): number {
  const c = r.engine.statsFor(simulated, simulated === 'pipedrive' ? r.token : `Bearer ${r.token}`);
  return c.limited + c.blocked;
}
