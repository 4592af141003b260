/**
 * The Redis store's small scripts: ending leases (RELEASE), and the pause, the 429 that names a
 * bucket (EXHAUST), the provider's block and their lifting (PAUSE, BLOCK, UNBLOCK, RESUME).
 * Their data model: scriptCommon.ts.
 */
import { COMMON } from './scriptCommon.js';

/**
 * Ends leases without a reading (the request failed or was unsubscribed, or a call Redis may
 * have run while unreachable is undone). Announced only when a lease was still there (ending
 * one twice, or one Redis lost, wakes nobody). A costly lease's units go with it. On a rolling
 * bucket the call is logged as ended now (as `RollingBucket.release`: the server may have
 * logged it as late as that); on a leaky bucket its units stay spent (they come back with
 * time), and what it kept of a send from a full bucket goes.
 * A rolling call also ends without a figure read (`sil`: a figure read later may not count it);
 * a fixed window's call stays counted (`eu`, as `Bucket.release` with no figure read) until a
 * figure from a call admitted after it ended is read, and sent once it had reached the server
 * (`eut`: let go on its way, it may arrive up to `arrivesIn` ms from now).
 * KEYS: per bucket: in-flight set, bucket hash, log; then the pause hash. ARGV: channel,
 * keyTtlMs, guardMs, kinds (one character per bucket: '0' a fixed window, '1' rolling, '2'
 * leaky), arrivesIn ('' or 0: arrived by now), then one or more leases.
 */
export const RELEASE = `${COMMON}
local keyTtl = tonumber(ARGV[2])
local guard = tonumber(ARGV[3]) or 0
local arrivesIn = num(ARGV[5])
local n = 0
local now = nil
local pauseKey = KEYS[#KEYS]
-- A bucket not written since limiter.resume() forgets first (as load does at its next use), so
-- that what ends now (a rolling call's log entry, a fixed window's ended-unread record) is not
-- forgotten with it.
local function forgetIfResumed(key)
  local at = num(redis.call('HGET', key, 'at'))
  local resumed = num(redis.call('HGET', pauseKey, 'resumed'))
  if at ~= nil and resumed ~= nil and at <= resumed then
    now = now or clock()
    save(key, load(key, nil, nil, pauseKey), keyTtl, now)
  end
end
for i = 1, #KEYS - 1, 3 do
  local b = (i + 2) / 3
  local win = nil
  if string.sub(ARGV[4], b, b) == '1' then
    win = num(redis.call('HGET', KEYS[i + 1], 'win'))
    forgetIfResumed(KEYS[i + 1])
  end
  local silent = {}
  -- Units of a fixed window's calls let go (a bucket marked rolling with no window is one).
  local unread = 0
  local fixed = string.sub(ARGV[4], b, b) == '0' or (string.sub(ARGV[4], b, b) == '1' and not (win ~= nil and win > 0))
  -- A leaky bucket restores no further than the capacity less what is out: brought to now first.
  if string.sub(ARGV[4], b, b) == '2' then
    now = now or clock()
    leakSettleKey(KEYS[i + 1], KEYS[i], now)
  end
  local ended = 0
  for j = 6, #ARGV do
    local gone = redis.call('ZREM', KEYS[i], ARGV[j])
    if gone > 0 then
      if win ~= nil and win > 0 and not carried(ARGV[j]) then
        -- Logged as ended now, sent when granted (before its record goes below).
        now = now or clock()
        local _, _, sentAt = leaseRec(KEYS[i + 1], ARGV[j])
        logEnds(KEYS[i + 2], leaseCost(KEYS[i + 1], ARGV[j]), now, math.max(keyTtl, win + guard), sentAt, KEYS[i + 1])
      end
      if fixed then unread = unread + leaseCost(KEYS[i + 1], ARGV[j]) end
      -- Let go without an answer: it may reach the server as late as the guard after now.
      if win ~= nil then
        now = now or clock()
        silent[#silent + 1] = silentRec(KEYS[i + 1], ARGV[j], leaseCost(KEYS[i + 1], ARGV[j]), now + guard)
      end
      -- (Not on a hash gone, expired before the lease: one made here would have no TTL, kept
      -- for good; a bucket made afresh counts nothing that ended before it.)
      if string.sub(ARGV[4], b, b) == '2' and redis.call('EXISTS', KEYS[i + 1]) == 1 then
        redis.call('HINCRBYFLOAT', KEYS[i + 1], 'endu', leaseCost(KEYS[i + 1], ARGV[j]))
        redis.call('HDEL', KEYS[i + 1], 'f:' .. ARGV[j], 'e:' .. ARGV[j])
      end
      dropCost(KEYS[i + 1], ARGV[j])
      if win ~= nil then redis.call('HDEL', KEYS[i + 1], 'x:' .. ARGV[j]) end
    end
    n = n + gone
    ended = ended + gone
  end
  if win ~= nil then rollSilent(KEYS[i + 1], silent) end
  -- As Bucket.release: the probe of a refilled window of a bucket whose figures were read ('fig'),
  -- let go with no answer, is not answered (RELEASE knows no admission index: any call let go while the probe
  -- is out); one more probes, PROBE_MS on (at most BLIND_PROBES in a row, as OBSERVE).
  if ended > 0 and string.sub(ARGV[4], b, b) ~= '2' then
    local f = redis.call('HMGET', KEYS[i + 1], 'unc', 'fig', 'bpr')
    local bpr = num(f[3]) or 0
    if (num(f[1]) or 1) <= 0 and f[2] == '1' and bpr < BLIND_PROBES then
      now = now or clock()
      redis.call('HSET', KEYS[i + 1], 'unc', '1', 'aw', string.format('%.0f', now), 'bpr', bpr + 1)
    end
  end
  -- (Never a hash made here without its TTL: one gone has nothing to count them against.)
  if unread > 0 and redis.call('EXISTS', KEYS[i + 1]) == 1 then
    forgetIfResumed(KEYS[i + 1])
    local f = redis.call('HMGET', KEYS[i + 1], 'eu', 'adm', 'enl', 'enln', 'eno', 'enoa')
    redis.call('HSET', KEYS[i + 1], 'eu', (num(f[1]) or 0) + unread, 'euu', num(f[2]) or 0)
    if arrivesIn ~= nil and arrivesIn > 0 then
      now = now or clock()
      local by = now + arrivesIn
      if (num(redis.call('HGET', KEYS[i + 1], 'eut')) or 0) < by then
        redis.call('HSET', KEYS[i + 1], 'eut', string.format('%.0f', by))
      end
    end
    -- With calls still in flight, logged as ended without a figure (as endedUnread).
    if redis.call('ZCARD', KEYS[i]) > 0 then
      local s = { adm = num(f[2]) or 0, enln = num(f[4]), eno = num(f[5]), enoa = num(f[6]) }
      if f[3] ~= false and f[3] ~= '' then s.enl = f[3] end
      logEnded(s, -1, unread, true)
      redis.call('HSET', KEYS[i + 1], 'enl', str(s.enl), 'enln', str(s.enln), 'eno', str(s.eno), 'enoa', str(s.enoa))
    end
  end
end
if n > 0 then redis.call('PUBLISH', ARGV[1], 'release') end
return n
`;

/**
 * Pauses every process (a 429 that named no bucket). Only ever extends a pause; a pause of
 * 0 ms or less is none (nothing is written: a hash with no TTL must never be left).
 * Written back (`heldMs` given: a limiter that obeys the pause finds Redis lost it, restarted or
 * failed over, or keeps it there): not over a pause lifted (RESUME, `plifted`) since that limiter
 * took it on, `heldMs` ago; not over one that ends at most `toleranceMs` earlier (what its
 * calls took: the same pause); announced only when written. Returns 2 when written, 1 when a
 * pause as long holds, 0 for none asked, -1 when a lift came after.
 * KEYS: pause. ARGV: ms, reason, keyTtlMs, channel, heldMs ('' a new pause), toleranceMs.
 */
export const PAUSE = `${COMMON}
local now = clock()
local ms = tonumber(ARGV[1])
if ms == nil or ms <= 0 then return 0 end
local heldMs = num(ARGV[5])
local tolerance = 0
if heldMs ~= nil then
  local lifted = num(redis.call('HGET', KEYS[1], 'plifted'))
  if lifted ~= nil and lifted >= now - heldMs then return -1 end
  tolerance = math.max(0, num(ARGV[6]) or 0)
end
local untilAt = now + ms
local cur = num(redis.call('HGET', KEYS[1], 'until'))
-- One past what any limiter obeys is garbage (ACQUIRE drops it): it does not hold this one back.
if cur ~= nil and cur - now > MAX_SERVER_WAIT_MS then cur = nil end
if cur == nil or cur < untilAt - tolerance then
  redis.call('HSET', KEYS[1], 'until', untilAt, 'reason', ARGV[2])
  local ttl = ms + tonumber(ARGV[3])
  -- The hash may also hold a block that outlasts the pause: never shorten its life, and an
  -- endless block (-1) keeps the hash persistent.
  local endless = num(redis.call('HGET', KEYS[1], 'block')) == -1
  if not endless and redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
  redis.call('PUBLISH', ARGV[4], 'pause')
  return 2
end
return 1
`;

/**
 * Holds one bucket empty until a time (a 429 that named it): our projected reset yields to the
 * server's word; a reset the server told is only extended.
 * A rolling bucket is held empty until then (`hold`), as in memory. A leaky bucket is held until
 * then, and, unless the answer told what is available (`told`), nothing is available from now
 * on: units come back from here (as `LeakyBucket.exhaust`).
 * KEYS: bucket, pause, in-flight set (a leaky bucket restores up to the capacity less what is
 * in it). ARGV: ms, keyTtlMs, channel, hint limit, hint window, rolling (0/1),
 * restore rate hint ('' for a window: a leaky bucket), told (0/1).
 */
export const EXHAUST = `${COMMON}
local now = clock()
local untilAt = now + math.max(0, tonumber(ARGV[1]))
local s = load(KEYS[1], num(ARGV[4]), num(ARGV[5]), KEYS[2])
local hintRate = num(ARGV[7])
if hintRate ~= nil then
  loadLeak(KEYS[1], s, hintRate)
  s.win = nil
  local infl = nil
  if KEYS[3] ~= nil then infl = leakOut(KEYS[1], KEYS[3], now) end
  leakSettle(s, now, infl)
  s.hold = math.max(s.hold or 0, untilAt)
  if ARGV[8] ~= '1' then
    if s.lva == nil then
      s.lvl = 0
      s.lva = now
    else
      s.lvl = math.min(s.lvl, 0)
    end
  end
  saveLeak(KEYS[1], s, tonumber(ARGV[2]), now)
  redis.call('PUBLISH', ARGV[3], 'exhaust')
  return 1
end
s.rem = 0
if ARGV[6] == '1' then
  s.hold = math.max(s.hold or 0, untilAt)
  s.rst = s.hold
elseif s.kind == 'i' or s.rst == nil then s.rst = untilAt else s.rst = math.max(s.rst, untilAt) end
if ARGV[6] ~= '1' then s.held = true end
-- As Bucket.exhaust: a hold the server asked for is not brought forward by a later reading.
s.tsv = nil
s.kind = 's'
s.prov = nil
s.popen = false
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
 * Written back (`heldMs` given, as PAUSE): not over a block lifted (UNBLOCK, RESUME: `blifted`)
 * since the limiter took it on, `heldMs` ago; not over one that ends at most `toleranceMs`
 * earlier; announced only when written. Returns 2 when written, 1 when a block as long holds,
 * -1 when a lift came after.
 * KEYS: pause. ARGV: ms (''), status, keyTtlMs, channel, heldMs ('' a new block), toleranceMs.
 */
export const BLOCK = `${COMMON}
local now = clock()
local ms = num(ARGV[1])
local heldMs = num(ARGV[5])
local tolerance = 0
if heldMs ~= nil then
  local lifted = num(redis.call('HGET', KEYS[1], 'blifted'))
  if lifted ~= nil and lifted >= now - heldMs then return -1 end
  tolerance = math.max(0, num(ARGV[6]) or 0)
end
local untilAt = -1
if ms ~= nil then untilAt = now + ms end
local cur = num(redis.call('HGET', KEYS[1], 'block'))
local wrote = false
if cur == nil or (cur >= 0 and (cur <= now or untilAt < 0 or untilAt > cur + tolerance)) then
  redis.call('HSET', KEYS[1], 'block', untilAt, 'bstatus', ARGV[2])
  cur = untilAt
  wrote = true
end
if cur < 0 then
  redis.call('PERSIST', KEYS[1])
else
  local ttl = tonumber(ARGV[3]) + (cur - now)
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
end
if heldMs ~= nil and not wrote then return 1 end
local left = 'inf'
if cur >= 0 then left = tostring(cur - now) end
redis.call('PUBLISH', ARGV[4], 'block:' .. left .. ':' .. (redis.call('HGET', KEYS[1], 'bstatus') or ARGV[2]))
if wrote then return 2 end
return 1
`;

/**
 * Lifts a block (`limiter.unblock()`) on every process; a pause still running keeps the hash
 * for its time plus keyTtlMs (the hash may have been persistent for an endless block). The
 * time of the lift (`blifted`) keeps a limiter that has not heard of it yet from writing the
 * block back (BLOCK).
 * Publishes 'unblock'. KEYS: pause. ARGV: channel, keyTtlMs.
 */
export const UNBLOCK = `${COMMON}
redis.call('HDEL', KEYS[1], 'block', 'bstatus')
redis.call('HSET', KEYS[1], 'blifted', clock())
if redis.call('EXISTS', KEYS[1]) == 1 then
  local now = clock()
  local pu = num(redis.call('HGET', KEYS[1], 'until')) or now
  redis.call('PEXPIRE', KEYS[1], math.min(math.max(0, pu - now), MAX_SERVER_WAIT_MS) + tonumber(ARGV[2]))
end
redis.call('PUBLISH', ARGV[1], 'unblock')
return 1
`;

/**
 * Starts the credential again (`limiter.resume()`, or `pause(0)` without buckets): lifts the
 * pause on every process; with buckets, also the block, and marks the time (`resumed`) so that
 * every bucket written before forgets its reset at its next use (ACQUIRE, OBSERVE, EXHAUST),
 * whichever process uses it. The hash keeps the mark for keyTtlMs, as long as any bucket
 * written before it can live. The time of the lift (`plifted`, and `blifted` with buckets) keeps
 * a limiter that has not heard of it yet from writing the pause or block back (PAUSE, BLOCK).
 * Publishes 'resume' or 'resume:pause'.
 * KEYS: pause. ARGV: channel, keyTtlMs, buckets (1/0).
 */
export const RESUME = `${COMMON}
local now = clock()
redis.call('HDEL', KEYS[1], 'until', 'reason')
redis.call('HSET', KEYS[1], 'plifted', now)
if ARGV[3] == '1' then
  redis.call('HDEL', KEYS[1], 'block', 'bstatus')
  redis.call('HSET', KEYS[1], 'blifted', now)
  -- Never earlier than the last mark (a Redis clock stepped back, a failover): buckets saved
  -- past that mark would not forget at this resume.
  local last = num(redis.call('HGET', KEYS[1], 'resumed'))
  if last ~= nil and last >= now then now = last + 1 end
  redis.call('HSET', KEYS[1], 'resumed', now)
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  redis.call('PUBLISH', ARGV[1], 'resume')
else
  -- The mark lives keyTtlMs (a hash made by it has no TTL yet); an endless block keeps it persistent.
  if redis.call('PTTL', KEYS[1]) == -1 and num(redis.call('HGET', KEYS[1], 'block')) ~= -1 then
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  end
  redis.call('PUBLISH', ARGV[1], 'resume:pause')
end
return 1
`;

/**
 * Deletes those of a credential's keys that hold another type than the store gives them (a
 * string where a bucket's hash belongs: written by hand, or by another version of the store).
 * Every script that touched one failed with WRONGTYPE, so every process took Redis as away,
 * for as long as the key lived. Only the store's keys of one credential are passed: its own.
 * KEYS: the keys. ARGV: the type each should hold ('hash', 'zset', 'list'). Returns how many
 * were deleted.
 */
export const REPAIR = `
local n = 0
for i, key in ipairs(KEYS) do
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= ARGV[i] then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n
`;
