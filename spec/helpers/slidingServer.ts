/**
 * A server's window for the sliding-window specs, memory (virtual time) and Redis (the scripts
 * on a clock the test sets): sliding, counting the requests it let through in the last window,
 * or fixed, opened by a first request; and the seeded arrivals both drive it with.
 */
import { prng as random } from '../reliability/arbitraries.js';

/** What a sliding window's reset counts to: its oldest request, its newest, or a whole window from now. */
export type SlideReset = 'oldest' | 'newest' | 'window';

/** One request's answer: let through or refused, what is left, and the reset in whole seconds. */
export interface WindowAnswer {
  readonly ok: boolean;
  readonly remaining: number;
  readonly resetS: number;
}

/** The server: `serve(now)` counts a request arriving at `now` (ms) and answers it. */
export function windowServer(
  limit: number,
  windowMs: number,
  kind: 'sliding' | 'fixed',
  reset: SlideReset = 'oldest',
): (serverNow: number) => WindowAnswer {
  /** Arrival times of the requests let through, oldest first. */
  const log: number[] = [];
  /** When the fixed window opened. */
  let opened = -Infinity;
  return (serverNow) => {
    const fixed = kind === 'fixed';
    if (fixed && serverNow >= opened + windowMs) {
      opened = serverNow;
      log.length = 0;
    }
    while (!fixed && log.length > 0 && (log[0] ?? 0) <= serverNow - windowMs) log.shift();
    const ok = log.length < limit;
    if (ok) log.push(serverNow);
    const from = fixed
      ? opened
      : reset === 'oldest'
        ? (log[0] ?? serverNow)
        : reset === 'newest'
          ? (log[log.length - 1] ?? serverNow)
          : serverNow;
    return { ok, remaining: limit - log.length, resetS: Math.max(0, Math.ceil((from + windowMs - serverNow) / 1000)) };
  };
}

/** 120 arrivals at random over 6 s, as the seeded cases of the memory spec draw them. */
export function randomArrivals(seed: number): number[] {
  const rnd = random(seed * 7919);
  // The draws of that spec's trickle and burst come first.
  for (let i = 0; i < 95; i += 1) rnd();
  return Array.from({ length: 120 }, () => Math.floor(rnd() * 6000));
}
