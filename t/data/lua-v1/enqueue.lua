-- enqueue: store and schedule 1..n tasks of one queue, atomically.
-- KEYS: 1 tasks, 2 eta, 3 names, 4 stats, 5 wake
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
-- inf are refused (dq_num): they would fail a ZADD after tasks were stored
local n = dq_num(ARGV[2])
local tomb = dq_num(ARGV[1])
if not n or n < 1 or #ARGV ~= 2 + n * W or not tomb then
    return redis.error_reply('ERR enqueue: bad arguments')
end
for i = 0, n - 1 do
    if ARGV[3 + i * W] == '' or not dq_num(ARGV[6 + i * W])
       or not dq_num(ARGV[7 + i * W]) or not dq_num(ARGV[8 + i * W]) then
        return redis.error_reply('ERR enqueue: bad task ' .. (i + 1))
    end
end
local now = dq_now(KEYS[4])
-- names (and client ids) whose tombstone window has passed are forgotten,
-- a bounded number per call (never one unbounded ZREMRANGEBYSCORE: after
-- a quiet week that would be millions in one call); an expired entry not
-- yet removed counts as free below, so the bound costs no correctness
for i = 0, n - 1 do
    if ARGV[5 + i * W] ~= '' or ARGV[8 + i * W] ~= '0' then
        local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. now,
                               'LIMIT', 0, 2 * n + 100)
        if #old > 0 then redis.call('ZREM', KEYS[3], unpack(old)) end
        break
    end
end

-- 'inf' (live) or a tombstone still in its window: taken
local function taken(s)
    return s and (s == 'inf' or tonumber(s) >= now)
end

-- the earliest ETA waiting before this call (the ETA set is written only
-- after the loop), read at most once and only when a stored task is not
-- due now and no wake is decided yet: false = not read, nil = empty set
local earliest = false
local wake = false
local stored = 0
local reply = { now }

-- per task one call where it can be (HSETNX stores and dedups an unnamed
-- task by id); the ETA set gets ONE variadic ZADD after the loop, and the
-- score of a task due now is formatted once per call, not per task
local zs = {}
local nows = nil
for i = 0, n - 1 do
    local id = ARGV[3 + i * W]
    local env = ARGV[4 + i * W]
    local name = ARGV[5 + i * W]
    local eta = tonumber(ARGV[6 + i * W])
    local countdown = tonumber(ARGV[7 + i * W])
    local kw = tonumber(ARGV[8 + i * W])
    local keyed = kw ~= 0
    if kw < 0 then kw = tomb end
    local status = 0
    local at = 0
    if keyed and taken(redis.call('ZSCORE', KEYS[3], '#' .. id))
       and redis.call('HEXISTS', KEYS[1], id) == 0 then
        status = 1      -- ran already, within the window: not again
        keyed = false
    elseif name == '' then
        if redis.call('HSETNX', KEYS[1], id, env) == 0 then status = 1 end
    elseif redis.call('HEXISTS', KEYS[1], id) == 1 then
        status = 1
    else
        local s = redis.call('ZSCORE', KEYS[3], name)
        if taken(s) then
            if s == 'inf' then status = 2 else status = 3 end
        else
            redis.call('HSET', KEYS[1], id, env)
        end
    end
    if status == 1 then
        local s = redis.call('ZSCORE', KEYS[2], id)
        if not s then
            -- stored earlier in this same call: its ZADD is still pending
            for j = 2, #zs, 2 do
                if zs[j] == id then s = zs[j - 1] end
            end
        end
        at = tonumber(s or '0')
    elseif status == 0 then
        local score
        if eta >= 0 then
            score = ARGV[6 + i * W]
        elseif countdown <= 0 then
            eta = now
            if not nows then nows = tostring(now) end
            score = nows
        else
            eta = now + countdown
            score = eta
        end
        at = eta
        zs[#zs + 1] = score
        zs[#zs + 1] = id
        if name ~= '' then redis.call('ZADD', KEYS[3], 'inf', name) end
        if keyed then
            redis.call('ZADD', KEYS[3], math.max(eta, now) + kw, '#' .. id)
        end
        stored = stored + 1
        if not wake then
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
    reply[#reply + 1] = status
    reply[#reply + 1] = at
end
-- in slices: unpack of one table of every pair fails above ~8,000 values
-- (Lua's C stack), after the envelopes above were written
for k = 1, #zs, 2000 do
    redis.call('ZADD', KEYS[2], unpack(zs, k, math.min(k + 1999, #zs)))
end

if stored > 0 then redis.call('HINCRBY', KEYS[4], 'enqueued', stored) end
if wake then dq_wake(KEYS[5]) end
return reply
