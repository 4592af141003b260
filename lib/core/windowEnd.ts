/**
 * The end of a fixed window, when a reset tells it only to within some slack (rounded up to the
 * second, or read through a clock offset known only roughly): sharpened by when the answer came
 * back (`sharpenReset` in window.ts), and where that cannot pin it, by tick probes that pin the
 * clock offset. Used by `Bucket` (bucket.ts),
 * which keeps the probes planned for its current window.
 */

/** Slots of a window kept back to pin the clock offset when its end is known only to an interval. */
const PROBE_SLOTS = 8;
const PROBE_MIN_LIMIT = 10;
const PROBE_MIN_WIDTH_MS = 100;
/** Tick probes only for a window that ends within this (one further away: at a later answer). */
export const PROBE_MAX_LEAD_MS = 60_000;

/** The interval of the server clock minus ours that the `Date` headers allow, ms. */
export interface ClockOffsetBounds {
  readonly lowerMs: number;
  readonly upperMs: number;
}

/**
 * Tick probes. A reset read through a clock offset that `Date` pins only to the second says when
 * a window ends only to an interval: waiting for its latest instant loses up to a second per
 * window. A slot sent inside that interval to find the end is lost to the window whenever it
 * lands past the end (and with work that fills whole windows, a lost slot costs a whole window).
 * So the offset is pinned instead, where nothing is lost: the last few slots of the window go at
 * even steps across the span of our clock where the server's next second must tick over, well
 * before the window can end (`slackMs` before `end` at the earliest). The `Date` seconds of their
 * answers on either side of the tick narrow the offset to about one step (plus a round trip),
 * and every later window's end with it. Only where it matters: the offset unsure by over 100 ms,
 * a limit of at least 10.
 *
 * Two passes: half the slots go across this tick; the rest are planned a second later, across
 * the next tick, and planned again over the narrower interval once an answer read the new second
 * or the first pass has gone (`Bucket.planTickProbes`); where the second pass would not end
 * before the window may, all go in one. One pass of all the slots left the offset unsure by about a step
 * (~100 ms across an interval of 700), often just over the threshold: the next window probed
 * again, and where it was a run's last, its last slots went up to a second late.
 *
 * Returns when the last slots of the window may go, latest first (the slot `remaining - 1` from
 * the end goes at `at[remaining - 1]`), and how many of them are on the later pass (the first
 * `later` of `at`), or `undefined` where probing does not pay.
 */
export function planTickProbes(
  now: number,
  slackMs: number,
  end: number | undefined,
  limit: number | undefined,
  offset: ClockOffsetBounds,
  /** How many slots to plan (the ones still held, when replanning). */
  slots = probeSlots(limit),
  /** How many of them go across this tick (the rest across the next): half, on a first plan. */
  pass = Math.ceil(slots / 2),
): TickProbes | undefined {
  if (end === undefined || limit === undefined || limit < PROBE_MIN_LIMIT) return undefined;
  // No `Date` seen yet: nothing to learn a tick from. An end far away (a daily quota, the
  // most of an hourly window): the answers until then see ticks anyway, so no slot is held.
  if (offset.lowerMs === -Infinity || end - now > PROBE_MAX_LEAD_MS) return undefined;
  if (!(offset.upperMs - offset.lowerMs > PROBE_MIN_WIDTH_MS)) return undefined;
  // The server's second S ticks over somewhere in our [S − upper, S − lower]. The first tick
  // certain to come after now is probed across its whole span; where the window may end before
  // that span does (a window read within a second or two of its end), the tick before it, which
  // may still come, over what is left of its span (a tick already past in the part cut off
  // still narrows the offset: every probe then reads the later second). Waiting only for a
  // tick certain to be ahead held nothing back there, and the window's end stayed unsure by
  // most of a second.
  const lead = PROBE_MIN_WIDTH_MS;
  const latest = end - slackMs - lead;
  const spanOf = (tick: number) => {
    const from = Math.max(now, tick - offset.upperMs);
    // As much of the span as ends before the window may: a part of it still narrows the offset
    // (a tick not seen in it lies in the rest).
    return { from, width: Math.min(1000, tick - offset.lowerMs - from, latest - from) };
  };
  const ahead = Number.isFinite(offset.upperMs) ? Math.ceil((now + offset.upperMs) / 1000) * 1000 : undefined;
  let span = ahead === undefined ? undefined : spanOf(ahead);
  if (!(span !== undefined && span.width > lead)) span = spanOf((Math.floor((now + offset.lowerMs) / 1000) + 1) * 1000);
  const { from, width } = span;
  if (!(width > lead)) return undefined;
  // The second pass across the next tick, over the same span a second on: replanned when this
  // pass's answers narrow it. Where that would not end before the window may, one pass of all.
  const first = from + 1000 + width > latest ? slots : Math.min(slots, Math.max(1, pass));
  const steps = (at: number, n: number) => Array.from({ length: n }, (_, i) => at + (width * (n - i)) / (n + 1));
  return { at: [...steps(from + 1000, slots - first), ...steps(from, first)], later: slots - first };
}

/** How many of a window's last slots a first plan of tick probes keeps back: a tenth of the limit, at most 8. */
export function probeSlots(limit: number | undefined): number {
  return Math.min(PROBE_SLOTS, Math.floor((limit ?? 0) / PROBE_MIN_LIMIT));
}

/** When a window's last slots may go (`planTickProbes`). */
export interface TickProbes {
  /** Latest first: the slot `remaining - 1` from the end goes at `at[remaining - 1]`. */
  readonly at: readonly number[];
  /** How many of them (the first of `at`) go on the later pass, across the next tick. */
  readonly later: number;
}

/** When the next slot of a window with `left` units left may go, if it is one kept back by `probes`. */
export function probeAt(probes: readonly number[] | undefined, left: number | undefined): number | undefined {
  if (probes === undefined || left === undefined || left > probes.length || left <= 0) return undefined;
  return probes[left - 1];
}
