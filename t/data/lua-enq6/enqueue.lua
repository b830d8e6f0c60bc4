-- enqueue: store and schedule 1..n tasks of one queue, atomically.
-- KEYS: 1 tasks, 2 eta, 3 names, 4 stats, 5 wake, 6 contract v1's names
--       (dq:{q}:names: while a queue still has v1 data, a name or keyed id
--       taken there is taken here too; read only when the call has a named
--       or keyed task, and then one EXISTS unless the key exists), 7 cold
--       (the cold tier's index, lib/lua/cold.lua; its buckets' names are
--       built from it)
-- ARGV: 1 tombstone_ms, 2 n, then per task 6 values:
--       id, envelope, name ('' = none), eta_ms (-1 = none),
--       countdown_ms (-1 = none), keyed (0: not; else the id came from the
--       client (idempotent enqueue) and is remembered in the names set as
--       '#' .. id until this many ms after the task's ETA, -1: tombstone_ms)
-- Reply: { now_ms, status_1, eta_1, ..., status_n, eta_n }
--   status 0 stored, 1 same id already stored (eta = its current ETA, or 0
--   when it already ran), 2 name live (duplicate), 3 name tombstoned; eta
--   0 when not stored.
local W = 6

-- validate everything before the first write (dq_now writes the clock): a
-- script error does not roll back what the script already wrote; nan and
-- inf are refused (dq_num): they would fail a ZADD after tasks were stored.
-- The usual values ("-1", "0") are compared as strings (interned: no
-- number conversion) and converted once, here.
local n = dq_num(ARGV[2])
local tomb = dq_num(ARGV[1])
if not n or n < 1 or #ARGV ~= 2 + n * W or not tomb then
    return redis.error_reply('ERR enqueue: bad arguments')
end
local etas, cds, kws = {}, {}, {}
local plain = {}        -- ids of unnamed, un-keyed tasks
local np = 0
for i = 0, n - 1 do
    local b = 2 + i * W
    local e, c, k = ARGV[b + 4], ARGV[b + 5], ARGV[b + 6]
    if e == '-1' then e = -1 else e = dq_num(e) end
    if c == '-1' then c = -1 elseif c == '0' then c = 0 else c = dq_num(c) end
    if k == '0' then k = 0 else k = dq_num(k) end
    if ARGV[b + 1] == '' or not e or not c or not k then
        return redis.error_reply('ERR enqueue: bad task ' .. (i + 1))
    end
    etas[i], cds[i], kws[i] = e, c, k
    if k == 0 and ARGV[b + 3] == '' then
        np = np + 1
        plain[np] = ARGV[b + 1]
    end
end
local now = dq_now(KEYS[4])
-- names (and client ids) whose tombstone window has passed are forgotten,
-- a bounded number per call (never one unbounded ZREMRANGEBYSCORE: after
-- a quiet week that would be millions in one call); an expired entry not
-- yet removed counts as free below, so the bound costs no correctness
if #plain < n then
    local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. now,
                           'LIMIT', 0, 2 * n + 100)
    -- in slices: unpack() of more than ~8,000 values fails (Lua's C stack)
    for k = 1, #old, DQ_CHUNK do
        redis.call('ZREM', KEYS[3], unpack(old, k, math.min(k + DQ_CHUNK - 1,
                                                          #old)))
    end
end

-- 'inf' (live) or a tombstone still in its window: taken
local function taken(s)
    return s and (s == 'inf' or tonumber(s) >= now)
end

-- contract v1's names while v1 data is left (review R1, finding 3): the
-- migration moves a live name only with its task, so a v1 task waiting or
-- running holds its name there; nil when v1 has no names key
local v1names = nil
if #plain < n and redis.call('EXISTS', KEYS[6]) == 1 then
    v1names = KEYS[6]
end
local function taken_v1(member)
    return v1names and taken(redis.call('ZSCORE', v1names, member))
end

-- the plain tasks' ids already stored: one HMGET per DQ_CHUNK ids (their
-- envelopes are then written with one variadic HSET after the loop,
-- instead of one HSETNX per task)
local exist = {}
for k = 1, #plain, DQ_CHUNK do
    local last = math.min(k + DQ_CHUNK - 1, #plain)
    local got = redis.call('HMGET', KEYS[1], unpack(plain, k, last))
    for j = 1, #got do
        if got[j] then exist[plain[k + j - 1]] = true end
    end
end

-- the earliest ETA waiting before this call (the ETA set is written only
-- after the loop), read at most once and only when a stored task is not
-- due now and no wake is decided yet: false = not read, nil = empty set
local earliest = false
local wake = false
local stored = 0
local reply = { now }

-- the ETA set gets ONE variadic ZADD after the loop (hs: the plain tasks'
-- envelopes, one HSET), the cold tier one HSET per bucket (byw: per
-- window; lib/lua/cold.lua); the score of a task due now is formatted once
-- per call, not per task. mine[id] = the ETA of a task stored by this call
-- (written after the loop: the checks below look here too)
local zs, hs, byw, mine = {}, {}, {}, {}
local nz, nh, nr = 0, 0, 1     -- lengths of zs, hs, reply (no # per task)
local cold = false
local nows = nil
for i = 0, n - 1 do
    local b = 2 + i * W
    local id = ARGV[b + 1]
    local env = ARGV[b + 2]
    local name = ARGV[b + 3]
    local eta = etas[i]
    local countdown = cds[i]
    local kw = kws[i]
    local keyed = kw ~= 0
    if kw < 0 then kw = tomb end
    local status = 0
    local at = 0
    local ws = nil
    if mine[id] then
        status = 1
    elseif not keyed and name == '' then
        if exist[id] then status = 1 end
    elseif keyed and taken(redis.call('ZSCORE', KEYS[3], '#' .. id))
       and redis.call('HEXISTS', KEYS[1], id) == 0 then
        status = 1      -- ran already, within the window: not again
        keyed = false
    elseif keyed and taken_v1('#' .. id)
       and redis.call('HEXISTS', KEYS[1], id) == 0 then
        status = 1      -- stored (or ran) in contract v1: not again
        keyed = false
    elseif name == '' then
        if redis.call('HSETNX', KEYS[1], id, env) == 0 then status = 1 end
    elseif redis.call('HEXISTS', KEYS[1], id) == 1 then
        status = 1
    else
        local s = redis.call('ZSCORE', KEYS[3], name)
        if not taken(s) and v1names then
            s = redis.call('ZSCORE', v1names, name)
        end
        if taken(s) then
            if s == 'inf' then status = 2 else status = 3 end
        else
            redis.call('HSET', KEYS[1], id, env)
        end
    end
    if status == 1 then
        at = mine[id] or tonumber(redis.call('ZSCORE', KEYS[2], id) or '0')
    elseif status == 0 then
        local score
        if eta >= 0 then
            score = ARGV[b + 4]
        elseif countdown <= 0 then
            eta = now
            if not nows then nows = tostring(now) end
            score = nows
        else
            eta = now + countdown
            score = eta
        end
        at = eta
        mine[id] = eta
        if not keyed and name == '' then
            -- (a task due within the horizon never goes cold: no call)
            if eta > now + DQ_COLD_AFTER_MS then
                ws = dq_cold_window(eta, now)
            end
            if ws then
                -- cold: never due soon, so it decides no wake here
                local w = byw[ws]
                if not w then w = {}; byw[ws] = w end
                w[#w + 1] = id
                w[#w + 1] = dq_cold_value(eta, ws, env)
                cold = true
            else
                hs[nh + 1] = id
                hs[nh + 2] = env
                nh = nh + 2
            end
        end
        if not ws then
            zs[nz + 1] = score
            zs[nz + 2] = id
            nz = nz + 2
        end
        if name ~= '' then redis.call('ZADD', KEYS[3], 'inf', name) end
        if keyed then
            redis.call('ZADD', KEYS[3], math.max(eta, now) + kw, '#' .. id)
        end
        stored = stored + 1
        if not wake and not ws then
            if eta <= now then
                wake = true
            else
                if earliest == false then
                    local first = redis.call('ZRANGE', KEYS[2], 0, 0,
                                             'WITHSCORES')
                    earliest = first[2] and tonumber(first[2]) or nil
                end
                if earliest == nil or eta < earliest then wake = true end
            end
        end
    end
    reply[nr + 1] = status
    reply[nr + 2] = at
    nr = nr + 2
end
-- in slices: unpack of one table of every pair fails above ~8,000 values
-- (Lua's C stack), after the envelopes above were written
for k = 1, #hs, 2 * DQ_CHUNK do
    redis.call('HSET', KEYS[1], unpack(hs, k, math.min(k + 2 * DQ_CHUNK - 1,
                                                       #hs)))
end
for k = 1, #zs, 2 * DQ_CHUNK do
    redis.call('ZADD', KEYS[2], unpack(zs, k, math.min(k + 2 * DQ_CHUNK - 1,
                                                       #zs)))
end
if cold then
    local _, w = dq_cold_store(KEYS[7], KEYS[4], byw)
    if w then wake = true end
end

if stored > 0 then redis.call('HINCRBY', KEYS[4], 'enqueued', stored) end
if wake then dq_wake(KEYS[5]) end
return reply
