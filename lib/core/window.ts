/**
 * The window rules that every accounting of a bucket shares: the memory buckets
 * (lib/core/bucket.ts), the Lua of the Redis store (built by {@link luaWindowRules}) and the
 * Redis store's local share while Redis is away. A number or rule that memory and Redis must
 * agree on lives here only; spec/integration/redis/differential.spec.ts checks that they agree.
 *
 * Internal to the library (not exported from the package).
 */

/**
 * The least margin after a window's end that we bounded ourselves, a window after an answer
 * from it ({@link ownEndGuard}): a server whose nodes stamp and read one log on their own
 * clocks ends it up to their offset later, which NTP keeps within a few milliseconds.
 */
export const OWN_END_GUARD_MS = 10;

/**
 * The margin after the end of a window we bounded ourselves, a window after an answer from it
 * (the server had counted the request by then, so the window ends no later): the server's
 * offset from our clock and its rounding of resets do not enter it, only its timestamps'
 * resolution, how far its nodes' clocks are apart, and how far two clocks drift over one
 * window. A thousandth of the window, at least {@link OWN_END_GUARD_MS}, never more than the
 * guard after a reset the server told (`guardMs`): 10 ms for windows up to 10 s, 50 ms from
 * 50 s. Only with `resetGuardMs` left to its default and the memory store: processes sharing a
 * store read each other's times through their own clocks.
 */
export function ownEndGuard(guardMs: number, windowMs: number | undefined): number {
  if (windowMs === undefined || !(windowMs > 0)) return guardMs;
  return Math.min(guardMs, Math.max(OWN_END_GUARD_MS, windowMs / 1000));
}

/**
 * Silent answers (successes of requests counting against a bucket that described other buckets,
 * not this one) that end its cold start when it has no limit: past them, no ramp holds it.
 */
export const COLD_RAMP_MAX = 128;

/**
 * What a bucket in its cold start lets be in flight: the cold start's concurrency, and one more
 * for each answer that came back saying nothing of the bucket (`silent`). Each answer lets one
 * more go, so what is in flight doubles per round trip, as a slow start does: the bucket's own
 * answer, with its limit, comes back a round trip after its first request goes, before a burst.
 */
export function coldLimit(coldStart: number, silent: number): number {
  return coldStart + Math.max(0, silent);
}

/** Do `silent` answers end the cold start of a bucket of `limit` (the hint, or none)? Once as many as the limit came back. */
export function coldRampOver(silent: number, limit: number | undefined): boolean {
  return silent >= Math.min(limit ?? COLD_RAMP_MAX, COLD_RAMP_MAX);
}

/** How long to wait before probing a bucket that is empty and whose reset nobody told us. */
export const PROBE_MS = 1000;

/** Answers for which a bucket keeps its longest round trip, to bound how long its probe is awaited. */
export const PROBE_TRIPS = 16;
/** Beyond the longest remembered round trip, for a call whose trip is as long. */
export const PROBE_TRIP_MARGIN_MS = 50;

/**
 * How long a probe's answer is awaited before one more request goes: {@link PROBE_MS}, or twice
 * the longest of the bucket's recent round trips (`tripMs`) when longer, at most a window. A
 * probe on a slow link is not a probe that hangs, and its trip may be longer than any recent
 * one (with 500 to 900 ms each way, the longest of 16 read 1.6 s and the probe took 1.7 s: the
 * next request went before its answer, into a sliding minute with no slot). Its answer ends the
 * wait, so a long one costs only a probe that never answers.
 */
export function probeWaitMs(tripMs: number, windowMs: number | undefined): number {
  const wait = Math.max(PROBE_MS, 2 * tripMs);
  return windowMs !== undefined && windowMs > PROBE_MS ? Math.min(wait, windowMs) : PROBE_MS;
}

/**
 * Probes of refilled windows in a row that may end with no figure of their window (a gateway's
 * error page, an answer stripped of the headers), each followed by one more probe
 * {@link PROBE_MS} later, before such an answer confirms a window again: a bucket no longer
 * described must not be held to a probe a second.
 */
export const BLIND_PROBES = 3;

/**
 * Resets given as whole seconds left make two readings of one window differ by up to a second,
 * so only a reset later by more than this starts a new window (less for windows under 2 s:
 * consecutive one-second windows with whole-second resets differ by exactly 1000 ms).
 */
export const RESET_TOLERANCE_MS = 999;

/**
 * After a local refill at a reset the server told, until a response from the new window
 * confirms the numbers, one request is sent: whether the told reset ends the window or only
 * frees its oldest request (a sliding window: Fieldwire's `ratelimit-reset` is when "the next
 * request would become available") is not known, nor whether the limit was cut between windows;
 * the answer tells what is left, and the rest of a fixed window goes one round trip later. A
 * refill at a reset nobody told (a window inferred from our own sends or from a rise in
 * `remaining`) waits for the answers of the requests still in flight, then sends one request
 * until its answer shows where the server's window is: the estimate can be off by however long
 * our requests waited to be counted, and the server's window may still be the old, spent one
 * (whose last answers, or the reset a spent window's answer tells, then say so before anything
 * more is sent).
 */

/** How far apart two readings of one window's reset may be: {@link RESET_TOLERANCE_MS}, at most half the window. */
export function resetTolerance(windowMs: number | undefined): number {
  return windowMs === undefined ? RESET_TOLERANCE_MS : Math.min(RESET_TOLERANCE_MS, windowMs / 2);
}

/**
 * What may go after a local refill before a response confirms the new window: one request when
 * the server told the reset (`told`); when the reset was inferred, nothing while requests are in
 * flight, then one request (a budget of 0: admission lets one go when nothing is in flight).
 * Neither depends on the limit: a half-limit burst at a told reset met 429s where the reset
 * freed one request of a sliding window.
 */
export function unconfirmedBudget(told = true): number {
  return told ? 1 : 0;
}

/**
 * The end of the window running at `now`, projected from a reset that has passed (`resetAt <=
 * now`) one whole window at a time: the server's windows keep their phase.
 */
export function projectReset(resetAt: number, now: number, windowMs: number): number {
  return resetAt + (Math.floor((now - resetAt) / windowMs) + 1) * windowMs;
}

/**
 * The end of the window a reading describes, as sharp as we can know it. A fixed window began by
 * the time the server counted the request, so it ends at most a window after the answer came
 * back (`now`). A reset rounded up to the second (or read through a clock offset known only
 * roughly) is then only an upper bound: where the two agree, within the reset's slack, the
 * earlier one is used; where they do not (a window other than we were told), the reset is.
 */
export function sharpenReset(resetAt: number, now: number, windowMs: number | undefined, slackMs: number): number {
  if (windowMs === undefined || !(windowMs > 0)) return resetAt;
  const end = now + windowMs;
  return end < resetAt && end > resetAt - slackMs ? end : resetAt;
}

/** How much later than its window's end a reset told as time left may read: its rounding up to the second. */
export const RELATIVE_SLACK_MS = 1000;

/**
 * Answers a bucket remembers since the window's lowest figure (`endedLog` in `Bucket`): enough
 * for the calls in flight across a window's boundary at the concurrency a limiter runs; older
 * ones count as if answered last, with the least left (held longer, never too few).
 */
export const ENDED_LOG_MAX = 64;

/** The lowest figures of a window a bucket remembers as they were read (`lows` in `Bucket`). */
export const LOWS_KEPT = 8;

/** `ms` rounded up to a whole second, at least one: the most a whole-second reset can read. */
export function ceilSecond(ms: number): number {
  return Math.max(1000, Math.ceil(ms / 1000) * 1000);
}

/**
 * Has the server started a new window that it did not announce with a reset? Within one window
 * what is left only goes down. A request sent after the lowest figure came back was counted
 * after it, so any rise in its answer means a new window. A request sent earlier proves
 * nothing: it may have reached the server before the one that saw the lowest (concurrent
 * requests arrive in any order), and what the server counted between the two may be answered
 * already, so no count of ours still in flight bounds the rise. (Taking our requests in flight
 * as that bound read a reordered answer, 44 units above the lowest with costs of 4 to 18, as a
 * new window, and refilled 4 s early.)
 */
export function rolledOver(low: number, _lowIndex: number, after: number, remaining: number, index: number): boolean {
  return index >= after && remaining > low;
}

/**
 * Does a request of `cost` units sent after the window's lowest figure came back (`index >=
 * low.after`) read more than that figure less its cost? In that window the server would have
 * counted it after that figure, so the reading is another window's (for one unit: no lower
 * than the lowest; a request of 4 reading 7 after 10 was counted afresh, not in the old
 * window). A spent window (lowest 0) proves nothing (a 429 reads 0 again).
 */
export function countedAfresh(
  low: number,
  lowIndex: number,
  after: number,
  remaining: number,
  index: number,
  cost = 1,
): boolean {
  if (low <= 0) return false;
  return index > lowIndex && index >= after && remaining > low - Math.max(1, cost);
}

/** A rule of a window's lowest figure (`low`, read from admission `lowIndex` when `after` were made) against a later reading. */
export type LowTest = (
  low: number,
  lowIndex: number,
  after: number,
  remaining: number,
  index: number,
  cost: number,
) => boolean;

/**
 * What is left in a window after a reading of `remaining` (`others`: our other requests in
 * flight, which the server may not have counted yet). A new window (or a bucket that knew
 * nothing) takes the reading less the others. Within a window, the lowest figure of the window
 * is the server's latest count: what is left is recounted from it at each answer, less the
 * others, so it may rise (a request counted before the lowest, answered after it, was taken off
 * twice until then), except after a 429 emptied the window (`held`), or for a reading that
 * answers no request of ours: then it only lowers.
 */
export function recount(
  current: number | undefined,
  remaining: number,
  others: number,
  low: number | undefined,
  newWindow: boolean,
  held: boolean,
  indexed: boolean,
): number {
  const fresh = Math.max(0, remaining - others);
  if (newWindow || current === undefined) return fresh;
  if (indexed && low !== undefined && !held) return Math.max(0, low - others);
  return Math.min(current, fresh);
}

/**
 * The same rules in Lua, for the Redis store's scripts: generated from the constants above, so
 * the two cannot drift apart. (Lua numbers are doubles, as JavaScript's.) A function, not a
 * constant, so that a bundler leaves the text out of every bundle without the Redis store (a
 * template literal at the top level is kept as if it had side effects).
 */
export function luaWindowRules(): string {
  return `
local PROBE_MS = ${PROBE_MS}
local PROBE_TRIPS = ${PROBE_TRIPS}
-- As probeWaitMs(): trip is the bucket's longest recent round trip ('ptr'), win its window.
local function probeWait(trip, win)
  local t = math.max(PROBE_MS, 2 * (trip or 0))
  if win ~= nil and win > PROBE_MS then return math.min(t, win) end
  return PROBE_MS
end
-- As Bucket.noteTrip(): an answered call's round trip, the longest kept for PROBE_TRIPS answers
-- ('ptr', and 'pta' the answers since), then the latest one's.
local function noteTrip(s, ms)
  local trip = math.ceil(math.max(0, ms))
  if trip >= (s.ptr or 0) or (s.pta or 0) + 1 >= PROBE_TRIPS then
    s.ptr = trip; s.pta = 0
  else
    s.pta = (s.pta or 0) + 1
  end
end
local BLIND_PROBES = ${BLIND_PROBES}
-- As coldLimit(): 'obs' below 0 counts the silent answers of a cold start ('obs' 1: it is over).
local function coldLimit(cold, obs)
  if obs >= 0 then return cold end
  return cold - obs
end
-- As Bucket.confirm(): the cold start after an answer, with a reading of the bucket or silent
-- (coldRampOver() ends it at as many silent answers as the limit, lim: the hint or none).
local function confirmCold(obs, silent, lim)
  if not silent or obs == 1 then return 1 end
  local n = math.min(obs, 0) - 1
  if -n >= math.min(lim or ${COLD_RAMP_MAX}, ${COLD_RAMP_MAX}) then return 1 end
  return n
end
local function resetTolerance(win)
  if win == nil then return ${RESET_TOLERANCE_MS} end
  return math.min(${RESET_TOLERANCE_MS}, win / 2)
end
local function unconfirmedBudget(told)
  if told == false then return 0 end
  return 1
end
local function projectReset(rst, now, win)
  return rst + (math.floor((now - rst) / win) + 1) * win
end
-- As sharpenReset().
local function sharpenReset(rst, now, win, slack)
  if win == nil or not (win > 0) then return rst end
  local e = now + win
  if e < rst and e > rst - slack then return e end
  return rst
end
local RELATIVE_SLACK_MS = ${RELATIVE_SLACK_MS}
local function ceilSecond(ms)
  return math.max(1000, math.ceil(ms / 1000) * 1000)
end
-- Numbers written into a log field: all 17 digits (tostring keeps 14).
local function g17(x)
  return string.format('%.17g', x)
end
-- The lowest figures of a window kept (lowh, as Bucket.lows and Bucket.lowEnds): ';'-ended
-- entries '<value>,<index>,<admissions>' with, after a comma, the earliest the window its reset
-- named may end (none when it told no reset as time left). One by one: value, index,
-- admissions, end (nil for none); an entry not of numbers (by hand, another version) is skipped.
local function eachLow(t)
  local it = string.gmatch(t or '', '([^,;]+),([^,;]+),([^,;]+),?([^,;]*);')
  return function()
    while true do
      local v, i, a, e = it()
      if v == nil then return nil end
      v, i, a = tonumber(v), tonumber(i), tonumber(a)
      if v ~= nil and i ~= nil and a ~= nil then return v, i, a, tonumber(e) end
    end
  end
end
-- As rolledOver(), against the window's lowest figure (s.low, s.lowi, s.lowa: its value, index
-- and admissions then) or one read before (lowh).
local function rolledOver(s, rem, index)
  if rem == nil or index == nil then return false end
  if s.low ~= nil and index >= s.lowa and rem > s.low then return true end
  for v, _, a in eachLow(s.lowh) do
    if index >= a and rem > v then return true end
  end
  return false
end
-- As countedAfresh(), against the window's lowest figure or one read before (lowh).
local function countedAfresh(s, rem, index, cost)
  if rem == nil or index == nil then return false end
  if s.low ~= nil and s.low > 0 and index > s.lowi and index >= s.lowa and rem > s.low - math.max(1, cost) then
    return true
  end
  for v, i, a in eachLow(s.lowh) do
    if v > 0 and index > i and index >= a and rem > v - math.max(1, cost) then return true end
  end
  return false
end
-- As Bucket.provesSliding: a call counted after one of the window's lowest figures kept (lowh)
-- came back reads more than that figure less its cost (countedAfresh), while its reset ends by
-- 'endBy', less than a window after the earliest end of that figure's window: the window slides.
local function provesSliding(s, rem, index, cost, endBy)
  if s.win == nil or not (s.win > 0) then return false end
  for v, i, a, e in eachLow(s.lowh) do
    if e ~= nil and endBy < e + s.win and v > 0 and index > i and index >= a and rem > v - math.max(1, cost) then
      return true
    end
  end
  return false
end
-- A new lowest figure (s.low, s.lowi, s.lowa; 'ends': the earliest its window may end, nil if
-- not known) joins lowh (the last ${LOWS_KEPT}); one read by the same admissions as the last one
-- kept, and not 0, supersedes it (as Bucket.apply).
local function lowSeen(s, ends)
  local t = s.lowh or ''
  if s.low > 0 then
    local head, a = string.match(t, '^(.-)[^,;]+,[^,;]+,([^,;]+),?[^,;]*;$')
    if a ~= nil and tonumber(a) == s.lowa then t = head end
  end
  t = t .. g17(s.low) .. ',' .. g17(s.lowi) .. ',' .. g17(s.lowa)
  if ends ~= nil then t = t .. ',' .. g17(ends) end
  t = t .. ';'
  local n = 0
  for _ in string.gmatch(t, ';') do n = n + 1 end
  if n > ${LOWS_KEPT} then t = string.sub(t, string.find(t, ';', 1, true) + 1) end
  s.lowh = t
end
-- As Bucket.logEnded (fields enl, enln, eno, enoa): a call answered with a figure while others
-- were in flight. The log is ';'-ended quadruples '<admissions>,<units>,<figure>,<later>'
-- (later: 1 when it told a reset later than the window's end); past the cap, the oldest half
-- folds into eno units, counted for a call admitted before enoa.
local function logEnded(s, fig, cost, later)
  local flag = '0'
  if later then flag = '1' end
  local t = (s.enl or '') .. g17(s.adm) .. ',' .. g17(cost) .. ',' .. g17(fig) .. ',' .. flag .. ';'
  s.enln = (s.enln or 0) + 1
  if s.enln > ${ENDED_LOG_MAX} then
    for _ = 1, ${ENDED_LOG_MAX >> 1} do
      local cut = string.find(t, ';', 1, true)
      local a, c = string.match(string.sub(t, 1, cut - 1), '^([^,]+),([^,]+)')
      s.eno = (s.eno or 0) + tonumber(c)
      s.enoa = math.max(s.enoa or 0, tonumber(a))
      t = string.sub(t, cut + 1)
    end
    s.enln = s.enln - ${ENDED_LOG_MAX >> 1}
  end
  s.enl = t
end
-- As Bucket.endedIn.
local function endedIn(s, index, below, laterOnly)
  local n = 0
  for a, c, f, l in string.gmatch(s.enl or '', '([^,;]+),([^,;]+),([^,;]+),([^,;]+);') do
    if tonumber(a) > index and tonumber(f) < below and (not laterOnly or l == '1') then n = n + tonumber(c) end
  end
  return n
end
-- As Bucket.endedSince.
local function endedSince(s, index, rem, laterOnly)
  local over = 0
  if index < (s.enoa or 0) then over = s.eno or 0 end
  return over + endedIn(s, index, rem or math.huge, laterOnly)
end
-- As Bucket.forgetEnded.
local function forgetEnded(s)
  s.enl = nil; s.enln = nil; s.eno = nil; s.enoa = nil
end
-- As recount().
local function recount(cur, rem, others, low, newWindow, held, indexed)
  local fresh = math.max(0, rem - others)
  if newWindow or cur == nil then return fresh end
  if indexed and low ~= nil and not held then return math.max(0, low - others) end
  return math.min(cur, fresh)
end
`;
}

/** Longest a leaky bucket may take to fill, in seconds, for the restore rate a server tells to be taken. */
const MAX_FILL_S = 3600;

/**
 * A restore rate a server told, if it is one to take: finite, above 0, and filling a bucket of
 * `limit` within an hour (Shopify's fill in 20 s). A slower one is junk, not a leak: a
 * `restoreRate` of 10^-9 held every request for a thousand years, in memory or in a store.
 */
export function takenRestoreRate(rate: number | undefined, limit: number | undefined): number | undefined {
  return rate !== undefined && Number.isFinite(rate) && rate > 0 && !((limit ?? Infinity) / rate > MAX_FILL_S)
    ? rate
    : undefined;
}

/** Largest `maxServerWaitMs` accepted (a year): beyond it a server's word is never plausible. */
export const MAX_SERVER_WAIT_LIMIT_MS = 365 * 86_400_000;
