import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, map, mergeMap, timer, type Observable } from 'rxjs';
import { createLimiter, providers, rateLimit } from '../../lib/index.js';
import { imfFixdate } from '../../lib/testing/format.js';
import type { SimulatorResponse } from '../../lib/testing/index.js';
import { windowServer } from '../helpers/slidingServer.js';
import { inVirtualTime } from '../helpers/virtual.js';

// After a told reset one request probes the window; answered by a gateway's 502 page, the next
// probe goes a second later. A request of 2 units waiting behind that probe, while an older
// request of the spent window is still out (a slow export), waited for that request's answer,
// however long it took: nothing bounded the wait once the blind probe had ended.

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
const LIMIT = 20;
const WINDOW_MS = 2000;

interface Call {
  readonly at: number;
  readonly downMs: number;
  readonly cost?: number;
}

function run(calls: readonly Call[], blind: ReadonlySet<number>) {
  return inVirtualTime(({ now }) => {
    const statuses: number[] = [];
    const serve = windowServer(LIMIT, WINDOW_MS, 'fixed', 'oldest');
    const answer = (serverNow: number): SimulatorResponse => {
      const { ok, remaining, resetS } = serve(serverNow);
      const isBlind = blind.has(statuses.length);
      statuses.push(ok ? 200 : 429);
      if (isBlind) return { status: 502, headers: { 'Content-Type': 'text/html' }, body: '<h1>502 Bad Gateway</h1>' };
      return {
        status: ok ? 200 : 429,
        headers: {
          Date: imfFixdate(serverNow),
          'Content-Type': 'application/json',
          'x-ratelimit-limit': String(LIMIT),
          'x-ratelimit-remaining': String(remaining),
          'x-ratelimit-reset': String(resetS),
        },
        body: ok ? '{"success":true,"data":[]}' : '{"success":false,"errorCode":429}',
      };
    };
    const send = (downMs: number): Observable<SimulatorResponse> =>
      defer(() =>
        timer(10, asyncScheduler).pipe(
          map(() => answer(START + now())),
          mergeMap((res) => timer(downMs, asyncScheduler).pipe(map(() => res))),
        ),
      );
    const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'essential' }), key: 'pipedrive-token' });
    const done: Array<{ i: number; t: number }> = [];
    calls.forEach((c, i) =>
      timer(c.at, asyncScheduler)
        .pipe(
          mergeMap(() =>
            send(c.downMs).pipe(
              rateLimit(limiter, { method: 'GET', url: `/v1/deals?start=${i}`, ...(c.cost ? { cost: c.cost } : {}) }),
            ),
          ),
        )
        .subscribe({ next: () => done.push({ i, t: now() }), error: () => done.push({ i, t: -now() }) }),
    );
    return { statuses, done };
  });
}

describe('providers.pipedrive: a blind probe with a slow request of the spent window still out (virtual time)', () => {
  it('a request of 2 units behind the probe goes about a second after it, not when the slow request ends', () => {
    // One slow request (answered after 30 s) and 19 fast ones spend the window; then a probe
    // (answered by a 502 page) and a request of 2 units wait for the reset.
    const calls: Call[] = [
      ...Array.from({ length: LIMIT - 1 }, (): Call => ({ at: 0, downMs: 10 })),
      { at: 0, downMs: 30_000 },
      { at: 200, downMs: 10 },
      { at: 200, downMs: 10, cost: 2 },
    ];
    const out = run(calls, new Set([LIMIT]));
    expect(out.statuses.filter((s) => s === 429)).toEqual([]);
    expect(out.done).toHaveLength(calls.length);
    const costly = out.done.find((d) => d.i === LIMIT + 1);
    expect(costly?.t).toBeLessThan(6000);
  });
});
