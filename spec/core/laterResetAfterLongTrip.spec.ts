/**
 * Pipedrive's 2-s window, calls that take 1.6 s to reach the server. Eighteen go at once just
 * after the first answer told the window ends in 2 s; the server counts them all in its next
 * window. Their answers tell "2 s left" again: sent before our window's end, after a long trip
 * back, that reads no later than the old window could have had left, so they are taken as the
 * old window's (and lower what is left of it). Then the earliest of them answers with 19 left:
 * a figure no call sent after the first answer could read in the old window, so a new window
 * (`countedAfresh`). The calls whose figures came back before it, counted after it in that new
 * window, told a reset later than the old window's end: they are held beside its figure, so no
 * more go than the server's window has room for. The bucket alone, in plain numbers (ms).
 */
import { describe, expect, it } from '@jest/globals';
import { createBucket } from '../../lib/core/buckets.js';

const LIMIT = 20;
const WINDOW = 2000;
/** The server's windows: the first from 1,572 (the first call's arrival), the next from 3,572. */
const NEXT = 3572;

describe('a new window shown by a rise, after answers that told its reset were read as the old one', () => {
  it('the calls answered first count beside the rise: the new window gets no more than its limit', () => {
    const b = createBucket({ name: 'window', limit: LIMIT, windowMs: WINDOW }, { name: 'fixed-window' });
    const read = (remaining: number) => ({ name: 'window', limit: LIMIT, remaining });
    const first = b.take(0);
    b.apply(read(19), first, 2000 + WINDOW, 2000, 0);
    b.release(first, 2000);
    b.refill(2000, 50);
    // Eighteen go at once (the server counts them 19 … 2 left in its next window).
    const calls: number[] = [];
    while (calls.length < 18 && b.availableAt(2000, 50, 1) === 2000) calls.push(b.take(2000));
    expect(calls).toHaveLength(18);
    const answer = (k: number, at: number) => {
      const i = calls[k] as number;
      b.apply(read(19 - k), i, at + WINDOW, at, 2000);
      b.release(i, at);
    };
    // Every third one back first (18, 15, … 3 left), then the earliest (19 left).
    for (let k = 1; k < 18; k += 3) answer(k, NEXT);
    answer(0, NEXT + 1);
    // What goes before the server's next window ends lands in it: 18 are counted there already.
    b.refill(NEXT + 1, 50);
    let more = 0;
    while (b.availableAt(NEXT + 1, 50, 1) === NEXT + 1 && more < LIMIT) {
      b.take(NEXT + 1);
      more++;
    }
    expect(18 + more).toBeLessThanOrEqual(LIMIT);
  });
  it('a figure counted afresh moves the window end to its reset, though that is within the tolerance of ours', () => {
    // The first answer came back 1.95 s late and told "2 s" left: our window ends at 4,010,
    // the server's at 2,060. A call sent once that figure (19) was read reads 19 again at
    // 2,060 ("2 s": 4,060): no call sent after it could in that window, so the server's window
    // began after it and ends at 4,060. A refill at 4,010 sent calls into its last slots.
    const b = createBucket({ name: 'window', limit: LIMIT, windowMs: WINDOW }, { name: 'fixed-window' });
    const read = (remaining: number) => ({ name: 'window', limit: LIMIT, remaining });
    const first = b.take(0);
    b.apply(read(19), first, 4010, 2010, 0);
    b.release(first, 2010);
    b.refill(2010, 10);
    const calls: number[] = [];
    while (b.availableAt(2010, 10, 1) === 2010) calls.push(b.take(2010));
    expect(calls).toHaveLength(19);
    // One counted in the old window (17 left), then one counted afresh.
    b.apply(read(17), calls[7] as number, 3046, 2046, 2010);
    b.release(calls[7], 2046);
    b.apply(read(19), calls[1] as number, 4060, 2060, 2010);
    b.release(calls[1], 2060);
    // The rest come back with the new window's figures, the last with none left.
    let left = 17;
    for (const [k, i] of calls.entries()) {
      if (k === 1 || k === 7) continue;
      b.apply(read(Math.max(0, --left)), i, 4060, 2100, 2010);
      b.release(i, 2100);
    }
    b.refill(4030, 10);
    expect(b.availableAt(4030, 10, 1)).toBeGreaterThanOrEqual(4060);
  });
  it('a figure counted afresh within the tolerance: the calls answered or let go since it went count in its window', () => {
    // The first answer came back after 1.94 s and told "2 s" left: our window ends at 4,000,
    // the server's at 2,060. Ten go at 2,000 and reach the server in its next window. At 2,060
    // two are lost on the way back and four read 17, 16, 13 and 11 left with "2 s" (read as the
    // old window's); more go. Then the earliest reads 19 with a reset 121 ms later than ours:
    // counted afresh, a new window, in which the server had counted all ten already. Its reset
    // tells nothing of which window the others' named, so all of those back since it went count
    // beside it, the lost ones too: no more go than the window's 20.
    const b = createBucket({ name: 'window', limit: LIMIT, windowMs: WINDOW }, { name: 'fixed-window' });
    const read = (remaining: number) => ({ name: 'window', limit: LIMIT, remaining });
    const first = b.take(0);
    b.apply(read(19), first, 4000, 2000, 0);
    b.release(first, 2000);
    b.refill(2000, 50);
    const calls = Array.from({ length: 10 }, () => b.take(2000));
    for (const [k, left] of [
      [1, undefined],
      [2, 17],
      [3, 16],
      [6, 13],
      [7, undefined],
      [8, 11],
    ] as const) {
      const i = calls[k] as number;
      if (left === undefined) b.release(i, 2060, 1, false);
      else {
        b.apply(read(left), i, 4060, 2060, 2000);
        b.release(i, 2060);
      }
    }
    let sent = 10;
    b.refill(2060, 50);
    while (b.availableAt(2060, 50, 1) === 2060 && sent < 2 * LIMIT) {
      b.take(2060);
      sent++;
    }
    b.apply(read(19), calls[0] as number, 4121, 2121, 2000);
    b.release(calls[0], 2121);
    b.refill(2121, 50);
    while (b.availableAt(2121, 50, 1) === 2121 && sent < 2 * LIMIT) {
      b.take(2121);
      sent++;
    }
    // Every call since 2,000 is in the server's window that began at 2,060.
    expect(sent).toBeLessThanOrEqual(LIMIT);
  });
});
