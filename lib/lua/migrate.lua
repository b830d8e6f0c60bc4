-- migrate: move a queue written by contract v1 (keys "dq:{q}:*") to the
-- v2 keys ("dq2:{q}:*"), in bounded atomic steps; safe to run at any time,
-- again and again (what was moved is gone from v1), and while v1 workers
-- and producers still run (each step is one script: v1 scripts see either
-- the task in v1 or nothing).
-- KEYS (v2): 1 tasks, 2 eta, 3 leases, 4 dead, 5 errors, 6 names, 7 stats,
--       8 wake, 9 conf, 10 unrunnable
-- KEYS (v1): 11 tasks, 12 eta, 13 leases ("id|claim"), 14 state, 15 dead,
--       16 errors, 17 names, 18 stats, 19 conf, 20 unrunnable, 21 lease
--       (bare ids: workers before claim ids), 22 wake, 23 bucket
-- ARGV: 1 cursor ("0" to start; then the one returned), 2 max (1..1000:
--       tasks moved and names looked at per step)
-- Reply: { cursor ("0": nothing more to do now), tasks moved by this step,
--          v1 tasks left (waiting, dead or leased in v1) }
-- Each step, in order:
--  - counters (v1 stats fields other than the clock and its gap record)
--    are added to v2's and deleted from v1 (a v1 worker still counting
--    adds more, moved by a later step); v2's clock is never behind v1's;
--  - conf fields v2 lacks are copied (v1 workers still read v1's, deleted
--    once v1 holds no task); unrunnable counts are added up;
--  - expired v1 leases (both v1 lease sets) are taken back as v1 claim
--    did: a failed attempt (retries + 1, failed_ms now, "lease expired"
--    unless an error is kept), due after the applied conf's backoff (none
--    applied: due now); a lease not expired stays: its v1 worker runs the
--    task and acks it on v1;
--  - waiting/delayed (v1 eta) and dead tasks move with their ETA or time
--    of death, error, and state (as the v2 state prefix, the envelope
--    kept as it is: version 1 envelopes are still read); a task whose id
--    v2 already holds (a client's idempotent id enqueued on both) keeps
--    v2's copy;
--  - names (live, tombstoned, and keyed ids "#id") move with the later of
--    both windows, except the names of tasks under unexpired v1 leases
--    (their v1 ack tombstones them on v1; a later step moves that);
--  - when v1 holds no task and no name any more: its state, errors, conf,
--    unrunnable, stats, wake list and rate bucket are deleted.
local cur = dq_num(ARGV[1] or '0')
local max = dq_num(ARGV[2])
if not cur or cur < 0 or cur ~= math.floor(cur) or not max or max < 1
   or max > DQ_CHUNK then
    return redis.error_reply('ERR migrate: bad arguments')
end
local V1 = { tasks = KEYS[11], eta = KEYS[12], leases = KEYS[13],
             state = KEYS[14], dead = KEYS[15], errors = KEYS[16],
             names = KEYS[17], stats = KEYS[18], conf = KEYS[19],
             unrunnable = KEYS[20], lease = KEYS[21], wake = KEYS[22],
             bucket = KEYS[23] }
local function v1_left()
    return redis.call('ZCARD', V1.eta) + redis.call('ZCARD', V1.leases)
           + redis.call('ZCARD', V1.lease) + redis.call('ZCARD', V1.dead)
end
if v1_left() == 0 and redis.call('EXISTS', V1.names, V1.stats, V1.conf,
                                 V1.unrunnable, V1.tasks, V1.state,
                                 V1.errors, V1.wake, V1.bucket) == 0 then
    return { '0', 0, 0 }       -- nothing of v1 here: no write at all
end
local now = dq_now(KEYS[7])
local moved = 0
local more = false

-- counters and the clock
local st = redis.call('HGETALL', V1.stats)
local del = {}
for i = 1, #st, 2 do
    local f, v = st[i], st[i + 1]
    if f == 'clock' then
        local c = dq_num(v)
        local c2 = dq_num(redis.call('HGET', KEYS[7], 'clock'))
        if c and (not c2 or c > c2) and c - now <= 60000 then
            redis.call('HSET', KEYS[7], 'clock', c)
        end
    elseif f ~= 'gap_from' and f ~= 'gap_to' and f ~= 'jump_seen' then
        if string.match(v, '^%-?%d+$') then
            redis.call('HINCRBY', KEYS[7], f, v)
        end
        del[#del + 1] = f
    end
end
if #del > 0 then redis.call('HDEL', V1.stats, unpack(del)) end

-- conf (copied: v1 workers still read it) and unrunnable (added up)
local cf = redis.call('HGETALL', V1.conf)
for i = 1, #cf, 2 do
    if cf[i] ~= 'waiting' then redis.call('HSETNX', KEYS[9], cf[i], cf[i + 1]) end
end
local un = redis.call('HGETALL', V1.unrunnable)
for i = 1, #un, 2 do
    local c1, t1 = string.match(un[i + 1], '^(%d+):(%d+)$')
    if c1 then
        local c2, t2 = string.match(redis.call('HGET', KEYS[10], un[i]) or '',
                                    '^(%d+):(%d+)$')
        local n2, tm = tonumber(c1), tonumber(t1)
        if c2 then
            n2 = n2 + tonumber(c2)
            if tonumber(t2) > tm then tm = tonumber(t2) end
        end
        redis.call('HSET', KEYS[10], un[i], n2 .. ':' .. tm)
    end
end
if #un > 0 then redis.call('DEL', V1.unrunnable) end

-- a v1 state: runs, retries, first_run_ms, failed_ms, claim, name
local function v1_state(s)
    if s then
        local e, r, f, x, c, nm = string.match(s,
            '^(%d+):(%d+):(%d+):(%d+):([%w_-]*):?([%w_-]*)$')
        if e then
            return tonumber(e), tonumber(r), tonumber(f), tonumber(x), c, nm
        end
        e, r, f = string.match(s, '^(%d+):(%d+):(%d+):%d+$')
        if e then return tonumber(e), tonumber(r), tonumber(f), 0, '', '' end
    end
    return 0, 0, 0, 0, '', ''
end

-- the backoff of an expired lease: the applied conf's (v1 claim used the
-- worker's own when none was applied; the migration has none: due now)
local bo = redis.call('HMGET', KEYS[9], 'cfg', 'min_backoff_ms',
                      'max_backoff_ms', 'max_doublings')

-- move tasks ids (zset `from` of v1, scores) into v2's zset `to`;
-- expired: leases taken back (a failed attempt)
local function move(ids, scores, from, members, to, expired)
    if #ids == 0 then return end
    local vals = redis.call('HMGET', V1.tasks, unpack(ids))
    local sts = redis.call('HMGET', V1.state, unpack(ids))
    local errs = redis.call('HMGET', V1.errors, unpack(ids))
    local have = redis.call('HMGET', KEYS[1], unpack(ids))
    local tv, zs, es = {}, {}, {}
    for i = 1, #ids do
        local id = ids[i]
        if vals[i] and not have[i] then
            local e, r, f, x, c, nm = v1_state(sts[i])
            local at = scores[i]
            local err = errs[i]
            if expired then
                r = r + 1
                x = now
                if f == 0 then f = now end
                at = now
                if bo[1] then
                    at = now + dq_backoff(dq_num(bo[2]) or 0,
                                          dq_num(bo[3]) or 0,
                                          dq_num(bo[4]) or 0, r)
                end
                if not err then err = 'lease expired' end
            end
            if e == 0 and r == 0 and x == 0 then f = 0 end
            tv[#tv + 1] = id
            tv[#tv + 1] = dq_join(e, r, f, x, c, nm, vals[i])
            zs[#zs + 1] = at
            zs[#zs + 1] = id
            if err then
                es[#es + 1] = id
                es[#es + 1] = err
            end
            moved = moved + 1
        end
    end
    redis.call('ZREM', from, unpack(members))
    redis.call('HDEL', V1.tasks, unpack(ids))
    redis.call('HDEL', V1.state, unpack(ids))
    redis.call('HDEL', V1.errors, unpack(ids))
    if #tv > 0 then
        redis.call('HSET', KEYS[1], unpack(tv))
        redis.call('ZADD', to, unpack(zs))
    end
    if #es > 0 then redis.call('HSET', KEYS[5], unpack(es)) end
end

local budget = max
-- 1. expired v1 leases, both sets
for _, k in ipairs({ V1.leases, V1.lease }) do
    if budget > 0 then
        local ex = redis.call('ZRANGEBYSCORE', k, '-inf', now, 'LIMIT', 0,
                              budget)
        local ids, sc = {}, {}
        for i = 1, #ex do
            ids[i] = string.match(ex[i], '^(.*)|[^|]*$') or ex[i]
            sc[i] = now
        end
        move(ids, sc, k, ex, KEYS[2], true)
        if #ex > 0 then
            redis.call('HINCRBY', KEYS[7], 'reclaimed', #ex)
        end
        budget = budget - #ex
    end
end
-- 2. waiting/delayed, then dead
for _, p in ipairs({ { V1.eta, KEYS[2] }, { V1.dead, KEYS[4] } }) do
    if budget > 0 then
        local z = redis.call('ZRANGE', p[1], 0, budget - 1, 'WITHSCORES')
        local ids, sc = {}, {}
        for i = 1, #z, 2 do
            ids[#ids + 1] = z[i]
            sc[#sc + 1] = tonumber(z[i + 1])
        end
        move(ids, sc, p[1], ids, p[2], false)
        budget = budget - #ids
    end
end
if budget <= 0 then more = true end

-- 3. names, from the offset the cursor carries (cursor = 1 + the number
-- of names skipped before: those of tasks still leased under v1 stay
-- until that lease ends)
local off = 0
if cur > 0 then off = cur - 1 end
local held = {}
local lz = redis.call('ZRANGE', V1.leases, 0, DQ_CHUNK - 1)
local lo = redis.call('ZRANGE', V1.lease, 0, DQ_CHUNK - 1)
local lids = {}
for i = 1, #lz do lids[#lids + 1] = string.match(lz[i], '^(.*)|[^|]*$') or lz[i] end
for i = 1, #lo do lids[#lids + 1] = lo[i] end
if #lids > 0 then
    local envs = redis.call('HMGET', V1.tasks, unpack(lids))
    for i = 1, #lids do
        local _, nm = dq_env_func_name(envs[i])
        if nm then held[nm] = true end
        held['#' .. lids[i]] = true
    end
end
local nz = redis.call('ZRANGE', V1.names, off, off + max - 1, 'WITHSCORES')
local skip, gone, add = 0, {}, {}
for i = 1, #nz, 2 do
    if held[nz[i]] then
        skip = skip + 1
    else
        add[#add + 1] = nz[i + 1]
        add[#add + 1] = nz[i]
        gone[#gone + 1] = nz[i]
    end
end
if #add > 0 then
    redis.call('ZADD', KEYS[6], 'GT', unpack(add))
    redis.call('ZREM', V1.names, unpack(gone))
end
local nxt = 0
if #nz / 2 == max then
    nxt = off + skip + 1                    -- the names go on
elseif more then
    nxt = off + 1                           -- the tasks go on
end
if moved > 0 then dq_wake(KEYS[8]) end

-- 4. nothing of v1 left: its leftovers go
local left = v1_left()
if left == 0 and nxt == 0 and redis.call('ZCARD', V1.names) == 0 then
    redis.call('DEL', V1.tasks, V1.state, V1.errors, V1.conf, V1.stats,
               V1.wake, V1.bucket, V1.unrunnable)
end
return { tostring(nxt), moved, left }
