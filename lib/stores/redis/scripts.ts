/**
 * The Lua scripts of the Redis store. Each runs atomically on the server and takes its time
 * from Redis `TIME` (allowed in scripts under effects replication, the default since Redis 5),
 * so every process judges windows on one clock. Times are sent and returned as durations.
 *
 * A bucket is a hash `…:bucket:<name>`:
 *   lim, rem      limit and remaining ('' when unknown)
 *   rst, kind     reset (Redis ms) and whether the server said it ('s') or we projected it ('i')
 *   srst          the last reset a response reported
 *   win           window length, ms
 *   obs           '1' once any response on the bucket came back (cold start over)
 *   unc, ridx     after a local refill, requests left before a response confirms the new
 *                 window (half the limit after a told or projected reset, 0 after an inferred
 *                 one), and the admission index of the refill
 *   aw            after an inferred refill, when it began awaiting the answers in flight
 *   proj          '1' when the reset is projected from one the server told
 *   prov          the admission index that opened an inferred window (its first answer bounds it)
 *   adm           admissions so far (each request's index, to judge its response's age)
 *   nxt           next smooth-pacing slot
 *   at            when it was last written (Redis ms): a bucket written at or before the
 *                 credential's last RESUME (`resumed` in the pause hash) forgets its reset
 *   hold          rolling: held empty until then (a reading of 0 left, a 429 that named it)
 *   oth, othu     rolling: calls the server counted that the log does not (other clients of
 *                 the token), and until when (-1: until a reading says otherwise)
 *   low, lowi,    fixed: the lowest remaining the server reported in this window, the admission
 *   lowa          index of the request it answered, and the admissions made by then
 *   held          fixed: '1' once a 429 emptied this window (no answer from it raises what is left)
 *   tld, tsl      fixed: the reset the server told for this window, before `sharpenReset` (`rst`
 *                 is the sharper of it and a window after the answer that told it), and how much
 *                 earlier a later reading of the window may read it (the first reading's trip)
 * and its requests in flight are a sorted set `…:inflight:<name>` of lease ids scored by when
 * the lease lapses (a process killed mid-request stops counting after `leaseMs`). A request
 * that costs more than one unit has its cost in the bucket hash too (`c:<lease>`), and `xu`
 * sums what such leases hold beyond their one unit each: in flight is ZCARD + xu units.
 *
 * A rolling (sliding-window) bucket also has a log `…:log:<name>`: a list of the Redis times
 * its calls ended (answered, released, or their lease lapsed), oldest first, one entry per
 * unit. As `RollingBucket` in memory, a call counts while it is in flight (its lease, however
 * long it takes) and until `win + guard` after it ended: the server logged it when it arrived,
 * which may be long after its admission and is at the latest its end. Entries older are trimmed
 * at each use, and the list expires `max(keyTtlMs, win + guard)` after its last entry, so it
 * holds at most the limit's worth of entries. It is exact: a call is admitted only when fewer
 * than the limit are in the log and in flight (plus others, plus the reserve), in one script
 * with the rest of the request's buckets. Rules shared with the memory buckets come from
 * lib/core/window.ts ({@link LUA_WINDOW_RULES}).
 */
import { LUA_WINDOW_RULES } from '../../core/window.js';

/**
 * Most entries a rolling bucket's log keeps, a bound on its memory (about 1 MB). A rolling limit
 * above it is not held exactly: past it the oldest entries are dropped.
 */
export const MAX_ROLLING_LOG = 100_000;

/** Shared helpers, prepended to each script. */
const COMMON = `${LUA_WINDOW_RULES}
local function num(v)
  if v == false or v == nil or v == '' then return nil end
  return tonumber(v)
end
local function str(v)
  if v == nil then return '' end
  return tostring(v)
end
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local FIELDS = {'lim', 'rem', 'rst', 'kind', 'win', 'obs', 'unc', 'ridx', 'adm', 'nxt', 'srst', 'rv', 'rvu', 'at',
  'hold', 'oth', 'othu', 'low', 'lowi', 'lowa', 'held', 'prov', 'aw', 'proj', 'tld', 'tsl'}
-- pauseKey: the credential's pause hash; a bucket last written at or before its 'resumed'
-- (limiter.resume()) forgets every reset it remembers: the next response is taken as it is.
local function load(key, hintLim, hintWin, pauseKey)
  if redis.call('EXISTS', key) == 0 then
    return { lim = hintLim, rem = hintLim, win = hintWin, kind = '', obs = 0, ridx = 0, adm = 0, nxt = 0, fresh = true }
  end
  local f = redis.call('HMGET', key, unpack(FIELDS))
  local s = { lim = num(f[1]), rem = num(f[2]), rst = num(f[3]), kind = f[4] or '', win = num(f[5]),
    obs = num(f[6]) or 0, unc = num(f[7]), ridx = num(f[8]) or 0, adm = num(f[9]) or 0,
    nxt = num(f[10]) or 0, srst = num(f[11]), rv = num(f[12]), rvu = num(f[13]),
    hold = num(f[15]), oth = num(f[16]), othu = num(f[17]), low = num(f[18]), lowi = num(f[19]),
    lowa = num(f[20]), held = f[21] == '1', prov = num(f[22]), aw = num(f[23]), proj = f[24] == '1',
    tld = num(f[25]), tsl = num(f[26]) }
  local resumed = nil
  if pauseKey ~= nil then resumed = num(redis.call('HGET', pauseKey, 'resumed')) end
  if resumed ~= nil and (num(f[14]) or 0) <= resumed then
    s.rst = nil; s.srst = nil; s.kind = ''; s.unc = nil; s.nxt = 0; s.low = nil; s.prov = nil
    s.aw = nil; s.proj = false; s.tld = nil; s.tsl = nil
    s.hold = nil; s.oth = nil; s.othu = nil
  end
  return s
end
local function save(key, s, ttl, now)
  redis.call('HSET', key, 'lim', str(s.lim), 'rem', str(s.rem), 'rst', str(s.rst), 'kind', s.kind or '',
    'win', str(s.win), 'obs', str(s.obs), 'unc', str(s.unc), 'ridx', str(s.ridx), 'adm', str(s.adm),
    'nxt', str(s.nxt), 'srst', str(s.srst), 'rv', str(s.rv), 'rvu', str(s.rvu), 'at', str(now),
    'hold', str(s.hold), 'oth', str(s.oth), 'othu', str(s.othu), 'low', str(s.low), 'lowi', str(s.lowi),
    'lowa', str(s.lowa), 'held', s.held and '1' or '', 'prov', str(s.prov), 'aw', str(s.aw),
    'proj', s.proj and '1' or '', 'tld', str(s.tld), 'tsl', str(s.tsl))
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
-- A rolling bucket's calls that ended (answered, released, lapsed): n units logged at now, the
-- newest MAX_LOG kept; the log lives 'ttl' after its last entry.
local function logEnds(lk, n, now, ttl)
  if n <= 0 then return end
  local t = string.format('%.0f', now)
  local times = {}
  for k = 1, math.min(n, 1000) do times[k] = t end
  -- In pages: unpack takes a few thousand values at most.
  for k = 1, n, 1000 do redis.call('RPUSH', lk, unpack(times, 1, math.min(1000, n - k + 1))) end
  if redis.call('LLEN', lk) > ${MAX_ROLLING_LOG} then redis.call('LTRIM', lk, -${MAX_ROLLING_LOG}, -1) end
  redis.call('PEXPIRE', lk, ttl)
end
-- Units in flight on a bucket: one per lease not lapsed, plus what costly ones hold beyond it.
-- lk: a rolling bucket's log, where lapsed leases are logged as ended now (logTtl its life).
local function inflight(key, now, bk, lk, logTtl)
  local xu = num(redis.call('HGET', bk, 'xu')) or 0
  if xu > 0 or lk ~= nil then
    local ended = 0
    for _, lease in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', now)) do
      if not carried(lease) then ended = ended + leaseCost(bk, lease) end
      dropCost(bk, lease)
    end
    if lk ~= nil then logEnds(lk, ended, now, logTtl) end
    xu = num(redis.call('HGET', bk, 'xu')) or 0
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  return redis.call('ZCARD', key) + xu
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
      if tonumber(t) > horizon then break end
      n = n + 1
    end
    if n > 0 then redis.call('LTRIM', key, n, -1) end
    if n < 128 then break end
  end
  return redis.call('LLEN', key)
end
-- Calls the server counts that the log does not (another client of the token), while they count.
local function rollOthers(s, now)
  if s.oth ~= nil and s.othu ~= nil and (s.othu < 0 or s.othu > now) then return s.oth end
  return 0
end
-- When 'need' more calls will have left a rolling window: the log's one by one, the others'
-- (and a reserve, 'extra' until 'extraUntil') at once when they lapse. As
-- RollingBucket.nextFreeAt in memory.
local function rollFreeAt(key, n, s, now, need, guard, extra, extraUntil)
  local window = s.win + guard
  local function leaves(k)
    if k <= 0 then return now end
    if k <= n then return tonumber(redis.call('LINDEX', key, k - 1)) + window end
    return math.huge
  end
  local at = leaves(need)
  local others = rollOthers(s, now)
  local untilAt = 0
  if others > 0 then
    untilAt = s.othu
    if untilAt < 0 then untilAt = math.huge end
  end
  if extra > 0 then untilAt = math.max(untilAt, extraUntil) end
  if others + extra > 0 then at = math.min(at, math.max(untilAt, leaves(need - others - extra))) end
  if at == math.huge then at = now + window end
  return at
end
`;

/**
 * Grants up to `count` admissions for one request shape, across all its buckets at once.
 *
 * KEYS: pause, peers, then per bucket: bucket hash, in-flight set, log (rolling buckets).
 * ARGV: count, lease prefix, leaseMs, keyTtlMs, guardMs, coldStart, peer id, peerTtlMs,
 *       recovering peers ('' unless this process is coming back from an outage), reserveMs,
 *       then per bucket: hint limit, hint window, smooth (0/1), debit (units this process spent
 *       locally in a window still running), when that window ends (ms; rolling: when the
 *       newest of them leaves it), this process's local share per window (when recovering),
 *       rolling (0/1), cost (units each request takes of it), carried (the costs, comma
 *       separated, of requests this process sent on its local share that are still out: held
 *       in flight from now on as leases `<lease prefix>:c<k>`).
 *
 * Each request takes `cost` units of every bucket at once: a bucket grants as many requests as
 * it holds whole costs (one, as ever, to probe a window nothing has told). As in memory.
 *
 * Reserve: when a process comes back from an outage, the other processes it last saw may still
 * be spending their local shares. Their shares are reserved (taken off every window) until
 * they come back too (each takes its own share off the reserve) or `reserveMs` passes.
 * Returns: granted, wait (ms; -1 = only a response can tell; 0 = none), blocking bucket,
 *          pause ms left, pause reason, peers, block ms left ('' none, -1 until lifted), block status,
 *          then per bucket: lim, rem, reset in ms, win, index of the first grant, index of the
 *          first carried request.
 */
export const ACQUIRE = `${COMMON}
local now = clock()
local count = tonumber(ARGV[1])
local leasePrefix = ARGV[2]
local leaseMs = tonumber(ARGV[3])
local keyTtl = tonumber(ARGV[4])
local guard = tonumber(ARGV[5])
local cold = tonumber(ARGV[6])
local recoverPeers = num(ARGV[9])
local reserveMs = tonumber(ARGV[10])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[8]), ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('PEXPIRE', KEYS[2], keyTtl)
local peers = redis.call('ZCARD', KEYS[2])
local pu = num(redis.call('HGET', KEYS[1], 'until'))
local pauseMs = 0
local pauseReason = ''
if pu ~= nil and pu > now then
  pauseMs = pu - now
  pauseReason = redis.call('HGET', KEYS[1], 'reason') or ''
end
-- A block of the credential (Pipedrive's 403): -1 until lifted, else when it ends.
local blk = redis.call('HMGET', KEYS[1], 'block', 'bstatus')
local bu = num(blk[1])
local blockMs = ''
local blockStatus = ''
if bu ~= nil and (bu < 0 or bu > now) then
  if bu < 0 then blockMs = -1 else blockMs = bu - now end
  blockStatus = blk[2] or '403'
end
local nb = (#KEYS - 2) / 3
local states = {}
local grant = count
local wait = 0
local blocking = ''
if pauseMs > 0 or blockMs ~= '' then grant = 0 end
for i = 1, nb do
  local bk = KEYS[3 * i]
  local fk = KEYS[1 + 3 * i]
  local lk = KEYS[2 + 3 * i]
  local a = 10 + (i - 1) * 9
  local s = load(bk, num(ARGV[a + 1]), num(ARGV[a + 2]), KEYS[1])
  local c = tonumber(ARGV[a + 8]) or 1
  local smooth = ARGV[a + 3] == '1'
  local debit = tonumber(ARGV[a + 4]) or 0
  local debitResetIn = num(ARGV[a + 5])
  local share = num(ARGV[a + 6])
  local roll = ARGV[a + 7] == '1' and s.win ~= nil and s.win > 0
  -- Requests this process sent on its local share while Redis was away, still out: their costs.
  local carry = {}
  for c in string.gmatch(ARGV[a + 9] or '', '%d+') do carry[#carry + 1] = tonumber(c) end
  local rollLk = nil
  if roll then rollLk = lk end
  local infl = inflight(fk, now, bk, rollLk, math.max(keyTtl, (s.win or 0) + guard))
  if s.rvu ~= nil and s.rvu <= now then s.rv = nil; s.rvu = nil end
  if recoverPeers ~= nil and share ~= nil then
    if s.rv == nil then
      s.rv = math.max(0, recoverPeers - 1) * share
      if s.rem ~= nil then s.rem = math.max(0, s.rem - s.rv) end
    else
      s.rv = math.max(0, s.rv - share)
    end
    s.rvu = now + reserveMs
  end
  local reserved = s.rv or 0
  local can = count
  local w = 0
  local logLen = 0
  if roll then
    -- A sliding window (as RollingBucket in memory): the calls in flight, and those that ended
    -- less than a window (plus the guard) ago.
    logLen = trimLog(lk, now, s.win, guard)
    if debit > 0 then
      -- Spent by this process while Redis did not answer: logged as sent with the newest of
      -- them (never earlier than the log's last entry, never later than now).
      local t = now
      if debitResetIn ~= nil then t = now + debitResetIn - s.win end
      local tail = num(redis.call('LINDEX', lk, -1))
      if tail ~= nil and tail > t then t = tail end
      if t > now then t = now end
      for _ = 1, debit do redis.call('RPUSH', lk, string.format('%.0f', t)) end
      redis.call('PEXPIRE', lk, math.max(keyTtl, s.win + guard))
      logLen = logLen + debit
    end
    local extra = 0
    local extraUntil = 0
    if s.rvu ~= nil and s.rvu > now then extra = s.rv or 0; extraUntil = s.rvu end
    -- (Requests carried from the local share are in the debit and in flight until they answer:
    -- counted twice until then, never too few.)
    local used = logLen + infl + rollOthers(s, now) + extra
    local held = s.hold ~= nil and s.hold > now
    if s.lim == nil then s.rem = nil elseif held then s.rem = 0 else s.rem = math.max(0, s.lim - used) end
    if held then
      s.rst = s.hold
    elseif used > 0 then
      s.rst = (num(redis.call('LINDEX', lk, 0)) or now) + s.win
    else
      s.rst = nil
    end
    s.kind = 's'
    if s.obs ~= 1 and infl >= cold then
      can = 0; w = -1
    elseif held then
      can = 0; w = s.hold - now
    elseif s.lim ~= nil and used + c > s.lim then
      can = 0; w = rollFreeAt(lk, logLen, s, now, used + c - s.lim, guard, extra, extraUntil) - now
    else
      if s.lim ~= nil then can = math.min(can, math.floor((s.lim - used) / c)) end
      if s.obs ~= 1 then can = math.min(can, math.ceil((cold - infl) / c)) end
      if smooth then
        if s.nxt > now then can = 0; w = s.nxt - now else can = math.min(can, 1) end
      end
    end
  else
    -- A known reset has passed: a new window, minus what is still in flight (it may land in it).
    if s.rst ~= nil and now >= s.rst + guard then
      s.low = nil
      s.held = false
      s.prov = nil
      s.tld = nil
      -- As Bucket.refill: a reset told, or projected from one, keeps the half-limit probe.
      local told = s.kind == 's' or s.proj
      if s.lim ~= nil then s.rem = math.max(0, s.lim - infl - reserved) else s.rem = nil; s.obs = 0 end
      if s.lim ~= nil and s.obs == 1 then
        s.unc = unconfirmedBudget(s.lim, told)
        s.ridx = s.adm
        if told then s.aw = nil else s.aw = now end
      end
      if s.kind == 's' and s.win ~= nil and s.win > 0 then
        s.rst = projectReset(s.rst, now, s.win)
        s.kind = 'i'
        s.proj = true
      else
        s.rst = nil
        s.kind = ''
        s.proj = false
      end
    end
    -- Spent by this process in this window while Redis did not answer (after any refill).
    if debit > 0 then
      if s.rem ~= nil then s.rem = math.max(0, s.rem - debit) end
      local dr = nil
      if debitResetIn ~= nil then dr = now + debitResetIn end
      if dr ~= nil and (s.rst == nil or math.abs(s.rst - dr) <= resetTolerance(s.win)) then
        -- The window this process spent in while away (its reset as the answers then told it):
        -- an answer from it read now counts within it, its figure never above what is left
        -- after the debit (the requests it counted less of were answered while Redis was away,
        -- so no lease of theirs is left to take them off).
        s.rst = dr
        s.kind = 's'
        if s.rem ~= nil then
          -- (The requests carried are both in it and in flight until they answer: taken off
          -- twice until then, never too few.)
          s.low = s.rem
          s.lowi = s.adm + #carry
          s.lowa = s.lowi
        end
      end
    end
    if s.obs ~= 1 and infl >= cold then
      can = 0; w = -1
    elseif s.unc ~= nil and s.unc <= c - 1 and infl > 0 and (s.aw == nil or now < s.aw + PROBE_MS) then
      -- As Bucket.availableAt: after an inferred reset the answers in flight are awaited, at
      -- most PROBE_MS.
      can = 0
      if s.aw == nil then w = -1 else w = s.aw + PROBE_MS - now end
    elseif s.rem == nil or s.rem > c - 1 then
      if s.rem ~= nil then can = math.min(can, math.floor(s.rem / c)) end
      if s.obs ~= 1 then can = math.min(can, math.ceil((cold - infl) / c)) end
      if s.unc ~= nil then can = math.min(can, math.max(math.floor(s.unc / c), 1)) end
      if smooth then
        if s.nxt > now then can = 0; w = s.nxt - now else can = math.min(can, 1) end
      end
    elseif s.rst ~= nil then
      can = 0; w = s.rst + guard - now
    elseif infl > 0 then
      can = 0; w = -1
    else
      can = math.min(can, 1)
    end
  end
  if can < grant then grant = can end
  if can == 0 then
    if w == -1 then
      if wait ~= -1 then blocking = bk end
      wait = -1
    elseif wait ~= -1 and w > wait then
      wait = w; blocking = bk
    end
  end
  s.infl = infl
  s.c = c
  s.smooth = smooth
  s.roll = roll
  s.carry = carry
  states[i] = s
end
local out = { grant, wait, blocking, pauseMs, pauseReason, peers, blockMs, blockStatus }
for i = 1, nb do
  local s = states[i]
  -- Carried requests were sent before any granted now: theirs are the lower indices. Their
  -- units are not taken again (the debit did), but they are in flight from now on.
  local carriedFirst = s.adm
  local nc = #s.carry
  if nc > 0 then
    local fk = KEYS[1 + 3 * i]
    local xu = 0
    s.adm = s.adm + nc
    for k = 1, nc do
      local name = leasePrefix .. ':c' .. k
      redis.call('ZADD', fk, now + leaseMs, name)
      if s.carry[k] ~= 1 then
        redis.call('HSET', KEYS[3 * i], 'c:' .. name, s.carry[k])
        xu = xu + s.carry[k] - 1
      end
    end
    if xu > 0 then
      redis.call('HSET', KEYS[3 * i], 'xu', (num(redis.call('HGET', KEYS[3 * i], 'xu')) or 0) + xu)
    end
    redis.call('PEXPIRE', fk, math.max(keyTtl, leaseMs))
  end
  local first = s.adm
  local units = grant * s.c
  if grant > 0 then
    s.adm = s.adm + grant
    s.aw = nil
    if s.rem ~= nil then s.rem = math.max(0, s.rem - units) end
    if s.unc ~= nil then s.unc = math.max(0, s.unc - units) end
    if s.roll then
      -- Each call counts from now while in flight (its lease), and is logged at its end.
      if s.rst == nil then s.rst = now + s.win end
    elseif s.rst == nil and s.win ~= nil and s.lim ~= nil then
      -- No reset from the server: the window is taken to start at the first send in it, until
      -- an answer from it bounds when the server counted it (as Bucket.take).
      s.rst = now + s.win
      s.kind = 'i'
      s.proj = false
      s.prov = first
    end
    if s.smooth then
      local even = 0
      if s.win ~= nil and s.lim ~= nil and s.lim > 0 then even = s.win / s.lim end
      local catch = 0
      -- A sliding window's even rate never puts more than the limit in any window.
      if not s.roll and s.rst ~= nil and s.rst > now then catch = (s.rst - now) / math.max(1, s.rem or 0) end
      local spacing = math.max(even, catch)
      local base = now
      if s.nxt > now - spacing then base = math.min(s.nxt, now) end
      s.nxt = math.floor(base + spacing)
    end
    local fk = KEYS[1 + 3 * i]
    for k = 1, grant do
      redis.call('ZADD', fk, now + leaseMs, leasePrefix .. ':' .. k)
      if s.c ~= 1 then redis.call('HSET', KEYS[3 * i], 'c:' .. leasePrefix .. ':' .. k, s.c) end
    end
    if s.c ~= 1 then
      redis.call('HSET', KEYS[3 * i], 'xu', (num(redis.call('HGET', KEYS[3 * i], 'xu')) or 0) + grant * (s.c - 1))
    end
    redis.call('PEXPIRE', fk, math.max(keyTtl, leaseMs))
  end
  save(KEYS[3 * i], s, keyTtl, now)
  local rstIn = ''
  if s.rst ~= nil then rstIn = tostring(s.rst - now) end
  table.insert(out, str(s.lim))
  table.insert(out, str(s.rem))
  table.insert(out, rstIn)
  table.insert(out, str(s.win))
  table.insert(out, first)
  table.insert(out, carriedFirst)
end
return out
`;

/**
 * Merges one response's readings (the server's figures win within the rules below) and ends
 * its lease.
 *
 * KEYS: per bucket: bucket hash, in-flight set, log (rolling buckets); then the pause hash.
 * ARGV: lease ('' for a response not admitted through the store), keyTtlMs, channel, sent ms ago
 *       ('' unknown: when the store granted the lease, so no later than the send),
 *       guardMs, then per bucket: has reading (0/1), limit, remaining, reset in ms, window,
 *       admission index, hint limit, hint window, rolling (0/1).
 *
 * Rules (as `Bucket.apply` in memory, from the same functions of lib/core/window.ts): a reading
 * of a window already over, or clearly older than the current one, changes nothing (except that
 * a window over still teaches its limit to a bucket that knows nothing yet); a reset clearly
 * later (or the first the server tells after our own projection) starts a new window, taken as
 * it is, less every other request in flight; within a window what is left is recounted at each
 * answer from the window's lowest figure less every request in flight (`recount`: a late
 * response's older, higher figure changes nothing, and it never rises after a 429 emptied the
 * window); with no reset, a rise the requests in flight cannot explain is a new window
 * (`rolledOver`). A rolling bucket (as `RollingBucket.apply`):
 * a reading of 0 left holds it until the reset; what the server counted beyond our calls (in the
 * log or in flight) up to this request is someone else's, counted until the reset; the call is
 * logged as ended now.
 */
export const OBSERVE = `${COMMON}
local now = clock()
local lease = ARGV[1]
local keyTtl = tonumber(ARGV[2])
local sentAgo = num(ARGV[4])
local sentAt = nil
if sentAgo ~= nil then sentAt = now - sentAgo end
local guard = tonumber(ARGV[5]) or 0
local nb = (#KEYS - 1) / 3
local pauseKey = KEYS[#KEYS]
-- Whether another process waiting on these buckets may go sooner than it was told.
local wake = false
for i = 1, nb do
  local bk = KEYS[3 * i - 2]
  local fk = KEYS[3 * i - 1]
  local lk = KEYS[3 * i]
  local a = 5 + (i - 1) * 9
  local s = load(bk, num(ARGV[a + 7]), num(ARGV[a + 8]), pauseKey)
  local rolling = ARGV[a + 9] == '1' and (s.win or num(ARGV[a + 5])) ~= nil
  local rollLk = nil
  if rolling then rollLk = lk end
  local logTtl = math.max(keyTtl, (s.win or num(ARGV[a + 5]) or 0) + guard)
  local infl = inflight(fk, now, bk, rollLk, logTtl)
  local mine = lease ~= '' and redis.call('ZSCORE', fk, lease) ~= false
  -- The units this request holds of the bucket (its cost).
  local own = 0
  if mine then own = leaseCost(bk, lease) end
  local index = num(ARGV[a + 6])
  local before = { rem = s.rem, rst = s.rst, obs = s.obs, unc = s.unc }
  s.obs = 1
  if index == nil or index >= s.ridx then s.unc = nil; s.aw = nil end
  -- As Bucket.confirm: the first answer from a window opened by our send bounds its start,
  -- whether or not the answer reports this bucket.
  if s.prov ~= nil and index ~= nil and index >= s.prov then
    if s.win ~= nil and s.rst ~= nil and s.kind == 'i' then s.rst = math.max(s.rst, now + s.win) end
    s.prov = nil
  end
  if rolling then
    if ARGV[a + 1] == '1' then
      local lim = num(ARGV[a + 2])
      local rem = num(ARGV[a + 3])
      local resetIn = num(ARGV[a + 4])
      local win = num(ARGV[a + 5])
      if win ~= nil then s.win = win end
      if lim ~= nil then s.lim = lim end
      local reset = nil
      if resetIn ~= nil then reset = now + resetIn end
      if rem == 0 and reset ~= nil then s.hold = math.max(s.hold or 0, reset) end
      if rem ~= nil and s.lim ~= nil then
        -- Admissions after this request's may not have reached the server before it answered.
        local later = infl
        if index ~= nil then later = math.max(0, s.adm - index - 1) end
        local ours = trimLog(lk, now, s.win, guard) + infl - later
        s.oth = math.max(0, s.lim - rem - ours)
        s.othu = reset or -1
      end
    end
    -- The server logged the call when it arrived, at the latest now that its answer is here:
    -- it counts from now on, whatever the latency was.
    if mine and not carried(lease) then logEnds(lk, own, now, logTtl) end
  elseif ARGV[a + 1] == '1' then
    local lim = num(ARGV[a + 2])
    local rem = num(ARGV[a + 3])
    local resetIn = num(ARGV[a + 4])
    local win = num(ARGV[a + 5])
    if win ~= nil then s.win = win end
    local reset = nil
    if resetIn ~= nil then reset = now + resetIn end
    -- The current window's reset: told by the server ('s'), or projected by a refill ('i'); as
    -- told, before sharpenReset (a later reading of the window is judged against what the
    -- server said, not against our sharper figure).
    local told = s.kind == 's'
    local cur = s.rst
    if told and cur ~= nil and s.tld ~= nil then cur = math.max(cur, s.tld) end
    local tol = resetTolerance(s.win)
    local skip = false
    if reset ~= nil and reset <= now then
      skip = true
      -- A window over by the time it was read: its limit still holds (what is left is at most
      -- the limit less our others in flight, and half of it goes until confirmed).
      if lim ~= nil and not told then
        s.lim = lim
        local others = infl - own
        local room = math.max(0, lim - math.max(0, others))
        if s.rem == nil or s.rem > room then s.rem = room end
        if s.unc == nil then
          s.unc = unconfirmedBudget(lim)
          s.ridx = s.adm
        end
      end
    end
    -- An older window: earlier than the current one's reset by more than the rounding plus the
    -- first reading's trip back (a later reading of the window may read it that much earlier).
    if not skip and reset ~= nil and told and cur ~= nil and reset < cur - tol - (s.tsl or 0) then skip = true end
    -- As Bucket.apply: a request sent before the last reset the server told belongs to that
    -- window (or an older one), however late its answer (a busy process reads it long after),
    -- unless the answer shows otherwise: a reset longer than the old window could have had
    -- left at the send (rounded up to the second), or a rise the requests in flight cannot explain,
    -- or a clearly later reset read by a request the old window would have counted lower (countedAfresh).
    local sentBefore = sentAt ~= nil and s.srst ~= nil and sentAt < s.srst
      and not (reset ~= nil and reset - now > ceilSecond(s.srst - sentAt))
      and not rolledOver(s, rem, index, infl)
      and not (reset ~= nil and told and cur ~= nil and reset > cur + tol and countedAfresh(s, rem, index, own))
    if not skip and sentBefore and (not told or cur == nil) then skip = true end
    if not skip then
      -- As Bucket.apply in memory: a reset clearly later (or the first the server tells after
      -- our own projection) starts a new window; with no reset, a rise the requests in flight
      -- cannot explain does (rolledOver).
      local rolled = (not sentBefore) and (not told or cur == nil) and reset == nil
        and rolledOver(s, rem, index, infl)
      local newWindow = rolled or ((not sentBefore) and reset ~= nil and (not told or cur == nil or reset > cur + tol))
      if newWindow then
        s.low = nil
        s.held = false
      end
      if rem ~= nil and index ~= nil and (s.low == nil or rem < s.low) then
        s.low = rem; s.lowi = index; s.lowa = s.adm
      end
      if lim ~= nil then s.lim = lim end
      if rem ~= nil then
        -- The server's figure is an upper bound: every request in flight (of any process) may
        -- not have reached it yet, so they are taken off it. Within a window what is left is
        -- recounted from the window's lowest figure at each answer (recount: it may rise, never
        -- after a 429 emptied the window). Shares reserved for processes that may still be
        -- spending locally (after an outage) are taken off too.
        local others = infl - own
        local reserved = 0
        if s.rvu ~= nil and s.rvu > now then reserved = s.rv or 0 end
        local low = nil
        if s.low ~= nil then low = s.low - reserved end
        s.rem = recount(s.rem, rem - reserved, math.max(0, others), low, newWindow, s.held, index ~= nil)
        if s.lim == nil and rem > 0 then s.lim = rem end
      end
      if reset ~= nil then
        if told and s.rst ~= nil and not newWindow then
          -- Within a window the first reading is kept (later ones only add rounding).
          reset = s.rst
        else
          -- As Bucket.apply: the window ends at most a window after this answer; where that
          -- and the reset (time left, rounded up to the second) agree, the sharper one.
          s.tld = reset
          s.tsl = 1 + math.max(0, now - (sentAt or now))
          reset = sharpenReset(reset, now, s.win, RELATIVE_SLACK_MS)
        end
        s.rst = reset
        s.kind = 's'
        s.srst = reset
      elseif rolled and s.win ~= nil and s.win > 0 then
        -- The server's window began by the time it answered: it ends at most a window after
        -- the answer (a window after the send may be early by the request's wait to be counted).
        s.rst = now + s.win
        s.kind = 'i'
      elseif s.rem == 0 and s.rst == nil then
        s.rst = now + (s.win or PROBE_MS)
        s.kind = 'i'
      end
      if reset ~= nil or rolled then
        s.prov = nil
        s.proj = false
      end
    end
  end
  if lease ~= '' and redis.call('ZREM', fk, lease) > 0 then dropCost(bk, lease) end
  save(bk, s, keyTtl, now)
  -- A process waits on a bucket for a time (an empty window until its reset) or for a response
  -- (a cold start, the half-limit probe, an empty window with requests in flight and no reset).
  -- Only a change that can end such a wait sooner is announced: with many processes, each
  -- answer woke every one of them to ask again for nothing.
  if ARGV[a + 9] == '1' then wake = true
  elseif before.obs ~= 1 or (before.unc ~= nil and s.unc == nil) then wake = true
  elseif s.rem ~= nil and (before.rem == nil or s.rem > before.rem) then wake = true
  elseif s.rem == nil and before.rem ~= nil then wake = true
  elseif before.rst ~= nil and (s.rst == nil or s.rst < before.rst) then wake = true
  elseif s.rem == 0 and before.rst == nil and s.rst ~= nil then wake = true
  elseif mine and ((before.unc ~= nil and before.unc <= 0) or (s.rem == 0 and s.rst == nil)) then wake = true
  end
end
if wake then redis.call('PUBLISH', ARGV[3], 'observe') end
return wake and 1 or 0
`;

/**
 * Ends leases without a reading (the request failed or was unsubscribed, or a call Redis may
 * have run while unreachable is undone). Announced only when a lease was still there (ending
 * one twice, or one Redis lost, wakes nobody). A costly lease's units go with it. On a rolling
 * bucket the call is logged as ended now (as `RollingBucket.release`: the server may have
 * logged it as late as that).
 * KEYS: per bucket: in-flight set, bucket hash, log. ARGV: channel, keyTtlMs, guardMs, rolling
 * (one '0' or '1' per bucket), then one or more leases.
 */
export const RELEASE = `${COMMON}
local keyTtl = tonumber(ARGV[2])
local guard = tonumber(ARGV[3]) or 0
local n = 0
local now = nil
for i = 1, #KEYS, 3 do
  local b = (i + 2) / 3
  local win = nil
  if string.sub(ARGV[4], b, b) == '1' then win = num(redis.call('HGET', KEYS[i + 1], 'win')) end
  local ended = 0
  for j = 5, #ARGV do
    local gone = redis.call('ZREM', KEYS[i], ARGV[j])
    if gone > 0 then
      if win ~= nil and win > 0 and not carried(ARGV[j]) then ended = ended + leaseCost(KEYS[i + 1], ARGV[j]) end
      dropCost(KEYS[i + 1], ARGV[j])
    end
    n = n + gone
  end
  if ended > 0 then
    now = now or clock()
    logEnds(KEYS[i + 2], ended, now, math.max(keyTtl, win + guard))
  end
end
if n > 0 then redis.call('PUBLISH', ARGV[1], 'release') end
return n
`;

/**
 * Pauses every process (a 429 that named no bucket). Only ever extends a pause; a pause of
 * 0 ms or less is none (nothing is written: a hash with no TTL must never be left).
 * KEYS: pause. ARGV: ms, reason, keyTtlMs, channel.
 */
export const PAUSE = `${COMMON}
local now = clock()
local ms = tonumber(ARGV[1])
if ms == nil or ms <= 0 then return 0 end
local untilAt = now + ms
local cur = num(redis.call('HGET', KEYS[1], 'until'))
if cur == nil or cur < untilAt then
  redis.call('HSET', KEYS[1], 'until', untilAt, 'reason', ARGV[2])
  local ttl = ms + tonumber(ARGV[3])
  -- The hash may also hold a block that outlasts the pause: never shorten its life, and an
  -- endless block (-1) keeps the hash persistent.
  local endless = num(redis.call('HGET', KEYS[1], 'block')) == -1
  if not endless and redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
  redis.call('PUBLISH', ARGV[4], 'pause')
end
return 1
`;

/**
 * Holds one bucket empty until a time (a 429 that named it): our projected reset yields to the
 * server's word; a reset the server told is only extended.
 * A rolling bucket is held empty until then (`hold`), as in memory.
 * KEYS: bucket, pause. ARGV: ms, keyTtlMs, channel, hint limit, hint window, rolling (0/1).
 */
export const EXHAUST = `${COMMON}
local now = clock()
local untilAt = now + math.max(0, tonumber(ARGV[1]))
local s = load(KEYS[1], num(ARGV[4]), num(ARGV[5]), KEYS[2])
s.rem = 0
if ARGV[6] == '1' then
  s.hold = math.max(s.hold or 0, untilAt)
  s.rst = s.hold
elseif s.kind == 'i' or s.rst == nil then s.rst = untilAt else s.rst = math.max(s.rst, untilAt) end
if ARGV[6] ~= '1' then s.held = true end
s.kind = 's'
s.prov = nil
save(KEYS[1], s, tonumber(ARGV[2]), now)
redis.call('PUBLISH', ARGV[3], 'exhaust')
return 1
`;

/**
 * Blocks the credential on every process (the provider's block, Pipedrive's 403 page): for ms,
 * or until UNBLOCK ('' ms). Only ever extends a block. Kept in the pause hash: ACQUIRE grants
 * nothing while it holds. A block until UNBLOCK makes the hash persistent (no TTL), as the
 * limiter that met it holds it until `unblock()`: Redis must not forget it first (a process
 * started later would send). UNBLOCK and RESUME give the hash its TTL back.
 * Publishes 'block:<ms left or inf>:<status>'.
 * KEYS: pause. ARGV: ms (''), status, keyTtlMs, channel.
 */
export const BLOCK = `${COMMON}
local now = clock()
local ms = num(ARGV[1])
local untilAt = -1
if ms ~= nil then untilAt = now + ms end
local cur = num(redis.call('HGET', KEYS[1], 'block'))
if cur == nil or (cur >= 0 and (cur <= now or untilAt < 0 or untilAt > cur)) then
  redis.call('HSET', KEYS[1], 'block', untilAt, 'bstatus', ARGV[2])
  cur = untilAt
end
if cur < 0 then
  redis.call('PERSIST', KEYS[1])
else
  local ttl = tonumber(ARGV[3]) + (cur - now)
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
end
local left = 'inf'
if cur >= 0 then left = tostring(cur - now) end
redis.call('PUBLISH', ARGV[4], 'block:' .. left .. ':' .. (redis.call('HGET', KEYS[1], 'bstatus') or ARGV[2]))
return 1
`;

/**
 * Lifts a block (`limiter.unblock()`) on every process; a pause still running keeps the hash
 * for its time plus keyTtlMs (the hash may have been persistent for an endless block).
 * Publishes 'unblock'. KEYS: pause. ARGV: channel, keyTtlMs.
 */
export const UNBLOCK = `${COMMON}
redis.call('HDEL', KEYS[1], 'block', 'bstatus')
if redis.call('EXISTS', KEYS[1]) == 1 then
  local now = clock()
  local pu = num(redis.call('HGET', KEYS[1], 'until')) or now
  redis.call('PEXPIRE', KEYS[1], math.max(0, pu - now) + tonumber(ARGV[2]))
end
redis.call('PUBLISH', ARGV[1], 'unblock')
return 1
`;

/**
 * Starts the credential again (`limiter.resume()`, or `pause(0)` without buckets): lifts the
 * pause on every process; with buckets, also the block, and marks the time (`resumed`) so that
 * every bucket written before forgets its reset at its next use (ACQUIRE, OBSERVE, EXHAUST),
 * whichever process uses it. The hash keeps the mark for keyTtlMs, as long as any bucket
 * written before it can live. Publishes 'resume' or 'resume:pause'.
 * KEYS: pause. ARGV: channel, keyTtlMs, buckets (1/0).
 */
export const RESUME = `${COMMON}
local now = clock()
redis.call('HDEL', KEYS[1], 'until', 'reason')
if ARGV[3] == '1' then
  redis.call('HDEL', KEYS[1], 'block', 'bstatus')
  redis.call('HSET', KEYS[1], 'resumed', now)
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  redis.call('PUBLISH', ARGV[1], 'resume')
else
  redis.call('PUBLISH', ARGV[1], 'resume:pause')
end
return 1
`;
