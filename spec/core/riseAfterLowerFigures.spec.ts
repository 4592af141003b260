/**
 * A window nobody tells the end of (no reset in the answers) rolls over while three calls are in
 * flight; the server counts them in its next window, and their answers come back in an order
 * that shows the rise only in the last one, after lower figures had become the window's lowest.
 * The rise is judged against the lowest figure read before that call went, and the calls
 * answered before it, counted after it in the new window, are held beside its figure: the new
 * window gets no more calls than the server allows. A figure no lower than one read before its
 * call went shows the new window as a rise does. The bucket alone, in plain numbers (ms).
 */
import { describe, expect, it } from '@jest/globals';
import { createBucket } from '../../lib/core/buckets.js';

const LIMIT = 5;
const WINDOW = 60_000;
/** The server's window rolls over here (it opened at the first call, 10 ms after 0 − 29,990). */
const ROLL = 30_000;

/**
 * Runs the sequence with the three answers in `order` (r, y, x: counted in the new window in
 * that order, reading 4, 3 and 2), then admits whatever the bucket lets go, every 100 ms, until
 * the server's new window ends. Returns how many calls the server's new window counted.
 */
function newWindowCount(order: ReadonlyArray<'r' | 'y' | 'x'>): number {
  const b = createBucket({ name: 'minute', limit: LIMIT, windowMs: WINDOW }, { name: 'fixed-window' });
  const read = (remaining: number) => ({ name: 'minute', limit: LIMIT, remaining });
  // The old window: two calls, answered 4 and 3 left.
  const a0 = b.take(0);
  const a1 = b.take(0);
  b.apply(read(4), a0, undefined, 100, 0);
  b.release(a0, 100);
  b.apply(read(3), a1, undefined, 120, 0);
  b.release(a1, 120);
  // Three more go just before the roll; the server counts them just after it.
  const sent = 29_900;
  const calls = { r: b.take(sent), y: b.take(sent), x: b.take(sent) };
  const figure = { r: 4, y: 3, x: 2 };
  let at = ROLL + 100;
  for (const k of order) {
    b.apply(read(figure[k]), calls[k], undefined, at, sent);
    b.release(calls[k], at);
    at += 50;
  }
  // Whatever goes before the server's window ends lands in it.
  let more = 0;
  for (let now = at; now < ROLL + WINDOW; now += 100) {
    b.refill(now, 10, true);
    while (b.availableAt(now, 10, 1, 0, 1, true) === now) {
      const i = b.take(now);
      b.apply(read(Math.max(0, LIMIT - 3 - more - 1)), i, undefined, now + 50, now);
      b.release(i, now + 50);
      more++;
    }
  }
  return 3 + more;
}

describe('a rise shown after lower figures of the same calls (no reset told)', () => {
  it.each([[['x', 'y', 'r'] as const], [['y', 'x', 'r'] as const]])(
    'answered %j: the server’s new window counts no more than its limit',
    (order) => {
      expect(newWindowCount(order)).toBeLessThanOrEqual(LIMIT);
    },
  );

  it('the calls of the new window still go: what is left after the rise is spent', () => {
    expect(newWindowCount(['x', 'y', 'r'])).toBe(LIMIT);
  });

  it('no rise, the same figure again from a call sent after it was read: a new window too', () => {
    // Limit 4, the server's window from -30,000 to 30,000, ours taken to start at our first
    // send (0). That call reads 3 left; one sent at 29,900 is counted just after the server's
    // roll and reads 3 again. In the old window a call sent after "3 left" was read reads 2 at
    // most: counted afresh, a new window, which ends a window after this answer, not at our
    // 60,000 (the refill there sent four calls into a window that had counted all four).
    const b = createBucket({ name: 'minute', limit: 4, windowMs: WINDOW }, { name: 'fixed-window' });
    const read = (remaining: number) => ({ name: 'minute', limit: 4, remaining });
    const a = b.take(0);
    b.apply(read(3), a, undefined, 100, 0);
    b.release(a, 100);
    const c = b.take(29_900);
    b.apply(read(3), c, undefined, 30_100, 29_900);
    b.release(c, 30_100);
    // What goes before the server's window ends (90,000) lands in it.
    let inWindow = 1;
    for (let now = 30_100; now < ROLL + WINDOW; now += 100) {
      b.refill(now, 10, true);
      while (b.availableAt(now, 10, 1, 0, 1, true) === now) {
        const i = b.take(now);
        b.apply(read(Math.max(0, 4 - inWindow - 1)), i, undefined, now + 50, now);
        b.release(i, now + 50);
        inWindow++;
      }
    }
    expect(inWindow).toBeLessThanOrEqual(4);
  });
});
