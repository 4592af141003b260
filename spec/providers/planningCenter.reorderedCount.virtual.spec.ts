/**
 * Planning Center tells no reset: `X-PCO-API-Request-Rate-Count` counts the requests of the
 * current period, which opens at the first request after the last one ended, and the profile
 * reads a count of 1 as a period starting (its reset a whole period from the answer). Requests
 * sent just before a period ends may reach the server after it ended: they are counted in the
 * next period, and their answers come back among (or before) the count-1 answer that opens it.
 * Found by a seeded sweep of the simulator behind a jittery network:
 *
 * - 0–33 ms of jitter, a period of 7: five requests sent 8 ms before the period's end all land
 *   in the next one (counts 1 to 4, and 6); the count-6 answer comes back once the bucket has
 *   refilled at the end it knew, and was dropped as the old period's, sent before its end. The
 *   new period's lowest figure (count 5, read before the count-6 request was counted) then gave
 *   back that request's unit when it left the calls in flight, and 8 went into the period of 7;
 * - a 2-s stall on the way, two limiters sharing a period of 13: counts 2 to 4 of a period,
 *   from requests sent 410 ms before the previous one ended, were dropped the same way, then the
 *   count-1 answer (sent after the end) opened the period with none of them counted: 14 in 13.
 *
 * The rule: a figure dropped as an older window's (sent before the reset it told, answered once
 * we refilled past it) may be the current window's; its call counts as ended unread beside the
 * new window's figures until a figure from a call sent after it ended is read. Memory (Bucket)
 * and the Redis store's script alike.
 */
import { describe, expect, it } from '@jest/globals';
import { providers } from '../../lib/index.js';
import { checkEndings, refusedCount, runAdversarial } from '../reliability/adversarialRun.js';

interface Case {
  readonly limit: number;
  /** The profile is told the limit (the default bucket's and the high-offset one's). */
  readonly hinted: boolean;
  /** When each request is asked for, ms. */
  readonly at: readonly number[];
  readonly streams: number;
  readonly limiters: number;
  /** One-way delays, ms, used in turn per send and per answer. */
  readonly up: readonly number[];
  readonly down: readonly number[];
  /** Start time past a round UTC hour, ms. */
  readonly phaseMs: number;
}

function run(c: Case) {
  const high = Math.max(1, Math.floor(c.limit * 0.75));
  const out = runAdversarial({
    simulated: 'planningCenter',
    provider: () =>
      providers.planningCenter(
        c.hinted ? { hints: { default: { limit: c.limit }, 'high-offset': { limit: high } } } : {},
      ),
    engine: { clockOffsetMs: 0, planningCenter: { limit: c.limit, highOffsetLimit: high } },
    phaseMs: c.phaseMs,
    requests: c.at.map((at, i) => ({ at, method: 'GET', path: `/people/v2/people?offset=${i}`, limiter: i })),
    streams: c.streams,
    limiters: c.limiters,
    up: c.up,
    down: c.down,
    options: { maxWaitMs: 2 * 24 * 3_600_000 },
    horizonMs: 3 * 24 * 3_600_000,
  });
  return { out, ends: checkEndings(out) };
}

/** Two requests at 0 open a period of 7; five more go 8 ms before it ends (0–33 ms of jitter). */
const burstAtTheEnd: Case = {
  limit: 7,
  hinted: false,
  at: [0, 0, 20_000, 20_000, 20_000, 20_000, 20_000, 0, 0, 0],
  streams: 5,
  limiters: 1,
  up: [8, 0, 30, 30, 33, 30],
  down: [0, 0, 28],
  phaseMs: 1_513_000,
};

/** Two limiters, a hinted period of 13; eight requests 200 ms before its end, ten at its end; 2 s stalls. */
const stalledAcrossTheEnd: Case = {
  limit: 13,
  hinted: true,
  at: [
    0, 0, 0, 0, 0, 20_000, 20_000, 20_000, 20_000, 20_000, 20_000, 20_000, 20_000, 20_000, 20_000, 19_800, 19_800,
    19_800, 19_800, 19_800, 19_800, 19_800, 19_800,
  ],
  streams: 9,
  limiters: 2,
  up: [210, 2150],
  down: [0, 550, 0, 0],
  phaseMs: 1_033_000,
};

describe('providers.planningCenter: counts of a new period from requests sent before it began', () => {
  it('a count-1 answer back after counts 2 and 3 of its burst, count 6 dropped as the old period’s: no 429', () => {
    const { out, ends } = run(burstAtTheEnd);
    expect(refusedCount(out, 'planningCenter')).toBe(0);
    expect(ends['status 200']).toBe(burstAtTheEnd.at.length);
  });

  it('counts 2 to 4 of a period answered before its count-1 answer, after a 2-s stall, two limiters: no 429', () => {
    const { out, ends } = run(stalledAcrossTheEnd);
    expect(refusedCount(out, 'planningCenter')).toBe(0);
    expect(ends['status 200']).toBe(stalledAcrossTheEnd.at.length);
  });

  // Around both: other phases of the jitter, and the burst a little earlier or later.
  it.each([0, 2, 4, 6, 10, 20, 40])('the burst %i ms earlier, the jitter of both cases in turn: no 429', (early) => {
    for (const c of [burstAtTheEnd, stalledAcrossTheEnd])
      for (let k = 0; k < c.down.length; k++) {
        const down = [...c.down.slice(k), ...c.down.slice(0, k)];
        const at = c.at.map((t) => (t >= 19_000 ? t - early : t));
        const { out, ends } = run({ ...c, at, down });
        expect(refusedCount(out, 'planningCenter')).toBe(0);
        expect(ends['status 200']).toBe(c.at.length);
      }
  });
});
