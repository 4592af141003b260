/**
 * The window rules that every accounting of a bucket shares: the memory buckets
 * (lib/core/bucket.ts), the Lua of the Redis store (built from {@link LUA_WINDOW_RULES}) and the
 * Redis store's local share while Redis is away. A number or rule that memory and Redis must
 * agree on lives here only; spec/integration/redis/differential.spec.ts checks that they agree.
 *
 * Internal to the library (not exported from the package).
 */

/** How long to wait before probing a bucket that is empty and whose reset nobody told us. */
export const PROBE_MS = 1000;

/**
 * Resets given as whole seconds left make two readings of one window differ by up to a second,
 * so only a reset later by more than this starts a new window (less for windows under 2 s:
 * consecutive one-second windows with whole-second resets differ by exactly 1000 ms).
 */
export const RESET_TOLERANCE_MS = 999;

/**
 * After a local refill, until a response from the new window confirms the numbers, at most
 * `limit / UNCONFIRMED_DIVISOR` (rounded up, at least one) is sent: a limit cut by up to half
 * between windows costs no 429.
 */
export const UNCONFIRMED_DIVISOR = 2;

/** How far apart two readings of one window's reset may be: {@link RESET_TOLERANCE_MS}, at most half the window. */
export function resetTolerance(windowMs: number | undefined): number {
  return windowMs === undefined ? RESET_TOLERANCE_MS : Math.min(RESET_TOLERANCE_MS, windowMs / 2);
}

/** What may go after a local refill before a response confirms the new window (the half-limit probe). */
export function unconfirmedBudget(limit: number): number {
  return Math.max(1, Math.ceil(limit / UNCONFIRMED_DIVISOR));
}

/**
 * The end of the window running at `now`, projected from a reset that has passed (`resetAt <=
 * now`) one whole window at a time: the server's windows keep their phase.
 */
export function projectReset(resetAt: number, now: number, windowMs: number): number {
  return resetAt + (Math.floor((now - resetAt) / windowMs) + 1) * windowMs;
}

/**
 * The same rules in Lua, for the Redis store's scripts: generated from the constants above, so
 * the two cannot drift apart. (Lua numbers are doubles, as JavaScript's.)
 */
export const LUA_WINDOW_RULES = `
local PROBE_MS = ${PROBE_MS}
local function resetTolerance(win)
  if win == nil then return ${RESET_TOLERANCE_MS} end
  return math.min(${RESET_TOLERANCE_MS}, win / 2)
end
local function unconfirmedBudget(lim)
  return math.max(1, math.ceil(lim / ${UNCONFIRMED_DIVISOR}))
end
local function projectReset(rst, now, win)
  return rst + (math.floor((now - rst) / win) + 1) * win
end
`;
