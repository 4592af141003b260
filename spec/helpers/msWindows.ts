/**
 * A server in RxJS virtual time whose fixed windows open at the first request after the last
 * one ended and whose reset is the time left to the millisecond (`x-limit`, `x-remaining`,
 * `x-reset-ms`; or no reset at all, `reset: false`). It counts each request's cost when the request reaches it and answers after
 * a latency: the window accounting seen from the client, with nothing else in the way.
 */
import { asyncScheduler } from 'rxjs';
import { createLimiter, defineProvider, responseLike, type RateLimitError } from '../../lib/index.js';
import { inVirtualTime } from './virtual.js';

export interface MsWindowRun {
  readonly limit: number;
  readonly windowMs: number;
  /** Requests by arrival time (virtual ms) and cost (1 when not given). */
  readonly requests: ReadonlyArray<{ readonly at: number; readonly cost?: number }>;
  /** For the n-th request sent: ms from its send to the server, and from there to its answer. */
  readonly toServer: (n: number) => number;
  readonly toClient: (n: number) => number;
  readonly resetGuardMs?: number;
  /** `false`: the server tells no reset, only limit and remaining; the window is a hint. */
  readonly reset?: boolean;
}

export interface MsWindowResult {
  /** What each window counted (the one still open included), requests refused, the most in one. */
  readonly server: { readonly counted: readonly number[]; readonly over: number; readonly most: number };
  readonly errors: readonly RateLimitError[];
  /** Requests answered. */
  readonly done: number;
  /** When each answer was read (virtual ms), in order. */
  readonly doneAt: readonly number[];
}

let runs = 0;

export function runMsWindows(o: MsWindowRun): MsWindowResult {
  // The body sets the run up; the scheduler runs it to the end once the body has returned.
  const run = inVirtualTime(({ now }) => {
    const server = { start: -Infinity, used: 0, over: 0, most: 0, counted: [] as number[] };
    const provider = defineProvider({
      name: 'ms-windows',
      buckets: [{ name: 'window', limit: o.limit, windowMs: o.windowMs }],
      read: (res) => ({
        outcome: res.status === 429 ? 'limited' : 'ok',
        buckets: [
          {
            name: 'window',
            limit: Number(res.header('x-limit')),
            remaining: Number(res.header('x-remaining')),
            ...(o.reset === false ? {} : { reset: { inMs: Number(res.header('x-reset-ms')) } }),
          },
        ],
      }),
    });
    const limiter = createLimiter({
      provider,
      key: `ms-windows-${++runs}`,
      maxWaitMs: 1e9,
      ...(o.resetGuardMs === undefined ? {} : { resetGuardMs: o.resetGuardMs }),
    });
    const errors: RateLimitError[] = [];
    const count = { sent: 0, done: 0, at: [] as number[] };
    for (const r of o.requests) {
      const cost = r.cost ?? 1;
      asyncScheduler.schedule(() => {
        limiter.acquire(
          { url: '/x', ...(r.cost === undefined ? {} : { cost }) },
          {
            granted: (permit) => {
              const n = count.sent++;
              asyncScheduler.schedule(() => {
                const t = now();
                if (t >= server.start + o.windowMs) {
                  if (server.used > 0) server.counted.push(server.used);
                  server.start = t;
                  server.used = 0;
                }
                const fits = server.used + cost <= o.limit;
                if (fits) server.used += cost;
                else server.over++;
                server.most = Math.max(server.most, server.used);
                const headers = {
                  'x-limit': String(o.limit),
                  'x-remaining': String(o.limit - server.used),
                  ...(o.reset === false ? {} : { 'x-reset-ms': String(server.start + o.windowMs - t) }),
                };
                asyncScheduler.schedule(() => {
                  permit.observe(responseLike(fits ? 200 : 429, headers));
                  permit.release();
                  count.done++;
                  count.at.push(now());
                }, o.toClient(n));
              }, o.toServer(n));
            },
            rejected: (e) => errors.push(e),
          },
        );
      }, r.at);
    }
    return { server, errors, count, limiter };
  });
  void run.limiter.close();
  const { server } = run;
  return {
    server: {
      counted: [...server.counted, ...(server.used > 0 ? [server.used] : [])],
      over: server.over,
      most: server.most,
    },
    errors: run.errors,
    done: run.count.done,
    doneAt: run.count.at,
  };
}
