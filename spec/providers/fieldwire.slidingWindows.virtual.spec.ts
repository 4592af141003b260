import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, from, map, mergeMap, timer, type Observable } from 'rxjs';
import { createLimiter, providers, rateLimit } from '../../lib/index.js';
import { imfFixdate } from '../../lib/testing/format.js';
import {
  FIELDWIRE_DEFAULTS,
  fieldwireHandle,
  fieldwireState,
  type FieldwireConfig,
} from '../../lib/testing/sim/fieldwire.js';
import type { SimulatorResponse } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

// Fieldwire's docs say each endpoint has a minute and an hour limit, and that `ratelimit-reset`
// is when "the next request would become available", not whether those windows are fixed or
// slide. The simulator's endpoint tier (lib/testing/sim/fieldwire.ts) is driven here directly,
// in virtual time, with either kind of window: a minute compressed into 1 s (`scale` 60).

/** Runs start at a round UTC time, so the fixed windows start with them. */
const START = Date.UTC(2026, 10, 23, 12, 0, 0);
const SCALE = 60;
const LATENCY_MS = 20;
const KEY = 'GET /projects/:id/tasks';
const LIMITS = { minute: 50, hour: 3000 };

interface Arrival {
  /** When the caller asks for the request, ms from the start. */
  readonly at: number;
}

/** `arrivals` through one limiter on the profile, given the compressed windows as hints (as a user would). */
function run(windows: 'fixed' | 'sliding', arrivals: readonly Arrival[]) {
  return inVirtualTime(({ now }) => {
    const cfg: FieldwireConfig = {
      ...FIELDWIRE_DEFAULTS,
      endpoints: { [KEY]: LIMITS },
      endpointWindows: windows,
    };
    const state = fieldwireState();
    const ctxAt = (serverNow: number, path: string) => ({
      serverNow,
      scale: SCALE,
      method: 'GET',
      path,
      query: new URLSearchParams(),
      layout: 'compact' as const,
    });
    const served: number[] = [];
    const send = (path: string): Observable<SimulatorResponse> =>
      defer(() => {
        const serverNow = START + now();
        const out = fieldwireHandle(state, ctxAt(serverNow, path), cfg);
        served.push(out.status);
        return timer(LATENCY_MS, asyncScheduler).pipe(
          map(() => ({ status: out.status, headers: { Date: imfFixdate(serverNow), ...out.headers }, body: out.body })),
        );
      });
    const limiter = createLimiter({
      provider: providers.fieldwire({
        endpoints: { [KEY]: LIMITS },
        hints: {
          'catch-all': { windowMs: 300_000 / SCALE },
          [`${KEY}:minute`]: { windowMs: 60_000 / SCALE },
          [`${KEY}:hour`]: { windowMs: 3_600_000 / SCALE },
        },
      }),
      key: 'fieldwire-token',
    });
    const done: number[] = [];
    from(arrivals.map((a, i) => ({ ...a, i })))
      .pipe(
        mergeMap(({ at, i }) =>
          timer(at, asyncScheduler).pipe(
            mergeMap(() => {
              const path = `/projects/${100 + i}/tasks`;
              return send(path).pipe(rateLimit(limiter, { method: 'GET', url: path }));
            }),
            map((r) => {
              done.push(now());
              return r.status;
            }),
          ),
        ),
      )
      .subscribe();
    return {
      served,
      done,
      limited: () => served.filter((s) => s === 429).length,
      last: () => Math.max(...done),
    };
  });
}

describe('providers.fieldwire: per-endpoint windows that may be fixed or sliding (virtual time, a minute in 1 s)', () => {
  // 40 requests spread over the first 0.8 s, then 160 at once: at 50 a minute, the server's
  // minute holds requests sent at different times when the burst fills it.
  const trickleThenBurst: Arrival[] = [
    ...Array.from({ length: 40 }, (_, i) => ({ at: i * 20 })),
    ...Array.from({ length: 160 }, () => ({ at: 800 })),
  ];

  it('a fixed minute: no 429, within 1.1 × the shortest time it allows', () => {
    const out = run('fixed', trickleThenBurst);
    expect(out.done).toHaveLength(200);
    expect(out.limited()).toBe(0);
    // 50 in each clock-aligned minute: the last 50 go at 3 s, answered 20 ms later.
    expect(out.last()).toBeLessThanOrEqual(1.1 * 3020);
  });

  // The told reset of a sliding minute frees only its oldest request: the others of the trickle
  // leave it one by one. A bucket that took the reset for the end of a fixed window refilled and
  // sent half its limit at once to learn the new window's numbers: 23 × 429 (and the same after
  // every 429, whose retry time held it the same way). One request goes at a told reset, and its
  // answer tells what is left.
  it('a sliding minute: no 429, within 1.1 × the shortest time it allows', () => {
    const out = run('sliding', trickleThenBurst);
    expect(out.done).toHaveLength(200);
    expect(out.limited()).toBe(0);
    // 50 in any minute: each request of the trickle frees its slot a minute after it was
    // counted, so the last 50 go from 3 s to 3.8 s, answered 20 ms later.
    expect(out.last()).toBeLessThanOrEqual(1.1 * 3820);
  });
});
