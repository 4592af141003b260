/**
 * A request is counted when the server gets to it, which on a busy machine (or behind a queued
 * connection) can be seconds after the limiter let it go: the window it lands in is not the one it was sent in.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { asyncScheduler, defer, from, mergeMap, switchMap, timer } from 'rxjs';
import { createLimiter, rateLimit } from '../../lib/index.js';
import { createSimulatorEngine, virtualProvider } from '../../lib/testing/index.js';
import { runMsWindows } from '../helpers/msWindows.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { countedAs, WINDOW_CASES, type WindowCase } from '../helpers/windowCases.js';

const START = Date.UTC(2026, 10, 23, 12, 0, 0);

const TOKEN = 'token-Q';

/**
 * One at a time, as a busy single-threaded server (or client) gets to them: request `n` is
 * counted `service[n]` ms after the one before it was, and never before it was sent. A burst
 * of 25 sent at once is then counted over seconds, some of it in the server's next window.
 */
function run(c: WindowCase, o: { phaseMs: number; service: readonly number[]; streams: number; requests: number }) {
  return inVirtualTime(({ now }) => {
    const start = START + o.phaseMs;
    const engine = createSimulatorEngine({ latencyMs: 20, ...c.options, now: () => start + asyncScheduler.now() });
    const api = virtualProvider(engine, asyncScheduler);
    const limiter = createLimiter({ provider: c.provider(), key: TOKEN });
    const statuses: number[] = [];
    let counted = 0;
    let n = 0;
    from(Array.from({ length: o.requests }, (_, i) => i))
      .pipe(
        mergeMap((i) => {
          const path = c.path(i);
          // Subscribed when the permit is granted: that is when the limiter takes it as sent.
          const send = defer(() => {
            counted = Math.max(now(), counted) + (o.service[n++ % o.service.length] ?? 0);
            return timer(counted - now()).pipe(switchMap(() => api.request(c.sim, { path, token: TOKEN })));
          });
          return send.pipe(rateLimit(limiter, { url: path }));
        }, o.streams),
      )
      .subscribe({ next: (r) => statuses.push(r.status) });
    return { statuses, limited: () => engine.statsFor(c.sim, countedAs(c, TOKEN)).limited };
  });
}

describe('requests that wait their turn to be counted (virtual time)', () => {
  it('a window opened by our first request, no reset told: it ends a window after the answer, not the send', () => {
    // The window (40 per 2 s) opens when the server counts the first request after the last
    // window ended, and nobody tells its reset. The first request waits 300 ms to be counted,
    // the others none: a window taken from its send would end 300 ms early, and the refill's
    // probe would land in the old, spent window.
    const out = runMsWindows({
      limit: 40,
      windowMs: 2000,
      reset: false,
      requests: Array.from({ length: 200 }, () => ({ at: 0 })),
      toServer: (n) => (n === 0 ? 300 : 0),
      toClient: () => 10,
    });
    expect(out.server.over).toBe(0);
    expect(out.done).toBe(200);
    expect(out.server.counted).toEqual([40, 40, 40, 40, 40]);
  });

  it('a request that never answers holds a refill at an inferred reset for a second, not for ever', () => {
    // After a refill at an inferred reset the answers in flight are awaited before one request
    // goes; one of them hangs (no answer for 10 minutes): the probe goes a second later.
    const out = runMsWindows({
      limit: 5,
      windowMs: 1000,
      reset: false,
      requests: Array.from({ length: 20 }, () => ({ at: 0 })),
      toServer: () => 0,
      toClient: (n) => (n === 4 ? 600_000 : 10),
    });
    expect(out.server.over).toBe(0);
    expect(out.done).toBe(20);
    // 19 answered within the first seconds; the hung one last.
    expect(out.doneAt[18]).toBeLessThan(10_000);
  });

  for (const [name, c] of Object.entries(WINDOW_CASES)) {
    it(`${name}: counted one at a time, 0–150 ms each, some in the next window: 0 × 429`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 5999 }),
          fc.array(fc.integer({ min: 0, max: 150 }), { minLength: 1, maxLength: 60 }),
          fc.integer({ min: 1, max: 30 }),
          (phaseMs, service, streams) => {
            const out = run(c, { phaseMs, service, streams, requests: 300 });
            expect(out.limited()).toBe(0);
            expect(out.statuses.filter((s) => s !== 200)).toEqual([]);
            expect(out.statuses).toHaveLength(300);
          },
        ),
        {
          numRuns: Number(process.env['PROP_RUNS'] ?? 20),
          // Counterexamples found on Fieldwire when a refill at an inferred reset sent half the limit.
          examples: [
            [0, [98, 5, 17, 114], 3],
            [1522, [141, 4, 0, 3, 149, 24, 66], 25],
            [1720, [4, 14, 139], 24],
            [1800, [103, 119, 109, 57, 9, 145, 7, 6, 43, 39, 1], 17],
          ],
        },
      );
    });
  }
});
