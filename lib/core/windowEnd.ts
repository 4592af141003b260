/**
 * The end of a fixed window, when a reset tells it only to within some slack (rounded up to the
 * second, or read through a clock offset known only roughly): sharpened by when the answer came
 * back, and where that cannot pin it, found by boundary probes. Used by `Bucket` (bucket.ts),
 * which keeps the probes planned for its current window.
 */

/** Slots of a window kept back to find its end when only an interval is known. */
const PROBE_SLOTS = 8;
const PROBE_MIN_LIMIT = 10;
const PROBE_MIN_WIDTH_MS = 100;
const PROBE_MIN_SHARE = 0.02;

/**
 * The end of the window a reading describes, as sharp as we can know it. A fixed window began
 * by the time the server counted the request, so it ends at most a window after the answer
 * came back. A reset rounded up to the second (or read through a clock offset known only
 * roughly) is then only an upper bound: where the two agree, within the reset's slack, the
 * earlier one is used; where they do not (a window other than we were told), the reset is.
 */
export function sharpenReset(resetAt: number, now: number, slackMs: number, windowMs: number | undefined): number {
  if (windowMs === undefined || !(windowMs > 0)) return resetAt;
  const end = now + windowMs;
  return end < resetAt && end > resetAt - slackMs ? end : resetAt;
}

/**
 * Boundary probes. A reset read through a clock offset that `Date` pins only to the second says
 * when a window ends to within `slackMs`: waiting for the latest instant it allows loses up to
 * that much per window (on a 2-s window, half of it), and nothing we send at that instant shows
 * where the boundary really was. So the last few slots of such a window are kept back and sent
 * at even steps across the interval. Each is within this window's budget (no 429 if the boundary
 * has not come); one that lands after the boundary shows the new window at once (its reset is
 * later), and the `Date` seconds of the answers on either side of the boundary pin the clock
 * offset to about one step, which every later window then gains. Only where it matters: the
 * interval is over 100 ms and over 2 % of the window, and the limit is at least 10.
 *
 * Returns when the last slots of the window that ends at `end` may go, latest first (the slot
 * `remaining - 1` from the end goes at `probes[remaining - 1]`), or `undefined` where probing
 * does not pay.
 */
export function planBoundaryProbes(
  now: number,
  slackMs: number,
  end: number | undefined,
  limit: number | undefined,
  windowMs: number | undefined,
): number[] | undefined {
  if (end === undefined || limit === undefined || limit < PROBE_MIN_LIMIT) return undefined;
  const from = Math.max(now, end - slackMs);
  const width = end - from;
  const span = windowMs ?? end - now;
  if (!(width > PROBE_MIN_WIDTH_MS) || !(width > span * PROBE_MIN_SHARE)) return undefined;
  const slots = Math.min(PROBE_SLOTS, Math.floor(limit / PROBE_MIN_LIMIT));
  return Array.from({ length: slots }, (_, i) => from + (width * (slots - i)) / (slots + 1));
}

/** When the next slot of a window with `left` units left may go, if it is one kept back by `probes`. */
export function probeAt(probes: readonly number[] | undefined, left: number | undefined): number | undefined {
  if (probes === undefined || left === undefined || left > probes.length || left <= 0) return undefined;
  return probes[left - 1];
}
