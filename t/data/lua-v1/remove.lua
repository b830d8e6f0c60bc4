-- remove: delete tasks (operator command: deferred-cli delete / purge).
-- One task by id in whatever state it is (waiting, running, dead), or up
-- to max tasks of one state. A removed task's envelope, state and last
-- error go; its name (if any) stays taken for tombstone_ms, as a used
-- name does (tombstone_ms <= 0: the name is free at once). A running task's worker finds its lease gone: its result is
-- dropped (fenced), the function is not interrupted.
-- KEYS: 1 tasks, 2 eta, 3 lease, 4 state, 5 dead, 6 errors, 7 names,
--       8 stats, 9 conf, 10 wake
-- ARGV: 1 what: "id" | "waiting" | "due" | "delayed" | "dead",
--       2 id (what = "id") or "", 3 max (1..1000), 4 tombstone_ms
-- Reply: what = "id": 0 not found, 1 was waiting, 2 was running, 3 was
--        dead; else the number removed (fewer than max: nothing left).
local what = ARGV[1]
local max = dq_num(ARGV[3])
local tomb = dq_num(ARGV[4])
if not (what == 'id' or what == 'waiting' or what == 'due'
        or what == 'delayed' or what == 'dead') or not ARGV[2]
   or not max or max < 1 or max > DQ_CHUNK or not tomb then
    return redis.error_reply('ERR remove: bad arguments')
end
local now = dq_now(KEYS[8])
local freed = false

local function drop(id)
    local env = redis.call('HGET', KEYS[1], id)
    if env then
        local okp, arr = pcall(cmsgpack.unpack, env)
        if okp and type(arr) == 'table' and type(arr[7]) == 'string'
           and arr[7] ~= '' then
            -- as ack/bury: tomb > 0 keeps the name taken for tomb ms,
            -- else it is free at once (never left at +inf by enqueue)
            if tomb and tomb > 0 then
                redis.call('ZADD', KEYS[7], now + tomb, arr[7])
            else
                redis.call('ZREM', KEYS[7], arr[7])
            end
        end
    end
    redis.call('ZREM', KEYS[2], id)
    local _, _, _, _, claim = dq_state(redis.call('HGET', KEYS[4], id))
    if claim ~= '' and redis.call('ZREM', KEYS[3], dq_member(id, claim)) == 1
    then
        freed = true
    end
    redis.call('ZREM', KEYS[5], id)
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[4], id)
    redis.call('HDEL', KEYS[6], id)
end

local n = 0
if what == 'id' then
    local id = ARGV[2]
    local _, _, _, _, claim = dq_state(redis.call('HGET', KEYS[4], id))
    if redis.call('ZSCORE', KEYS[2], id) then n = 1
    elseif claim ~= '' and redis.call('ZSCORE', KEYS[3], dq_member(id, claim))
    then n = 2
    elseif redis.call('ZSCORE', KEYS[5], id) then n = 3
    elseif redis.call('HEXISTS', KEYS[1], id) == 0 then return 0 end
    drop(id)
    if n == 0 then n = 1 end
    redis.call('HINCRBY', KEYS[8], 'deleted', 1)
else
    local ids
    if what == 'waiting' then
        ids = redis.call('ZRANGE', KEYS[2], 0, max - 1)
    elseif what == 'due' then
        ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, max)
    elseif what == 'delayed' then
        ids = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf',
                         'LIMIT', 0, max)
    elseif what == 'dead' then
        ids = redis.call('ZRANGE', KEYS[5], 0, max - 1)
    else
        return redis.error_reply('ERR remove: unknown state ' .. what)
    end
    for _, id in ipairs(ids) do drop(id) end   -- max <= 1000 (DQ_CHUNK)
    n = #ids
    if n > 0 then redis.call('HINCRBY', KEYS[8], 'deleted', n) end
end
-- a freed max_concurrent slot wakes a worker held back by it (as ack does)
if freed then dq_slot_freed(KEYS[9], KEYS[10]) end
return n
