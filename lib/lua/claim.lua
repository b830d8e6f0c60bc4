-- claim (and a worker's whole cycle): ack finished tasks, take back
-- expired leases, then lease up to max_n due tasks.
-- KEYS: 1 tasks, 2 eta, 3 leases, 4 stats, 5 wake, 6 errors, 7 conf,
--       8 bucket, 9 names, 10 cold (the cold tier's index: read here,
--       declared so that Redis Cluster checks it before the script runs),
--       11 due (the due list, prelude.lua dq_due_read: its tasks and eta's
--       due ones are taken oldest ETA first)
-- ARGV: 1 max_n (0: only ack and say when to look again), 2 lease_ms,
--       3 reclaim_delay_ms (least delay of an expired lease), 4 rate
--       (tasks/s across all workers, 0 = unlimited), 5 bucket_size
--       (burst, >= 1 when rate > 0), 6 max_concurrent (leases at once
--       across all workers, 0 = unlimited), 7 claim id (the caller's,
--       [A-Za-z0-9_-]{1,32}, never reused), 8 min_backoff_ms,
--       9 max_backoff_ms, 10 max_doublings (the queue's backoff, applied
--       to expired leases), 11 tombstone_ms, 12 n_acks, then 4 n_acks
--       values as ack.lua: the pairs "+inf", lease member; the ids; the
--       flags (history digit, name)
-- Reply: { now_ms, next_ms, claim id, { ack status (1 acked, 0 fenced)
--          per ack }, then per task 4 values: id, envelope (without its
--          state prefix; nil if missing), eta_ms (the score as Redis
--          wrote it, a string: no number conversion in Lua), state: 0 (no
--          history: retries, runs and failed_ms 0, first_run_ms now_ms)
--          or "retries:first_run_ms:runs:failed_ms" }
--   next_ms: ms until the earliest ETA or lease deadline still pending
--   (0 if due work remains), -1 if the queue holds nothing.
--   When a limit held due work back: next_ms is the time until the token
--   bucket has a token (rate) or the earliest lease deadline (concurrency:
--   conf "waiting" is set, and the ack/retry/bury/release that frees a slot
--   pushes a wake token), and no wake token is passed on (the others are
--   limited too); when the queue is paused (conf "paused" = 1) nothing is
--   claimed and next_ms is -1: resuming pushes a wake token.
-- Bucket: hash "tokens" (float), "ts" (Redis ms of the last refill); it
-- starts full and refills at `rate` per second up to bucket_size.
-- A claimed task's lease is the member "id|claim id|first_run_ms"
-- (prelude). Claim writes no state: the success path is ZRANGEBYSCORE and
-- ZREMRANGEBYRANK on `eta` (or LRANGE and LTRIM of the due list), ZADD on
-- `leases`, HMGET on `tasks` (4 element operations a task), the ack 3
-- more (docs/CONTRACT.md: what a cycle costs).
-- Every argument is checked before the first write.
local max_n = dq_num(ARGV[1])
local lease_ms = dq_num(ARGV[2])
local reclaim_delay = dq_num(ARGV[3])
local rate = dq_num(ARGV[4] or '0')
local bucket = dq_num(ARGV[5] or '1')
local max_conc = dq_num(ARGV[6] or '0')
local cid = ARGV[7] or ''
local bo_min = dq_num(ARGV[8] or '0')
local bo_max = dq_num(ARGV[9] or '0')
local bo_dbl = dq_num(ARGV[10] or '0')
local tomb = dq_num(ARGV[11] or '0')
local n_acks = dq_num(ARGV[12] or '0')
if not max_n or not lease_ms or lease_ms <= 0 or not reclaim_delay
   or not rate or not bucket or not max_conc or not bo_min or not bo_max
   or not bo_dbl or #cid > 32 or not string.match(cid, '^[%w_-]+$')
   or not tomb or not n_acks or n_acks < 0 or n_acks > DQ_CHUNK
   or n_acks ~= math.floor(n_acks) or #ARGV ~= 12 + 4 * n_acks
   or (n_acks > 0 and not dq_ack_args_ok(ARGV, 13, n_acks)) then
    return redis.error_reply('ERR claim: bad arguments')
end
local now, h = dq_now(KEYS[4], 'due_until')
-- this worker reads the due list: producers may write it until
-- due_until (rewritten when less than half of DQ_DUE_HOLD_MS is left: one
-- HSET per 30 s of a busy queue)
-- Only a claim that wants tasks (max_n > 0: not a draining worker's
-- acks-only cycle, which would turn the list back on after an unlist;
-- review RR2, finding 8) renews it, and one that finds it further ahead
-- than DQ_DUE_HOLD_MS (written on a clock since stepped back) pulls it in
-- (finding 4).
local due_until = dq_num(h[7])
if max_n > 0 and (not due_until or due_until - now < DQ_DUE_HOLD_MS / 2
                  or due_until - now > DQ_DUE_HOLD_MS) then
    redis.call('HSET', KEYS[4], 'due_until', dq_int(now + DQ_DUE_HOLD_MS))
end

-- A queue configuration applied to Redis (deferred-cli config apply: conf
-- field "cfg" set) is the fleet's one source of truth: its rate,
-- bucket_size (0 = auto: max(1, rate)), max_concurrent and backoff replace
-- the caller's own (its config file, the fallback for queues nothing was
-- applied to).
local cf = redis.call('HMGET', KEYS[7], 'paused', 'cfg', 'rate',
                      'bucket_size', 'max_concurrent', 'min_backoff_ms',
                      'max_backoff_ms', 'max_doublings', 'waiting')
if cf[2] then
    rate = dq_num(cf[3]) or rate
    bucket = dq_num(cf[4]) or bucket
    max_conc = dq_num(cf[5]) or max_conc
    if rate > 0 and bucket < 1 then
        bucket = math.max(1, math.floor(rate))
    end
    local v = dq_num(cf[6])
    if v and v >= 0 then bo_min = v end
    v = dq_num(cf[7])
    if v and v >= 0 then bo_max = v end
    v = dq_num(cf[8])
    if v and v >= 0 then bo_dbl = v end
end

-- On a MIGRATING slot (Redis Cluster) Redis 7.0 stops a script at its
-- first touch of a key not on this node, its writes kept; a set or hash
-- this call empties is deleted, so it is such a key afterwards (review RP,
-- findings 3 and 4). Read before the first write: the cold buckets due
-- for promotion (not declared keys: lib/lua/cold.lua dq_cold_due), and
-- whether acks may empty `tasks` before a promotion writes it again (then
-- `tasks` is looked at after the acks: below). The lease set is read
-- after the acks with redis.pcall (below: stall).
local promo = dq_cold_due(KEYS[10], now)
local tasks_may_go = n_acks > 0 and promo.keys and promo.keys[1]
                     and redis.call('HLEN', KEYS[1]) <= n_acks

-- 0. the acks of the caller's finished tasks (exactly as ack.lua)
local ack_reply = {}
local slot_freed = false   -- they freed a slot a held-back claim waits for
local stall = false        -- a MIGRATING slot kept this call from its work
-- the acks deleted eta (or tasks) on a MIGRATING slot: no step 1, no
-- promotion (their writes of it would stop the script after the acks)
local acks_deleted = false
if n_acks > 0 then
    local K = { tasks = KEYS[1], eta = KEYS[2], leases = KEYS[3],
                stats = KEYS[4], errors = KEYS[6], names = KEYS[9] }
    local freed, late
    ack_reply, freed, late = dq_ack(K, now, tomb, ARGV, 13, n_acks)
    -- late acks took tasks out of eta: emptied, it is deleted, and on a
    -- MIGRATING slot Redis 7.0 stops a script that then writes it (step
    -- 1's ZADD of the expired leases, a promotion's after its HSET of
    -- `tasks`: review RS), after the acks. One read with redis.pcall
    -- tells (only then: a late ack is rare): refused, step 1 and the
    -- promotion are skipped (stall, as below); elsewhere it reads 0.
    if late > 0 and not dq_routed(redis.pcall('EXISTS', KEYS[2])) then
        acks_deleted = true
        stall = true
    end
    -- so for `tasks`, which a promotion writes (was a touch of a missing
    -- key before the acks: a stop there wrote nothing, but the call was
    -- answered an error, its acks sent again alone: review RS)
    if tasks_may_go and not acks_deleted
       and not dq_routed(redis.pcall('EXISTS', KEYS[1])) then
        acks_deleted = true     -- the same: no promotion, stall
        stall = true
    end
    if freed > 0 and cf[9] then
        -- a claim held back by max_concurrent waits for this slot: wake a
        -- sleeper; "waiting" is deleted below unless this claim is held
        -- back by max_concurrent too (it stays: no HDEL, then HSET of a
        -- conf the HDEL may have deleted, after the leases: step 3)
        dq_wake(KEYS[5])
        slot_freed = true
    end
end

-- 1. expired leases (at most DQ_CHUNK per call): a failed attempt each,
-- back in the ETA set after the queue's backoff (never sooner than
-- reclaim_delay). The last real error is kept (an expiry only writes one
-- if there was none). The state prefix names the expired claim id: a late
-- ack of that claim is still accepted until someone claims the task
-- again.
-- A forward step of the Redis host's clock would expire every lease at
-- once: the last gap in the queue's clock (dq_now) longer than half a
-- lease period (a live holder heartbeats every third of one, and while
-- leases are held idle workers call at least as often: step 4) is taken
-- for one, and for one lease period after it only leases that had expired
-- before the gap are taken back (their holders, if alive, extend
-- meanwhile), whichever script call saw the gap first.
-- The earliest lease (one ZRANGE) decides whether anything expired and,
-- at the end, when to look again.
-- Both gap records count (a second jump soon after a first, review R1):
-- only leases expired before the earliest guarded gap, until the last
-- guard ends.
local upto = now
local guard_until = nil
local seen = nil           -- the latest guarded gap's end (jump_seen)
for _, i in ipairs({ 2, 5 }) do
    local gf, gt = dq_num(h[i]), dq_num(h[i + 1])
    if gf and gt and gt - gf > lease_ms / 2 and now < gt + lease_ms then
        if gf < upto then upto = gf end
        if not guard_until or gt + lease_ms > guard_until then
            guard_until = gt + lease_ms
            seen = h[i + 1]
        end
    end
end
-- The lease set, read after the acks: acks (or, below, expired leases)
-- that free every lease delete it, and on a MIGRATING slot it can then be
-- neither read nor written again. Then (stall) this call claims nothing
-- and says to look again in a second: its acks stay applied, and the next
-- call, the set missing, is answered ASK or TRYAGAIN by Redis before it
-- runs (review RP, finding 4). Elsewhere an emptied set reads as empty.
local function leases_first()
    local r = dq_routed(redis.pcall('ZRANGE', KEYS[3], '0', '0',
                                    'WITHSCORES'))
    if not r then
        stall = true
        return {}
    end
    return r
end
local l1 = leases_first()
local l1s = l1[2] and tonumber(l1[2])
if guard_until and h[4] ~= seen and l1s and l1s <= now then
    -- counted once per jump, when it first held something back
    if redis.call('ZCOUNT', KEYS[3], '(' .. upto, now) > 0 then
        redis.call('HSET', KEYS[4], 'jump_seen', seen)
        redis.call('HINCRBY', KEYS[4], 'clock_jumps', 1)
    end
end
local expired, ids, claims, firsts, vals, errs
if l1s and l1s <= upto and not acks_deleted then
    expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', upto,
                         'LIMIT', 0, DQ_CHUNK)
    ids, claims, firsts = {}, {}, {}
    for i = 1, #expired do
        local id, c, f = dq_member_parse(expired[i])
        ids[i] = id or expired[i]
        claims[i] = c or ''
        firsts[i] = f or 0
    end
    -- read with redis.pcall: the acks above may have emptied (deleted)
    -- `tasks` or `errors`, and on a MIGRATING slot Redis 7.0 refuses a
    -- read of it; then this step is skipped (stall: the leases stay held,
    -- taken back by a call on the stable slot; review RY, finding 1)
    vals = dq_routed(redis.pcall('HMGET', KEYS[1], unpack(ids)))
    errs = vals and dq_routed(redis.pcall('HMGET', KEYS[6], unpack(ids)))
    if not errs then stall = true end
end
if errs then
    local st, zs, es = {}, {}, {}
    for i = 1, #ids do
        local e, r, f, _, _, nm, env = dq_split(vals[i])
        r = r + 1
        if f == 0 then f = firsts[i] end
        if f == 0 then f = now end
        local delay = dq_backoff(bo_min, bo_max, bo_dbl, r)
        if delay < reclaim_delay then delay = reclaim_delay end
        if vals[i] then
            st[#st + 1] = ids[i]
            st[#st + 1] = dq_join(e, r, f, now, claims[i], nm, env)
        end
        zs[#zs + 1] = now + delay
        zs[#zs + 1] = ids[i]
        if not errs[i] then
            es[#es + 1] = ids[i]
            es[#es + 1] = 'lease expired'
        end
    end
    -- eta first: a late ack above may have emptied (deleted) eta, and on
    -- a MIGRATING slot Redis 7.0 stops a script that writes a key it
    -- deleted; stopped here, the leases are still held and expire again
    -- (stopped after their ZREM, the tasks were in neither set: review
    -- RZ, finding 1)
    redis.call('ZADD', KEYS[2], unpack(zs))
    redis.call('ZREM', KEYS[3], unpack(expired))
    if #st > 0 then redis.call('HSET', KEYS[1], unpack(st)) end
    if #es > 0 then redis.call('HSET', KEYS[6], unpack(es)) end
    redis.call('HINCRBY', KEYS[4], 'reclaimed', #ids)
    l1 = leases_first()
    l1s = l1[2] and tonumber(l1[2])
end

-- 2. limits: pause, concurrency, rate (all shared by every worker)
local want = max_n
if want > DQ_CHUNK then want = DQ_CHUNK end
if stall then want = 0 end
local limited = false
local paused = cf[1] == '1'
local lease_wait = false
if paused then
    want = 0
    limited = true
end
if want > 0 and max_conc > 0 then
    local room = max_conc - redis.call('ZCARD', KEYS[3])
    if room < want then
        if room < 0 then room = 0 end
        want = room
        limited = true
        lease_wait = true
    end
end
local tokens = 0
local bucket_ts = now
if rate > 0 then
    if bucket < 1 then bucket = 1 end
    local b = redis.call('HMGET', KEYS[8], 'tokens', 'ts')
    tokens = tonumber(b[1]) or bucket
    bucket_ts = tonumber(b[2]) or now
    -- a refill time ahead of now (written before the clock stepped back):
    -- now, or the bucket would not refill until real time got there
    if bucket_ts > now then bucket_ts = now end
    if now > bucket_ts then
        tokens = tokens + (now - bucket_ts) * rate / 1000
        bucket_ts = now
    end
    if tokens > bucket then tokens = bucket end
    if want > 0 and math.floor(tokens) < want then
        want = math.floor(tokens)
        limited = true
    end
end

-- The ETA (the score's text: Lua converts no number) of each of the first
-- n due tasks ids[1..n], in ETA order from the head of the ETA set. Redis
-- 7.0 formats every score it replies with %.17g (~4,000 instructions a
-- score, the largest single cost of a claimed task, docs/BENCHMARKS.md),
-- so they are read by runs of equal ETAs: a run's first score (ZSCORE)
-- and how many tasks share it (ZCOUNT s s; they come first, in the order
-- ZRANGEBYSCORE gave), two calls for a run of any length; the last one or
-- two tasks wanted need no count (one ZSCORE or ZMSCORE: a claim of one or
-- two tasks makes one call).
-- Tasks enqueued by one call or in one ms share their ETA, so a backlog
-- comes in long runs; after a run of one or two tasks (spread ETAs: two
-- calls per task would cost more than the scores) one ZMSCORE reads the
-- rest (review R2, finding 2: docs/BENCHMARKS.md).
local function dq_etas(k_eta, ids, n)
    local etas = {}
    local i = 1
    while i <= n do
        if i + 1 >= n then
            -- one or two left: one call (two ZCOUNTs cost more)
            if i == n then
                etas[i] = redis.call('ZSCORE', k_eta, ids[i])
            else
                local r = redis.call('ZMSCORE', k_eta, ids[i], ids[n])
                etas[i], etas[n] = r[1], r[2]
            end
            break
        end
        local s = redis.call('ZSCORE', k_eta, ids[i])
        local c = redis.call('ZCOUNT', k_eta, s, s)
        local last = i + c - 1
        if last > n then last = n end
        for j = i, last do etas[j] = s end
        i = last + 1
        if c <= 2 and i <= n then
            local rest = redis.call('ZMSCORE', k_eta, unpack(ids, i, n))
            for j = i, n do etas[j] = rest[j - i + 1] end
            break
        end
    end
    return etas
end

-- 3. cold buckets due soon into tasks/eta (bounded: lib/lua/cold.lua),
-- then due tasks into the lease set: one call per batch for each
-- structure; one more due task than wanted is read to know whether due
-- work remains (no promotion when the acks deleted eta or tasks on a
-- MIGRATING slot: the buckets stay, looked at again in a second, as one
-- not on the node: dq_cold_due)
if acks_deleted and promo.keys then
    promo = { ws = now + DQ_COLD_AFTER_MS + DQ_MIGRATING_RETRY_MS }
end
local cold_ws = dq_cold_promote(KEYS[1], KEYS[2], KEYS[4], KEYS[10], promo)
local reply = { now, -1, cid, ack_reply }
local taken = 0
local more = false         -- due work remains after this claim
local eta_next = nil       -- eta's first entry once the taken ones go
local ids, leases, deadline
local te = 0               -- of the taken: from eta (its first te)
local dr = nil             -- the due list as read (dq_due_read)
local due_left = false     -- the list may hold an id after this claim
local lst, lst_all = nil, false  -- the taken that came from the list
local reply_base = 0       -- the reply's length before the taken tasks
if want > 0 then
    -- the due list's head: up to want ids, their runs' ETAs (the acks
    -- above never touch the list: it exists if it did when the call
    -- began, which Redis Cluster checks for a declared key)
    dr, due_left = dq_due_read(KEYS[11], want)
    -- ids only: their ETAs come by runs (dq_etas)
    -- redis.pcall: acks that emptied eta (a late ack of its only task)
    -- deleted it, and on a MIGRATING slot Redis 7.0 refuses the read:
    -- stall, as step 1 (review RY)
    ids = dq_routed(redis.pcall('ZRANGEBYSCORE', KEYS[2], '-inf',
                                dq_int(now), 'LIMIT', '0',
                                dq_int(want + 1)))
    if not ids then
        -- nothing is taken (the list's ids stay too)
        stall = true
        ids = {}
        dr = nil
        due_left = false
    end
    te = #ids
    if te > want then
        te = want
        more = true
        ids[want + 1] = nil
    end
    local etas = nil
    if te > 0 then etas = dq_etas(KEYS[2], ids, te) end
    if dr and dr.n > 0 and te == 0 then
        -- the list alone (the usual when producers write it): its ids as
        -- read, no merge
        ids, etas, taken = dr.ids, dr.etas, dr.n
        lst_all = true
    elseif dr and dr.n > 0 then
        -- both sources: merged by ETA, the older first (equal: eta's),
        -- until want are taken; each is taken from its head in order
        local mi, me = {}, {}
        lst = {}
        local a, b, k = 1, 1, 0
        local ea, eb = nil, nil     -- numbers of the current heads
        local sa, sb = nil, nil     -- (converted once per run: by text)
        while k < want and (a <= te or b <= dr.n) do
            local from_eta
            if a > te then
                from_eta = false
            elseif b > dr.n then
                from_eta = true
            else
                if etas[a] ~= sa then sa = etas[a]; ea = tonumber(sa) end
                if dr.etas[b] ~= sb then sb = dr.etas[b]; eb = tonumber(sb) end
                from_eta = ea <= eb
            end
            k = k + 1
            if from_eta then
                mi[k], me[k] = ids[a], etas[a]
                a = a + 1
            else
                mi[k], me[k] = dr.ids[b], dr.etas[b]
                lst[k] = true
                b = b + 1
            end
        end
        if a <= te then more = true end
        te = a - 1
        if b <= dr.n then
            -- ids read from the list but not taken: read again, as many
            -- as were taken (the cut needs the read that took them)
            dr = b > 1 and dq_due_read(KEYS[11], b - 1) or nil
            due_left = true
        end
        ids, etas = mi, me
        taken = k
    else
        taken = te
        -- no listed id read: markers alone (their runs' ids removed by
        -- id by an older build, or taken) are still cut, up to the
        -- DQ_DUE_ROUNDS rounds read, so that every claim gets further
        -- through a marker-only stretch (review RR2, finding 2)
        if dr and dr.len == 0 then dr = nil end
    end
    if due_left then more = true end
    if taken > 0 then
        local vals = redis.call('HMGET', KEYS[1], unpack(ids))
        deadline = now + lease_ms
        local dl = dq_int(deadline)     -- formatted once, not per task
        local tail = '|' .. cid .. '|'
        local fresh = tail .. dq_int(now) -- a task without history
        leases = {}
        local kr = #reply
        local j = 0                     -- leased so far
        reply_base = kr
        for i = 1, taken do
            local id = ids[i]
            local v = vals[i]
            if not v and (lst_all or (lst and lst[i])) then
                -- listed, its value gone (an older build's delete by id
                -- takes the value, counts it in stats "deleted" and leaves
                -- the id listed): dropped with the list's cut, not counted
                -- again (review RDL finding 7), not leased (a worker would
                -- bury it as "missing envelope"; review RR2, finding 5)
            else
                j = j + 1
                local e, r, f, x, c, nm = 0, 0, now, 0, nil, nil
                leases[2 * j - 1] = dl
                if v and string.byte(v, 1) == 83 then
                    e, r, f, x, c, nm, v = dq_split(v)
                    if f == 0 then f = now end
                    leases[2 * j] = id .. tail .. f
                else
                    leases[2 * j] = id .. fresh
                end
                local k = kr
                kr = kr + 4
                reply[k + 1] = id
                reply[k + 2] = v
                reply[k + 3] = etas[i]        -- the score's text: C reads it
                -- the state: 0 for a task without history (first run now),
                -- else "retries:first_run_ms:runs:failed_ms"
                if e == 0 and r == 0 and x == 0 and f == now then
                    reply[k + 4] = 0
                else
                    reply[k + 4] = dq_int(r) .. ':' .. dq_int(f) .. ':'
                                   .. dq_int(e) .. ':' .. dq_int(x)
                end
            end
        end
        taken = j
        -- the entry after the taken ones is read before they leave eta:
        -- a ZREM that empties eta deletes the key, and Redis 7.0 stops a
        -- script that reads a key missing on a MIGRATING slot, its writes
        -- kept (review R5)
        if not more then
            eta_next = redis.call('ZRANGE', KEYS[2], dq_int(te),
                                  dq_int(te), 'WITHSCORES')
        end
    end
else
    -- nothing wanted (a limit, a pause, only acks): the list's ids are
    -- due work (counted; or its last element an id: a count that drifted)
    local tail = redis.call('LINDEX', KEYS[11], -1)
    if tail and (string.byte(tail, 1) ~= 64 or (dq_num(
            redis.call('HGET', KEYS[4], 'due_n')) or 0) > 0) then
        more = true
    end
end

-- due work left after this claim: d = ms until the next due task (0: due
-- now), nil when eta is empty; held back when a limit kept it
local d = nil
if more then
    d = 0
else
    local first = eta_next
    if not first then
        -- read as the claim's (above): an eta the acks deleted on a
        -- MIGRATING slot is a stall, not a stop after the acks
        first = dq_routed(redis.pcall('ZRANGE', KEYS[2], '0', '0',
                                      'WITHSCORES'))
        if not first then
            stall = true
            first = {}
        end
    end
    if first[2] then d = tonumber(first[2]) - now end
end
local held_back = d ~= nil and d <= 0 and limited
-- a call a MIGRATING slot kept from part of its work (a stall, or a due
-- cold bucket not on the node) is counted: stats "migrating_stalls" (one
-- a call; a stalled call answers next_ms >= DQ_MIGRATING_RETRY_MS). Only
-- calls that run count: Redis refuses most calls on a MIGRATING slot
-- before they run (TRYAGAIN: a declared key missing; review R6)
if stall or promo.moved then
    redis.call('HINCRBY', KEYS[4], 'migrating_stalls', 1)
end
-- conf "waiting" (a claim held back by max_concurrent: the next ack,
-- retry, bury or release that frees a slot wakes a sleeper) is written
-- before the leases, and kept rather than deleted and written again: a
-- script that writes a key it deleted itself (conf holding only
-- "waiting") stops on a MIGRATING slot, after its writes (t/164)
if held_back and lease_wait then
    if not cf[9] then redis.call('HSET', KEYS[7], 'waiting', '1') end
elseif slot_freed then
    redis.call('HDEL', KEYS[7], 'waiting')
end

if taken > 0 then
    -- a lease set this call creates, or one Redis made a listpack
    -- again (loaded from RDB or RESTORE: a replica's full sync, a
    -- restart, a reshard's MIGRATE): made a skiplist (DQ_LEASE_PAD)
    local added
    if l1s == nil
       or redis.call('OBJECT', 'ENCODING', KEYS[3]) ~= 'skiplist' then
        added = redis.call('ZADD', KEYS[3], 0, DQ_LEASE_PAD,
                           unpack(leases)) - 1
        redis.call('ZREM', KEYS[3], DQ_LEASE_PAD)
    else
        added = redis.call('ZADD', KEYS[3], unpack(leases))
    end
    if added < taken then
        -- an id read twice by this claim (listed twice, or listed and on
        -- eta: a build before the list deleted it by id, then it was
        -- resent): its two leases are one member (this call's claim id
        -- is new, so every other member is new): leased and answered
        -- once, the other entry cut with the rest, counted nowhere (due_n
        -- follows the cut). Across claims nothing is checked: the
        -- mixed-fleet bound, docs/CONTRACT.md "The due list". The
        -- common path pays one comparison (review RDL; a Lua table of
        -- the taken ids cost ~0.8k instructions a task at 32 a call).
        local seen, k = {}, reply_base
        local top = reply_base + 4 * taken
        for i = reply_base + 1, top, 4 do
            local id = reply[i]
            if not seen[id] then
                seen[id] = true
                reply[k + 1], reply[k + 2] = id, reply[i + 1]
                reply[k + 3], reply[k + 4] = reply[i + 2], reply[i + 3]
                k = k + 4
            end
        end
        for i = top, k + 1, -1 do reply[i] = nil end
        taken = (k - reply_base) / 4
    end
    -- the leases are written before the tasks leave eta (a ZADD on a
    -- lease set this call's acks emptied fails on a MIGRATING slot while
    -- nothing is taken yet). They are eta's first `taken` entries
    -- (ZRANGEBYSCORE -inf now LIMIT 0 gave them in rank order, and
    -- nothing wrote eta since): removed by rank, no member passed or
    -- looked up (was a ZREM of the ids: ~1,000 instructions a task more)
    if te > 0 then
        redis.call('ZREMRANGEBYRANK', KEYS[2], '0', dq_int(te - 1))
    end
    if l1s == nil or deadline < l1s then l1s = deadline end
end
-- then the ids taken from the due list leave it (after the leases: a list
-- this empties is deleted, and nothing after writes it), and its count
-- (deleted with the list: a count that drifted is reset there)
if dr then dq_due_drop(KEYS[11], KEYS[4], dr) end
if rate > 0 then
    tokens = tokens - taken
    redis.call('HSET', KEYS[8], 'tokens', string.format('%.6f', tokens),
               'ts', bucket_ts)
end

-- 4. when to look again; pass the wake token on if due work remains
-- The earliest lease deadline: while leases are held, look again at least
-- every third of a lease period (a dead holder's lease comes back on time,
-- and no gap in the queue's clock longer than half a lease period appears
-- but a clock jump or a fleet that was down); a lease the jump guard holds
-- back is looked at when the guard ends.
local function lease_next()
    if l1s == nil then return nil end
    local d = l1s - now
    if d <= 0 and guard_until then d = guard_until - now end
    local third = math.ceil(lease_ms / 3)
    if d > third then d = third end
    if d < 1 then d = 1 end
    return d
end
-- the cold tier's next promotion counts as pending work (0: more to
-- promote now)
local nxt = dq_cold_next(cold_ws, now) or -1
if d then
    if d <= 0 then
        d = 0
        if not held_back and not stall then dq_wake_on(KEYS[5]) end
    end
    if nxt < 0 or d < nxt then nxt = d end
end
if held_back then
    -- due work waits for a limit: sleep until the limit can let one go
    nxt = -1
    if not paused then
        if rate > 0 and tokens < 1 then
            nxt = math.ceil((1 - tokens) * 1000 / rate)
            if nxt < 1 then nxt = 1 end
        end
        if lease_wait then
            -- "waiting" is set (above): the next freed slot wakes one
            local ld = lease_next()
            if ld and (nxt < 0 or ld < nxt) then nxt = ld end
        end
        if nxt < 0 then nxt = 1 end
    end
    reply[2] = nxt
    return reply
end
local ld = lease_next()
if ld and (nxt < 0 or ld < nxt) then nxt = ld end
if stall and nxt < DQ_MIGRATING_RETRY_MS then nxt = DQ_MIGRATING_RETRY_MS end
reply[2] = nxt
return reply
