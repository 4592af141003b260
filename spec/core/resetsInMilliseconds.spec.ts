import { describe, expect, it } from '@jest/globals';
import { asyncScheduler } from 'rxjs';
import { createLimiter, defineProvider, responseLike } from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

/**
 * A server whose windows open at the first request after the last one ended and whose reset is
 * the time left to the millisecond. It counts a request when it arrives (`oneWayMs` after the
 * send) and answers `oneWayMs` later. Returns the most it counted in one window.
 */
function run(
  limit: number,
  windowMs: number,
  oneWayMs: number,
  batches: ReadonlyArray<readonly [at: number, n: number]>,
) {
  return inVirtualTime(({ now }) => {
    const server = { start: -Infinity, used: 0, most: 0, over: 0 };
    const provider = defineProvider({
      name: 'ms-resets',
      buckets: [{ name: 'window', limit, windowMs }],
      read: (res) => ({
        outcome: res.status === 429 ? 'limited' : 'ok',
        buckets: [
          {
            name: 'window',
            limit: Number(res.header('x-limit')),
            remaining: Number(res.header('x-remaining')),
            reset: { inMs: Number(res.header('x-reset-ms')) },
          },
        ],
      }),
    });
    const limiter = createLimiter({ provider, key: `ms-resets-${Math.random()}`, maxWaitMs: 1e9 });
    let done = 0;
    for (const [at, n] of batches)
      for (let i = 0; i < n; i++)
        asyncScheduler.schedule(() => {
          limiter.acquire(
            { url: '/x' },
            {
              granted: (permit) =>
                asyncScheduler.schedule(() => {
                  const t = now();
                  if (t >= server.start + windowMs) {
                    server.start = t;
                    server.used = 0;
                  }
                  server.used++;
                  server.most = Math.max(server.most, server.used);
                  const ok = server.used <= limit;
                  if (!ok) server.over++;
                  const headers = {
                    'x-limit': String(limit),
                    'x-remaining': String(Math.max(0, limit - server.used)),
                    'x-reset-ms': String(server.start + windowMs - t),
                  };
                  asyncScheduler.schedule(() => {
                    permit.observe(responseLike(ok ? 200 : 429, headers));
                    permit.release();
                    done++;
                  }, oneWayMs);
                }, oneWayMs),
              rejected: () => undefined,
            },
          );
        }, at);
    return { server, done: () => done };
  });
}

describe('resets told as time left to the millisecond', () => {
  it('requests sent just before the estimated reset that open the next window are counted in it', () => {
    const out = run(10, 1000, 1, [
      [0, 1],
      [1000, 5],
      [1051, 6],
    ]);
    expect({ most: out.server.most, over: out.server.over }).toEqual({ most: 10, over: 0 });
    expect(out.done()).toBe(12);
  });

  it('whatever the latency and however close to the reset the second batch goes: never over the limit', () => {
    const seen: string[] = [];
    for (let oneWay = 1; oneWay <= 6; oneWay++)
      for (let at = 985; at <= 1015; at += 3)
        for (const [n, m] of [
          [5, 6],
          [9, 9],
          [2, 10],
        ] as const) {
          const out = run(10, 1000, oneWay, [
            [0, 1],
            [at, n],
            [at + 51, m],
          ]);
          if (out.server.over > 0 || out.done() !== 1 + n + m)
            seen.push(`latency ${oneWay}, batch at ${at}: ${out.server.most} in a window, ${out.done()} done`);
        }
    expect(seen).toEqual([]);
  });
});
