/** ACQUIRE, the Redis store's admission script (its data model: scriptCommon.ts). */
import { COMMON } from './scriptCommon.js';

/**
 * Grants up to `count` admissions for one request shape, across all its buckets at once.
 *
 * KEYS: pause, peers, then per bucket: bucket hash, in-flight set, log (rolling buckets).
 * ARGV: count, lease prefix, leaseMs, keyTtlMs, guardMs, coldStart, peer id, peerTtlMs,
 *       recovering peers ('' unless this process is coming back from an outage: the peers it
 *       last saw, then ':' and how long ago its outage began, ms), reserveMs,
 *       then per bucket: hint limit, hint window, smooth (0/1), debit (units this process spent
 *       locally in a window still running), when that window ends (ms; rolling: when the
 *       newest of them leaves it), this process's local share per window (when recovering),
 *       rolling (0/1), cost (units each request takes of it), carried (the costs, comma
 *       separated, of requests this process sent on its local share that are still out: held
 *       in flight from now on as leases `<lease prefix>:c<k>`), restore rate hint (units per
 *       second: a leaky bucket; '' for a window).
 *
 * Each request takes `cost` units of every bucket at once: a bucket grants as many requests as
 * it holds whole costs (one, as ever, to probe a window nothing has told). As in memory.
 *
 * A leaky bucket (as `LeakyBucket` in memory) is brought up to now (restored at its rate since
 * it was last written), grants while what is available covers the cost (each request sent from
 * a nearly full bucket also counts a trip's restore as lost), and otherwise reports the exact
 * wait until the cost has come back. Its debit (units this process spent on its local share
 * that the share has not yet restored) is taken off what is available.
 *
 * Reserve: when a process comes back from an outage, the other processes it last saw may still
 * be spending their local shares. Their shares are reserved (taken off every window, or off
 * what a leaky bucket has available) until they come back too (each takes its own share off the
 * reserve) or `reserveMs` passes. A peer that reached Redis since this process's outage began
 * (its entry in the peers set was refreshed since) is not reserved for: it was not on its local
 * share then, and what it spent on it before was debited when it came back. (A process that
 * joined during the outage counts as such a peer, so with a second peer also away and one joining,
 * the reserve is one share short: three processes, two outages at once and a start between.)
 * Returns: granted, wait (ms; -1 = only a response can tell; 0 = none), blocking bucket,
 *          pause ms left, pause reason, peers, block ms left ('' none, -1 until lifted), block status,
 *          then per bucket: lim, rem, reset in ms (a leaky bucket: until it is full again), win,
 *          index of the first grant, index of the first carried request, for a leaky bucket
 *          its restore rate and the units available (a fraction; '' none known), and '1' when
 *          answers in flight may give room back ('dbt': the bucket is not known to be spent,
 *          whatever its wait), or when a rolling window's wait only bounds when others' calls
 *          leave (`rollFreeAt`); '' otherwise.
 */
export const ACQUIRE = `${COMMON}
local now = clock()
local count = tonumber(ARGV[1])
local leasePrefix = ARGV[2]
local leaseMs = tonumber(ARGV[3])
local keyTtl = tonumber(ARGV[4])
local guard = tonumber(ARGV[5])
local cold = tonumber(ARGV[6])
local recoverPeers = nil
local downFor = nil
do
  local p, d = string.match(ARGV[9] or '', '^(%d+):?(%d*)$')
  recoverPeers = tonumber(p)
  downFor = tonumber(d)
end
local reserveMs = tonumber(ARGV[10])
local peerTtl = tonumber(ARGV[8])
redis.call('ZADD', KEYS[2], now + peerTtl, ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if recoverPeers ~= nil and downFor ~= nil then
  -- The peers seen since this process's outage began (itself aside) spent no local share since.
  local seen = redis.call('ZCOUNT', KEYS[2], now - downFor + peerTtl, '+inf') - 1
  recoverPeers = math.max(1, recoverPeers - math.max(0, seen))
end
redis.call('PEXPIRE', KEYS[2], keyTtl)
local peers = redis.call('ZCARD', KEYS[2])
local pu = num(redis.call('HGET', KEYS[1], 'until'))
if pu ~= nil and pu - now > MAX_SERVER_WAIT_MS then
  -- Past what any limiter obeys (by hand, another version): garbage, as the limiter takes it,
  -- dropped here (one past 2^63 ms came back as a negative pause, asked about again at once).
  redis.call('HDEL', KEYS[1], 'until', 'reason')
  pu = nil
end
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
  local a = 10 + (i - 1) * 10
  local s = load(bk, num(ARGV[a + 1]), num(ARGV[a + 2]), KEYS[1])
  local hintRate = num(ARGV[a + 10])
  local leaky = hintRate ~= nil
  if leaky then s.win = nil end
  local c = tonumber(ARGV[a + 8]) or 1
  local smooth = ARGV[a + 3] == '1'
  local debit = tonumber(ARGV[a + 4]) or 0
  local debitResetIn = num(ARGV[a + 5])
  local share = num(ARGV[a + 6])
  local roll = not leaky and ARGV[a + 7] == '1' and s.win ~= nil and s.win > 0
  -- Requests this process sent on its local share while Redis was away, still out: their costs.
  local carry = {}
  for c in string.gmatch(ARGV[a + 9] or '', '%d+') do carry[#carry + 1] = tonumber(c) end
  local rollLk = nil
  if roll then rollLk = lk end
  local infl, lapsed = inflight(fk, now, bk, rollLk, math.max(keyTtl, (s.win or 0) + guard), leaky)
  -- Nothing in flight: no answer to come can give room back (as Bucket.release).
  if infl <= 0 then s.dbt = nil end
  -- (After the lapsed leases: their units went to 'endu'.)
  if leaky then loadLeak(bk, s, hintRate) end
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
  if leaky then
    leakSettle(s, now, infl)
    -- Spent by this process on its local share while Redis did not answer, not yet restored.
    if debit > 0 and s.lva ~= nil then s.lvl = s.lvl - debit end
    local held = s.hold ~= nil and s.hold > now
    if s.obs ~= 1 and infl >= coldLimit(cold, s.obs) then
      can = 0; w = -1
    elseif held then
      can = 0; w = s.hold - now
    else
      can, w = leakGrants(s, now, c, count, guard, infl, reserved)
      if s.obs ~= 1 then can = math.min(can, math.ceil((coldLimit(cold, s.obs) - infl) / c)) end
    end
  elseif roll then
    -- A sliding window (as RollingBucket in memory): the calls in flight, and those that ended
    -- less than a window (plus the guard) ago.
    logLen = trimLog(lk, now, s.win, guard)
    if debit > 0 then
      -- Spent by this process while Redis did not answer: logged as sent with the newest of
      -- them (never earlier than the log's last entry, never later than now).
      local t = now
      if debitResetIn ~= nil then t = now + debitResetIn - s.win end
      local tail = logEnd(redis.call('LINDEX', lk, -1))
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
    local used = logLen + infl + rollOthers(s, now) - rollDoubled(bk, s, now, guard) + extra
    local held = s.hold ~= nil and s.hold > now
    if s.lim == nil then s.rem = nil elseif held then s.rem = 0 else s.rem = math.max(0, s.lim - used) end
    if held then
      s.rst = s.hold
    elseif used > 0 then
      s.rst = (logEnd(redis.call('LINDEX', lk, 0)) or now) + s.win
    else
      s.rst = nil
    end
    s.kind = 's'
    if s.obs ~= 1 and infl >= coldLimit(cold, s.obs) then
      can = 0; w = -1
    elseif held then
      can = 0; w = s.hold - now
    elseif s.lim ~= nil and used + c > s.lim then
      local freeAt, bound = rollFreeAt(lk, logLen, s, now, used + c - s.lim, guard, extra, extraUntil)
      can = 0; w = freeAt - now; s.bnd = bound
    else
      if s.lim ~= nil then can = math.min(can, math.floor((s.lim - used) / c)) end
      if s.obs ~= 1 then can = math.min(can, math.ceil((coldLimit(cold, s.obs) - infl) / c)) end
      if smooth then
        if s.nxt > now then can = 0; w = s.nxt - now else can = math.min(can, 1) end
      end
    end
  else
    -- A known reset has passed: a new window, minus what is still in flight (it may land in it).
    -- On a window proved to slide (as Bucket.refill), not before the answers in flight are in
    -- (at most PROBE_MS): a call in flight may have taken the request the reset frees, and its
    -- answer tells a later reset.
    local slideWait = s.sld and infl > 0 and s.rst ~= nil and now < s.rst + guard + PROBE_MS
    if s.rst ~= nil and now >= s.rst + guard and not slideWait then
      s.low = nil
      s.lowh = nil
      s.lowf = nil
      s.wfr = s.adm
      s.dbt = nil
      s.lrn = nil
      s.held = false
      s.prov = nil
      s.tld = nil
      s.tsv = nil
      -- Calls that ended without a figure before the reset: counted in the window that ended.
      s.eu = nil
      s.euu = nil
      s.eut = nil
      forgetEnded(s)
      -- As Bucket.refill: after a reset told, or projected from one, one request until an answer.
      local told = s.kind == 's' or s.proj
      -- Leases that lapsed are taken as ending now, after the refill (it is not known when they
      -- did): in flight at the refill, then ended without a figure below.
      if s.lim ~= nil then s.rem = math.max(0, s.lim - infl - lapsed - reserved) else s.rem = nil; s.obs = 0 end
      if s.lim ~= nil and s.obs == 1 then
        s.unc = unconfirmedBudget(told)
        s.ridx = s.adm
        if told then s.aw = nil else s.aw = now end
      end
      if s.kind == 's' and s.win ~= nil and s.win > 0 then
        s.rst = projectReset(s.rst, now, s.win)
        s.kind = 'i'
        s.proj = true
        s.popen = true
      else
        s.rst = nil
        s.kind = ''
        s.proj = false
        s.popen = false
      end
    end
    -- A lapsed lease's call (its process died, or it outlived leaseMs) ended without a figure.
    endedUnread(s, lapsed, infl)
    -- Spent by this process in this window while Redis did not answer (after any refill).
    if debit > 0 then
      -- No reading counted what was spent while away: no drop is attributed from here.
      s.lrn = nil
      if s.rem ~= nil then s.rem = math.max(0, s.rem - debit) end
      local dr = nil
      if debitResetIn ~= nil then dr = now + debitResetIn end
      if dr ~= nil and (s.rst == nil or math.abs(s.rst - dr) <= resetTolerance(s.win)) then
        -- The window this process spent in while away (its reset as the answers then told it):
        -- an answer from it read now counts within it, its figure never above what is left
        -- after the debit (the requests it counted less of were answered while Redis was away,
        -- so no lease of theirs is left to take them off).
        s.rst = dr
        s.srst = dr
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
    if s.obs ~= 1 and infl >= coldLimit(cold, s.obs) then
      can = 0; w = -1
    elseif s.unc ~= nil and s.unc <= c - 1 and infl > 0 and (s.aw == nil or now < s.aw + probeWait(s.ptr, s.win)) then
      -- As Bucket.availableAt: after an inferred reset the answers in flight are awaited, and
      -- after any refill the probe's answer, at most PROBE_MS (or the longest recent round
      -- trip, when longer: a probe on a slow link is not a probe that hangs).
      can = 0
      if s.aw == nil then w = -1 else w = s.aw + probeWait(s.ptr, s.win) - now end
    elseif s.unc ~= nil and s.unc > 0 and s.aw ~= nil and now < s.aw + PROBE_MS then
      -- As Bucket.availableAt: the last probe ended with no figure of the window; the next
      -- goes PROBE_MS after it.
      can = 0; w = s.aw + PROBE_MS - now
    elseif s.rem == nil or s.rem > c - 1 then
      if s.rem ~= nil then can = math.min(can, math.floor(s.rem / c)) end
      if s.obs ~= 1 then can = math.min(can, math.ceil((coldLimit(cold, s.obs) - infl) / c)) end
      if s.unc ~= nil then can = math.min(can, math.max(math.floor(s.unc / c), 1)) end
      if smooth then
        if s.nxt > now then can = 0; w = s.nxt - now else can = math.min(can, 1) end
      end
    elseif s.rst ~= nil then
      can = 0; w = s.rst + guard - now
      if slideWait and w <= 0 then w = s.rst + guard + PROBE_MS - now end
    elseif infl > 0 then
      can = 0; w = -1
    else
      can = math.min(can, 1)
    end
  end
  if can == 0 and w ~= -1 and not (w <= GARBAGE_MS and w >= -GARBAGE_MS) then
    -- A wait no limiter's state leads to (NaN, years ahead, or years past: a reset, hold, level
    -- or log written by hand or by another version; a damaged entry inside a log reads as a
    -- call that ended in 1970, a wait in the past that was asked again at once, thousands of
    -- times a second): the bucket starts afresh, as one never used (the cold
    -- start: the next answer tells the rest), its leases in flight kept. Else every process
    -- waited on it for good, each wait renewing its keys' TTL.
    local adm, admx = s.adm, s.admx
    redis.call('HDEL', bk, 'rps', 'lvl', 'lva', 'acc', 'rda', 'trp', 'ltr', 'othg', 'ofx', 'rds', 'rdn', 'sil', 'siln',
      'unr', 'rfa', 'osu')
    if roll then redis.call('DEL', lk) end
    s = fresh(num(ARGV[a + 1]), num(ARGV[a + 2]), s.resumedAt)
    s.adm = adm
    s.admx = admx
    if leaky then
      s.win = nil
      loadLeak(bk, s, hintRate)
    end
    roll = roll and s.win ~= nil and s.win > 0
    can = math.min(count, math.max(0, math.ceil((cold - infl) / c)))
    w = 0
    if can == 0 then w = -1 end
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
  s.leaky = leaky
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
      if s.roll then
        redis.call('HSET', KEYS[3 * i], 'x:' .. name, table.concat({ s.admx, carriedFirst + k - 1, now }, ','))
        s.admx = s.admx + s.carry[k] - 1
      end
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
    if s.unc ~= nil then
      s.unc = math.max(0, s.unc - units)
      -- As Bucket.take: the probe is out, its answer awaited at most PROBE_MS.
      if s.unc == 0 then s.aw = now end
    end
    if s.roll then
      -- Each call counts from now while in flight (its lease), and is logged at its end.
      if s.rst == nil then s.rst = now + s.win end
    elseif s.rst == nil and s.win ~= nil and s.lim ~= nil then
      -- No reset from the server: the window is taken to start at the first send in it, until
      -- an answer from it bounds when the server counted it (as Bucket.take).
      s.rst = now + s.win
      s.kind = 'i'
      s.proj = false
      s.popen = false
      s.prov = first
    elseif s.popen then
      -- The first send in a projected window (as Bucket.take): it ends no earlier than a window
      -- after this send, and its first answer bounds it as an inferred window's.
      s.popen = false
      if s.proj and s.kind == 'i' and s.win ~= nil and s.win > 0 then
        s.rst = math.max(s.rst or 0, now + s.win)
        s.prov = first
      end
    end
    if s.leaky then
      -- As LeakyBucket.take, one request after another.
      for k = 1, grant do
        local lease = leasePrefix .. ':' .. k
        local before, lost = leakTake(s, s.c, guard)
        redis.call('HSET', KEYS[3 * i], 'e:' .. lease, exact(s.endu))
        if lost > 0 then redis.call('HSET', KEYS[3 * i], 'f:' .. lease, exact(before) .. ',' .. exact(lost)) end
      end
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
      if s.roll then
        -- The units admitted beyond one per call before this one (OBSERVE: its later units),
        -- its index and when it went (OBSERVE: which figures read since are newer).
        redis.call('HSET', KEYS[3 * i], 'x:' .. leasePrefix .. ':' .. k, table.concat({ s.admx, first + k - 1, now }, ','))
        s.admx = s.admx + s.c - 1
      end
      if s.c ~= 1 then redis.call('HSET', KEYS[3 * i], 'c:' .. leasePrefix .. ':' .. k, s.c) end
    end
    if s.c ~= 1 then
      redis.call('HSET', KEYS[3 * i], 'xu', (num(redis.call('HGET', KEYS[3 * i], 'xu')) or 0) + grant * (s.c - 1))
    end
    redis.call('PEXPIRE', fk, math.max(keyTtl, leaseMs))
  end
  local rstIn = ''
  local rate = ''
  local level = ''
  if s.leaky then
    saveLeak(KEYS[3 * i], s, keyTtl, now)
    rate = exact(s.rps)
    if s.lva ~= nil then
      level = exact(s.lvl)
      if s.lim ~= nil and s.lim - s.lvl > LEAK_EPS and s.rps > 0 then
        rstIn = tostring(math.ceil((s.lim - s.lvl) / s.rps * 1000))
      end
    end
  else
    save(KEYS[3 * i], s, keyTtl, now)
    if s.rst ~= nil then rstIn = tostring(s.rst - now) end
  end
  table.insert(out, str(s.lim))
  table.insert(out, str(s.rem))
  table.insert(out, rstIn)
  table.insert(out, str(s.win))
  table.insert(out, first)
  table.insert(out, carriedFirst)
  table.insert(out, rate)
  table.insert(out, level)
  if (s.dbt or 0) > 0 or s.bnd then table.insert(out, '1') else table.insert(out, '') end
end
return out
`;
