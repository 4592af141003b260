/**
 * A harsher network than providerRun.ts's, for the adversarial properties: the provider
 * simulator in virtual time behind a network whose delays have heavy tails (a request can stall
 * for seconds on the way, so answers overtake each other), whose connections drop (before the
 * server saw the request, or after it counted it: the answer is lost), and whose 429s may reach
 * the client with their wait headers replaced by hostile values (huge, negative, non-numeric,
 * dates), as a broken proxy would. Requests go through the public `rateLimit` operator, from one
 * or several limiters on the credential. Each request's outcome is recorded (a ledger), and
 * every request that reached the server (an arrival).
 */
import fc from 'fast-check';
import { asyncScheduler, defer, from, mergeMap, Observable, Subscription, timer } from 'rxjs';
import {
  createLimiter,
  isRateLimitError,
  providers,
  rateLimit,
  type Limiter,
  type LimiterOptions,
  type Provider,
} from '../../lib/index.js';
import {
  createSimulatorEngine,
  type SimulatedProvider,
  type SimulatorEngine,
  type SimulatorOptions,
  type SimulatorResponse,
} from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { connectionReset, outcomes, type Ledger } from './harness.js';
import { ROUND_START, type RunRequest } from './providerRun.js';

/** What the network does with one send. */
export type NetFault =
  | 'none'
  /** The connection drops before the request reaches the server: it is never counted. */
  | 'lost-before'
  /** The server counts (and answers) the request, but the answer is lost: the client sees an error. */
  | 'lost-after';

/**
 * A one-way delay, ms: mostly short, sometimes a stall of up to 3 s (a request queued behind a
 * slow connection, a GC pause), so that answers come back far out of the order they were sent.
 */
export const heavyDelay: fc.Arbitrary<number> = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 60 }) },
  { weight: 2, arbitrary: fc.integer({ min: 60, max: 600 }) },
  { weight: 1, arbitrary: fc.integer({ min: 600, max: 3000 }) },
);

/** Delays used in turn per send. */
export const heavyDelays = fc.array(heavyDelay, { minLength: 1, maxLength: 16 });

/** Hostile values for a 429's `Retry-After` and reset headers. */
export const HOSTILE_WAITS = [
  '999999999', // 31 years
  '9'.repeat(30),
  '-1',
  '-3600',
  '0',
  'soon',
  'NaN',
  '',
  '1e400',
  'Fri, 31 Dec 9999 23:59:59 GMT',
  'Thu, 01 Jan 1970 00:00:00 GMT',
  '2026-11-23T11:00:00Z', // an hour before the run starts
  '9999-12-31T23:59:59.9999999Z',
  '253402300799',
] as const;

/** Which wait header of a 429 a broken proxy replaces, and with what. */
export interface Hostile429 {
  readonly header: string;
  readonly value: string;
}

export interface AdversarialRun {
  readonly simulated: SimulatedProvider;
  /** A profile per limiter (called once for each). */
  readonly provider: (limiter: number) => Provider;
  readonly engine?: Omit<SimulatorOptions, 'now' | 'latencyMs'>;
  /** Start time past a round UTC hour, ms (the phase against the server's aligned windows). */
  readonly phaseMs: number;
  readonly requests: readonly RunRequest[];
  /** Concurrent requests per limiter. */
  readonly streams: number;
  /** Uplink delays, ms, used in turn per send. */
  readonly up: readonly number[];
  /** Downlink delays, ms, used in turn per answer. */
  readonly down: readonly number[];
  /** Network faults, used in turn per send. @default ['none'] */
  readonly faults?: readonly NetFault[];
  /** Replaces wait headers of 429 answers (used in turn per 429). */
  readonly hostile429?: readonly Hostile429[];
  /** How many limiters share the credential. @default 1 */
  readonly limiters?: number;
  /** Extra limiter options. */
  readonly options?: Partial<LimiterOptions>;
  /** Called with the engine and the credential's token before the first request. */
  readonly before?: ((engine: SimulatorEngine, token: string) => void) | undefined;
  /** Called at virtual ms `at` with the engine and the token (another client, a limit change). */
  readonly during?: ReadonlyArray<{
    readonly at: number;
    readonly act: (engine: SimulatorEngine, token: string) => void;
  }>;
  /** Called with the limiters once made (to watch their state while debugging). */
  readonly watch?: ((limiters: readonly Limiter[]) => void) | undefined;
  /** Give up on requests still open after this much virtual time. @default 4 h */
  readonly horizonMs?: number;
}

/** One request as the server saw it. */
export interface AdvArrival {
  /** Client clock, ms from the start. */
  readonly at: number;
  readonly sentAt: number;
  readonly status: number;
  readonly method: string;
  readonly path: string;
  /** The answer was lost on the way back. */
  readonly lost: boolean;
  /** The rate-limit headers of the answer, as the server sent them. */
  readonly headers: Readonly<Record<string, string>>;
  /** When the answer (or the error that replaced it) reached the client. */
  answeredAt: number | undefined;
}

export interface AdvLedger extends Ledger<SimulatorResponse> {
  /** When the request was subscribed (virtual ms). */
  readonly subscribedAt: number;
  /** Sends of this request (retries included). */
  sends: number;
  /** Time of the first send, ms. */
  firstSentAt: number | undefined;
}

export interface AdvResult {
  readonly ledgers: readonly AdvLedger[];
  readonly arrivals: readonly AdvArrival[];
  readonly outcomes: Record<string, number>;
  /** Errors the network raised (each a distinct object). */
  readonly raised: ReadonlySet<unknown>;
  /** Last end of any ledger, ms from the start. */
  readonly lastEnd: number;
  readonly limiters: readonly Limiter[];
  readonly engine: SimulatorEngine;
  readonly token: string;
  /** Every send, in order: when, which request, and the network's fault for it. */
  readonly sends: ReadonlyArray<{ readonly at: number; readonly id: number; readonly fault: NetFault }>;
}

let runs = 0;

export function runAdversarial(o: AdversarialRun): AdvResult {
  return inVirtualTime(({ now }) => {
    const start = ROUND_START + o.phaseMs;
    const token = `adv-${o.simulated}-${++runs}`;
    const engine = createSimulatorEngine({ ...o.engine, latencyMs: 0, now: () => start + asyncScheduler.now() });
    o.before?.(engine, token);
    for (const d of o.during ?? []) asyncScheduler.schedule(() => d.act(engine, token), d.at);
    const arrivals: AdvArrival[] = [];
    const raised = new Set<unknown>();
    const faults = o.faults ?? ['none'];
    let sends = 0;
    let answers = 0;
    let limited = 0;
    const sendLog: Array<{ at: number; id: number; fault: NetFault }> = [];
    const send = (r: RunRequest, ledger: AdvLedger): Observable<SimulatorResponse> =>
      new Observable<SimulatorResponse>((subscriber) => {
        const trip = new Subscription();
        const sentAt = now();
        ledger.sends++;
        ledger.firstSentAt ??= sentAt;
        const k = sends++;
        const up = o.up[k % o.up.length] ?? 0;
        const fault = faults[k % faults.length] ?? 'none';
        sendLog.push({ at: sentAt, id: ledger.id, fault });
        trip.add(
          asyncScheduler.schedule(() => {
            if (fault === 'lost-before') {
              const e = connectionReset();
              raised.add(e);
              subscriber.error(e);
              return;
            }
            const headers: Record<string, string> = { ...r.headers };
            const query: Record<string, string> = {};
            if (o.simulated === 'pipedrive') query['api_token'] = token;
            else headers['Authorization'] = `Bearer ${token}`;
            let response = engine.handle({ provider: o.simulated, method: r.method, path: r.path, query, headers });
            const arrival: AdvArrival = {
              at: now(),
              sentAt,
              status: response.status,
              method: r.method,
              path: r.path,
              lost: fault === 'lost-after',
              headers: response.headers,
              answeredAt: undefined,
            };
            arrivals.push(arrival);
            const k429 = response.status === 429 ? limited++ : -1;
            if (response.status === 429 && o.hostile429 !== undefined && o.hostile429.length > 0) {
              const h = o.hostile429[k429 % o.hostile429.length]!;
              const out: Record<string, string> = {};
              for (const [name, value] of Object.entries(response.headers))
                if (name.toLowerCase() !== h.header.toLowerCase()) out[name] = value;
              out[h.header] = h.value;
              response = { ...response, headers: out };
            }
            const down = o.down[answers++ % o.down.length] ?? 0;
            trip.add(
              asyncScheduler.schedule(() => {
                arrival.answeredAt = now();
                if (fault === 'lost-after') {
                  const e = connectionReset();
                  raised.add(e);
                  subscriber.error(e);
                  return;
                }
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
    o.watch?.(limiters);
    const ledgers: AdvLedger[] = [];
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
                      const ledger: AdvLedger = {
                        id: i,
                        values: [],
                        errors: [],
                        completes: 0,
                        endedAt: undefined,
                        subscription: undefined,
                        subscribedAt: now(),
                        sends: 0,
                        firstSentAt: undefined,
                      };
                      ledgers.push(ledger);
                      ledger.subscription = defer(() => send(r, ledger))
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
    asyncScheduler.schedule(
      () => {
        for (const l of ledgers) l.subscription?.unsubscribe();
        for (const l of limiters) void l.close();
      },
      o.horizonMs ?? 4 * 3_600_000,
    );
    return () => {
      const lastEnd = Math.max(0, ...ledgers.map((l) => l.endedAt ?? Infinity));
      return {
        ledgers,
        arrivals,
        outcomes: outcomes(ledgers),
        raised,
        lastEnd,
        limiters,
        engine,
        token,
        sends: sendLog,
      };
    };
  })();
}

/**
 * What every request ended with, checked against what it may end with: its response, the very
 * error the network raised for its last send, or a typed error of ours. Returns the outcome
 * counts, with `lost` for requests that ended with the network's own error.
 */
export function checkEndings(r: AdvResult): Record<string, number> {
  const out: Record<string, number> = {};
  const bad: unknown[] = [];
  for (const l of r.ledgers) {
    const once =
      (l.values.length === 1 && l.completes === 1 && l.errors.length === 0) ||
      (l.values.length === 0 && l.completes === 0 && l.errors.length === 1);
    if (!once) {
      bad.push({ id: l.id, values: l.values.length, errors: l.errors.length, completes: l.completes });
      continue;
    }
    let kind: string;
    if (l.values.length === 1) kind = `status ${l.values[0]!.status}`;
    else {
      const e = l.errors[0];
      if (r.raised.has(e)) kind = 'lost';
      else if (isRateLimitError(e)) kind = e.name;
      else {
        bad.push({ id: l.id, error: String(e) });
        continue;
      }
    }
    out[kind] = (out[kind] ?? 0) + 1;
  }
  if (bad.length > 0) throw new Error(`requests that did not end as they may: ${JSON.stringify(bad.slice(0, 5))}`);
  return out;
}

/** Requests the server refused for their rate or blocked, by the engine's count. */
export function refusedCount(r: AdvResult, simulated: SimulatedProvider): number {
  const c = r.engine.statsFor(simulated, simulated === 'pipedrive' ? r.token : `Bearer ${r.token}`);
  return c.limited + c.blocked;
}

/** A Fieldwire run: endpoints `ep0…` with their minute and hour, the catch-all, a minute in 1 s. */
export interface FieldwireEndpointsRun {
  readonly endpoints: ReadonlyArray<{ readonly minute: number; readonly hourShare: number }>;
  readonly catchAll: number;
  readonly at: readonly number[];
  readonly phaseMs: number;
  readonly streams: number;
  readonly up: readonly number[];
  readonly down: readonly number[];
  readonly limiters: number;
  readonly faults: readonly NetFault[];
  readonly skewMs: number;
}

/**
 * Runs `o` against the simulated Fieldwire (request `i` to endpoint `ep{i % endpoints}`, on
 * limiter `i`), the profile told each endpoint's numbers and every window's length; returns the
 * run, how its requests ended (`checkEndings`) and how many were sent.
 */
export function runFieldwireEndpoints(o: FieldwireEndpointsRun): {
  out: AdvResult;
  ends: Record<string, number>;
  sent: number;
} {
  const SCALE = 60;
  const key = (e: number) => `GET /projects/:id/ep${e}`;
  const limits = Object.fromEntries(
    o.endpoints.map((e, k) => [key(k), { minute: e.minute, hour: e.minute * e.hourShare }]),
  );
  const hints: Record<string, { windowMs: number; limit?: number }> = {
    'catch-all': { limit: o.catchAll, windowMs: 300_000 / SCALE },
  };
  o.endpoints.forEach((_, k) => {
    hints[`${key(k)}:minute`] = { windowMs: 60_000 / SCALE };
    hints[`${key(k)}:hour`] = { windowMs: 3_600_000 / SCALE };
  });
  const requests: RunRequest[] = o.at.map((at, i) => ({
    at,
    method: 'GET',
    path: `/projects/${1000 + i}/ep${i % o.endpoints.length}`,
    limiter: i,
  }));
  const out = runAdversarial({
    simulated: 'fieldwire',
    provider: () => providers.fieldwire({ endpoints: limits, hints }),
    engine: { timeScale: SCALE, clockOffsetMs: o.skewMs, fieldwire: { endpoints: limits, catchAll: o.catchAll } },
    phaseMs: o.phaseMs,
    requests,
    streams: o.streams,
    limiters: o.limiters,
    up: o.up,
    down: o.down,
    faults: o.faults,
  });
  return { out, ends: checkEndings(out), sent: requests.length };
}
