/**
 * A rolling window another client spends too: the reset the server tells is when the oldest
 * call it counts leaves; the rest leave no sooner, and a window after the answer that read them
 * at the latest. That latest time bounds a wait; it is not a known wait, which alone may fail a
 * request before its deadline.
 */
import { describe, expect, it } from '@jest/globals';
import { createBucket } from '../../lib/core/buckets.js';
import { rollingWindows } from '../../lib/core/rollingBucket.js';

const KINDS = { name: 'test', bucketKinds: [rollingWindows] };
const DAY = 86_400_000;
const H = 3_600_000;
const GUARD = 50;

/**
 * A rolling day of 10. One call of ours goes at 0 and is answered at 20 ms with `remaining`
 * left and the reset at hour 4: the server counts 9 − `remaining` calls of another client, the
 * oldest leaving at hour 4.
 */
function day(remaining: number) {
  const b = createBucket({ name: 'day', limit: 10, windowMs: DAY, rolling: true, quota: true }, KINDS);
  const call = b.take(0);
  b.confirm(call, 20);
  b.apply({ name: 'day', limit: 10, remaining }, call, 4 * H, 20);
  b.release(call, 20);
  return b;
}

describe("rolling buckets: another client's calls after the oldest leave at a time not known", () => {
  it('once the reset told has freed its slot and it is spent, the next wait is not known to pass a deadline (it ends at the latest a day after the answer)', () => {
    const b = day(0);
    b.refill(4 * H, GUARD);
    // At the reset, the slot it frees goes.
    expect(b.availableAt(4 * H, GUARD, 1)).toBe(4 * H);
    const head = b.take(4 * H);
    // The next: others' calls still counted may leave any time from now on; a day after the
    // answer that read them, they have surely left.
    b.refill(4 * H + 1, GUARD);
    const at = b.availableAt(4 * H + 1, GUARD, 1) as number;
    expect(at).toBeGreaterThan(DAY);
    expect(b.awaitsAnswers).toBe(true);
    // The head's answer tells the next reset: the wait is known again, and ends then.
    b.confirm(head, 4 * H + 20);
    b.apply({ name: 'day', limit: 10, remaining: 0 }, head, 4 * H + 5 * 60_000, 4 * H + 20);
    b.release(head, 4 * H + 20);
    b.refill(4 * H + 20, GUARD);
    expect(b.availableAt(4 * H + 20, GUARD, 1)).toBe(4 * H + 5 * 60_000);
    expect(b.awaitsAnswers).toBe(false);
  });

  it('a request of 3 units that needs two of their calls gone waits from the reset told on: not before it, and not failed on the day’s end', () => {
    // 1 left: the other client's 8 calls hold the rest; the oldest leaves at hour 4.
    const b = day(1);
    b.refill(H, GUARD);
    // Not before the reset: none of their calls can leave sooner (a known "not before").
    expect(b.availableAt(H, GUARD, 1, 0, 3)).toBe(4 * H);
    expect(b.awaitsAnswers).toBe(false);
    // After it, the second may leave any time: the bound, not a known wait.
    b.refill(4 * H, GUARD);
    expect(b.availableAt(4 * H, GUARD, 1, 0, 3)).toBeGreaterThan(DAY);
    expect(b.awaitsAnswers).toBe(true);
  });

  it('with no other client, a wait on our own calls is known (they leave a day after their answers)', () => {
    const b = createBucket({ name: 'day', limit: 1, windowMs: DAY, rolling: true, quota: true }, KINDS);
    const call = b.take(0);
    b.confirm(call, 20);
    b.apply({ name: 'day', limit: 1, remaining: 0 }, call, DAY, 20);
    b.release(call, 20);
    b.refill(DAY + 1, GUARD);
    const at = b.availableAt(DAY + 1, GUARD, 1) as number;
    expect(at).toBeGreaterThan(DAY + 1);
    expect(b.awaitsAnswers).toBe(false);
  });
});
