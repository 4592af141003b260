/**
 * Concurrent requests reach the server in another order than they were admitted, and answers
 * come back in yet another. An answer that reads more left than the window's lowest figure is
 * then no proof of a new window when its request was sent before that figure came back: it may
 * have been counted first. Seen with costs (4 to 18 units a request) and resets as seconds left:
 * such an answer, 44 units above the lowest, refilled the bucket 4 s before the window ended, and
 * 82 units went into a window of 80.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { asyncScheduler } from 'rxjs';
import { createLimiter, providers, responseLike, type Permit } from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { prng } from './arbitraries.js';

interface Run {
  readonly limit: number;
  readonly windowMs: number;
  /** Cost of each route; the request says it (`cost`), as a caller who knows it would. */
  readonly costs: readonly number[];
  readonly streams: number;
  readonly perStream: number;
  /** Each way, a request's latency is drawn from 1 to half of this. */
  readonly maxLatencyMs: number;
  readonly seed: number;
}

/** Windows aligned to the clock; resets as whole seconds left; a request costs its route's units. */
function run(r: Run): { refused: number; answered: number } {
  return inVirtualTime(({ now }) => {
    const random = prng(r.seed);
    let window = -1;
    let used = 0;
    // Read after the run: the scheduler flushes once this function has returned.
    const out = { refused: 0, answered: 0 };
    const arrive = (cost: number) => {
      const w = Math.floor(now() / r.windowMs);
      if (w !== window) [window, used] = [w, 0];
      const ok = used + cost <= r.limit;
      if (ok) used += cost;
      else out.refused++;
      const end = (w + 1) * r.windowMs;
      return responseLike(ok ? 200 : 429, {
        'x-ratelimit-limit': String(r.limit),
        'x-ratelimit-remaining': String(r.limit - used),
        'x-ratelimit-reset': String(Math.max(1, Math.ceil((end - now()) / 1000))),
      });
    };
    const limiter = createLimiter({
      provider: providers.generic({ limit: r.limit, windowMs: r.windowMs, resetUnit: 'seconds-left' }),
      key: `reordered-${r.seed}`,
      maxWaitMs: 3_600_000,
    });
    const send = (stream: number, k: number): void => {
      if (k >= r.perStream) return;
      const route = k === 0 ? stream % r.costs.length : Math.floor(random() * r.costs.length);
      const cost = r.costs[route] ?? 1;
      const there = 1 + Math.floor((random() * r.maxLatencyMs) / 2);
      const back = 1 + Math.floor((random() * r.maxLatencyMs) / 2);
      limiter.acquire(
        { method: 'GET', url: `/r${route}/items/${k}`, cost },
        {
          granted: (permit: Permit) =>
            asyncScheduler.schedule(() => {
              const res = arrive(cost);
              asyncScheduler.schedule(() => {
                permit.observe(res);
                permit.release();
                out.answered++;
                send(stream, res.status === 429 ? k : k + 1);
              }, back);
            }, there),
          rejected: () => undefined,
        },
      );
    };
    for (let s = 0; s < r.streams; s++) send(s, 0);
    return out;
  });
}

describe('answers that come back out of the order the server counted them (virtual time)', () => {
  it('a reordered answer reading more left than the lowest figure opens no window early: no 429', () => {
    const out = run({
      limit: 80,
      windowMs: 5000,
      costs: [4, 4, 4, 18],
      streams: 8,
      perStream: 13,
      maxLatencyMs: 150,
      seed: 14327381,
    });
    expect(out.refused).toBe(0);
    expect(out.answered).toBe(8 * 13);
  });

  it('with random costs, streams and latency up to 300 ms each way: no 429, every request answered', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 40, max: 120 }),
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 2, max: 12 }),
        fc.integer({ min: 20, max: 600 }),
        fc.integer(),
        (limit, costs, streams, maxLatencyMs, seed) => {
          const out = run({ limit, windowMs: 5000, costs, streams, perStream: 10, maxLatencyMs, seed });
          expect(out.refused).toBe(0);
          expect(out.answered).toBe(streams * 10);
        },
      ),
      { numRuns: 150 },
    );
  });
});
