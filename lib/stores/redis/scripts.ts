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
 *                 window (half the limit), and the admission index of the refill
 *   adm           admissions so far (each request's index, to judge its response's age)
 *   nxt           next smooth-pacing slot
 *   at            when it was last written (Redis ms): a bucket written at or before the
 *                 credential's last RESUME (`resumed` in the pause hash) forgets its reset
 * and its requests in flight are a sorted set `…:inflight:<name>` of lease ids scored by when
 * the lease lapses (a process killed mid-request stops counting after `leaseMs`).
 */

/** Shared helpers, prepended to each script. */
const COMMON = `
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
local FIELDS = {'lim', 'rem', 'rst', 'kind', 'win', 'obs', 'unc', 'ridx', 'adm', 'nxt', 'srst', 'rv', 'rvu', 'at'}
-- pauseKey: the credential's pause hash; a bucket last written at or before its 'resumed'
-- (limiter.resume()) forgets every reset it remembers: the next response is taken as it is.
local function load(key, hintLim, hintWin, pauseKey)
  if redis.call('EXISTS', key) == 0 then
    return { lim = hintLim, rem = hintLim, win = hintWin, kind = '', obs = 0, ridx = 0, adm = 0, nxt = 0, fresh = true }
  end
  local f = redis.call('HMGET', key, unpack(FIELDS))
  local s = { lim = num(f[1]), rem = num(f[2]), rst = num(f[3]), kind = f[4] or '', win = num(f[5]),
    obs = num(f[6]) or 0, unc = num(f[7]), ridx = num(f[8]) or 0, adm = num(f[9]) or 0,
    nxt = num(f[10]) or 0, srst = num(f[11]), rv = num(f[12]), rvu = num(f[13]) }
  local resumed = nil
  if pauseKey ~= nil then resumed = num(redis.call('HGET', pauseKey, 'resumed')) end
  if resumed ~= nil and (num(f[14]) or 0) <= resumed then
    s.rst = nil; s.srst = nil; s.kind = ''; s.unc = nil; s.nxt = 0
  end
  return s
end
local function save(key, s, ttl, now)
  redis.call('HSET', key, 'lim', str(s.lim), 'rem', str(s.rem), 'rst', str(s.rst), 'kind', s.kind or '',
    'win', str(s.win), 'obs', str(s.obs), 'unc', str(s.unc), 'ridx', str(s.ridx), 'adm', str(s.adm),
    'nxt', str(s.nxt), 'srst', str(s.srst), 'rv', str(s.rv), 'rvu', str(s.rvu), 'at', str(now))
  redis.call('PEXPIRE', key, ttl)
end
local function inflight(key, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  return redis.call('ZCARD', key)
end
`;

/**
 * Grants up to `count` admissions for one request shape, across all its buckets at once.
 *
 * KEYS: pause, peers, then per bucket: bucket hash, in-flight set.
 * ARGV: count, lease prefix, leaseMs, keyTtlMs, guardMs, coldStart, peer id, peerTtlMs,
 *       recovering peers ('' unless this process is coming back from an outage), reserveMs,
 *       then per bucket: hint limit, hint window, smooth (0/1), debit (units this process spent
 *       locally in a window still running), when that window ends (ms), this process's local
 *       share per window (when recovering).
 *
 * Reserve: when a process comes back from an outage, the other processes it last saw may still
 * be spending their local shares. Their shares are reserved (taken off every window) until
 * they come back too (each takes its own share off the reserve) or `reserveMs` passes.
 * Returns: granted, wait (ms; -1 = only a response can tell; 0 = none), blocking bucket,
 *          pause ms left, pause reason, peers, block ms left ('' none, -1 until lifted), block status,
 *          then per bucket: lim, rem, reset in ms, win, index of the first grant.
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
local nb = (#KEYS - 2) / 2
local states = {}
local grant = count
local wait = 0
local blocking = ''
if pauseMs > 0 or blockMs ~= '' then grant = 0 end
for i = 1, nb do
  local bk = KEYS[1 + 2 * i]
  local fk = KEYS[2 + 2 * i]
  local a = 10 + (i - 1) * 6
  local s = load(bk, num(ARGV[a + 1]), num(ARGV[a + 2]), KEYS[1])
  local smooth = ARGV[a + 3] == '1'
  local debit = tonumber(ARGV[a + 4]) or 0
  local debitResetIn = num(ARGV[a + 5])
  local share = num(ARGV[a + 6])
  local infl = inflight(fk, now)
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
  -- A known reset has passed: a new window, minus what is still in flight (it may land in it).
  if s.rst ~= nil and now >= s.rst + guard then
    if s.lim ~= nil then s.rem = math.max(0, s.lim - infl - reserved) else s.rem = nil; s.obs = 0 end
    if s.lim ~= nil and s.obs == 1 then
      s.unc = math.max(1, math.ceil(s.lim / 2))
      s.ridx = s.adm
    end
    if s.kind == 's' and s.win ~= nil and s.win > 0 then
      local periods = math.floor((now - s.rst) / s.win) + 1
      s.rst = s.rst + periods * s.win
      s.kind = 'i'
    else
      s.rst = nil
      s.kind = ''
    end
  end
  -- Spent by this process in this window while Redis did not answer (after any refill).
  if debit > 0 then
    if s.rem ~= nil then s.rem = math.max(0, s.rem - debit) end
    if s.rst == nil and debitResetIn ~= nil then
      s.rst = now + debitResetIn
      s.kind = 'i'
    end
  end
  local can = count
  local w = 0
  if s.obs ~= 1 and infl >= cold then
    can = 0; w = -1
  elseif s.unc ~= nil and s.unc <= 0 and infl > 0 then
    can = 0; w = -1
  elseif s.rem == nil or s.rem > 0 then
    if s.rem ~= nil then can = math.min(can, s.rem) end
    if s.obs ~= 1 then can = math.min(can, cold - infl) end
    if s.unc ~= nil then can = math.min(can, math.max(s.unc, 1)) end
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
  s.smooth = smooth
  states[i] = s
end
local out = { grant, wait, blocking, pauseMs, pauseReason, peers, blockMs, blockStatus }
for i = 1, nb do
  local s = states[i]
  local first = s.adm
  if grant > 0 then
    s.adm = s.adm + grant
    if s.rem ~= nil then s.rem = math.max(0, s.rem - grant) end
    if s.unc ~= nil then s.unc = math.max(0, s.unc - grant) end
    if s.rst == nil and s.win ~= nil and s.lim ~= nil then
      -- No reset from the server: the window is taken to start at the first send in it.
      s.rst = now + s.win
      s.kind = 'i'
    end
    if s.smooth then
      local even = 0
      if s.win ~= nil and s.lim ~= nil and s.lim > 0 then even = s.win / s.lim end
      local catch = 0
      if s.rst ~= nil and s.rst > now then catch = (s.rst - now) / math.max(1, s.rem or 0) end
      local spacing = math.max(even, catch)
      local base = now
      if s.nxt > now - spacing then base = math.min(s.nxt, now) end
      s.nxt = math.floor(base + spacing)
    end
    local fk = KEYS[2 + 2 * i]
    for k = 1, grant do
      redis.call('ZADD', fk, now + leaseMs, leasePrefix .. ':' .. k)
    end
    redis.call('PEXPIRE', fk, math.max(keyTtl, leaseMs))
  end
  save(KEYS[1 + 2 * i], s, keyTtl, now)
  local rstIn = ''
  if s.rst ~= nil then rstIn = tostring(s.rst - now) end
  table.insert(out, str(s.lim))
  table.insert(out, str(s.rem))
  table.insert(out, rstIn)
  table.insert(out, str(s.win))
  table.insert(out, first)
end
return out
`;

/**
 * Merges one response's readings (the server's figures win within the rules below) and ends
 * its lease.
 *
 * KEYS: per bucket: bucket hash, in-flight set; then the pause hash.
 * ARGV: lease ('' for a response not admitted through the store), keyTtlMs, channel, sent ms ago,
 *       then per bucket: has reading (0/1), limit, remaining, reset in ms, window, admission index, hint limit, hint window.
 *
 * Rules (as `Bucket.apply` in memory): a reading of a window already over, or clearly older than
 * the current one, changes nothing (except that a window over still teaches its limit to a
 * bucket that knows nothing yet); within a window `remaining` only goes down (a late
 * response carries an older, higher figure), less every other request in flight; a reset
 * clearly later starts a new window, taken as it is.
 */
export const OBSERVE = `${COMMON}
local now = clock()
local lease = ARGV[1]
local keyTtl = tonumber(ARGV[2])
local sentAgo = num(ARGV[4])
local sentAt = nil
if sentAgo ~= nil then sentAt = now - sentAgo end
local nb = (#KEYS - 1) / 2
local pauseKey = KEYS[#KEYS]
for i = 1, nb do
  local bk = KEYS[2 * i - 1]
  local fk = KEYS[2 * i]
  local a = 4 + (i - 1) * 8
  local s = load(bk, num(ARGV[a + 7]), num(ARGV[a + 8]), pauseKey)
  local infl = inflight(fk, now)
  local mine = lease ~= '' and redis.call('ZSCORE', fk, lease) ~= false
  local index = num(ARGV[a + 6])
  s.obs = 1
  if index == nil or index >= s.ridx then s.unc = nil end
  if ARGV[a + 1] == '1' then
    local lim = num(ARGV[a + 2])
    local rem = num(ARGV[a + 3])
    local resetIn = num(ARGV[a + 4])
    local win = num(ARGV[a + 5])
    if win ~= nil then s.win = win end
    local reset = nil
    if resetIn ~= nil then reset = now + resetIn end
    -- The current window's reset: told by the server ('s'), or projected by a refill ('i').
    local cur = s.rst
    local told = s.kind == 's'
    local tol = 999
    if s.win ~= nil then tol = math.min(999, s.win / 2) end
    local skip = false
    if reset ~= nil and reset <= now then
      skip = true
      -- A window over by the time it was read: its limit still holds (what is left is at most
      -- the limit less our others in flight, and half of it goes until confirmed).
      if lim ~= nil and not told then
        s.lim = lim
        local others = infl
        if mine then others = others - 1 end
        local room = math.max(0, lim - math.max(0, others))
        if s.rem == nil or s.rem > room then s.rem = room end
        if s.unc == nil then
          s.unc = math.max(1, math.ceil(lim / 2))
          s.ridx = s.adm
        end
      end
    end
    if not skip and reset ~= nil and told and cur ~= nil and reset < cur - tol then skip = true end
    local sentBefore = sentAt ~= nil and s.srst ~= nil and sentAt < s.srst
    if not skip and sentBefore and not told then skip = true end
    if not skip then
      local newWindow = (not sentBefore) and reset ~= nil
        and (cur == nil or reset > cur + tol or ((not told) and reset < cur - tol))
      if lim ~= nil then s.lim = lim end
      if rem ~= nil then
        -- The server's figure is an upper bound: our other requests in flight may not have
        -- reached it yet, so they are taken off it. Within a window the store's own count is
        -- exact for traffic that goes through it; the server's figure replaces it only when
        -- it proves less is left (another client spent, or the limit was cut), never raises it.
        local others = infl
        if mine then others = others - 1 end
        -- Shares reserved for processes that may still be spending locally (after an outage).
        local reserved = 0
        if s.rvu ~= nil and s.rvu > now then reserved = s.rv or 0 end
        local fresh = math.max(0, rem - math.max(0, others) - reserved)
        if newWindow or s.rem == nil then
          s.rem = fresh
        elseif rem - reserved < s.rem then
          s.rem = math.min(s.rem, fresh)
        end
        if s.lim == nil and rem > 0 then s.lim = rem end
      end
      if reset ~= nil then
        if told and not newWindow then reset = cur end
        s.rst = reset
        s.kind = 's'
        s.srst = reset
      elseif s.rem == 0 and s.rst == nil then
        s.rst = now + (s.win or 1000)
        s.kind = 'i'
      end
    end
  end
  if lease ~= '' then redis.call('ZREM', fk, lease) end
  save(bk, s, keyTtl, now)
end
redis.call('PUBLISH', ARGV[3], 'observe')
return 1
`;

/**
 * Ends leases without a reading (the request failed or was unsubscribed, or a call Redis may
 * have run while unreachable is undone). Announced only when a lease was still there (ending
 * one twice, or one Redis lost, wakes nobody).
 * KEYS: in-flight sets. ARGV: channel, then one or more leases.
 */
export const RELEASE = `
local n = 0
for i = 1, #KEYS do
  for j = 2, #ARGV do n = n + redis.call('ZREM', KEYS[i], ARGV[j]) end
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
 * KEYS: bucket, pause. ARGV: ms, keyTtlMs, channel, hint limit, hint window.
 */
export const EXHAUST = `${COMMON}
local now = clock()
local untilAt = now + math.max(0, tonumber(ARGV[1]))
local s = load(KEYS[1], num(ARGV[4]), num(ARGV[5]), KEYS[2])
s.rem = 0
if s.kind == 'i' or s.rst == nil then s.rst = untilAt else s.rst = math.max(s.rst, untilAt) end
s.kind = 's'
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
