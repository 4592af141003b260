import { describe, expect, it } from '@jest/globals';
import { runMsWindows } from '../helpers/msWindows.js';

/** Batches of one-unit requests (`[at, n]`), `oneWayMs` each way (spec/helpers/msWindows.ts). */
function run(
  limit: number,
  windowMs: number,
  oneWayMs: number,
  batches: ReadonlyArray<readonly [at: number, n: number]>,
) {
  const requests = batches.flatMap(([at, n]) => Array.from({ length: n }, () => ({ at })));
  return runMsWindows({ limit, windowMs, requests, toServer: () => oneWayMs, toClient: () => oneWayMs });
}

describe('resets told as time left to the millisecond', () => {
  it('requests sent just before the estimated reset that open the next window are counted in it', () => {
    const out = run(10, 1000, 1, [
      [0, 1],
      [1000, 5],
      [1051, 6],
    ]);
    expect({ most: out.server.most, over: out.server.over }).toEqual({ most: 10, over: 0 });
    expect(out.done).toBe(12);
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
          if (out.server.over > 0 || out.done !== 1 + n + m)
            seen.push(`latency ${oneWay}, batch at ${at}: ${out.server.most} in a window, ${out.done} done`);
        }
    expect(seen).toEqual([]);
  });
});
