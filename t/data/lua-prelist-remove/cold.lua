-- cold tier (appended to the prelude by lib/gen_scripts.sh): the one home
-- of its layout, limits and moves. docs/CONTRACT.md "Cold tier".
--
-- An unnamed, un-keyed task whose ETA window starts later than now +
-- DQ_COLD_AFTER_MS is not put into `tasks`/`eta` but into a bucket hash
--   <prefix>cold:<window start ms>            (the open bucket), or
--   <prefix>cold:<window start ms>.<id>       (a sealed one, full)
-- field = task id, value = ETA - window start (ms, 0..W-1, as
-- 4 decimal digits with leading zeros: DQ_COLD_DIGITS) followed directly by
-- the envelope. A window is DQ_COLD_WINDOW_MS of ETA. A bucket holds at
-- most DQ_COLD_BUCKET tasks (Redis' default hash-max-listpack-entries, so
-- it stays a listpack while its values are <= 64 bytes); when the open
-- bucket fills it is renamed to a sealed name. The index zset
-- <prefix>cold has one member per bucket (the part after "cold:"), scored
-- by the window start. The index comes in each script's KEYS (its name is
-- built in lib/dq_contract.h's dq_key_format, DQ_KEY_COLD, like every key
-- name); a bucket's name is the index's name, ':' and its member: the same
-- hash tag. Stats field `cold` counts the tasks in the tier.
-- Claim promotes every bucket whose window starts at or before now +
-- DQ_COLD_AFTER_MS into `tasks`/`eta` (exact ETAs), at most
-- DQ_COLD_PROMOTE buckets per call; enqueue never writes such a window,
-- so a bucket is never written after its promotion began.
local DQ_COLD_AFTER_MS = 20000
local DQ_COLD_WINDOW_MS = 10000
local DQ_COLD_BUCKET = 128
local DQ_COLD_PROMOTE = 2     -- buckets per claim: <= 256 tasks
local DQ_COLD_DIGITS = '%04d' -- the ETA offset in a bucket value (< W)
-- ms until a claim looks again at what a MIGRATING slot kept from it (a
-- bucket or the lease set not on the node: lib/lua/claim.lua)
local DQ_MIGRATING_RETRY_MS = 1000

-- The window start of a task due at eta if it goes cold, else nil.
local function dq_cold_window(eta, now)
    if eta ~= math.floor(eta) then return nil end   -- whole ms only
    local ws = eta - eta % DQ_COLD_WINDOW_MS
    if ws > now + DQ_COLD_AFTER_MS then return ws end
    return nil
end

-- The bucket value of a task due at eta in window ws.
local function dq_cold_value(eta, ws, env)
    return string.format(DQ_COLD_DIGITS, eta - ws) .. env
end

-- Store cold tasks: byw[ws] = { id1, value1, id2, value2, ... } (values
-- from dq_cold_value). One HLEN per window (none when lens[ws], from
-- dq_cold_preread, has it), one variadic HSET per bucket written.
-- Returns how many fields were new and whether a
-- sleeping worker must look (a window earlier than every bucket waiting).
local function dq_cold_store(idx, k_stats, byw, lens)
    local first = redis.call('ZRANGE', idx, 0, 0, 'WITHSCORES')
    local fs = first[2] and tonumber(first[2]) or nil
    local wake = false
    local added = 0
    for ws, kv in pairs(byw) do
        if fs == nil or ws < fs then wake = true end
        local m = string.format('%d', ws)
        local key = idx .. ':' .. m
        local len = lens and lens[ws] or redis.call('HLEN', key)
        -- the open bucket is renamed to a name no other bucket has (an id
        -- of the bucket, or of the batch: unique in the queue)
        local function seal(id)
            local sealed = m .. '.' .. id
            while redis.call('RENAMENX', key, idx .. ':' .. sealed)
                  == 0 do
                sealed = sealed .. '_'
            end
            redis.call('ZREM', idx, m)
            redis.call('ZADD', idx, ws, sealed)
            len = 0
        end
        local i = 1
        while i <= #kv do
            if len >= DQ_COLD_BUCKET then seal(kv[i]) end
            local k = math.min(#kv - i + 1, 2 * (DQ_COLD_BUCKET - len))
            if len == 0 then redis.call('ZADD', idx, ws, m) end
            local got = redis.call('HSET', key, unpack(kv, i, i + k - 1))
            added = added + got
            len = len + got
            i = i + k
            if len >= DQ_COLD_BUCKET then seal(kv[i - 2]) end
        end
    end
    if added > 0 then redis.call('HINCRBY', k_stats, 'cold', added) end
    return added, wake
end

-- Touch a key of base's slot that does not exist (base .. '.', then '_'s
-- until one is missing): on a MIGRATING slot that stops the script here,
-- before its first write, as a write of a key missing there would later;
-- elsewhere one EXISTS.
-- The name is built here, not passed in KEYS (the project's rule, and the
-- exception's reason, review RY): it must be a key that does not exist,
-- and a declared key missing on a MIGRATING slot makes Redis Cluster
-- answer ASK or TRYAGAIN to the call before it runs. Declared, it would
-- turn away every enqueue and claim of the queue for the whole migration,
-- also the calls that never touch it. The base is a cold bucket (enqueue:
-- dq_cold_preread), itself named in Lua (docs/CONTRACT.md), so the name
-- is in the queue's hash tag and slot. (Claim no longer touches one: it
-- reads `tasks` after its acks with redis.pcall instead, review RS.)
local function dq_touch_new(base)
    local p = base .. '.'
    while redis.call('EXISTS', p) == 1 do p = p .. '_' end
end

-- Read, before a call's first write, every bucket dq_cold_store may write
-- for it: cnt[ws] = the most tasks the call may store in window ws. On a
-- MIGRATING slot (Redis Cluster) the first touch of a key not on this node
-- stops the script; a bucket is not a declared key, so the stop comes
-- here, with nothing written, and not after the hot tasks were (review
-- RP, finding 2). One HLEN per window; when the bucket may fill (it is
-- then sealed: renamed to a new name, and opened again under its own),
-- one EXISTS of a name no bucket has: a new key, as the seal touches.
-- Returns the lengths read (lens[ws]) for dq_cold_store.
local function dq_cold_preread(idx, cnt)
    local lens = {}
    for ws, c in pairs(cnt) do
        local key = idx .. ':' .. string.format('%d', ws)
        local len = redis.call('HLEN', key)
        lens[ws] = len
        if len + c >= DQ_COLD_BUCKET then dq_touch_new(key) end
    end
    return lens
end

-- Promote due-soon buckets (window start <= now + DQ_COLD_AFTER_MS), at
-- most DQ_COLD_PROMOTE of them, into tasks/eta: dq_cold_due reads them,
-- dq_cold_promote writes them. Claim calls dq_cold_due before its first
-- write: a bucket is not a declared key, and on a MIGRATING slot (Redis
-- Cluster) the first touch of a key not on this node stops the script,
-- its writes kept (review RP, finding 3). A bucket not on this node (one
-- the reshard moved first) is left for later (redis.pcall: no stop);
-- promotion goes on when the slot is stable. Returns the plan: the window
-- start of the earliest bucket left (nil: the tier is empty), the
-- buckets read, and moved = true when a due bucket was not on the node.
-- The common call (nothing to promote) is one ZRANGE.
local function dq_cold_due(idx, now)
    local first = redis.call('ZRANGE', idx, '0', '0', 'WITHSCORES')
    if not first[2] then return { ws = nil } end
    if tonumber(first[2]) > now + DQ_COLD_AFTER_MS then
        return { ws = tonumber(first[2]) }
    end
    -- the first DQ_COLD_PROMOTE + 1 buckets: the one after those promoted
    -- is known without reading the index again after its ZREM (a ZREM
    -- that empties the index deletes it: a read then stops the script
    -- on a MIGRATING slot)
    local bs = redis.call('ZRANGE', idx, '0', DQ_COLD_PROMOTE,
                          'WITHSCORES')
    local plan = { ws = nil, kvs = {}, keys = {}, ms = {}, wss = {} }
    for b = 1, #bs, 2 do
        local ws = tonumber(bs[b + 1])
        local kv = nil
        if #plan.keys < DQ_COLD_PROMOTE
           and ws <= now + DQ_COLD_AFTER_MS then
            local key = idx .. ':' .. bs[b]
            kv = dq_routed(redis.pcall('HGETALL', key))
            if not kv then
                -- not on this node: look again in a second (not at once:
                -- no busy loop while the reshard goes on)
                kv = nil
                ws = now + DQ_COLD_AFTER_MS + DQ_MIGRATING_RETRY_MS
                plan.moved = true
            else
                local k = #plan.keys + 1
                plan.keys[k], plan.ms[k], plan.kvs[k], plan.wss[k] =
                    key, bs[b], kv, ws
            end
        end
        if not kv then
            plan.ws = ws
            break
        end
    end
    return plan
end

-- Write the plan of dq_cold_due. Returns the window start of the earliest
-- bucket left (nil: the tier is empty) and the number of tasks promoted.
local function dq_cold_promote(k_tasks, k_eta, k_stats, idx, plan)
    if not plan.keys then return plan.ws, 0 end
    local hs, zs = {}, {}
    for b = 1, #plan.keys do
        local kv, ws = plan.kvs[b], plan.wss[b]
        for j = 1, #kv, 2 do
            local v = kv[j + 1]
            hs[#hs + 1] = kv[j]
            hs[#hs + 1] = string.sub(v, 5)
            zs[#zs + 1] = ws + (tonumber(string.sub(v, 1, 4)) or 0)
            zs[#zs + 1] = kv[j]
        end
    end
    local n = #hs / 2
    if n > 0 then
        redis.call('HSET', k_tasks, unpack(hs))
        redis.call('ZADD', k_eta, unpack(zs))
        redis.call('HINCRBY', k_stats, 'cold', -n)
        redis.call('HINCRBY', k_stats, 'promoted', n)
    end
    if #plan.keys > 0 then
        redis.call('DEL', unpack(plan.keys))
        redis.call('ZREM', idx, unpack(plan.ms))
    end
    return plan.ws, n
end

-- ms until claim must look at the tier again (0: promote now), given the
-- window start dq_cold_promote returned; nil when the tier is empty.
local function dq_cold_next(ws, now)
    if ws == nil then return nil end
    local d = ws - DQ_COLD_AFTER_MS - now
    if d < 0 then d = 0 end
    return d
end

-- Remove one task by id from the tier: 1 found (removed), 0 not. An
-- operator path (no index by id): one HDEL per bucket, ~8,000 buckets for
-- 1,000,000 tasks over a day (~10 ms). from = nil: every bucket in this
-- call; else only buckets whose window starts at or after from, whole
-- windows, about DQ_COLD_SCAN buckets a call (one window of more is done
-- whole), then -(the window start to go on from) while windows remain:
-- the caller calls again with it (promotion and enqueue in between change
-- nothing for the id looked for: it is in a bucket not yet looked at).
local DQ_COLD_SCAN = 1000
local function dq_cold_remove_id(idx, k_stats, id, from)
    local ms, nxt
    if not from then
        ms = redis.call('ZRANGE', idx, 0, -1, 'WITHSCORES')
    else
        ms = redis.call('ZRANGEBYSCORE', idx, from, '+inf', 'WITHSCORES',
                        'LIMIT', 0, DQ_COLD_SCAN)
        if #ms == 2 * DQ_COLD_SCAN then
            local last = ms[#ms]
            if ms[2] == last then
                -- one window of more buckets than that: all of it now
                ms = redis.call('ZRANGEBYSCORE', idx, last, last,
                                'WITHSCORES')
                nxt = tonumber(last) + 1
            else
                -- the last window may go on past the limit: next call
                while ms[#ms] == last do
                    ms[#ms] = nil
                    ms[#ms] = nil
                end
                nxt = tonumber(last)
            end
        end
    end
    for i = 1, #ms, 2 do
        local key = idx .. ':' .. ms[i]
        -- on a MIGRATING slot a bucket the reshard moved first is not on
        -- this node: refused before anything is written (the client
        -- retries a TRYAGAIN), not stopped with a "non local key"
        local got = dq_routed(redis.pcall('HDEL', key, id))
        if not got then
            return redis.error_reply('TRYAGAIN remove: a cold bucket of '
                .. 'the queue is not on this node (its slot is migrating)')
        end
        if got == 1 then
            -- the HDEL that emptied the bucket deleted it, and on a
            -- MIGRATING slot Redis 7.0 refuses to touch it then: gone
            -- as well (was a stop here, the task removed, its index entry
            -- and the tier's count left: review R6, t/07)
            local left = dq_routed(redis.pcall('EXISTS', key))
            if not left or left == 0 then
                redis.call('ZREM', idx, ms[i])
            end
            redis.call('HINCRBY', k_stats, 'cold', -1)
            return 1
        end
    end
    if nxt then return -nxt end
    return 0
end

-- What a bulk remove takes from the tier, read before the call's first
-- write: whole buckets, earliest first, up to max tasks (the last one may
-- be a part: its first fields). On a MIGRATING slot (Redis Cluster) a
-- bucket the reshard moved first is not on this node: then moved = true
-- and the caller refuses the call with nothing written; and the index is
-- read once, here: a ZREM that empties it deletes it, and a read of it
-- after that stopped the script, the tasks removed, "deleted" not counted
-- (review R6, t/07). Cold tasks have no name, state or error to clean.
-- Returns { ms = index members, keys = bucket keys, n = tasks, part =
-- the ids of a last bucket taken in part (or nil), moved }.
local function dq_cold_remove_plan(idx, max)
    local plan = { ms = {}, keys = {}, n = 0 }
    if max <= 0 then return plan end
    -- a bucket in the index holds a task at least (max entries are enough)
    local bs = redis.call('ZRANGE', idx, 0, max - 1)
    for b = 1, #bs do
        if plan.n >= max then break end
        local key = idx .. ':' .. bs[b]
        local len = dq_routed(redis.pcall('HLEN', key))
        if not len then
            plan.moved = true
            break
        end
        if plan.n + len > max then
            local kv = redis.call('HGETALL', key)
            plan.part = {}
            for j = 1, 2 * (max - plan.n), 2 do
                plan.part[#plan.part + 1] = kv[j]
            end
            plan.partkey = key
            plan.n = max
            break
        end
        plan.ms[#plan.ms + 1] = bs[b]
        plan.keys[#plan.keys + 1] = key
        plan.n = plan.n + len
    end
    return plan
end

-- Remove what dq_cold_remove_plan read: the number of tasks removed. One
-- variadic DEL and one ZREM of the index (nothing reads it after).
local function dq_cold_remove_some(idx, k_stats, plan)
    if #plan.keys > 0 then
        redis.call('DEL', unpack(plan.keys))
        redis.call('ZREM', idx, unpack(plan.ms))
    end
    if plan.part then redis.call('HDEL', plan.partkey, unpack(plan.part)) end
    if plan.n > 0 then redis.call('HINCRBY', k_stats, 'cold', -plan.n) end
    return plan.n
end

-- Whether the tier holds anything (forget refuses then).
local function dq_cold_exists(idx)
    return redis.call('EXISTS', idx) == 1
end
