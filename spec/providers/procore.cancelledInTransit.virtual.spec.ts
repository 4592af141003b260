import { describe, expect, it } from '@jest/globals';
import { ReplaySubject, asyncScheduler, defer, delay, mergeMap, take, takeUntil, timer, type Observable } from 'rxjs';
import { createLimiter, providers, rateLimit } from '../../lib/index.js';
import { imfFixdate } from '../../lib/testing/format.js';
import { procoreHandle, procoreState } from '../../lib/testing/sim/procore.js';
import type { SimulatorResponse } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

// A request unsubscribed a moment after it went is still on its way: the server may count it
// well after the cancellation. Its unit was kept only until a figure from a call sent after the
// cancellation was read, which assumes the cancelled call reached the server first. On a link
// whose uplink varies (here 2 s for the first calls, 100 ms for the later ones), the calls sent
// after the cancellation arrived first, read counts without it, and spent the window's last
// unit; the cancelled call then arrived as one too many. Its unit is now kept until a call sent
// once the longest recent round trip had passed since it went is read.

const START = Date.UTC(2026, 11, 7, 12, 0, 0);
const LIMIT = 10;

interface Call {
  /** When it is subscribed (ms from the start). */
  at: number;
  upMs: number;
  downMs: number;
  /** Unsubscribed this long after it is subscribed. */
  cancelAfterMs?: number;
}

function run(calls: readonly Call[]) {
  return inVirtualTime(({ now }) => {
    const state = procoreState();
    const served: number[] = [];
    // Once sent, a call reaches the server whether or not its caller still listens: the
    // server's work is scheduled apart from the subscription, which only waits for the answer.
    const send = (c: Call): Observable<SimulatorResponse> =>
      defer(() => {
        const answer = new ReplaySubject<SimulatorResponse>(1);
        asyncScheduler.schedule(() => {
          const serverNow = START + now();
          const ctx = { serverNow, scale: 1, method: 'GET', path: '/rest/v1.0/projects', query: new URLSearchParams() };
          const out = procoreHandle(state, ctx as never, { limit: LIMIT });
          served.push(out.status);
          answer.next({ status: out.status, headers: { Date: imfFixdate(serverNow), ...out.headers }, body: out.body });
        }, c.upMs);
        return answer.pipe(take(1), delay(c.downMs, asyncScheduler));
      });
    const limiter = createLimiter({ provider: providers.procore(), key: 'procore-token' });
    const answered: number[] = [];
    const refused: number[] = [];
    calls.forEach((c, i) => {
      timer(c.at, asyncScheduler)
        .pipe(
          mergeMap(() => {
            const call = send(c).pipe(rateLimit(limiter, { method: 'GET', url: `/rest/v1.0/projects?i=${i}` }));
            return c.cancelAfterMs === undefined ? call : call.pipe(takeUntil(timer(c.cancelAfterMs, asyncScheduler)));
          }),
        )
        // A call the hour has no room left for is refused at once (it would wait past the reset).
        .subscribe({ next: () => answered.push(i), error: () => refused.push(i) });
    });
    return { served, answered, refused };
  });
}

describe('providers.procore: a request cancelled on its way still counts until it could have arrived (virtual time)', () => {
  // Five calls spend half the hour on a slow uplink; one more goes and is cancelled 100 ms later,
  // still on its way; six more follow on a fast uplink.
  const slow = Array.from({ length: 5 }, (_, i): Call => ({ at: i * 3000, upMs: 2000, downMs: 100 }));
  const cancelled: Call = { at: 20_000, upMs: 2000, downMs: 100, cancelAfterMs: 100 };
  const fast = Array.from({ length: 6 }, (_, i): Call => ({ at: i < 4 ? 20_200 : 20_600, upMs: 100, downMs: 100 }));

  it('the server never answers 429: the cancelled call is the window’s last unit, not one too many', () => {
    const out = run([...slow, cancelled, ...fast]);
    expect(out.served.filter((s) => s === 429)).toEqual([]);
    // Every call that was not cancelled and fit in the hour was answered: the five slow ones and
    // four fast ones (the cancelled one took the tenth unit).
    expect(out.served).toHaveLength(LIMIT);
    expect(out.answered.filter((i) => i < 5)).toHaveLength(5);
  });

  it('a call cancelled after the round trip it could take keeps no unit: the window is used whole', () => {
    // Cancelled 3 s after it went, longer than any trip seen: it reached the server (and was
    // counted) before the fast calls went, and their figures count it.
    const late: Call = { ...cancelled, downMs: 5000, cancelAfterMs: 3000 };
    const out = run([...slow, late, { ...fast[0]!, at: 23_200 }, ...fast.slice(1).map((c) => ({ ...c, at: 23_200 }))]);
    expect(out.served.filter((s) => s === 429)).toEqual([]);
    expect(out.served).toHaveLength(LIMIT);
    expect(out.answered).toHaveLength(LIMIT - 1);
  });
});
