/** OBSERVE, the Redis store's script that merges a response's readings (its data model: scriptCommon.ts). */
import { MAX_COST } from '../../core/request.js';
import { COMMON } from './scriptCommon.js';

/**
 * Merges one response's readings (the server's figures win within the rules below) and ends
 * its lease.
 *
 * KEYS: per bucket: bucket hash, in-flight set, log (rolling buckets); then the pause hash.
 * ARGV: lease ('' for a response not admitted through the store), keyTtlMs, channel, sent ms ago
 *       ('' unknown: when the store granted the lease, so no later than the send),
 *       guardMs, then per bucket: has reading (1; 0 none, 2 none in a success that described
 *       other buckets, 3 none in a server error that described none), limit, remaining, reset in ms, window,
 *       admission index, hint limit, hint window, rolling (0/1), the reset as the server's
 *       instant, that instant at the latest the reader's clock offset allows (ms from now),
 *       restore rate read (units per second), what the request really cost (its reconciled
 *       cost, '' as admitted), restore rate hint ('' for a window: a leaky bucket), learns
 *       (1: the request learns its cost from this bucket's drop, costLearning.ts), counted (1:
 *       the server counted the request, not refused: its figure counts it).
 * Returns: whether waiting processes were woken (1/0), then per bucket the cost learnt from its
 *          drop (0: none attributed).
 *
 * Rules (as `Bucket.apply` in memory, from the same functions of lib/core/window.ts): a reading
 * of a window already over, or clearly older than the current one, changes nothing (except that
 * a window over still teaches its limit to a bucket that knows nothing yet); a reset clearly
 * later (or the first the server tells after our own projection) starts a new window, taken as
 * it is, less every other request in flight; within a window what is left is recounted at each
 * answer from the window's lowest figure less every request in flight (`recount`: a late
 * response's older, higher figure changes nothing, and it never rises after a 429 emptied the
 * window); with no reset, a figure the window could not give a call sent after one of its lowest
 * figures was read is a new window (a rise, `rolledOver`, or no lower than that figure less the
 * call's cost, `countedAfresh`). The other requests in flight when the lowest figure was read may be counted
 * by it: until their answers are in, the window is not known to be spent (`dbt`, as
 * `Bucket.awaitsAnswers`; the last of them in wakes who waits). A call of a fixed window
 * answered without its figure (or whose lease lapsed) stays counted beside those in flight
 * (`eu`, as `Bucket.release`) until a figure from a call admitted after it ended is read. A rolling bucket (as
 * `RollingBucket.apply`): a reading of 0 left holds it until the reset; what the server
 * counted beyond our calls (in the log or in flight, in units) up to this request is someone
 * else's, the oldest unit of it counted until the reset, the rest a window from now, but for
 * later calls whose figures were read first (they overtook it); a figure older than one read
 * already only raises that spend, and, once another client is seen, our earlier calls a fresh
 * figure may have missed count beside it until a figure counts them; the call is logged as
 * ended now. A request of a window that really cost other than it was admitted with (its
 * reconciled cost) first takes the difference from what is left and what is in flight, or gives
 * it back (as `Bucket.reconcile`), and a rolling call is logged with what it really cost.
 *
 * A leaky bucket (as `LeakyBucket.apply`): brought up to now; the request's reconciled cost
 * gives back (or takes) the difference from what it was admitted with; the figure, taken as at
 * the answer less every other request in flight (of any process), bounds what is available: an
 * estimate above the figure plus one (its rounding) comes down to that least; a reading of a
 * request admitted after the newest reading came back (`acc`, counted over every process) may
 * raise it to that least, any other (a late answer's older, higher figure) only lower it. A
 * request sent from a full bucket whose trip was longer than allowed for counts the rest of its
 * trip's restore as lost.
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
-- Had the calls of bucket state s let go on their way (RELEASE's eut) reached the server by the
-- time a call sent at Redis time 'sent' went? A call whose send is not known: not known to have.
local function arrivedBefore(s, sent)
  return s.eut == nil or (sent ~= nil and sent >= s.eut)
end
local pauseKey = KEYS[#KEYS]
-- Whether another process waiting on these buckets may go sooner than it was told.
local wake = false
-- Per bucket, the cost learnt from its drop (0: none attributed).
local learnt = {}
for i = 1, nb do
  learnt[i] = 0
  local bk = KEYS[3 * i - 2]
  local fk = KEYS[3 * i - 1]
  local lk = KEYS[3 * i]
  local a = 5 + (i - 1) * 16
  local s = load(bk, num(ARGV[a + 7]), num(ARGV[a + 8]), pauseKey)
  local hintRate = num(ARGV[a + 14])
  local leaky = hintRate ~= nil
  if leaky then s.win = nil end
  local rolling = not leaky and ARGV[a + 9] == '1' and (s.win or num(ARGV[a + 5])) ~= nil
  local rollLk = nil
  if rolling then rollLk = lk end
  local logTtl = math.max(keyTtl, (s.win or num(ARGV[a + 5]) or 0) + guard)
  local infl, lapsed = inflight(fk, now, bk, rollLk, logTtl, leaky)
  -- Nothing in flight: no answer to come can give room back (as Bucket.release).
  if infl <= 0 then s.dbt = nil end
  -- A fixed window's lapsed leases: their calls ended without a figure.
  if not leaky and not rolling then endedUnread(s, lapsed, infl) end
  -- (After the lapsed leases: their units went to 'endu'.)
  if leaky then loadLeak(bk, s, hintRate) end
  local mine = lease ~= '' and redis.call('ZSCORE', fk, lease) ~= false
  -- The units this request holds of the bucket (its cost).
  local own = 0
  if mine then own = leaseCost(bk, lease) end
  -- Its round trip bounds how long a probe is awaited (ACQUIRE's probeWait).
  if mine and sentAt ~= nil and not leaky then noteTrip(s, now - sentAt) end
  -- What it was admitted with (one if not known here: a lapsed lease).
  local admitted = math.max(1, own)
  local index = num(ARGV[a + 6])
  local before = { rem = s.rem, rst = s.rst, obs = s.obs, unc = s.unc, dbt = s.dbt }
  -- A window's request that really cost other than it was admitted with (a cost estimated
  -- before and told after): the difference is taken from, or given back to, what is left and
  -- what is in flight, before the figures are read (as Bucket.reconcile in memory); a rolling
  -- call is logged at its end with what it really cost.
  local actual = num(ARGV[a + 13])
  if not leaky and mine and actual ~= nil and actual > 0 and actual ~= own then
    local delta = actual - own
    infl = math.max(0, infl + delta)
    if s.rem ~= nil then
      local room = math.huge
      if s.lim ~= nil then room = math.max(0, s.lim - infl) end
      s.rem = math.min(room, math.max(0, s.rem - delta))
    end
    if s.unc ~= nil and delta > 0 then s.unc = math.max(0, s.unc - delta) end
    -- A rolling call that cost more: the calls admitted before it count the units after them
    -- (those admitted after it then count it as later too: more, never fewer; as in memory).
    if delta > 0 and rolling then
      s.admx = s.admx + delta
      admitted = actual
    end
    own = actual
  end
  -- As Bucket.confirm: a success that described other buckets of the request, not this one
  -- ('2'), only widens a cold start.
  s.obs = confirmCold(s.obs, ARGV[a + 1] == '2' or ARGV[a + 1] == '3', s.lim)
  -- As Bucket.confirm and Bucket.release: an answer that described none of the server's limits
  -- ('0', '3': a gateway's error page, a refusal) tells nothing of the window a refill opened,
  -- of a bucket whose counted answers have told its figures ('fig'; a window no header
  -- describes never has). Its probe is not answered: one more probes, PROBE_MS on. (A success
  -- that described other buckets of the request, '2', answers it: that endpoint's next answer
  -- would say no more.) At most BLIND_PROBES in a row ('bpr'; a counted figure ends the row).
  if ARGV[a + 1] == '1' and ARGV[a + 16] == '1' and ARGV[a + 3] ~= '' then
    s.fig = true; s.bpr = nil
  end
  local blind = (ARGV[a + 1] == '0' or ARGV[a + 1] == '3') and index ~= nil and s.fig
  local reprobe = blind and index >= s.ridx and s.unc ~= nil and s.unc <= 0
  if reprobe then
    if (s.bpr or 0) >= BLIND_PROBES then
      blind = false; reprobe = false
    else
      s.bpr = (s.bpr or 0) + 1
    end
  end
  if (index == nil or index >= s.ridx) and not blind then
    s.unc = nil; s.aw = nil
  elseif reprobe then
    s.unc = unconfirmedBudget(); s.aw = now
  end
  -- As Bucket.confirm: the first answer from a window opened by our send bounds its start,
  -- whether or not the answer reports this bucket.
  if s.prov ~= nil and index ~= nil and index >= s.prov then
    if s.win ~= nil and s.rst ~= nil and s.kind == 'i' then s.rst = math.max(s.rst, now + s.win) end
    s.prov = nil
  end
  local leakWake = false
  -- A call of ours whose figure is skipped as an older window's that may be the current one's.
  local stale = false
  if leaky then
    leakSettle(s, now, infl)
    local beforeLvl = s.lvl
    local beforeAll = s.lva == nil
    local beforeRate = s.rps
    local beforeLim = s.lim
    -- What the request really cost (Shopify GraphQL's actualQueryCost): the difference from
    -- what it was admitted with comes back (up to the capacity) or is taken (LeakyBucket.reconcile).
    if mine and actual ~= nil and actual ~= own and s.lva ~= nil then
      s.lvl = math.min(s.lim or math.huge, s.lvl + own - actual)
    end
    -- No capacity known until now: as much as asked went (an estimate without bound).
    local all = s.lva == nil
    local lim = nil
    local rem = nil
    if ARGV[a + 1] == '1' then
      lim = num(ARGV[a + 2])
      rem = num(ARGV[a + 3])
    end
    local rate = num(ARGV[a + 12])
    if lim ~= nil then s.lim = lim end
    if rate ~= nil and rate > 0 then s.rps = rate end
    local cap = s.lim or math.huge
    local lvl = s.lvl
    if all then lvl = math.huge end
    if rem ~= nil then
      -- The least there can be: the figure as if counted now, less the other requests in
      -- flight (the server may not have counted them yet).
      local others = math.max(0, infl - own)
      local low = math.min(cap, rem - others)
      local newer = index ~= nil and (s.acc == nil or index >= s.acc)
      -- Raised no further than that less what ended since this request was granted (of any
      -- process): a request that reached the server after it, and whose answer came back
      -- first, is in neither the figure nor the others in flight.
      local since = 0
      if index ~= nil and lease ~= '' then
        local e = num(redis.call('HGET', bk, 'e:' .. lease))
        if e ~= nil then since = s.endu - e end
      end
      local least = low - since
      -- A request sent from a full bucket whose trip was longer than allowed for: the server's
      -- bucket stayed full that much longer, restoring nothing.
      local full = nil
      if lease ~= '' then full = redis.call('HGET', bk, 'f:' .. lease) end
      if full and sentAt ~= nil and not all then
        local fl, fo = string.match(full, '^([^,]+),([^,]+)$')
        fl = tonumber(fl)
        fo = tonumber(fo)
        if fl ~= nil and fo ~= nil then
          local trip = math.max(0, now - sentAt) * (s.rps / 1000)
          lvl = lvl - math.max(0, math.min(trip, fl + trip - cap) - fo)
        end
      end
      if newer and s.acc == nil then lvl = least
      elseif lvl > rem + 1 + LEAK_EPS then lvl = math.min(lvl, low)
      elseif newer and lvl < least then lvl = least
      end
      if newer then
        s.acc = s.adm
        if sentAt ~= nil then leakNoteTrip(s, now - sentAt) end
      end
      s.rda = now
    else
      lvl = math.min(lvl, cap)
    end
    if lvl == math.huge then
      s.lva = nil
      s.lvl = 0
    else
      s.lvl = lvl
      s.lva = now
    end
    -- A wait may end sooner: more available, a faster restore, a larger capacity, the cold
    -- start over, or the last request in flight back (a capacity below a request's cost waits
    -- for it).
    leakWake = before.obs ~= 1 or (mine and infl - own <= 0) or s.rps > beforeRate
      or (s.lim ~= nil and beforeLim ~= nil and s.lim > beforeLim)
      or (not beforeAll and (s.lva == nil or s.lvl > beforeLvl + LEAK_EPS))
  elseif rolling then
    -- Whether this call's figure was recorded ('rds').
    local recorded = false
    if ARGV[a + 1] == '1' then
      local lim = num(ARGV[a + 2])
      local rem = num(ARGV[a + 3])
      local resetIn = num(ARGV[a + 4])
      local win = num(ARGV[a + 5])
      if win ~= nil then s.win = win end
      if lim ~= nil then
        s.lim = lim; s.linf = false
      elseif rem ~= nil and (s.lim == nil or s.linf) then
        -- As RollingBucket.apply: what is left plus the request the figure counted bounds the
        -- limit from below (TEOS tells no limit); the largest bound yet.
        local least = rem
        if index ~= nil then least = rem + admitted end
        if least > 0 and least > (s.lim or 0) then s.lim = least; s.linf = true end
      end
      local reset = nil
      if resetIn ~= nil then reset = now + resetIn end
      local hold = rem == 0 and reset ~= nil
      if rem ~= nil and s.lim ~= nil then
        -- Admissions after this request's may not have reached the server before it answered:
        -- their units (the calls after it, and what they cost beyond one each: admx).
        -- A lease no longer ours (lapsed) or none (a local share's call): calls only, as memory
        -- does without a record of the call.
        local later = infl
        -- When the call went (as granted), if its lease is still ours.
        local sent = nil
        -- The call's index among this bucket's admissions ('' lease: a local share's call,
        -- numbered apart, is no call of the records).
        local ridx = index
        if lease == '' then ridx = nil end
        if ridx ~= nil and mine then
          local x, _, at = leaseRec(bk, lease)
          sent = at
          later = math.max(0, s.adm - ridx - 1 + s.admx - x - (admitted - 1))
        elseif ridx ~= nil then
          later = math.max(0, s.adm - ridx - 1)
        end
        local units = 0
        if ridx ~= nil then units = math.max(1, own) end
        local counted = s.lim - rem - (trimLog(lk, now, s.win, guard) + infl) + later
        local serverCount = s.lim - rem
        local f = redis.call('HMGET', bk, 'rds', 'rdn', 'unr', 'rfa', 'osu')
        local rfa = num(f[4])
        local osu = num(f[5])
        -- As RollingBucket.apply in memory: later calls whose figures were read first were
        -- counted first; a later call's figure read already, or an earlier call's read since
        -- this one went that counted no fewer, is newer than this one, which then only raises
        -- what others spent. Newest first: the figures read before the send end the walk (a
        -- later call's figure comes after it), unless when it went is not known.
        local read = 0
        local newerEarlier = sent ~= nil and rfa ~= nil and rfa > sent
        if ridx ~= nil then
          for r in eachRec(f[1], 5) do
            if sent ~= nil and r[2] < sent then break end
            if r[1] > ridx then read = read + r[4] end
            if sent ~= nil and r[2] > sent and r[1] < ridx and r[3] >= serverCount then newerEarlier = true end
          end
        end
        local fresh = (read == 0 and not newerEarlier) or s.othu == nil or s.othu <= now
        -- Our calls the server may have let go (a window since they were sent: they may have
        -- reached it that early, however late they ended) are not taken as counted: they would
        -- read as many of another client's calls as ours, which then went when the log let
        -- them go while the server's count did not (a late answer, a limit cut below the hint).
        local gone, goneEnds = rollGone(lk, now, s.win, bk)
        local others = counted + gone
        -- Beside a later call's figure read first, later calls answered without a figure before
        -- this one came back: counted first too (as RollingBucket.apply).
        if not fresh then
          others = others - read
          if ridx ~= nil then
            for e in eachRec(redis.call('HGET', bk, 'sil'), 3) do
              if e[1] > ridx and e[3] >= 0 and e[3] <= now then others = others - e[2] end
            end
          end
        end
        others = math.max(0, others)
        -- They were counted by now: they leave a window from now at the latest, the oldest at
        -- the reset the server told (a sliding window frees one call at a time).
        local untilAt = now + (s.win or 0) + guard
        local function setOthers(n)
          s.oth = n
          -- The figure, for rollCapOthers: not one that left nothing, nor a call not known.
          local ofx = ''
          if ridx ~= nil and sent ~= nil and rem > 0 then
            ofx = table.concat({ ridx, rem, serverCount, sent, units }, ',')
            -- A later call's figure may lower it: a wait on it is not known until the calls in
            -- flight are back (as RollingBucket.awaitsAnswers; 'dbt' goes with the last).
            if n > 0 and later > 0 and infl - own > 0 then s.dbt = math.max(s.dbt or 0, 1) end
          end
          redis.call('HSET', bk, 'ofx', ofx)
          -- The calls of the log it takes as gone, as many as it holds: they count once.
          local logged = {}
          for k = 1, math.min(#goneEnds, math.max(0, n)) do logged[k] = goneEnds[k] end
          redis.call('HSET', bk, 'othg', table.concat(logged, ','))
          s.othu = untilAt
          s.othf = nil
          if reset ~= nil and reset < untilAt then s.othf = reset end
          local first = logEnd(redis.call('LINDEX', lk, 0))
          s.othl = nil
          if first ~= nil then s.othl = first + (s.win or 0) + guard end
        end
        if counted > later then osu = math.max(osu or untilAt, untilAt) end
        local seen = osu ~= nil and osu > now
        local unr = {}
        for u in eachRec(f[3], 3) do unr[#unr + 1] = u end
        if fresh or others > rollOthers(s, now) - (s.unru or 0) then
          setOthers(others)
          -- Our earlier calls this figure may have missed (not at the server by its send for
          -- sure: in flight, or ended without a figure since) count beside others' spend, once
          -- another client is seen, until a figure counts them (as RollingBucket.missedBy).
          -- Past ROLL_KEPT of them, the rest count as one record that only the next such
          -- figure replaces.
          if fresh and ridx ~= nil and sent ~= nil then
            unr = {}
            if seen then
              local have = {}
              local rest = 0
              local function add(k, u, by)
                if k == nil or k >= ridx or (by >= 0 and by <= sent) or have[k] then return end
                have[k] = true
                if #unr < ROLL_KEPT then unr[#unr + 1] = { k, u, by } else rest = rest + u end
              end
              -- The calls in flight admitted before this one (their leases, of any process:
              -- the lapse order is not the admission order when processes' leaseMs differ).
              -- Past ROLL_WALK leases in flight, only the first are read and every other
              -- counts whole, earlier or not, with what costly leases hold beyond one unit.
              local n = redis.call('ZCARD', fk)
              local walk
              if n <= ROLL_WALK then walk = redis.call('ZRANGE', fk, 0, -1)
              else walk = redis.call('ZRANGE', fk, 0, ROLL_KEPT - 1) end
              for _, l in ipairs(walk) do
                local _, k = leaseRec(bk, l)
                add(k, leaseCost(bk, l), -1)
              end
              if n > #walk then rest = rest + n - #walk + (num(redis.call('HGET', bk, 'xu')) or 0) end
              for e in eachRec(redis.call('HGET', bk, 'sil'), 3) do add(e[1], e[2], e[3]) end
              if rest > 0 then unr[#unr + 1] = { -1, rest, -1 } end
            end
          end
        end
        -- Calls that reached the server before this one went: its figure counts them; and this
        -- call's own.
        local kept = {}
        local unru = 0
        for _, u in ipairs(unr) do
          if not ((sent ~= nil and u[3] >= 0 and u[3] <= sent) or (ridx ~= nil and u[1] == ridx)) then
            kept[#kept + 1] = u
            unru = unru + u[2]
          end
        end
        unr = kept
        s.unru = unru
        local rds = f[1] or ''
        local rdn = num(f[2])
        if ridx ~= nil then
          -- Only the last reads are kept: a figure of a call sent before a forgotten one was
          -- read can no longer be told fresh.
          local dropped
          rds, rdn, dropped = pushRec(rds, rdn, { ridx, now, serverCount, units, rem })
          if dropped ~= nil and dropped[2] ~= nil then rfa = math.max(rfa or dropped[2], dropped[2]) end
          recorded = true
        end
        -- Every call the server counts may be ours (later ones can overtake this one): our log
        -- times when each leaves the window (as RollingBucket.apply), not the server's reset
        -- read through the clock offset. What the later calls cannot be shown to explain
        -- counts as others' until then.
        if hold and counted <= later then
          hold = false
          if counted + gone > 0 and rollOthers(s, now) - unru < counted + gone then setOthers(counted + gone) end
        end
        rollCapOthers(bk, s, now, rds, guard)
        if ridx ~= nil then redis.call('HSET', bk, 'rds', rds, 'rdn', rdn) end
        local packed = packRecs(unr)
        if packed ~= (f[3] or '') then redis.call('HSET', bk, 'unr', packed) end
        if rfa ~= num(f[4]) or osu ~= num(f[5]) then redis.call('HSET', bk, 'rfa', str(rfa), 'osu', str(osu)) end
      end
      if hold then s.hold = math.max(s.hold or 0, reset) end
    end
    -- Answered without a figure of this bucket: a figure read later may not count it.
    if mine and not recorded then rollSilent(bk, { silentRec(bk, lease, math.max(1, own), now) }) end
    -- The server logged the call when it arrived, at the latest now that its answer is here:
    -- it counts from now on, whatever the latency was.
    if mine and not carried(lease) then
      local _, _, sentAt = leaseRec(bk, lease)
      logEnds(lk, own, now, logTtl, sentAt, bk)
    end
  elseif ARGV[a + 1] == '1' then
    local lim = num(ARGV[a + 2])
    local rem = num(ARGV[a + 3])
    local resetIn = num(ARGV[a + 4])
    local win = num(ARGV[a + 5])
    -- The reset as the server's instant, when it told one (not a time left): it names the window.
    local serverAt = num(ARGV[a + 10])
    -- That instant read through the least clock offset the reader's Date headers allow: the
    -- latest the window may end (ms from now).
    local latestIn = num(ARGV[a + 11])
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
      -- the limit less our others in flight, and one request goes until confirmed).
      if lim ~= nil and not told then
        s.lim = lim
        local others = infl - own
        local room = math.max(0, lim - math.max(0, others))
        if s.rem == nil or s.rem > room then s.rem = room end
        if s.unc == nil then
          s.unc = unconfirmedBudget()
          s.ridx = s.adm
        end
      end
    end
    -- An older window: earlier than the current one's reset by more than the rounding plus the
    -- first reading's trip back (a later reading of the window may read it that much earlier).
    -- As Bucket.apply: the same instant of the server's clock names the same window, whatever the offset.
    local same = serverAt ~= nil and told and cur ~= nil and serverAt == s.tsv
    -- As Bucket.apply: two instants of the server's clock are compared on that clock (the
    -- offset they are read through may have moved between them).
    local instants = serverAt ~= nil and told and cur ~= nil and s.tsv ~= nil
    if not skip and not same and reset ~= nil and told and cur ~= nil then
      if instants then
        if serverAt < s.tsv - tol then skip = true end
      elseif reset < cur - tol - (s.tsl or 0) then skip = true end
    end
    -- As Bucket.apply: a request sent before the last reset the server told belongs to that
    -- window (or an older one), however late its answer (a busy process reads it long after),
    -- unless the answer shows otherwise: a reset longer than the old window could have had
    -- left at the send (rounded up to the second), or a rise the requests in flight cannot explain,
    -- or a clearly later reset read by a request the old window would have counted lower (countedAfresh).
    -- An instant the server told is no such guess: it names the window that counted the request.
    local sentBefore = serverAt == nil and sentAt ~= nil and s.srst ~= nil and sentAt < s.srst
      and not (reset ~= nil and reset - now > ceilSecond(s.srst - sentAt))
      and not rolledOver(s, rem, index)
      and not (reset ~= nil and told and cur ~= nil and reset > cur + tol and countedAfresh(s, rem, index, own))
    -- Refilled past it already (as Bucket.apply): its figure is the old window's, or the new
    -- one's when it reached the server after the old window ended; unread, the call counts
    -- beside the new window's figures until one from a call sent after it ended is read (eu).
    if not skip and sentBefore and (not told or cur == nil) then
      skip = true
      stale = true
    end
    -- A reading of another window: no drop is attributed from the figure kept.
    if skip and index ~= nil then s.lrn = nil end
    if not skip then
      -- As Bucket.apply in memory: a reset clearly later (or the first the server tells after
      -- our own projection) starts a new window; with no reset, a figure the old window could
      -- not give a call sent after one of its lowest was read does: a rise (rolledOver), or no
      -- lower than that figure less the call's cost (countedAfresh).
      local rolled = (not sentBefore) and (not told or cur == nil) and reset == nil
        and (rolledOver(s, rem, index) or countedAfresh(s, rem, index, own))
      local later = reset ~= nil and cur ~= nil and reset > cur + tol
      if instants then later = serverAt > s.tsv + tol end
      -- As Bucket.apply: a reset told while the window's end is only ours opens a new window,
      -- unless the reading is older than the window's lowest figure (sent before it came back,
      -- reading more left, its reset no later than our end): its reset still ends the window.
      local unknown = not told or cur == nil
      -- As Bucket.apply: a reset told as time left ran from the server's answer, no sooner than the send.
      local rend = reset
      if reset ~= nil and serverAt == nil and sentAt ~= nil then rend = reset - math.max(0, now - sentAt) end
      local olderReading = unknown and rend ~= nil and s.rst ~= nil and rend <= s.rst + tol
        and index ~= nil and s.low ~= nil and s.lowa ~= nil and index < s.lowa and rem ~= nil and rem > s.low
      -- The same of the figure of a call admitted before the window opened (lowf, as Bucket.apply).
      local olderThanFloor = unknown and rend ~= nil and s.rst ~= nil and rend <= s.rst + tol
        and index ~= nil and s.lowf ~= nil and s.lowfa ~= nil and index < s.lowfa and rem ~= nil and rem > s.lowf
      -- As Bucket.apply: counted afresh, its reset later than ours by less than the tolerance:
      -- a window that began after the figure it is judged against, ending at this reset.
      local afreshWithin = told and cur ~= nil and reset ~= nil and (not same) and reset > cur
        and countedAfresh(s, rem, index, own)
      local newWindow = rolled or afreshWithin or ((not sentBefore) and (not same) and reset ~= nil
        and ((unknown and not olderReading and not olderThanFloor) or (not unknown and later)))
      -- As CostLearner.attribute in memory, over every process: the drop from the window's
      -- lowest figure is this request's cost when that figure came with nothing in flight and
      -- counted every admission before this one (lrn), nothing was admitted after it (adm),
      -- and the reading is of the same window and limit. What other clients spent in between
      -- makes it look higher, never lower (rounded up for the same reason). Never from a
      -- reading of 0 left: a floor, the request may have cost more than was left.
      if not newWindow and ARGV[a + 15] == '1' and mine and index ~= nil and rem ~= nil and rem > 0 and reset ~= nil
        and s.low ~= nil and s.lrn == index and s.adm == index + 1
        and (lim == nil or s.lim == nil or lim == s.lim) then
        local drop = math.ceil(s.low - rem)
        if drop >= 1 and drop <= ${MAX_COST} then learnt[i] = drop end
      end
      -- As Bucket.apply: a window whose start nobody told (a rise, or a reset told while its end
      -- was only ours) began while calls were in flight. Those the server counted after this one
      -- in it were answered since it was sent, with less left than it reads (or are in flight):
      -- their figures were read as the old window's. They count as calls ended without a figure (eu).
      local since = 0
      if newWindow and index ~= nil and s.low ~= nil and (rolled or (unknown and not s.proj)) then
        since = endedSince(s, index, rem)
      elseif newWindow and index ~= nil and s.low ~= nil and not unknown then
        -- A reset told later than ours: those answered since that told a later reset too; one
        -- within the tolerance (counted afresh): every one (as Bucket.apply).
        -- (On a sliding window a later reset names no other window: every figure below it.)
        since = endedSince(s, index, rem, not afreshWithin and not s.sld)
      end
      -- As Bucket.apply: the earliest the window this reading names may end (a reset told as
      -- time left, rounded up to the second, ran from when the server counted the request, no
      -- sooner than the send), and whether a call the server counted proves the window slides.
      local endFrom = nil
      if reset ~= nil and serverAt == nil and sentAt ~= nil then endFrom = sentAt + resetIn - RELATIVE_SLACK_MS end
      if ARGV[a + 16] == '1' and endFrom ~= nil and index ~= nil and rem ~= nil and not s.sld then
        s.sld = provesSliding(s, rem, index, own, reset)
      end
      if newWindow then
        forgetEnded(s)
        s.low = nil
        s.lowh = nil
        s.lowf = nil
        s.wfr = s.adm
        s.dbt = nil
        s.held = false
      end
      if rem ~= nil and index ~= nil and not newWindow and index < (s.wfr or 0) then
        -- As Bucket.apply: admitted before this window opened, it may be the last window's
        -- count: it lowers what is left (lowf), no rise above it proves a new window.
        if s.lowf == nil or rem < s.lowf then s.lowf = rem; s.lowfa = s.adm end
      elseif rem ~= nil and index ~= nil and (s.low == nil or rem < s.low) then
        s.low = rem; s.lowi = index; s.lowa = s.adm
        lowSeen(s, endFrom)
        -- The other units in flight were admitted before this figure was read: it may count
        -- them already, and what is left takes them off it all the same (as Bucket.apply).
        s.dbt = math.max(0, infl - own)
      end
      -- As Bucket.apply: a call still in flight, admitted before this figure was read, may show
      -- a rise this call was counted after.
      if rem ~= nil and index ~= nil and not newWindow and infl - own > 0 then logEnded(s, rem, own, later and told) end
      -- A reading with nothing else in flight counted every admission so far. Only the server's
      -- own figure is a base for a drop: the window's low may be an estimate (a process back
      -- from an outage sets it to what Redis thinks is left, less its peers' reserve and the
      -- units held in flight), and a drop from there read a cost below the real one.
      if rem ~= nil and index ~= nil then
        if infl - own <= 0 and s.low == rem then s.lrn = s.adm else s.lrn = nil end
      end
      if lim ~= nil then s.lim = lim end
      -- A figure from a call admitted once the last call that ended without one had ended
      -- (euu), and sent once those let go on their way had reached the server (eut), counts
      -- them all.
      if rem ~= nil and index ~= nil and index >= (s.euu or 0) and (s.eu == nil or arrivedBefore(s, sentAt)) then
        s.eu = nil
        s.euu = nil
      end
      -- Those ended unread since this call went are among them (logged): as Bucket.apply.
      if since > 0 then
        s.eu = math.max(s.eu or 0, since)
        s.euu = s.adm
      end
      if rem ~= nil then
        -- The server's figure is an upper bound: every request in flight (of any process) may
        -- not have reached it yet, so they are taken off it, and so are the calls that ended
        -- without a figure (eu: the server may have counted them after this one). Within a
        -- window what is left is recounted from the window's lowest figure at each answer
        -- (recount: it may rise, never after a 429 emptied the window). Shares reserved for
        -- processes that may still be spending locally (after an outage) are taken off too.
        local others = math.max(0, infl - own) + (s.eu or 0)
        local reserved = 0
        if s.rvu ~= nil and s.rvu > now then reserved = s.rv or 0 end
        -- (With the lowest figure of the calls admitted before the window opened, as Bucket.apply.)
        local base = s.low
        if s.lowf ~= nil and (base == nil or s.lowf < base) then base = s.lowf end
        local low = nil
        if base ~= nil then low = base - reserved end
        s.rem = recount(s.rem, rem - reserved, others, low, newWindow, s.held, index ~= nil)
        if s.lim == nil and rem > 0 then s.lim = rem end
      end
      if reset ~= nil then
        if told and s.rst ~= nil and not newWindow then
          local latest = nil
          if latestIn ~= nil then latest = math.max(reset, now + latestIn) end
          if serverAt ~= nil and serverAt == s.tsv and latest ~= nil and latest < s.rst then
            -- As Bucket.apply: the same server instant read through a clock offset pinned
            -- closer since (tick probes), at the latest that offset allows, and sooner.
            reset = latest
            s.tld = math.min(s.tld or reset, reset)
          elseif not (s.sld and serverAt == nil and rem == 0 and reset > s.rst) then
            -- Within a window the first reading is kept (later ones only add rounding). Not on a
            -- window proved to slide, for a later reset read with nothing left (as Bucket.apply):
            -- the first reading's reset freed one request of the window, which a call counted
            -- since may have taken; the later reading's reset frees one after its count.
            reset = s.rst
          end
        else
          s.tsv = serverAt
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
        s.popen = false
      end
    end
  end
  -- A fixed window's call answered without its figure (as Bucket.release: HubSpot's search
  -- answers tell no daily count), or with one skipped as a window refilled past (stale): the
  -- server may count it after a call whose figure is read later, so it stays counted until a
  -- figure from a call admitted from now on is read.
  if mine and not leaky and not rolling and (stale or not (ARGV[a + 1] == '1' and num(ARGV[a + 3]) ~= nil)) then
    endedUnread(s, own, infl - own)
  end
  -- As Bucket.release: with nothing left in flight, no call admitted before the logged answers
  -- is left to show a rise.
  if mine and infl - own <= 0 then forgetEnded(s) end
  if mine and s.dbt ~= nil then
    -- As Bucket.release: an answer the lowest figure may count is in (that figure's own aside),
    -- and with nothing left in flight no answer to come can give room back.
    if index ~= nil and s.lowa ~= nil and index < s.lowa and index ~= s.lowi then s.dbt = s.dbt - own end
    if s.dbt <= 0 or infl - own <= 0 then s.dbt = nil end
  end
  if lease ~= '' and redis.call('ZREM', fk, lease) > 0 then dropCost(bk, lease) end
  if rolling and lease ~= '' then redis.call('HDEL', bk, 'x:' .. lease) end
  if leaky then
    if mine then
      -- This request ended: what it really cost, if told.
      s.endu = s.endu + (actual or own)
      redis.call('HDEL', bk, 'f:' .. lease, 'e:' .. lease)
    end
    saveLeak(bk, s, keyTtl, now)
  else
    save(bk, s, keyTtl, now)
  end
  -- A process waits on a bucket for a time (an empty window until its reset) or for a response
  -- (a cold start, the probe after a refill, an empty window with requests in flight and no reset).
  -- Only a change that can end such a wait sooner is announced: with many processes, each
  -- answer woke every one of them to ask again for nothing.
  if leaky then
    if leakWake then wake = true end
  elseif ARGV[a + 9] == '1' then wake = true
  elseif before.obs ~= 1 or (before.unc ~= nil and s.unc == nil) then wake = true
  elseif s.rem ~= nil and (before.rem == nil or s.rem > before.rem) then wake = true
  elseif s.rem == nil and before.rem ~= nil then wake = true
  elseif before.rst ~= nil and (s.rst == nil or s.rst < before.rst) then wake = true
  elseif s.rem == 0 and before.rst == nil and s.rst ~= nil then wake = true
  elseif mine and ((before.unc ~= nil and before.unc <= 0) or (s.rem == 0 and s.rst == nil)) then wake = true
  -- The last answer that might have given room back is in: who waits on it may go, or fail.
  elseif before.dbt ~= nil and s.dbt == nil then wake = true
  -- A window proved to slide refills once the answers in flight are in (ACQUIRE): the last is.
  elseif s.sld and mine and infl - own <= 0 and s.rst ~= nil and now >= s.rst + guard then wake = true
  end
end
if wake then redis.call('PUBLISH', ARGV[3], 'observe') end
return { wake and 1 or 0, unpack(learnt) }
`;
