/**
 * The capacity of a window no header describes, counted from the successes a 429 closed it on:
 * which successes the server counted in that window, when answers come back in any order.
 */
import { describe, expect, it } from '@jest/globals';

import { createBucket } from '../../lib/core/buckets.js';
import { CapacityInference } from '../../lib/core/inference.js';

type Answer = { sent: number; answered: number; ok: boolean };

/** Feeds the answers to a new inference in the order they came back; the window ends at `end`. */
function learn(answers: Answer[], end = 1000) {
  const b = createBucket({ name: 'legacy' });
  const inference = new CapacityInference(() => undefined);
  for (const a of [...answers].sort((x, y) => x.answered - y.answered)) {
    if (a.ok) inference.succeeded(b, a.sent, a.answered);
    else inference.limited(b, a.sent, end, a.answered);
  }
  return b;
}

describe('the capacity of a window a 429 closed', () => {
  it('counts a success sent after the refused request but answered before the refusal (it got there first)', () => {
    // 10 per window: the first request alone, then 8 of a burst of 9 and one sent later; the
    // ninth of the burst took the slow path and was refused after the tenth success got in.
    const answers: Answer[] = [
      { sent: 0, answered: 27, ok: true },
      ...[35, 42, 43, 44, 47, 48, 51, 57].map((answered) => ({ sent: 27, answered, ok: true })),
      { sent: 27, answered: 59, ok: false },
      { sent: 35, answered: 59.5, ok: true },
    ];
    expect(learn(answers)).toMatchObject({ limit: 10, limitSource: 'inferred' });
  });
});
