import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, from, map, mergeMap, tap, timer } from 'rxjs';
import { createLimiter, providers, rateLimit } from '../../lib/index.js';
import { createSimulatorEngine, virtualProvider } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

// A legacy endpoint whose numbers the user declared (`legacyLimits`: 3 a minute) met a 429 it
// could not foresee: another client of the token had spent one request of the server's minute.
// The capacity inferred from that window (2) is fine, but its length was guessed as the time
// from the window's first success to the reset (4 s), shorter than the declared minute, and
// taken: the endpoint was then paced at 2 every 4 s, and the next minute earned 429s. A guess
// is only a lower bound on the length: a declared (hinted) length stands until two resets tell.

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
const KEY = 'GET /reports';
const TOKEN = 'fieldwire-token';

function run(at: readonly number[]) {
  return inVirtualTime(({ now }) => {
    const engine = createSimulatorEngine({
      latencyMs: 20,
      now: () => START + asyncScheduler.now(),
      fieldwire: { legacy: [KEY], legacyLimit: 3, legacyWindowMs: 60_000 },
    });
    const api = virtualProvider(engine, asyncScheduler);
    const limiter = createLimiter({
      provider: providers.fieldwire({ legacyLimits: { [KEY]: { limit: 3, windowMs: 60_000 } } }),
      key: TOKEN,
    });
    // Another client of the token: one request at 12:00:50.
    asyncScheduler.schedule(() => {
      engine.handle({ provider: 'fieldwire', path: '/reports', headers: { Authorization: `Bearer ${TOKEN}` } });
    }, 50_000);
    const statuses: Array<{ at: number; status: number }> = [];
    const done: number[] = [];
    from(at)
      .pipe(
        mergeMap((t) =>
          timer(t, asyncScheduler).pipe(
            mergeMap(() =>
              api.request('fieldwire', { path: '/reports', token: TOKEN }).pipe(
                tap((r) => statuses.push({ at: now(), status: r.status })),
                rateLimit(limiter, { method: 'GET', url: '/reports' }),
              ),
            ),
            map(() => done.push(now())),
          ),
        ),
      )
      .subscribe();
    return { done, statuses, limiter };
  });
}

describe('providers.fieldwire: a declared legacy window after a 429 another client caused (virtual time)', () => {
  it('keeps its declared length: no 429 in the windows after the one the other client shared', () => {
    // Three late in 12:00 (the third refused: the other client's request took its place), then a burst.
    const out = run([56_000, 57_000, 58_000, ...Array<number>(12).fill(62_000)]);
    expect(out.done).toHaveLength(15);
    const refused = out.statuses.filter((s) => s.status === 429).map((s) => s.at);
    // The one 429 no client could avoid, in 12:00; none after.
    expect(refused.filter((t) => t >= 60_000)).toEqual([]);
    expect(refused.length).toBeLessThanOrEqual(1);
    const legacy = out.limiter.snapshot.buckets.find((b) => b.name === `${KEY}:minute`);
    expect(legacy?.windowMs).toBe(60_000);
  });
});
