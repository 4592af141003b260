/**
 * The Redis store's data model and the Lua every one of its scripts starts with (scripts.ts
 * lists the scripts). Each script runs atomically on the server and takes its time from Redis
 * `TIME` (allowed in scripts under effects replication, the default since Redis 5), so every
 * process judges windows on one clock. Times are sent and returned as durations.
 *
 * A bucket is a hash `…:bucket:<name>`:
 *   lim, rem      limit and remaining ('' when unknown)
 *   rst, kind     reset (Redis ms) and whether the server said it ('s') or we projected it ('i')
 *   srst          the last reset a response reported
 *   win           window length, ms
 *   obs           '1' once the cold start is over (an answer described the bucket, described no
 *                 bucket, or was a 429); '0' before; -n after n successes that described only
 *                 other buckets of their request (each lets one more go: coldLimit)
 *   unc, ridx     after a local refill, requests left before a response confirms the new
 *                 window (1 after a told or projected reset, 0 after an inferred one), and
 *                 the admission index of the refill
 *   aw            after an inferred refill, when it began awaiting the answers in flight; once
 *                 the probe after a refill went, when it went (awaited at most PROBE_MS, or the
 *                 longest recent round trip when longer: `ptr`); after a probe that ended with
 *                 no figure of the window, when it did (the next goes PROBE_MS later)
 *   ptr, pta      the longest round trip of the bucket's answers (ms, from the ACQUIRE its
 *                 process asked), kept for PROBE_TRIPS answers (`pta` of them since), then the
 *                 latest one's (as `Bucket.probeTripMs`)
 *   bpr, fig      probes in a row that ended with no figure of their window (at most
 *                 BLIND_PROBES; a figure from a counted call ends the row), and '1' once a
 *                 counted call's answer told a figure of the bucket (as `Bucket.blindProbes` and
 *                 `figured`: only such a bucket's probe waits for a figure)
 *   eut           fixed: the latest instant a call let go on its way (RELEASE) may reach the
 *                 server: `eu` is not dropped by a figure from a call sent before it (a refill
 *                 ends it with `eu`)
 *   proj          '1' when the reset is projected from one the server told; '2' while nothing
 *                 has been sent in that projected window yet (its first send bounds its end)
 *   prov          the admission index that opened an inferred window (its first answer bounds it)
 *   adm           admissions so far (each request's index, to judge its response's age)
 *   nxt           next smooth-pacing slot
 *   at            when it was last written (Redis ms): a bucket written at or before the
 *                 credential's last RESUME (`resumed` in the pause hash) forgets its reset
 *   hold          rolling: held empty until then (a reading of 0 left, a 429 that named it)
 *   linf          rolling: '1' when `lim` is inferred from what a reading left (no limit told
 *                 or hinted): each later reading may raise it
 *   oth, othu,    rolling: units the server counted that the log does not (other clients of
 *   othf, othl    the token), until when (a window after the reading that counted them; -1:
 *                 until a reading says otherwise), when the oldest of them leaves (the reset
 *                 the server told: one unit of them from then on), and when the log's oldest
 *                 entry at that reading leaves it ('' none): the reset may have been that
 *                 call's, so the unit comes back then
 *   admx          rolling: units admitted beyond one per call, all told (`adm` counts calls);
 *                 `x:<lease>` holds it as it was before that lease's admission, with the
 *                 lease's index and grant time: OBSERVE counts the units admitted after a call
 *                 from the two, and tells which figures read since are newer
 *   ltr, othg     rolling: the longest trip (send to end) an entry of the log took (`rollGone`
 *                 reads the log that far past a window's edge), and the ends of the log's calls
 *                 the figure that set `oth` took as gone from the server (`oth` counts them:
 *                 while they stay in the log they count once, `rollDoubled`)
 *   unru          rolling: units of our calls the figure that set `oth` may have missed (they
 *                 count beside it); `rds`, `sil`, `unr`, `rfa`, `osu` are the records behind
 *                 that rule (see ROLL_KEPT below, and RollingBucket in memory)
 *   low, lowi,    fixed: the lowest remaining the server reported in this window, the admission
 *   lowa          index of the request it answered, and the admissions made by then
 *   lowh          fixed: the window's last lowest figures, as `lows` and `lowEnds` in `Bucket`
 *                 (each with the earliest its window may end, when its reset was time left)
 *   sld           fixed: '1' once readings proved the server's window slides (as
 *                 `Bucket.slidesProved`, for the bucket's life): each reset it tells is when one
 *                 request leaves its window
 *   wfr, lowf,    fixed: `adm` when this window opened (a reading opened it, or a refill), the
 *   lowfa         lowest figure of calls admitted before that (they may have been counted in the
 *                 window before) and `adm` when it was read: it lowers what is left as `low`
 *                 does, but no rise above it proves a new window (as Bucket.windowFrom, floor and
 *                 floorAfter)
 *   dbt           fixed: units in flight (of any process) that the lowest figure may count already:
 *                 admitted before it was read, its own request aside. `rem` took them off it all
 *                 the same, so their answers may give room back (as `Bucket.awaitsAnswers`). Each
 *                 one answered leaves it; one let go without an answer (RELEASE, a lapsed lease)
 *                 does not (its index is not known there), so it stays until nothing is in flight:
 *                 Redis may wait for more answers than memory, never for fewer
 *   held          fixed: '1' once a 429 emptied this window (no answer from it raises what is left)
 *   tld, tsl      fixed: the reset the server told for this window, before `sharpenReset` (`rst`
 *                 is the sharper of it and a window after the answer that told it), and how much
 *                 earlier a later reading of the window may read it (the first reading's trip)
 *   lrn           fixed: `adm` when the window's last reading came back with nothing else in
 *                 flight (of any process), '' otherwise: `low` then counted every request
 *                 admitted, and the drop to the next request's answer, if nothing is admitted
 *                 beside it, is that request's cost (OBSERVE tells it: costLearning.ts)
 *   eu, euu       fixed: units of calls (of any process) that ended without a figure of this
 *                 bucket (answered without one, as a HubSpot search's answer has no daily
 *                 figure; let go by RELEASE; their lease lapsed), and `adm` when the last of them
 *                 ended: a figure read later from a call admitted before that may not count them
 *                 (the server counted in another order than we sent), so they are taken off
 *                 every figure, as the calls in flight are, until one from a call admitted at or
 *                 after `euu` is read; a refill ends them (as `endedUnread` in `Bucket`)
 * and its requests in flight are a sorted set `…:inflight:<name>` of lease ids scored by when
 * the lease lapses (a process killed mid-request stops counting after `leaseMs`). A request
 * that costs more than one unit has its cost in the bucket hash too (`c:<lease>`), and `xu`
 * sums what such leases hold beyond their one unit each: in flight is ZCARD + xu units.
 *
 * A rolling (sliding-window) bucket also has a log `…:log:<name>`: a list of the Redis times
 * its calls ended (answered, released, or their lease lapsed), oldest first, one entry per
 * unit, each `<end>,<ms since its send>` (`<end>` alone when not known: see `logEnds`). As `RollingBucket` in memory, a call counts while it is in flight (its lease, however
 * long it takes) and until `win + guard` after it ended: the server logged it when it arrived,
 * which may be long after its admission and is at the latest its end. Entries older are trimmed
 * at each use, and the list expires `max(keyTtlMs, win + guard)` after its last entry, so it
 * holds at most the limit's worth of entries. It is exact: a call is admitted only when fewer
 * than the limit are in the log and in flight (plus others, plus the reserve), in one script
 * with the rest of the request's buckets. Rules shared with the memory buckets come from
 * lib/core/window.ts ({@link luaWindowRules}).
 *
 * A leaky (token) bucket (`restorePerSecond`, Shopify) has no window: `lim` is its capacity, and
 * its own fields are read and written by `loadLeak` and `saveLeak` (as `LeakyBucket` in memory):
 *   rps           units restored per second (the hint until a reading tells)
 *   lvl, lva      units available (a fraction; below 0 when more was taken than there was) at
 *                 `lva` (Redis ms); '' `lva`: no capacity is known yet, as much as asked goes
 *   acc           admissions made when the newest reading taken as it is came back ('' none yet)
 *   rda           when the last reading with a figure was applied
 *   trp           the last round trips, ms, comma separated (the longest bounds the next trip)
 *   endu          units of the requests that ended (answered, released, lapsed), all told
 *   hold          held until then (a 429 or a throttled answer that named it)
 *   f:<lease>     a request sent from a (nearly) full bucket: the level before it and the
 *                 restore taken as lost on its trip (ended with the lease)
 *   e:<lease>     `endu` when the lease was granted: what ended since may have reached the
 *                 server after it, so its answer's figure may not count it (ended with the lease)
 * `rem` shows the whole units available; `rst` stays empty (when it is full again is told in
 * ACQUIRE's reply).
 */
import { LEAKY_EPSILON, LEAKY_TRIPS } from '../../core/leakyBucket.js';
import { READS_KEPT } from '../../core/rollingBucket.js';
import { luaWindowRules, MAX_SERVER_WAIT_LIMIT_MS } from '../../core/window.js';

/**
 * Most entries a rolling bucket's log keeps, a bound on its memory (about 1 MB). A rolling limit
 * above it is not held exactly: past it the oldest entries are dropped.
 */
export const MAX_ROLLING_LOG = 100_000;

/** Shared helpers, prepended to each script. */
export const COMMON = `${luaWindowRules()}
-- A number read from Redis or an argument, nil for none. NaN and the infinities are none too:
-- a field written by hand or by another version ('nan', 'inf') must neither stall a wait
-- (every comparison with NaN is false) nor reach a reply (Redis turns them into -2^63).
local function num(v)
  if v == false or v == nil or v == '' then return nil end
  local n = tonumber(v)
  if n == nil or n ~= n or n == math.huge or n == -math.huge then return nil end
  return n
end
-- Longest wait any state a limiter writes can lead to: twice the longest a limiter obeys a
-- server (MAX_SERVER_WAIT_LIMIT_MS; a reset, hold or pause past it is never written). A wait
-- past this is read from state no limiter wrote (by hand, another version): garbage.
local GARBAGE_MS = ${2 * MAX_SERVER_WAIT_LIMIT_MS}
local MAX_SERVER_WAIT_MS = ${MAX_SERVER_WAIT_LIMIT_MS}
local function str(v)
  if v == nil then return '' end
  return tostring(v)
end
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local FIELDS = {'lim', 'rem', 'rst', 'kind', 'win', 'obs', 'unc', 'ridx', 'adm', 'nxt', 'srst', 'rv', 'rvu', 'at',
  'hold', 'oth', 'othu', 'low', 'lowi', 'lowa', 'held', 'prov', 'aw', 'proj', 'tld', 'tsl', 'tsv', 'lrn', 'linf', 'othf', 'admx', 'othl', 'unru',
  'dbt', 'eu', 'euu', 'wfr', 'lowf', 'lowfa', 'enl', 'enln', 'eno', 'enoa', 'lowh', 'sld', 'ptr', 'pta',
  'bpr', 'eut', 'fig'}
-- A bucket never used: the hints until a response tells, the cold start.
local function fresh(hintLim, hintWin, resumed)
  -- Made after a resume too: saved past its mark, or its next load would forget it at once.
  return { lim = hintLim, rem = hintLim, win = hintWin, kind = '', obs = 0, ridx = 0, adm = 0, admx = 0, nxt = 0,
    fresh = true, resumedAt = resumed }
end
-- pauseKey: the credential's pause hash; a bucket last written at or before its 'resumed'
-- (limiter.resume()) forgets every reset it remembers: the next response is taken as it is.
local function load(key, hintLim, hintWin, pauseKey)
  local resumed = nil
  if pauseKey ~= nil then resumed = num(redis.call('HGET', pauseKey, 'resumed')) end
  if redis.call('EXISTS', key) == 0 then return fresh(hintLim, hintWin, resumed) end
  local f = redis.call('HMGET', key, unpack(FIELDS))
  local s = { lim = num(f[1]), rem = num(f[2]), rst = num(f[3]), kind = f[4] or '', win = num(f[5]),
    obs = num(f[6]) or 0, unc = num(f[7]), ridx = num(f[8]) or 0, adm = num(f[9]) or 0,
    nxt = num(f[10]) or 0, srst = num(f[11]), rv = num(f[12]), rvu = num(f[13]),
    hold = num(f[15]), oth = num(f[16]), othu = num(f[17]), low = num(f[18]), lowi = num(f[19]),
    lowa = num(f[20]), held = f[21] == '1', prov = num(f[22]), aw = num(f[23]), proj = f[24] == '1' or f[24] == '2',
    tld = num(f[25]), tsl = num(f[26]), tsv = num(f[27]), lrn = num(f[28]), linf = f[29] == '1',
    othf = num(f[30]), admx = num(f[31]) or 0, othl = num(f[32]), unru = num(f[33]), dbt = num(f[34]),
    eu = num(f[35]), euu = num(f[36]), popen = f[24] == '2',
    wfr = num(f[37]), lowf = num(f[38]), lowfa = num(f[39]),
    enl = f[40] ~= false and f[40] ~= '' and f[40] or nil, enln = num(f[41]), eno = num(f[42]), enoa = num(f[43]),
    lowh = f[44] ~= false and f[44] ~= '' and f[44] or nil, sld = f[45] == '1', ptr = num(f[46]), pta = num(f[47]),
    bpr = num(f[48]), eut = num(f[49]), fig = f[50] == '1' }
  -- Counts no limiter writes (by hand, another version): a negative limit held every window
  -- empty for good; units counted below 0 would be room that is not there.
  if s.lim ~= nil and s.lim < 0 then s.lim = hintLim end
  if s.win ~= nil and s.win > GARBAGE_MS then s.win = hintWin end
  if s.oth ~= nil and s.oth < 0 then s.oth = nil end
  if s.eu ~= nil and s.eu < 0 then s.eu = nil end
  if resumed ~= nil and (num(f[14]) or 0) <= resumed then
    s.rst = nil; s.srst = nil; s.kind = ''; s.unc = nil; s.nxt = 0; s.low = nil; s.lowf = nil; s.dbt = nil; s.prov = nil
    forgetEnded(s)
    s.lowh = nil
    s.aw = nil; s.proj = false; s.popen = false; s.tld = nil; s.tsl = nil; s.tsv = nil
    s.bpr = nil; s.eut = nil
    s.hold = nil; s.oth = nil; s.othu = nil; s.othf = nil; s.othl = nil; s.lrn = nil; s.unru = nil
    -- A rolling bucket forgets what its figures may have missed (as RollingBucket.forget).
    redis.call('HDEL', key, 'sil', 'siln', 'unr', 'rfa', 'osu', 'othg', 'ofx')
    s.resumed = true
  end
  -- Kept whether or not it forgot: a bucket the RESUME's millisecond wrote again (forgotten at
  -- resumed + 1 by a first write) must not be saved back at 'resumed' by a second one, or its
  -- next load forgets again what was written since (the call let go, the lowest figure).
  s.resumedAt = resumed
  return s
end
local function save(key, s, ttl, now)
  -- Written after a limiter.resume(): later than it, even in its millisecond (else the next
  -- load forgets again what was written since).
  local at = now
  if s.resumedAt ~= nil and at <= s.resumedAt then at = s.resumedAt + 1 end
  redis.call('HSET', key, 'lim', str(s.lim), 'rem', str(s.rem), 'rst', str(s.rst), 'kind', s.kind or '',
    'win', str(s.win), 'obs', str(s.obs), 'unc', str(s.unc), 'ridx', str(s.ridx), 'adm', str(s.adm),
    'nxt', str(s.nxt), 'srst', str(s.srst), 'rv', str(s.rv), 'rvu', str(s.rvu), 'at', str(at),
    'hold', str(s.hold), 'oth', str(s.oth), 'othu', str(s.othu), 'low', str(s.low), 'lowi', str(s.lowi),
    'lowa', str(s.lowa), 'held', s.held and '1' or '', 'prov', str(s.prov), 'aw', str(s.aw),
    'proj', s.proj and (s.popen and '2' or '1') or '', 'tld', str(s.tld), 'tsl', str(s.tsl), 'tsv', str(s.tsv), 'lrn', str(s.lrn),
    'linf', s.linf and '1' or '', 'othf', str(s.othf), 'admx', str(s.admx),
    'othl', str(s.othl), 'unru', str(s.unru), 'dbt', str(s.dbt), 'eu', str(s.eu), 'euu', str(s.euu),
    'wfr', str(s.wfr), 'lowf', str(s.lowf), 'lowfa', str(s.lowfa),
    'enl', str(s.enl), 'enln', str(s.enln), 'eno', str(s.eno), 'enoa', str(s.enoa), 'lowh', str(s.lowh),
    'sld', s.sld and '1' or '', 'ptr', str(s.ptr), 'pta', str(s.pta),
    'bpr', str(s.bpr), 'eut', str(s.eut), 'fig', s.fig and '1' or '')
  redis.call('PEXPIRE', key, ttl)
end
-- The cost of a lease in flight on a bucket (1 unless it is in the bucket hash).
local function leaseCost(bk, lease)
  return num(redis.call('HGET', bk, 'c:' .. lease)) or 1
end
-- A lease ends: its units beyond the first leave 'xu'.
local function dropCost(bk, lease)
  local c = num(redis.call('HGET', bk, 'c:' .. lease))
  if c == nil then return end
  redis.call('HDEL', bk, 'c:' .. lease)
  redis.call('HSET', bk, 'xu', math.max(0, (num(redis.call('HGET', bk, 'xu')) or 0) - (c - 1)))
end
-- A request this process sent on its local share while Redis was away, carried into Redis as
-- a lease ('<prefix>:c<k>'): its units are in a rolling log already (the debit), never logged
-- again at its end.
local function carried(lease)
  return string.find(lease, ':c%d+$') ~= nil
end
-- Records of a rolling bucket, as RollingBucket keeps them in memory, in the bucket hash: each
-- record 'a,b,c' (numbers; -1 for a time not known yet), lists of them 'a,b;a,b':
--   x:<lease>  of a call in flight: the units admitted beyond one per call before it ('admx'
--              then), its admission index, and when it was granted
--   rds, rdn   the last figures read, newest first (index, when, the server's count, units,
--              what was left), and how many
--   ofx        the figure that last set 'oth' (index, what was left, the server's count, when
--              its call was sent, units), '' when it cannot cap 'oth' (rollCapOthers)
--   sil, siln  the last calls that ended without a figure read, newest first (index, units,
--              reached the server by: a figure read later may not count them), and how many
--   unr        calls the figure that last set 'oth' may have missed (index, units, reached by),
--              at most ROLL_KEPT and one more (index -1) that holds the units of the rest
--   rfa        the latest instant a record dropped from 'rds' or 'sil' bore
--   osu        until when a figure showed another client's calls in the window, for sure
-- 'rds' and 'sil' keep the last ROLL_KEPT records at most: past it they are cut back by
-- ROLL_SLACK more (one cut per ROLL_SLACK records added, not a walk of the whole list at each);
-- what is forgotten sooner than in memory only makes figures judged older ('rfa'), never newer.
-- A record with fewer fields than its list has (damaged) is skipped.
local ROLL_KEPT = ${READS_KEPT}
local ROLL_SLACK = 32
local ROLL_WALK = 4 * ROLL_KEPT
local function rec(part)
  local r = {}
  for f in string.gmatch(part or '', '[^,]+') do r[#r + 1] = tonumber(f) end
  return r
end
-- The records of a list that have 'fields' fields (3 or 5), one by one, in the order kept
-- (newest first for 'rds' and 'sil'): one match each.
local REC_PATTERNS = {
  [3] = '^([^,;]+),([^,;]+),([^,;]+)[;]?',
  [5] = '^([^,;]+),([^,;]+),([^,;]+),([^,;]+),([^,;]+)[;]?',
}
local function eachRec(v, fields)
  local pos = 1
  local n = 0
  if type(v) == 'string' then n = #v end
  local pattern = REC_PATTERNS[fields]
  return function()
    while pos <= n do
      local _, e, a, b, c, d, g = string.find(v, pattern, pos)
      if e == nil then
        -- Damaged: skipped to the next record.
        pos = (string.find(v, ';', pos, true) or n) + 1
      else
        pos = e + 1
        local r = { tonumber(a), tonumber(b), tonumber(c), tonumber(d), tonumber(g) }
        if r[fields] ~= nil and r[1] ~= nil and r[2] ~= nil and r[3] ~= nil then return r end
      end
    end
    return nil
  end
end
local function packRecs(t)
  local parts = {}
  for k, r in ipairs(t) do parts[k] = table.concat(r, ',') end
  return table.concat(parts, ';')
end
-- Puts record r first in list v of 'count' records; returns the list, its count, and the newest
-- record dropped when it was cut back (nil if none).
local function pushRec(v, count, r)
  local head = table.concat(r, ',')
  if type(v) ~= 'string' or v == '' then return head, 1, nil end
  v = head .. ';' .. v
  count = (count or 0) + 1
  if count <= ROLL_KEPT then return v, count, nil end
  local keep = ROLL_KEPT - ROLL_SLACK
  local pos = 0
  for k = 1, keep do
    local p = string.find(v, ';', pos + 1, true)
    if not p then return v, k, nil end
    pos = p
  end
  local e = string.find(v, ';', pos + 1, true) or (#v + 1)
  return string.sub(v, 1, pos - 1), keep, rec(string.sub(v, pos + 1, e - 1))
end
-- A rolling lease's record: admx before it, its admission index and when it was granted.
local function leaseRec(bk, lease)
  local r = rec(redis.call('HGET', bk, 'x:' .. lease) or '')
  return r[1] or 0, r[2], r[3]
end
-- Rolling calls that ended without a figure read (released, lapsed, answered without this
-- bucket's figures), each { index, units, reached the server by }: a figure read later may not
-- count them (as RollingBucket.release in memory). One read and one write for all of them.
local function rollSilent(bk, ended)
  if #ended == 0 then return end
  local f = redis.call('HMGET', bk, 'sil', 'siln', 'unr', 'rfa')
  local sil = f[1]
  local siln = num(f[2])
  local rfa = num(f[4])
  local by = {}
  for _, e in ipairs(ended) do
    local gone
    sil, siln, gone = pushRec(sil, siln, e)
    if gone ~= nil and gone[3] ~= nil then rfa = math.max(rfa or gone[3], gone[3]) end
    by[e[1]] = e[3]
  end
  redis.call('HSET', bk, 'sil', sil, 'siln', siln, 'rfa', str(rfa))
  if type(f[3]) == 'string' and f[3] ~= '' then
    local unr = {}
    for u in eachRec(f[3], 3) do
      if by[u[1]] ~= nil then u[3] = by[u[1]] end
      unr[#unr + 1] = u
    end
    redis.call('HSET', bk, 'unr', packRecs(unr))
  end
end
-- A rolling lease ends without a figure read: its record for rollSilent (nil without one).
local function silentRec(bk, lease, units, by)
  local _, index = leaseRec(bk, lease)
  if index == nil then return nil end
  return { index, units, by }
end
-- A rolling log's entry: when the call ended, then, after a comma, how long after its send
-- (none if not known): it reached the server no sooner, so the server may have let it go a
-- window after its send, long before the log does (a late answer).
local function logEnd(v)
  if v == false or v == nil then return nil end
  -- A damaged entry (by hand, another version) counts as a call that ended long ago: every
  -- script reading the log failed on it, and Redis was taken as away for good.
  return num(string.match(v, '^[^,]*')) or 0
end
local function logSent(v)
  local e, trip = string.match(v, '^([^,]*),?(.*)$')
  return (tonumber(e) or 0) - (tonumber(trip) or 0)
end
-- A rolling bucket's calls that ended (answered, released, lapsed): n units logged at now, sent
-- at 'sent' (nil: not known), the newest MAX_LOG kept; the log lives 'ttl' after its last
-- entry. The bucket hash bk keeps in 'ltr' the longest trip logged (how far rollGone looks).
local function logEnds(lk, n, now, ttl, sent, bk)
  if n <= 0 then return end
  local t = string.format('%.0f', now)
  if sent ~= nil and sent < now then
    t = t .. ',' .. string.format('%.0f', now - sent)
    if bk ~= nil and redis.call('EXISTS', bk) == 1 then
      local ltr = num(redis.call('HGET', bk, 'ltr'))
      if ltr == nil or ltr < now - sent then redis.call('HSET', bk, 'ltr', string.format('%.0f', now - sent)) end
    end
  end
  local times = {}
  for k = 1, math.min(n, 1000) do times[k] = t end
  -- In pages: unpack takes a few thousand values at most.
  for k = 1, n, 1000 do redis.call('RPUSH', lk, unpack(times, 1, math.min(1000, n - k + 1))) end
  if redis.call('LLEN', lk) > ${MAX_ROLLING_LOG} then redis.call('LTRIM', lk, -${MAX_ROLLING_LOG}, -1) end
  redis.call('PEXPIRE', lk, ttl)
end
-- Units in flight on a bucket: one per lease not lapsed, plus what costly ones hold beyond it;
-- and the units of the leases that lapsed (ended now, without a figure).
-- lk: a rolling bucket's log, where lapsed leases are logged as ended now (logTtl its life).
-- leaky: a leaky bucket, whose lapsed leases' 'f:' fields go with them.
local function inflight(key, now, bk, lk, logTtl, leaky)
  -- A lease no limiter gave (it lapses past what any leaseMs allows): it would count in flight
  -- for good, and a bucket waiting on its answer (the cold start) would never admit again.
  redis.call('ZREMRANGEBYSCORE', key, '(' .. string.format('%.0f', now + GARBAGE_MS), '+inf')
  local xu = num(redis.call('HGET', bk, 'xu')) or 0
  local lapsed = 0
  if xu > 0 or lk ~= nil or leaky then
    local silent = {}
    for _, lease in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', now)) do
      lapsed = lapsed + leaseCost(bk, lease)
      if lk ~= nil then
        -- Logged as ended now, sent when granted.
        if not carried(lease) then
          local _, _, sentAt = leaseRec(bk, lease)
          logEnds(lk, leaseCost(bk, lease), now, logTtl, sentAt, bk)
        end
        -- Its process is gone: the call reached the server by now, if ever.
        silent[#silent + 1] = silentRec(bk, lease, leaseCost(bk, lease), now)
        redis.call('HDEL', bk, 'x:' .. lease)
      end
      if leaky then
        redis.call('HINCRBYFLOAT', bk, 'endu', leaseCost(bk, lease))
        redis.call('HDEL', bk, 'f:' .. lease, 'e:' .. lease)
      end
      dropCost(bk, lease)
    end
    if lk ~= nil then rollSilent(bk, silent) end
    xu = num(redis.call('HGET', bk, 'xu')) or 0
  end
  -- (Without costly leases each lapsed one held a unit: the count removed.)
  local removed = redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if lapsed == 0 then lapsed = removed end
  local n = redis.call('ZCARD', key)
  -- What costly leases hold beyond their unit: none without a lease, never below 0 (a count
  -- written by hand, another version: units held for good, or room that is not there).
  if n == 0 or xu < 0 then
    if xu ~= 0 then redis.call('HDEL', bk, 'xu') end
    xu = 0
  end
  return n + xu, lapsed
end
-- A fixed window's calls that ended without a figure of it: counted until a figure from a call
-- admitted from now on is read (as Bucket.release in memory). With units still in flight after
-- them (inflAfter), logged as ended without a figure (-1): a figure read later may show a
-- window that began before they arrived.
local function endedUnread(s, units, inflAfter)
  if units <= 0 then return end
  s.eu = (s.eu or 0) + units
  s.euu = s.adm
  if inflAfter ~= nil and inflAfter > 0 then logEnded(s, -1, units, true) end
end
-- A rolling bucket's log: drops the calls that ended at or before now - win - guard (they have
-- left the server's window), a page at a time; returns how many are left.
local function trimLog(key, now, win, guard)
  if win == nil then return redis.call('LLEN', key) end
  local horizon = now - win - guard
  while true do
    local page = redis.call('LRANGE', key, 0, 127)
    local n = 0
    for _, t in ipairs(page) do
      if logEnd(t) > horizon then break end
      n = n + 1
    end
    if n > 0 then redis.call('LTRIM', key, n, -1) end
    if n < 128 then break end
  end
  return redis.call('LLEN', key)
end
-- Entries of a rolling bucket's log sent a window before now or earlier: the server may have
-- let those calls go, however late they ended (as RollingBucket.leftServerBy in memory). The
-- log is in the order of ends: past the edge by more than the longest trip ('ltr' of the
-- bucket hash bk; the whole log without it), none was sent before it. Returns how many, and
-- when the first ROLL_KEPT of them ended.
local function rollGone(key, now, win, bk)
  local ends = {}
  if win == nil then return 0, ends end
  local edge = now - win
  local reach = math.huge
  local ltr = num(redis.call('HGET', bk, 'ltr'))
  if ltr ~= nil then reach = edge + ltr end
  local n = 0
  local pos = 0
  while true do
    local page = redis.call('LRANGE', key, pos, pos + 127)
    local k = 0
    for _, t in ipairs(page) do
      if logEnd(t) > reach then break end
      if logSent(t) <= edge then
        n = n + 1
        if #ends < ROLL_KEPT then ends[#ends + 1] = string.format('%.0f', logEnd(t)) end
      end
      k = k + 1
    end
    pos = pos + k
    if k < 128 then break end
  end
  return n, ends
end
-- Units the server counts that the log does not (another client of the token), while they
-- count: after the reset the server told, the oldest has left (a unit), unless it was the log's
-- oldest call, which leaves the log later (othl). As RollingBucket.othersAt in memory.
local function rollOthers(s, now)
  if s.oth ~= nil and s.othu ~= nil and (s.othu < 0 or s.othu > now) then
    local left = 0
    if s.othf ~= nil and s.othf <= now and (s.othl == nil or now < s.othl) and s.oth > 0 then left = 1 end
    -- With our calls a figure may have missed ('unr').
    return s.oth - left + (s.unru or 0)
  end
  return 0
end
-- Lowers 'oth' to what the figure that set it ('ofx') can show at most: its count, less the
-- calls of ours that add nothing beyond it (its own; one that came back before it went; one
-- whose figure counted no more, told as much left and no higher a count), those still in the
-- log. As RollingBucket.capOthers in memory, which says why. 'rds' as just written.
local function rollCapOthers(bk, s, now, rds, guard)
  if s.oth == nil or s.oth <= 0 or s.othu == nil or (s.othu >= 0 and s.othu <= now) or s.lim == nil then return end
  local o = rec(redis.call('HGET', bk, 'ofx') or '')
  local f, left, count, sent, units = o[1], o[2], o[3], o[4], o[5]
  if units == nil then return end
  local since = now - (s.win or 0)
  local covered = units
  for r in eachRec(rds, 5) do
    if r[1] ~= f and r[2] > since and ((r[5] > 0 and r[5] >= left and r[3] <= count) or r[2] <= sent) then
      covered = covered + r[4]
    end
  end
  for u in eachRec(redis.call('HGET', bk, 'sil'), 3) do
    if u[1] ~= f and u[3] >= 0 and u[3] <= sent and u[3] > since + guard then covered = covered + u[2] end
  end
  local cap = math.max(0, math.max(count, s.lim - left) - covered)
  if cap >= s.oth then return end
  s.oth = cap
  redis.call('HDEL', bk, 'othg')
end
-- Units of the log that 'oth' counts as well ('othg': when the calls that the figure which set
-- it took as gone from the server ended), while they stay in the log: they count once, not
-- twice; at most what 'oth' holds at now. As RollingBucket.doubled in memory.
local function rollDoubled(bk, s, now, guard)
  local v = redis.call('HGET', bk, 'othg')
  if type(v) ~= 'string' or v == '' or s.win == nil then return 0 end
  local horizon = now - s.win - guard
  local n = 0
  for e in string.gmatch(v, '[^,]+') do
    if (num(e) or 0) > horizon then n = n + 1 end
  end
  return math.min(n, math.max(0, rollOthers(s, now) - (s.unru or 0)))
end
-- When 'need' more calls will have left a rolling window: the log's one by one, the others'
-- oldest at the reset told, the rest (and a reserve, 'extra' until 'extraUntil') at once when
-- they lapse. As RollingBucket.nextFreeAt in memory: the time, and true when it only bounds the
-- wait (others' calls after their oldest may leave any time from now on: not a known wait).
local function rollFreeAt(key, n, s, now, need, guard, extra, extraUntil)
  local window = s.win + guard
  local function leaves(k)
    if k <= 0 then return now end
    if k <= n then return logEnd(redis.call('LINDEX', key, k - 1)) + window end
    return math.huge
  end
  local at = leaves(need)
  local soonest = at
  local others = rollOthers(s, now)
  local untilAt = 0
  if others > 0 then
    untilAt = s.othu
    if untilAt < 0 then untilAt = math.huge end
    if s.othf ~= nil and s.othf > now and s.othf < untilAt then
      local first = math.max(s.othf, leaves(need - 1))
      if s.othl == nil or first < s.othl then at = math.min(at, first) end
    end
  end
  if extra > 0 then untilAt = math.max(untilAt, extraUntil) end
  if others + extra > 0 then
    local rest = leaves(need - others - extra)
    at = math.min(at, math.max(untilAt, rest))
    -- As RollingBucket.nextFreeAt: others' calls after their oldest may leave as soon as it does.
    if others > 0 then
      local first = untilAt
      if s.othf ~= nil and s.othf < first then first = s.othf end
      soonest = math.min(soonest, math.max(now, first, rest))
    end
  end
  local bound = false
  if soonest < at then
    if soonest > now then return soonest, false end
    bound = true
  end
  if at == math.huge then at = now + window end
  return at, bound
end
-- Leaky (token) buckets, as LeakyBucket in memory (lib/core/leakyBucket.ts).
local LEAK_EPS = ${LEAKY_EPSILON}
local LEAK_TRIPS = ${LEAKY_TRIPS}
-- A number written digit for digit (a level is a fraction; tostring keeps 14 digits).
local function exact(v)
  if v == nil then return '' end
  return string.format('%.17g', v)
end
local function loadLeak(bk, s, hintRate)
  local f = redis.call('HMGET', bk, 'rps', 'lvl', 'lva', 'acc', 'rda', 'trp', 'endu')
  s.rps = num(f[1]) or hintRate or 1
  s.lvl = num(f[2]) or 0
  s.lva = num(f[3])
  s.acc = num(f[4])
  s.rda = num(f[5])
  s.trp = {}
  for t in string.gmatch(f[6] or '', '[^,]+') do s.trp[#s.trp + 1] = tonumber(t) end
  s.endu = num(f[7]) or 0
  -- limiter.resume(): as LeakyBucket.forget (the hold went in load).
  if s.resumed then s.acc = nil end
end
local function saveLeak(bk, s, ttl, now)
  if s.lva == nil or s.lim == nil then s.rem = s.lim else s.rem = math.max(0, math.floor(s.lvl + LEAK_EPS)) end
  s.rst = nil
  s.kind = ''
  save(bk, s, ttl, now)
  local trp = {}
  for k, t in ipairs(s.trp) do trp[k] = string.format('%.0f', t) end
  redis.call('HSET', bk, 'rps', exact(s.rps), 'lvl', exact(s.lvl), 'lva', str(s.lva), 'acc', str(s.acc),
    'rda', str(s.rda), 'trp', table.concat(trp, ','), 'endu', exact(s.endu))
end
-- Brings the level to now (LeakyBucket.settle): restored at the rate, up to the capacity less
-- the units in flight ('infl', of every process: each may not have reached the server, whose
-- bucket stays full until it does); a level above a capacity that was cut comes down to it.
local function leakSettle(s, now, infl)
  local cap = s.lim or math.huge
  if s.lva == nil then
    if cap == math.huge then return end
    s.lvl = cap
    s.lva = now
    return
  end
  if now < s.lva then now = s.lva end
  local restored = math.max(0, now - s.lva) * (s.rps / 1000)
  s.lvl = math.min(cap, math.min(math.max(cap - (infl or 0), s.lvl), s.lvl + restored))
  s.lva = now
end
-- Units in flight on a leaky bucket, its leases not lapsed (as 'inflight', without ending any).
local function leakOut(bk, fk, now)
  return redis.call('ZCOUNT', fk, '(' .. string.format('%.0f', now), '+inf') + (num(redis.call('HGET', bk, 'xu')) or 0)
end
-- A leaky bucket brought to now before leases leave it (RELEASE): restored while they were out.
local function leakSettleKey(bk, fk, now)
  local f = redis.call('HMGET', bk, 'lim', 'lvl', 'lva', 'rps')
  local lva = num(f[3])
  if lva == nil then return end
  local s = { lim = num(f[1]), lvl = num(f[2]) or 0, lva = lva, rps = num(f[4]) or 1 }
  leakSettle(s, now, leakOut(bk, fk, now))
  redis.call('HSET', bk, 'lvl', exact(s.lvl), 'lva', str(s.lva))
end
-- The longest of the last round trips (0 before any).
local function leakTrip(s)
  local m = 0
  for _, t in ipairs(s.trp) do if t > m then m = t end end
  return m
end
local function leakNoteTrip(s, ms)
  s.trp[#s.trp + 1] = math.max(0, ms)
  while #s.trp > LEAK_TRIPS do table.remove(s.trp, 1) end
end
-- The restore lost on a trip by a request sent at level 'lvl' (LeakyBucket.take): a bucket
-- (nearly) full on the server stays full until the request gets there, while ours restores from
-- the send.
local function leakLost(s, lvl, guard)
  if s.lim == nil then return 0 end
  local trip = math.max(guard, leakTrip(s)) * (s.rps / 1000)
  return math.min(trip, math.max(0, lvl + trip - s.lim))
end
-- How many requests of cost c go now, one after another (as the memory drain takes them), and
-- otherwise how long until one does (-1: only a response can tell). 'reserved': units kept for
-- processes that may still be spending their local shares.
local function leakGrants(s, now, c, count, guard, infl, reserved)
  if s.lim == nil or s.lva == nil then return count, 0 end
  local lvl = s.lvl
  local n = 0
  while n < count and lvl - reserved + LEAK_EPS >= c do
    lvl = lvl - (c + leakLost(s, lvl, guard))
    n = n + 1
  end
  if n > 0 then return n, 0 end
  -- Nothing fits however long we wait (a capacity of 0): one request goes a while after the
  -- others ended, and its answer tells the rest.
  if s.lim < c or not (s.rps > 0) then
    if infl > 0 then return 0, -1 end
    return 0, PROBE_MS
  end
  return 0, math.max(1, math.ceil((c + reserved - s.lvl) / s.rps * 1000))
end
-- One request of cost c taken now (LeakyBucket.take, after leakSettle); returns the level
-- before it and the restore taken as lost.
local function leakTake(s, c, guard)
  if s.lva == nil then return nil, 0 end
  local before = s.lvl
  local lost = leakLost(s, before, guard)
  s.lvl = before - (c + lost)
  return before, lost
end
`;
