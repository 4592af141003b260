/**
 * A limit cut without notice in the middle of a window (Planning Center halving 100 to 50):
 * the requests already on their way when the cut lands may meet a 429, no client can know
 * sooner; after the first answer from after the cut, none may. And the 429's wait, rounded up
 * to the second, must not cost the next window up to a second. Virtual time.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { asyncScheduler, merge, mergeMap, range, timer } from 'rxjs';
import { createLimiter, providers, rateLimit } from '../../lib/index.js';
import { createSimulatorEngine, virtualProvider, type SimulatorEngine } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
/** Planning Center's 20-s period compressed to 2 s. */
const W = 2000;
const LATENCY = 20;
/** The limiter's default `resetGuardMs`. */
const GUARD = 50;

interface Arrival {
  readonly at: number;
  readonly status: number;
}

/** `bursts`: when requests arrive (ms) and how many; all are sent as soon as the limiter lets them. */
function run(o: { cutAt: number; streams: number; bursts: ReadonlyArray<readonly [number, number]> }) {
  return inVirtualTime(({ now }) => {
    const inner = createSimulatorEngine({ latencyMs: LATENCY, timeScale: 10, now: () => START + asyncScheduler.now() });
    const arrivals: Arrival[] = [];
    let n = 0;
    let cutAt: number | undefined;
    const engine: SimulatorEngine = Object.assign(Object.create(inner) as SimulatorEngine, {
      handle(req: Parameters<SimulatorEngine['handle']>[0]) {
        if (++n === o.cutAt) {
          inner.changeLimits('planningCenter', { limit: 50 });
          cutAt = now();
        }
        const res = inner.handle(req);
        arrivals.push({ at: now(), status: res.status });
        return res;
      },
    });
    const api = virtualProvider(engine, asyncScheduler);
    const limiter = createLimiter({
      provider: providers.planningCenter({ hints: { default: { windowMs: W } } }),
      key: 'token-P',
    });
    const statuses: number[] = [];
    let id = 0;
    const work = merge(...o.bursts.map(([at, count]) => timer(at).pipe(mergeMap(() => range(0, count)))));
    work
      .pipe(
        mergeMap(() => {
          const i = id++;
          const path = `/people/v2/people/${i}`;
          return api.request('planningCenter', { path, token: 'token-P' }).pipe(rateLimit(limiter, { url: path }));
        }, o.streams),
      )
      .subscribe({ next: (r) => statuses.push(r.status) });
    // The requests on their way when the cut landed: they reach the server (at once here) no
    // later than the cut, and their answers come back after it.
    const inFlightAtCut = () =>
      cutAt === undefined ? 0 : arrivals.filter((a) => a.at <= (cutAt ?? 0) && a.at + LATENCY > (cutAt ?? 0)).length;
    return { arrivals, statuses, inFlightAtCut };
  });
}

/** The server's windows (each starts at its first request) and the gap before each. */
function windows(arrivals: readonly Arrival[]) {
  const starts: number[] = [];
  for (const a of arrivals) if (!starts.length || a.at >= (starts[starts.length - 1] ?? 0) + W) starts.push(a.at);
  return starts.map((s, i) => ({ start: s, gap: i === 0 ? 0 : s - ((starts[i - 1] ?? 0) + W) }));
}

describe('a limit cut without notice mid-window (virtual time)', () => {
  it('30 streams, the cut mid-burst: 429s only to requests in flight at the cut; each window opens within guard + one round trip', () => {
    fc.assert(
      fc.property(fc.integer({ min: 101, max: 160 }), (cutAt) => {
        const out = run({ cutAt, streams: 30, bursts: [[0, 200]] });
        const limited = out.arrivals.filter((a) => a.status === 429).length;
        expect(out.statuses).toEqual(Array(200).fill(200));
        expect(limited).toBeLessThanOrEqual(out.inFlightAtCut());
        // The window starts at its first request, known from its answer (one round trip), and
        // the limiter refills `resetGuardMs` after that.
        for (const w of windows(out.arrivals)) expect(w.gap).toBeLessThanOrEqual(GUARD + LATENCY);
      }),
      { numRuns: 12 },
    );
  });

  it('a burst late in the window meets the cut: its 429 waits a Retry-After rounded up to the second, yet the next window opens on time', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2300, max: 3900 }), fc.integer({ min: 52, max: 90 }), (burstAt, burst) => {
        // 100 fill the first window; one opens the second at 2.1 s; the burst comes later in it
        // and the limit is cut as its first request arrives.
        const out = run({
          cutAt: 102,
          streams: 100,
          bursts: [
            [0, 100],
            [2100, 1],
            [burstAt, burst],
          ],
        });
        const requests = 101 + burst;
        expect(out.statuses).toEqual(Array(requests).fill(200));
        expect(out.arrivals.filter((a) => a.status === 429).length).toBeLessThanOrEqual(out.inFlightAtCut());
        // Rounded up, the wait ends up to a second after the window; the limiter knows the
        // window's end from its first answer and waits for that instead. (The second window
        // opens 100 ms after the first by the workload's plan.)
        const third = windows(out.arrivals)[2];
        expect(third?.gap).toBeLessThanOrEqual(GUARD + LATENCY);
      }),
      { numRuns: 12 },
    );
  });
});
