import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, map, mergeMap, tap, timer } from 'rxjs';
import { createLimiter, providers, rateLimit } from '../../lib/index.js';
import { createSimulatorEngine, virtualProvider } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

// A request with an offset above 30,000 counts against Planning Center's default bucket and the
// stricter high-offset one, and its answer describes only the stricter one. After the default
// window's told reset one request probes it. Probed by a high-offset request, whose answer is the
// server's own (it reports the high-offset bucket), the default window was held to one more
// probe a second, three times in a row: every window the default bucket lost 3 s of 20 whenever
// such a request led the queue. Such an answer is the window's answer, as before; only one that
// described none of the server's limits (a gateway's error page) is not.

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
const LIMIT = 30;
const PERIOD_MS = 20_000;
const LATENCY_MS = 50;

interface Call {
  readonly at: number;
  readonly path: string;
}

function run(calls: readonly Call[]) {
  return inVirtualTime(({ now }) => {
    const engine = createSimulatorEngine({
      latencyMs: LATENCY_MS,
      planningCenter: { limit: LIMIT, highOffsetLimit: LIMIT },
      now: () => START + asyncScheduler.now(),
    });
    const api = virtualProvider(engine, asyncScheduler);
    const limiter = createLimiter({ provider: providers.planningCenter(), key: 'pco-token' });
    const statuses: number[] = [];
    const done: number[] = [];
    calls.forEach(({ at, path }) =>
      timer(at, asyncScheduler)
        .pipe(
          mergeMap(() =>
            defer(() =>
              api
                .request('planningCenter', { method: 'GET', path, token: 'pco-token' })
                .pipe(tap((r) => statuses.push(r.status))),
            ).pipe(rateLimit(limiter, { method: 'GET', url: path })),
          ),
          map(() => done.push(now())),
        )
        .subscribe(),
    );
    return { statuses, done };
  });
}

const plain = (n: number, at: number): Call[] =>
  Array.from({ length: n }, (_, i) => ({ at, path: `/people/v2/people?offset=${i}` }));
const high = (n: number, at: number): Call[] =>
  Array.from({ length: n }, (_, i) => ({ at, path: `/people/v2/people?offset=${30_100 + i}` }));

describe('providers.planningCenter: a high-offset request probing the default window (virtual time)', () => {
  it('its answer opens the default window: the queue goes right after the reset, no 429, nothing lost', () => {
    // The default window is spent at once; then high-offset requests lead the queue.
    const calls = [...plain(LIMIT, 0), ...high(10, 1000), ...plain(10, 1000)];
    const out = run(calls);
    expect(out.done).toHaveLength(calls.length);
    expect(out.statuses.filter((s) => s === 429)).toEqual([]);
    // The window resets 20 s after its first request: the queue goes then, after one round trip
    // of the probe (not three more probes a second apart).
    expect(Math.max(...out.done)).toBeLessThan(PERIOD_MS + 1000);
  });

  it('window after window, a queue led by high-offset requests is not held a second per probe', () => {
    // Three windows' worth of demand, high-offset requests first in each batch.
    const calls = [0, 1, 2].flatMap((w) => [...high(10, w * 100), ...plain(LIMIT - 10, w * 100)]);
    const out = run(calls);
    expect(out.done).toHaveLength(calls.length);
    expect(out.statuses.filter((s) => s === 429)).toEqual([]);
    expect(Math.max(...out.done)).toBeLessThan(2 * PERIOD_MS + 1000);
  });
});
