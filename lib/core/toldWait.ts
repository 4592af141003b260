/** A wait a 429 told, against the windows the request's buckets know (used by pauses.ts). */
import type { Bucket } from './bucket.js';

/**
 * A wait a 429 told in whole seconds (`Retry-After: 2`, an HTTP date, a unix-second reset) ends
 * up to a second after the window it waits for. When one of the request's buckets already knows
 * its current window's end and that end lies within that second, the two describe one window and
 * the bucket's figure is the sharper: it is returned (the bucket refills after it as after any
 * reset). Only a bucket that explains the 429 counts: one the server named (`limitedBy`) or one
 * its headers show empty; a 429 for something else (a secondary limit, an overload) says
 * nothing of when that bucket's window ends. Where they disagree, or the wait is finer than a
 * second, the told wait stands. Without it a 429 late in a window of a provider that rounds its
 * wait up (Planning Center after a limit cut) cost up to a second per window.
 */
export function sharperWait(
  told: number,
  wholeSeconds: boolean,
  buckets: readonly Bucket[],
  now: number,
  limitedBy?: string | readonly string[],
): number {
  if (!wholeSeconds) return told;
  let best: number | undefined;
  for (const b of buckets) {
    // A leaky bucket has no window to end: its `resetAt` is when it is full again.
    if (b.leaky || (b.remaining !== 0 && !namedIn(limitedBy, b.name))) continue;
    const end = b.resetAt;
    // An end already past is no figure for the window the server still counts.
    if (end !== undefined && end > now && end <= told && end > told - 1000) best = Math.max(best ?? end, end);
  }
  return best ?? told;
}

/** Is `name` the bucket `limitedBy` names, or one of them? */
export function namedIn(limitedBy: string | readonly string[] | undefined, name: string): boolean {
  return typeof limitedBy === 'string' ? limitedBy === name : (limitedBy?.includes(name) ?? false);
}

/** Is a told wait a whole number of seconds (a delay or an instant on a second's boundary)? */
export function inWholeSeconds(wait: { readonly delayMs: number } | { readonly at: number }): boolean {
  return ('at' in wait ? wait.at : wait.delayMs) % 1000 === 0;
}
