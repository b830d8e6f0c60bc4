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
--    adds more, moved by a later step); v2's clock is left to dq_now (a
--    plain raise would expire live v2 leases without a gap record);
--  - conf: copied ONCE, at the first step (v2 stats "v1_conf" marks it),
--    and only when v2 has no settings of its own, so a later v2 resume or
--    config clear stays (v1 workers still read v1's, deleted once v1 holds
--    no task); unrunnable counts are added up;
--  - expired v1 leases (both v1 lease sets) are taken back as v1 claim
--    did: a failed attempt (retries + 1, failed_ms now, "lease expired"
--    unless an error is kept), due after the applied conf's backoff (none
--    applied: due now); a lease not expired stays: its v1 worker runs the
--    task and acks it on v1. A forward clock step would make live leases
--    look expired: while a gap recorded by v1 or v2 (prelude dq_now) is
--    open (twice its length after it: every gap claim would take for a
--    jump), only leases expired before it are taken back;
--  - waiting/delayed (v1 eta) and dead tasks move with their ETA or time
--    of death, error, and state (as the v2 state prefix, the envelope
--    kept as it is: version 1 envelopes are still read); a task with an
--    error keeps failed_ms > 0 (its v2 claim reports history, its ack
--    deletes the error); a task whose id v2 already holds (a client's
--    idempotent id enqueued on both) keeps v2's copy;
--  - a live task's name ("+inf") and keyed id ("#id") move WITH the task,
--    in the same step, never apart; a task that v2 would have refused is
--    not made live twice: its keyed id taken in v2 (v2 holds or ran that
--    id) -> dropped as the duplicate it is (stats "v1_duplicates"); its
--    name held or tombstoned in v2 -> buried in v2's dead set with an
--    error saying so (two tasks of one name: nothing is lost, an operator
--    decides: requeue it once the name is free, or delete it);
--  - tombstoned names and keyed ids of tasks v1 no longer holds move with
--    the later of both windows (ZADD GT), a bounded number per step;
--  - when v1 holds no task any more: its live names (then no task's) and
--    its state, errors, conf, unrunnable, stats, wake list and rate bucket
--    are deleted.
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
local now, gaps = dq_now(KEYS[7])
local moved = 0
local more = false

-- counters; the v1 clock and gap record stay in v1 (read below)
local st = redis.call('HGETALL', V1.stats)
local del = {}
local v1gap = {}
for i = 1, #st, 2 do
    local f, v = st[i], st[i + 1]
    if f == 'gap_from' or f == 'gap_to' then
        v1gap[f] = v
    elseif f ~= 'clock' and f ~= 'jump_seen' then
        if string.match(v, '^%-?%d+$') then
            redis.call('HINCRBY', KEYS[7], f, v)
        end
        del[#del + 1] = f
    end
end
if #del > 0 then redis.call('HDEL', V1.stats, unpack(del)) end

-- conf: copied once (v1 workers still read it), only into a v2 queue
-- without settings of its own ("waiting" is a claim's transient flag);
-- unrunnable: added up
if redis.call('HSETNX', KEYS[7], 'v1_conf', now) == 1 then
    local mine = redis.call('HKEYS', KEYS[9])
    if #mine == 0 or (#mine == 1 and mine[1] == 'waiting') then
        local cf = redis.call('HGETALL', V1.conf)
        for i = 1, #cf, 2 do
            if cf[i] ~= 'waiting' then
                redis.call('HSET', KEYS[9], cf[i], cf[i + 1])
            end
        end
    end
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

-- taken in v2's names: live, or a tombstone still in its window
local function taken(sc)
    return sc and (sc == 'inf' or tonumber(sc) >= now)
end

-- move tasks ids (zset `from` of v1, scores) into v2's zset `to` (eta:
-- live, or dead); expired: leases taken back (a failed attempt). A live
-- task's name and keyed id go with it (see the head).
local dups = 0
local function move(ids, scores, from, members, to, expired)
    if #ids == 0 then return end
    local live = to ~= KEYS[4]
    local vals = redis.call('HMGET', V1.tasks, unpack(ids))
    local sts = redis.call('HMGET', V1.state, unpack(ids))
    local errs = redis.call('HMGET', V1.errors, unpack(ids))
    local have = redis.call('HMGET', KEYS[1], unpack(ids))
    local tv, zs, es, dz, n1, n2 = {}, {}, {}, {}, {}, {}
    local buried = 0
    for i = 1, #ids do
        local id = ids[i]
        if vals[i] then
            local _, en = dq_env_func_name(vals[i])
            local k1 = redis.call('ZSCORE', V1.names, '#' .. id)
            local s1 = en and redis.call('ZSCORE', V1.names, en)
            if k1 then
                n1[#n1 + 1] = '#' .. id
                n2[#n2 + 1] = k1
                n2[#n2 + 1] = '#' .. id
            end
            if s1 == 'inf' then n1[#n1 + 1] = en end
            local drop, clash = false, false
            if have[i] then
                drop = true                 -- v2 keeps its copy
            elseif live then
                if taken(redis.call('ZSCORE', KEYS[6], '#' .. id)) then
                    drop = true             -- v2 holds or ran that id
                    dups = dups + 1
                elseif en and taken(redis.call('ZSCORE', KEYS[6], en)) then
                    clash = true
                end
            end
            if not drop then
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
                if err and x == 0 then x = now end    -- history: see head
                if clash then
                    nm = en                 -- kept for requeue (as bury)
                    err = 'contract v1 migration: name ' .. en
                          .. ' is taken in contract v2 by another task'
                          .. ' (requeue this one once the name is free,'
                          .. ' or delete it)'
                    if x == 0 then x = now end
                    dz[#dz + 1] = now
                    dz[#dz + 1] = id
                    buried = buried + 1
                else
                    zs[#zs + 1] = at
                    zs[#zs + 1] = id
                    if live and s1 == 'inf' then
                        n2[#n2 + 1] = 'inf'
                        n2[#n2 + 1] = en
                    end
                end
                tv[#tv + 1] = id
                tv[#tv + 1] = dq_join(e, r, f, x, c, nm, vals[i])
                if err then
                    es[#es + 1] = id
                    es[#es + 1] = err
                end
                moved = moved + 1
            end
        end
    end
    redis.call('ZREM', from, unpack(members))
    redis.call('HDEL', V1.tasks, unpack(ids))
    redis.call('HDEL', V1.state, unpack(ids))
    redis.call('HDEL', V1.errors, unpack(ids))
    if #tv > 0 then redis.call('HSET', KEYS[1], unpack(tv)) end
    if #zs > 0 then redis.call('ZADD', to, unpack(zs)) end
    if #dz > 0 then
        redis.call('ZADD', KEYS[4], unpack(dz))
        redis.call('HINCRBY', KEYS[7], 'dead', buried)
    end
    if #es > 0 then redis.call('HSET', KEYS[5], unpack(es)) end
    if #n1 > 0 then redis.call('ZREM', V1.names, unpack(n1)) end
    if #n2 > 0 then redis.call('ZADD', KEYS[6], 'GT', unpack(n2)) end
end

-- the latest v1 lease deadline that may be taken back: now, or the start
-- of an open gap in v1's or v2's clock (a forward step: see the head)
local upto = now
local function guard(gf, gt)
    gf, gt = dq_num(gf), dq_num(gt)
    if gf and gt and gt > gf and now < gt + 2 * (gt - gf) and gf < upto then
        upto = gf
    end
end
guard(gaps[2], gaps[3])
guard(gaps[5], gaps[6])
guard(v1gap.gap_from, v1gap.gap_to)

local budget = max
-- 1. expired v1 leases, both sets
for _, k in ipairs({ V1.leases, V1.lease }) do
    if budget > 0 then
        local ex = redis.call('ZRANGEBYSCORE', k, '-inf', upto, 'LIMIT', 0,
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
if dups > 0 then redis.call('HINCRBY', KEYS[7], 'v1_duplicates', dups) end

-- 3. tombstones and keyed ids (never a live "+inf" name: those move with
-- their task), from the offset the cursor carries (cursor = 1 + the
-- number skipped before: the keyed ids of tasks v1 still holds, which
-- move with their task)
local off = 0
if cur > 0 then off = cur - 1 end
local nz = redis.call('ZRANGEBYSCORE', V1.names, '-inf', '(+inf',
                      'WITHSCORES', 'LIMIT', off, max)
local kid = {}
for i = 1, #nz, 2 do
    if string.byte(nz[i], 1) == 35 then              -- '#'
        kid[#kid + 1] = string.sub(nz[i], 2)
    end
end
local held = {}
if #kid > 0 then
    local hv = redis.call('HMGET', V1.tasks, unpack(kid))
    for j = 1, #kid do
        if hv[j] then held['#' .. kid[j]] = true end
    end
end
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
-- (live names left in v1 then belong to no task: a task and its name are
-- written in one script on both sides)
local left = v1_left()
if left == 0 and nxt == 0
   and redis.call('ZCOUNT', V1.names, '-inf', '(+inf') == 0 then
    redis.call('DEL', V1.tasks, V1.state, V1.errors, V1.conf, V1.stats,
               V1.wake, V1.bucket, V1.unrunnable, V1.names)
    redis.call('HDEL', KEYS[7], 'v1_conf')
end
return { tostring(nxt), moved, left }
