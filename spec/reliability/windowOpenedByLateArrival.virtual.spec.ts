/**
 * Pipedrive's 2-second window opens at the first request after the last one ended, and a
 * request that stalled on the way can be that first request: the server's window then runs
 * from its late arrival, and requests of ours sent before that arrival, answered late, read the
 * old window's figures. Found by the adversarial property (adversarial.providers.properties.spec.ts,
 * "Pipedrive, 2-s windows…"), one 429 in a run of 78 requests:
 *
 * - window 1 runs from 0; request 35, sent at 1473, stalls 527 ms and opens window 2 at 2000;
 *   request 38, sent and answered at 2000, tells its end (4000): the bucket opens window 2;
 * - request 36, sent at 1532 and counted in window 1 (6 left), is answered at 2061: its reset
 *   ("1" s, 3061) is within the rounding of 4000, so it is read as window 2's figure, and became
 *   its lowest (6), with every request admitted since as counted after it;
 * - request 58, sent at 2587 (counted in window 2, 18 left, "2" s), is answered at 3116, after
 *   window 2's figures of 17, 16, 14 and 13: it "rose" over the 6 from a request sent after that
 *   came back, so it was taken for a window after window 2 (its reset read 5116, beyond 4000 and
 *   the tolerance), the lower figures were dropped, and 18 less the 5 in flight went: ten
 *   requests at 3116 into window 2, which had 13 left; the last was its 41st.
 *
 * The rule: a request admitted before the current window opened (a reading opened it, or a
 * refill) may have been counted in the window before, however its answer reads. Its figure still
 * lowers what is left, but it is not the window's lowest: a rise above it proves no new window
 * (the rollover it shows is the one already known). Memory (Bucket.windowFrom/floor) and the
 * Redis scripts (wfr/lowf) alike.
 */
import { describe, expect, it } from '@jest/globals';
import { providers, type PipedrivePlan } from '../../lib/index.js';
import { checkEndings, refusedCount, runAdversarial } from './adversarialRun.js';

/** A request at 0, then one every `stepMs` from 366 (76 of them), and one ten minutes later. */
const burst = (stepMs: number): number[] => [0, ...Array.from({ length: 76 }, (_, k) => 366 + stepMs * k), 600_366];

function run(o: { plan: PipedrivePlan; told: PipedrivePlan; at: readonly number[]; streams: number }) {
  return runAdversarial({
    simulated: 'pipedrive',
    provider: () => providers.pipedrive({ plan: o.told }),
    engine: { clockOffsetMs: 0, pipedrive: { plan: o.plan } },
    phaseMs: 0,
    requests: o.at.map((at, i) => ({ at, method: 'GET', path: `/v1/deals/${i}`, limiter: i })),
    streams: o.streams,
    limiters: 1,
    // Every other request stalls 527 ms on the way; answers stall 473, 529 or 60 ms in turn.
    up: [0, 527],
    down: [473, 0, 0, 529, 0, 60],
    faults: ['none'],
  });
}

describe('Pipedrive: a window opened by a late arrival, the old window read after it', () => {
  it('the counterexample (told essential, the server applies advanced): no 429, every request answered', () => {
    const at = burst(11);
    expect(at).toHaveLength(78);
    expect(at[at.length - 2]).toBe(1191);
    const out = run({ plan: 'advanced', told: 'essential', at, streams: 15 });
    expect(refusedCount(out, 'pipedrive')).toBe(0);
    expect(checkEndings(out)['status 200']).toBe(at.length);
  });

  it('the plan told right, a request every 12 ms: no 429, every request answered', () => {
    const at = burst(12);
    const out = run({ plan: 'advanced', told: 'advanced', at, streams: 15 });
    expect(refusedCount(out, 'pipedrive')).toBe(0);
    expect(checkEndings(out)['status 200']).toBe(at.length);
  });
});
