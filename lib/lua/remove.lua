-- remove: delete tasks (operator command: deferred-cli delete / purge).
-- One task by id in whatever state it is (waiting, running, dead), or up
-- to max tasks of one state. A removed task's value (envelope and state
-- prefix) and last error go; its name (if any) stays taken for
-- tombstone_ms, as a used name does (tombstone_ms <= 0: the name is free
-- at once). A running task's worker finds its lease gone: its result is
-- dropped (fenced), the function is not interrupted.
-- KEYS: 1 tasks, 2 eta, 3 leases, 4 dead, 5 errors, 6 names, 7 stats,
--       8 conf, 9 wake, 10 cold (the cold tier's index), 11 due (the due
--       list: a stored task found nowhere else is looked for there, LPOS
--       and LREM, O(its place in the list); its count, stats "due_n",
--       follows)
-- A running task's lease member ("id|claim|first_run_ms") is found with
-- ZSCAN MATCH "id|*" (an operator's one-id delete only; ids of other
-- characters than [A-Za-z0-9_-] are never leased).
-- ARGV: 1 what: "id" | "waiting" | "due" | "delayed" | "dead",
--       2 id (what = "id") or "", 3 max (1..1000), 4 tombstone_ms,
--       5 (what = "id", optional) the cold tier's window to look from: the
--       tier is looked at in bounded steps (lib/lua/cold.lua), without it
--       all of it in this call
-- Reply: what = "id": 0 not found, 1 was waiting (the cold tier too), 2
--        was running, 3 was dead, < 0 (only with ARGV 5) not found yet:
--        call again with ARGV 5 = -reply; else { removed, more }: the
--        tasks removed (counted in stats "deleted") and 1 when entries of
--        that state may be left (call again), else 0 (an entry that held
--        no task is taken off, not counted); "waiting" and "delayed" take
--        the cold tier's tasks after the hot ones.
local what = ARGV[1]
local max = dq_num(ARGV[3])
local tomb = dq_num(ARGV[4])
local from = nil
if ARGV[5] then
    from = dq_num(ARGV[5])
    if not from then return redis.error_reply('ERR remove: bad arguments') end
end
if not (what == 'id' or what == 'waiting' or what == 'due'
        or what == 'delayed' or what == 'dead') or not ARGV[2]
   or not max or max < 1 or max > DQ_CHUNK or not tomb then
    return redis.error_reply('ERR remove: bad arguments')
end
local now = dq_now(KEYS[7])
local freed = false

-- the lease member of a running task, or nil
local function lease_of(id)
    if not string.match(id, '^[%w_-]+$') then return nil end
    local cur = '0'
    repeat
        local sc = redis.call('ZSCAN', KEYS[3], cur, 'MATCH', id .. '|*',
                              'COUNT', DQ_CHUNK)
        cur = sc[1]
        for i = 1, #sc[2], 2 do
            if dq_member_parse(sc[2][i]) == id then return sc[2][i] end
        end
    until cur == '0'
    return nil
end

-- lease: the task's lease member when it is running
local function drop(id, lease)
    local _, name = dq_env_func_name(redis.call('HGET', KEYS[1], id))
    if name then
        -- as ack/bury: tomb > 0 keeps the name taken for tomb ms,
        -- else it is free at once (never left at +inf by enqueue)
        if tomb and tomb > 0 then
            redis.call('ZADD', KEYS[6], now + tomb, name)
        else
            redis.call('ZREM', KEYS[6], name)
        end
    end
    redis.call('ZREM', KEYS[2], id)
    if lease and redis.call('ZREM', KEYS[3], lease) == 1 then
        freed = true
    end
    redis.call('ZREM', KEYS[4], id)
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[5], id)
end

-- drop for a batch of tasks not leased: each key touched once, by one
-- variadic call. One drop after another touched each key once per task:
-- a drop that emptied one (`errors`, `names`, ...) deleted it, and on a
-- MIGRATING slot Redis 7.0 stopped the script at the next drop's touch
-- of it, part of the batch removed and not counted (review RS, t/05)
-- Returns how many of ids were tasks: distinct ids with a value. A listed
-- id whose value a build before the due list deleted (its delete counted
-- it already), or an id read twice (listed and on eta), is not counted
-- again (review RFDL, finding 2: claim and dq_due_back count them so).
local function drop_many(ids)
    if #ids == 0 then return 0 end
    local vals = redis.call('HMGET', KEYS[1], unpack(ids))
    local zs, names, seen, had = {}, {}, {}, 0
    for i = 1, #ids do
        if vals[i] and not seen[ids[i]] then
            seen[ids[i]] = true
            had = had + 1
        end
        local _, name = dq_env_func_name(vals[i])
        if name then
            names[#names + 1] = name
            zs[#zs + 1] = now + (tomb or 0)
            zs[#zs + 1] = name
        end
    end
    if #names > 0 then
        if tomb and tomb > 0 then
            redis.call('ZADD', KEYS[6], unpack(zs))
        else
            redis.call('ZREM', KEYS[6], unpack(names))
        end
    end
    redis.call('ZREM', KEYS[2], unpack(ids))
    redis.call('ZREM', KEYS[4], unpack(ids))
    redis.call('HDEL', KEYS[1], unpack(ids))
    redis.call('HDEL', KEYS[5], unpack(ids))
    return had
end

local n = 0
local bulk = nil     -- the reply of a bulk remove
if what == 'id' then
    local id = ARGV[2]
    local lease = nil
    if redis.call('ZSCORE', KEYS[2], id) then n = 1
    elseif redis.call('ZSCORE', KEYS[4], id) then n = 3
    else
        lease = lease_of(id)
        if lease then n = 2
        elseif redis.call('HEXISTS', KEYS[1], id) == 0 then
            -- not hot: the cold tier (from ARGV[5] on, in bounded steps;
            -- without it every bucket in this call). Looked at before the
            -- due list: a listed task has its value, so an id not stored
            -- scans no list (review RR2, finding 6)
            local c = dq_cold_remove_id(KEYS[10], KEYS[7], id, from)
            if c ~= 1 then return c end
            redis.call('HINCRBY', KEYS[7], 'deleted', 1)
            return 1
        elseif dq_due_remove(KEYS[11], id) then
            -- was waiting in the due list (its run's marker goes with its
            -- last id)
            n = 1
            redis.call('HINCRBY', KEYS[7], 'due_n', -1)
        end
    end
    drop(id, lease)
    if n == 0 then n = 1 end
    redis.call('HINCRBY', KEYS[7], 'deleted', 1)
else
    -- a task is in one of eta, leases, dead: these are not leased
    local ids
    -- waiting and due: the due list's head first (all due), then eta
    local dr, listed = nil, false
    if what == 'waiting' or what == 'due' then
        -- (listed: ids may be left in the list after those read, e.g. a
        -- list of one-task runs read in DQ_DUE_ROUNDS rounds)
        dr, listed = dq_due_read(KEYS[11], max)
    end
    local left = max - (dr and dr.n or 0)
    if left == 0 then
        ids = {}
    elseif what == 'waiting' then
        ids = redis.call('ZRANGE', KEYS[2], 0, left - 1)
    elseif what == 'due' then
        ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0,
                         left)
    elseif what == 'delayed' then
        ids = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf',
                         'LIMIT', 0, max)
    elseif what == 'dead' then
        ids = redis.call('ZRANGE', KEYS[4], 0, max - 1)
    else
        return redis.error_reply('ERR remove: unknown state ' .. what)
    end
    if dr and dr.n > 0 then
        -- one batch: each key touched once (drop_many; the list last, a
        -- list this empties is deleted and not written again)
        for i = 1, dr.n do ids[#ids + 1] = dr.ids[i] end
    end
    -- then the cold tier's buckets, earliest first: read before the
    -- first write (a bucket not on a MIGRATING slot's node: refused, the
    -- client retries TRYAGAIN, nothing removed: review R6, t/07)
    local plan = nil
    if #ids < max and (what == 'waiting' or what == 'delayed') then
        plan = dq_cold_remove_plan(KEYS[10], max - #ids)
        if plan.moved then
            return redis.error_reply('TRYAGAIN remove: a cold bucket of '
                .. 'the queue is not on this node (its slot is migrating)')
        end
    end
    local had = drop_many(ids)                      -- max <= DQ_CHUNK
    if dr and (dr.n > 0 or dr.len > 0) then
        dq_due_drop(KEYS[11], KEYS[7], dr)
    end
    -- the tasks removed, and whether entries may be left: an entry that
    -- held no task (a listed id a pre-list build deleted, a dead entry
    -- without a value, an id read twice) is taken off but is not a task,
    -- so a call that took max entries may have removed fewer tasks and
    -- left more (review RV8, finding 1: purge stopped at the first call
    -- that removed fewer than max tasks)
    local taken = #ids
    if plan then
        -- an index member whose bucket held no task is an entry taken
        -- too: a plan that read every member it asked for may leave more
        local c = dq_cold_remove_some(KEYS[10], KEYS[7], plan)
        had = had + c
        taken = taken + math.max(c, #plan.ms)
    end
    if had > 0 then redis.call('HINCRBY', KEYS[7], 'deleted', had) end
    bulk = { had, (taken >= max or listed) and 1 or 0 }
end
-- a freed max_concurrent slot wakes a worker held back by it (as ack does)
if freed then dq_slot_freed(KEYS[8], KEYS[9]) end
return bulk or n
