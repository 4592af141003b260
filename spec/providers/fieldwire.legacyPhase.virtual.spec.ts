import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, from, map, mergeMap, tap, timer } from 'rxjs';
import { createLimiter, providers, rateLimit } from '../../lib/index.js';
import { createSimulatorEngine, virtualProvider } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

// Fieldwire's legacy endpoints sit on "an older fixed-window rate limiting system", and tell
// nothing before their 429 (only then `X-RateLimit-Reset`): not whether a window opens at a first
// request or on the clock's boundaries, nor at what phase. Their numbers, when the user knows
// them (`legacyLimits`), were counted as a window opened by our first request: the limit went
// before the end of the server's window and the limit again after that window opened by our
// first request ended, more than the limit in one window of the server's aligned to the clock.
// As the catch-all's, they are now counted as a sliding window, never more than the limit in
// any window's length, which is within every fixed window whatever its phase.

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
const KEY = 'GET /projects/:id/legacy_reports';
const LIMIT = 10;
const WINDOW_MS = 60_000;

/** `at` (ms from the start) through one limiter against windows aligned to the server's clock. */
function run(at: readonly number[]) {
  return inVirtualTime(({ now }) => {
    const engine = createSimulatorEngine({
      latencyMs: 20,
      now: () => START + asyncScheduler.now(),
      fieldwire: { legacy: [KEY], legacyLimit: LIMIT, legacyWindowMs: WINDOW_MS },
    });
    const api = virtualProvider(engine, asyncScheduler);
    const limiter = createLimiter({
      provider: providers.fieldwire({ legacyLimits: { [KEY]: { limit: LIMIT, windowMs: WINDOW_MS } } }),
      key: 'fieldwire-token',
    });
    const statuses: number[] = [];
    const done: number[] = [];
    from(at.map((t, i) => ({ t, i })))
      .pipe(
        mergeMap(({ t, i }) =>
          timer(t, asyncScheduler).pipe(
            mergeMap(() => {
              const path = `/projects/${i}/legacy_reports`;
              return api
                .request('fieldwire', { path, token: 'fieldwire-token' })
                .pipe(tap((r) => statuses.push(r.status)))
                .pipe(rateLimit(limiter, { method: 'GET', url: path }));
            }),
            map(() => done.push(now())),
          ),
        ),
      )
      .subscribe();
    return { done, limited: () => statuses.filter((s) => s === 429).length };
  });
}

describe('providers.fieldwire: a legacy endpoint’s known numbers, its windows at a phase nothing tells (virtual time)', () => {
  it.each([
    [
      'half the limit late in a window, then a burst',
      [...Array.from({ length: 5 }, (_, i) => 40_000 + i * 3000), ...Array<number>(30).fill(58_000)],
    ],
    ['one call mid-window, then a burst at the boundary', [30_000, ...Array<number>(30).fill(59_500)]],
    ['one call mid-window, then a burst just after the boundary', [30_000, ...Array<number>(30).fill(65_000)]],
    ['two calls a window apart, then a burst', [30_000, 95_000, ...Array<number>(30).fill(100_000)]],
    ['a steady trickle across three windows', Array.from({ length: 30 }, (_, i) => 10_000 + i * 4000)],
  ])('%s: no 429, nothing lost', (_name, at) => {
    const out = run(at);
    expect(out.done).toHaveLength(at.length);
    expect(out.limited()).toBe(0);
  });
});
