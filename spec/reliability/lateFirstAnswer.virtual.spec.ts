/**
 * Planning Center tells a period's end only with its first request (a count of 1): "the period
 * ends 20 s from now". That answer may come back seconds after the answers of the requests that
 * followed it, its end read late by as long as it was on its way back. It names the period those
 * requests were counted in, never a new one: taken for a new period, the bucket refilled and sent
 * into the full one.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { providers } from '../../lib/index.js';
import { checkEndings, refusedCount, runAdversarial } from './adversarialRun.js';
import type { RunRequest } from './providerRun.js';

/** `n` GETs at once, at real scale (a 20 s period), answers coming back after `down` ms in turn. */
function run(o: { limit: number; n: number; streams: number; up: number[]; down: number[]; phaseMs: number }) {
  const requests: RunRequest[] = Array.from({ length: o.n }, (_, i) => ({
    at: 0,
    method: 'GET',
    path: `/people/v2/people/${i}`,
  }));
  const out = runAdversarial({
    simulated: 'planningCenter',
    provider: () => providers.planningCenter(),
    engine: { planningCenter: { limit: o.limit } },
    phaseMs: o.phaseMs,
    requests,
    streams: o.streams,
    up: o.up,
    down: o.down,
  });
  return { ends: checkEndings(out), refused: refusedCount(out, 'planningCenter'), lastEnd: out.lastEnd };
}

describe('Planning Center: a count of 1 answered late is its period’s first, not a new period', () => {
  it.each([
    ['one answer in six 1.2 s on its way back', [1200, 20, 20, 20, 20, 20]],
    ['one answer in four 1.9 s on its way back', [1900, 20, 20, 20]],
    ['one answer in three 3 s on its way back', [3000, 20, 20]],
  ])('%s: no 429, all 1,000 answered, in the periods they need', (_, down) => {
    const r = run({ limit: 100, n: 1000, streams: 100, up: [20], down, phaseMs: 0 });
    expect(r.refused).toBe(0);
    expect(r.ends).toEqual({ 'status 200': 1000 });
    // 10 periods of 100: the tenth begins after 9 of 20 s, and a period's last answers come back late.
    expect(r.lastEnd).toBeLessThan(10 * 20_000 + 3 * 3_000);
  });

  it('random stalls on the way there and back, random phases: no 429, nothing lost', () => {
    fc.assert(
      fc.property(
        fc.record({
          limit: fc.integer({ min: 5, max: 100 }),
          streams: fc.integer({ min: 1, max: 60 }),
          up: fc.array(fc.oneof(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 600, max: 3000 })), {
            minLength: 1,
            maxLength: 4,
          }),
          down: fc.array(fc.oneof(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 600, max: 4000 })), {
            minLength: 1,
            maxLength: 8,
          }),
          phaseMs: fc.integer({ min: 0, max: 60_000 }),
        }),
        (o) => {
          const n = 3 * o.limit;
          const r = run({ ...o, n });
          expect(r.refused).toBe(0);
          expect(r.ends).toEqual({ 'status 200': n });
        },
      ),
      { numRuns: Number(process.env['ADV_RUNS'] ?? 20) },
    );
  });
});
