import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, from, map, mergeMap, timer, type Observable } from 'rxjs';
import { createLimiter, providers, rateLimit } from '../../lib/index.js';
import { imfFixdate } from '../../lib/testing/format.js';
import { FIELDWIRE_DEFAULTS, fieldwireHandle, fieldwireState } from '../../lib/testing/sim/fieldwire.js';
import type { SimulatorResponse } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { prng as random } from '../reliability/arbitraries.js';

// When a told reset passes, one request goes and its answer tells what the window has left:
// Fieldwire's docs do not say whether an endpoint's minute is fixed or slides, and on a sliding
// minute the reset frees only the oldest request. That probe's answer was awaited at most a
// second, then one more request went. On a link whose every round trip takes longer than that
// (700 ms each way here), the second request always went before the probe's answer and met a
// 429 when the minute slides. A probe is now awaited as long as the bucket's recent round trips
// took: a slow link is not a probe that hangs. In real time (a minute is 60 s).

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
const KEY = 'GET /projects/:id/tasks';
const LIMITS = { minute: 10, hour: 3000 };

/**
 * `at` (ms from the start) through one limiter, `oneWayMs` each way (or at random up to `mostMs`,
 * drawn from `seed`), against a `windows` minute.
 */
function run(windows: 'fixed' | 'sliding', at: readonly number[], oneWayMs: number, mostMs = oneWayMs, seed = 1) {
  const rnd = random(seed);
  const lat = (): number => oneWayMs + Math.floor(rnd() * (mostMs - oneWayMs + 1));
  return inVirtualTime(({ now }) => {
    const cfg = { ...FIELDWIRE_DEFAULTS, endpoints: { [KEY]: LIMITS }, endpointWindows: windows };
    const state = fieldwireState();
    const served: number[] = [];
    const send = (path: string): Observable<SimulatorResponse> =>
      defer(() =>
        timer(lat(), asyncScheduler).pipe(
          map(() => {
            const serverNow = START + now();
            const ctx = {
              serverNow,
              scale: 1,
              method: 'GET',
              path,
              query: new URLSearchParams(),
              layout: 'compact' as const,
            };
            const out = fieldwireHandle(state, ctx, cfg);
            served.push(out.status);
            return { status: out.status, headers: { Date: imfFixdate(serverNow), ...out.headers }, body: out.body };
          }),
          mergeMap((res) => timer(lat(), asyncScheduler).pipe(map(() => res))),
        ),
      );
    const limiter = createLimiter({
      provider: providers.fieldwire({ endpoints: { [KEY]: LIMITS } }),
      key: 'fieldwire-token',
    });
    const done: number[] = [];
    from(at.map((t, i) => ({ t, i })))
      .pipe(
        mergeMap(({ t, i }) =>
          timer(t, asyncScheduler).pipe(
            mergeMap(() => {
              const path = `/projects/${100 + i}/tasks`;
              return send(path).pipe(rateLimit(limiter, { method: 'GET', url: path }));
            }),
            map(() => done.push(now())),
          ),
        ),
      )
      .subscribe();
    return { done, limited: () => served.filter((s) => s === 429).length, last: () => Math.max(...done) };
  });
}

describe('providers.fieldwire: a probe on a link slower than a second is awaited for its answer (virtual time)', () => {
  // Ten requests a few seconds apart fill the minute; then ten more wait for it. The reset the
  // tenth answer tells is when the first request leaves a sliding minute, and only that one.
  const at = [...Array.from({ length: 10 }, (_, i) => i * 3000), ...Array.from({ length: 10 }, () => 30_000)];

  it.each([600, 700, 800])('a sliding minute, %i ms each way: no 429, nothing lost', (oneWayMs) => {
    const out = run('sliding', at, oneWayMs);
    expect(out.done).toHaveLength(at.length);
    expect(out.limited()).toBe(0);
  });

  // A trip may be longer than any of the last 16: the probe is awaited up to twice the longest
  // (its answer ends the wait). With the longest plus 50 ms, 500 to 900 ms each way met 429s.
  it('a sliding minute, 500 to 900 ms each way, 20 seeds: no 429, nothing lost', () => {
    const limited: number[] = [];
    for (let seed = 1; seed <= 20; seed += 1) {
      const out = run('sliding', at, 500, 900, seed);
      expect(out.done).toHaveLength(at.length);
      if (out.limited() > 0) limited.push(seed);
    }
    expect(limited).toEqual([]);
  });

  it('a fixed minute, 700 ms each way: no 429, and the second minute takes a few round trips', () => {
    const out = run('fixed', at, 700);
    expect(out.done).toHaveLength(at.length);
    expect(out.limited()).toBe(0);
    // The clock's second minute starts at 60 s: the probe, then the rest once it is answered
    // (a round trip each), and one more for the rest of the ramp.
    expect(out.last()).toBeLessThanOrEqual(60_000 + 3 * 1400 + 500);
  });
});
