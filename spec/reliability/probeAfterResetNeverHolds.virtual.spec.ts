/**
 * After a reset the server told, one request goes alone until its answer tells what the new
 * window has left. That request may hang, or fail without an answer while an older request is
 * still out: the bucket awaits it at most a second (`PROBE_MS`), then lets the next one go, and
 * does not stand still until its permit lapses (`permitTimeoutMs`, 5 minutes by default).
 * In virtual time against a fixed window of 20 per 2 s aligned to the clock.
 */
import { describe, expect, it } from '@jest/globals';
import {
  EMPTY,
  asyncScheduler,
  catchError,
  defer,
  from,
  map,
  mergeMap,
  throwError,
  timer,
  type Observable,
} from 'rxjs';
import { createLimiter, providers, rateLimit } from '../../lib/index.js';
import { imfFixdate } from '../../lib/testing/format.js';
import type { SimulatorResponse } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
const LIMIT = 20;
const WINDOW_MS = 2000;
const LATENCY_MS = 20;

interface Case {
  /** Latency to the server of the `i`th request sent at `sentAt` (ms from the start). */
  readonly up: (i: number, sentAt: number) => number;
  /** Does the `i`th request sent at `sentAt` fail on the way (a reset connection)? */
  readonly fails?: (i: number, sentAt: number) => boolean;
}

function run(c: Case) {
  return inVirtualTime(({ now }) => {
    let windowStart = Number.NaN;
    let count = 0;
    const statuses: number[] = [];
    const answer = (serverNow: number): SimulatorResponse => {
      const start = Math.floor(serverNow / WINDOW_MS) * WINDOW_MS;
      if (start !== windowStart) {
        windowStart = start;
        count = 0;
      }
      const ok = count < LIMIT;
      if (ok) count += 1;
      statuses.push(ok ? 200 : 429);
      return {
        status: ok ? 200 : 429,
        headers: {
          Date: imfFixdate(serverNow),
          'x-ratelimit-limit': String(LIMIT),
          'x-ratelimit-remaining': String(LIMIT - count),
          'x-ratelimit-reset': String(start + WINDOW_MS),
        },
        body: '',
      };
    };
    let sent = 0;
    const send = (): Observable<SimulatorResponse> =>
      defer(() => {
        const i = sent++;
        const up = c.up(i, now());
        if (c.fails?.(i, now()))
          return timer(up, asyncScheduler).pipe(mergeMap(() => throwError(() => new Error('ECONNRESET'))));
        return timer(up, asyncScheduler).pipe(
          map(() => answer(START + now())),
          mergeMap((res) => timer(LATENCY_MS, asyncScheduler).pipe(map(() => res))),
        );
      });
    const limiter = createLimiter({
      provider: providers.generic({ limit: LIMIT, windowMs: WINDOW_MS, resetUnit: 'unix-ms' }),
      key: 'token',
    });
    const done: number[] = [];
    const failed: string[] = [];
    from(Array.from({ length: 100 }, (_, i) => i))
      .pipe(
        mergeMap((i) =>
          send().pipe(
            rateLimit(limiter, { method: 'GET', url: `/items/${i}` }, { maxRetries: 0 }),
            map(() => done.push(now())),
            catchError((e: Error) => (failed.push(e.message), EMPTY)),
          ),
        ),
      )
      .subscribe();
    // Read once the scheduler has run everything (after `inVirtualTime` returns).
    return { done, failed, limited: () => statuses.filter((s) => s === 429).length };
  });
}

describe('the request sent alone after a told reset never holds its bucket', () => {
  it('when it hangs for an hour: the other 99 are served within 12 s, no 429', () => {
    let hung = false;
    const out = run({
      up: (_i, at) => {
        if (!hung && at >= WINDOW_MS) {
          hung = true;
          return 3_600_000;
        }
        return LATENCY_MS;
      },
    });
    const sorted = [...out.done].sort((a, b) => a - b);
    expect(sorted).toHaveLength(100);
    // 100 at 20 per 2 s take 5 windows; the hung one costs a second of the second window.
    expect(sorted[98]).toBeLessThanOrEqual(12_000);
    expect(out.limited()).toBe(0);
  });

  it('when it fails unanswered while an older request is still out: the rest are not held until that one ends', () => {
    let failedOne = false;
    const out = run({
      // The sixth request of the first window takes 20 s to reach the server.
      up: (i) => (i === 5 ? 20_000 : LATENCY_MS),
      fails: (_i, at) => {
        if (!failedOne && at >= WINDOW_MS) {
          failedOne = true;
          return true;
        }
        return false;
      },
    });
    expect(out.failed).toEqual(['ECONNRESET']);
    expect(out.done).toHaveLength(99);
    const sorted = [...out.done].sort((a, b) => a - b);
    // All but the slow one are served long before it ends (20 s).
    expect(sorted[97]).toBeLessThanOrEqual(12_000);
    expect(out.limited()).toBe(0);
  });
});
