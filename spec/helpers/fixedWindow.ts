/**
 * A fixed-window API in RxJS virtual time, for property suites: windows opened by their first
 * request (or aligned to the server clock's whole seconds), resets written as unix seconds,
 * seconds left or an ISO date (all whole seconds, rounded up), a `Date` header, a server clock
 * that may be off, a latency drawn per request, and a limit that may drop for later windows.
 */
import { asyncScheduler, mergeMap, Observable, timer } from 'rxjs';
import { createLimiter, providers, rateLimit, responseLike, type ResponseLike } from '../../lib/index.js';
import { inVirtualTime } from './virtual.js';
import { prng as mulberry32 } from '../reliability/arbitraries.js';

export type ResetFormat = 'unix-seconds' | 'seconds-left' | 'iso';

export interface FixedWindowRun {
  readonly windowMs: number;
  /** The limit of windows opened before `dropAt` (virtual ms), and after. */
  readonly limit: number;
  readonly droppedLimit?: number;
  readonly dropAt?: number;
  /** `first-request`: a window opens at the first request after the last one ended. */
  readonly windows: 'first-request' | 'aligned';
  readonly reset: ResetFormat;
  /** Where the run starts against the server's second boundary, ms. */
  readonly phaseMs: number;
  /** Server clock minus ours, ms. */
  readonly skewMs: number;
  readonly requests: number;
  readonly streams: number;
  /** Each request's latency each way, 0 to `maxLatencyMs / 2`, drawn from this seed. */
  readonly seed: number;
  readonly maxLatencyMs: number;
  /** Whether the limiter is told the window length (a hint), as a user reading the docs would. */
  readonly hintWindow: boolean;
}

export interface FixedWindowResult {
  readonly statuses: number[];
  readonly errors: unknown[];
  /** Requests the server refused. */
  readonly limited: number;
  /** From the first send to the last answer, ms. */
  readonly makespan: number;
  /** The shortest time the windows allow: the start of the window that admits the last request. */
  readonly lastWindowAt: number;
  readonly windowsUsed: number;
  /** Per window that admitted a request: how many it admitted, and its limit. */
  readonly fills: ReadonlyArray<{ count: number; limit: number }>;
  /** When each request reached the server, on our clock (virtual ms from the start). */
  readonly arrivals: readonly number[];
}

const START = Date.UTC(2026, 10, 23, 12, 0, 0);

function formatReset(format: ResetFormat, endMs: number, serverNow: number): string {
  const endSeconds = Math.ceil(endMs / 1000);
  if (format === 'unix-seconds') return String(endSeconds);
  if (format === 'seconds-left') return String(Math.max(1, Math.ceil((endMs - serverNow) / 1000)));
  return new Date(endSeconds * 1000).toISOString().replace('.000Z', 'Z');
}

export function runFixedWindow(o: FixedWindowRun): FixedWindowResult {
  return inVirtualTime(({ now: clock }) => {
    const random = mulberry32(o.seed);
    const half = o.maxLatencyMs / 2;
    // Our clock is the virtual one, the server's is `skewMs` off it (0: as NTP keeps them), and
    // the run starts `phaseMs` into a second of ours: times below are from the start.
    const base = START + o.phaseMs;
    const now = () => clock() - base;
    let windowStart = Number.NaN;
    let windowEnd = Number.NaN;
    let windowLimit = o.limit;
    let count = 0;
    let limited = 0;
    let lastWindowAt = 0;
    let windowsUsed = 0;
    const fills: Array<{ count: number; limit: number }> = [];
    const arrivals: number[] = [];
    const handle = (): ResponseLike => {
      const t = now();
      arrivals.push(t);
      const serverNow = base + o.skewMs + t;
      if (!(serverNow < windowEnd)) {
        windowStart = o.windows === 'aligned' ? Math.floor(serverNow / o.windowMs) * o.windowMs : serverNow;
        windowEnd = windowStart + o.windowMs;
        windowLimit = o.dropAt !== undefined && t >= o.dropAt ? (o.droppedLimit ?? o.limit) : o.limit;
        count = 0;
      }
      const ok = count < windowLimit;
      if (ok) {
        if (count === 0) {
          windowsUsed++;
          lastWindowAt = windowStart - base - o.skewMs;
          fills.push({ count: 0, limit: windowLimit });
        }
        count++;
        fills[fills.length - 1]!.count = count;
      } else limited++;
      const headers: Record<string, string> = {
        date: new Date(Math.floor(serverNow / 1000) * 1000).toUTCString(),
        'x-ratelimit-limit': String(windowLimit),
        'x-ratelimit-remaining': String(Math.max(0, windowLimit - count)),
        'x-ratelimit-reset': formatReset(o.reset, windowEnd, serverNow),
      };
      return responseLike(ok ? 200 : 429, headers);
    };
    const request = () =>
      new Observable<ResponseLike>((subscriber) => {
        const up = random() * half;
        const down = random() * half;
        let response: ResponseLike | undefined;
        const a = asyncScheduler.schedule(() => {
          response = handle();
        }, up);
        const b = asyncScheduler.schedule(() => {
          subscriber.next(response!);
          subscriber.complete();
        }, up + down);
        return () => (a.unsubscribe(), b.unsubscribe());
      });
    const limiter = createLimiter({
      provider: providers.generic({
        limit: o.limit,
        resetUnit: o.reset === 'iso' ? 'timestamp' : o.reset,
        ...(o.hintWindow ? { windowMs: o.windowMs } : {}),
      }),
      key: 'token-F',
    });
    const statuses: number[] = [];
    const errors: unknown[] = [];
    let last = 0;
    timer(base)
      .pipe(
        mergeMap(() => Array.from({ length: o.requests }, (_, i) => i)),
        mergeMap(() => request().pipe(rateLimit(limiter, { url: '/items' })), o.streams),
      )
      .subscribe({
        next: (r) => {
          statuses.push(r.status);
          last = now();
        },
        error: (e: unknown) => errors.push(e),
      });
    return {
      statuses,
      errors,
      get limited() {
        return limited;
      },
      get makespan() {
        return last;
      },
      get lastWindowAt() {
        return lastWindowAt;
      },
      get windowsUsed() {
        return windowsUsed;
      },
      fills,
      arrivals,
    };
  });
}
