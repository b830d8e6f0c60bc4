-- prelude: lib/gen_scripts.sh puts this in front of every script (after
-- the script's own "#!lua" line, if it has one), so its helpers are locals
-- of each script's chunk (Redis forbids globals). This is the one home of
-- the state layout, the lease member layout, the wake push and the
-- "slot freed" wake; no script parses or builds them itself.

-- Most ids handed to one variadic Redis call: Lua's unpack() is limited by
-- the C stack (LUAI_MAXCSTACK 8000 in Redis' Lua), and a script's work per
-- call is bounded by this too (every loop takes at most DQ_CHUNK items).
local DQ_CHUNK = 1000

-- A numeric argument: the number, or nil when it is absent, not a number
-- or not finite (Lua's tonumber takes "nan", "inf" and "1e999"; any of
-- them would pass a comparison and fail a ZADD after earlier writes).
-- Every script checks all its numeric arguments with it before its first
-- write (dq_now writes: the checks come before it).
local function dq_num(s)
    local v = tonumber(s)
    if v == nil or v ~= v or v == math.huge or v == -math.huge then
        return nil
    end
    return v
end

-- Redis TIME in ms, never behind the last now of this queue (kept in the
-- stats hash `stats`: a failover to a replica whose clock lags) unless that
-- one was over 60 s ahead (a clock error since corrected: step back rather
-- than stall every countdown and lease; the gap record below is cleared
-- then, it belongs to the wrong time line). The clock is written only when
-- it changes; a field that is not a number (hand edit, corruption) counts
-- as absent and is overwritten. A forward move of more than a second (a
-- quiet queue, or the host's clock stepped forward) is remembered as
-- "gap_from"/"gap_to", whichever script saw it first: claim uses it to
-- tell a clock jump from expired leases. A recorded gap is kept until
-- twice its length has passed after it (claim guards a jump for at most
-- one lease period, and takes a gap for a jump only when it is longer than
-- half a lease period), unless a larger gap replaces it: a later small gap
-- cannot hide a jump whose window is still open.
local function dq_now(stats)
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local clock = dq_num(redis.call('HGET', stats, 'clock')) or 0
    if clock >= now and clock - now <= 60000 then return clock end
    -- written only when it moves (forward, or back after a clock error):
    -- several calls in one ms share the stored value
    if clock > now then
        redis.call('HSET', stats, 'clock', now)
        redis.call('HDEL', stats, 'gap_from', 'gap_to')
    elseif clock > 0 and now - clock > 1000 then
        local g = redis.call('HMGET', stats, 'gap_from', 'gap_to')
        local gf, gt = dq_num(g[1]), dq_num(g[2])
        if gf and gt and now - clock < gt - gf
           and now < gt + 2 * (gt - gf) then
            redis.call('HSET', stats, 'clock', now)   -- the open one stays
        else
            redis.call('HSET', stats, 'clock', now, 'gap_from', clock,
                       'gap_to', now)
        end
    else
        redis.call('HSET', stats, 'clock', now)
    end
    return now
end

-- A task's state (hash `state`, created by its first claim):
--   "runs:retries:first_run_ms:failed_ms:claim[:name]"
-- runs: runs that reached the function (X-AppEngine-TaskExecutionCount);
-- retries: failed attempts, lease expiries included (TaskRetryCount; what
-- retry_limit and the backoff count); first_run_ms: the first claim that
-- was not given back; failed_ms: when the last failed attempt was judged
-- (0 none; the age limit is checked at that moment); claim: the claim id
-- of the last claim (the worker's random id: the fencing token); name:
-- kept by bury for requeue. Unreadable: all zero. A 4-field state of an
-- older version ("execs:retries:first_run_ms:claims") still reads.
local function dq_state(s)
    if s then
        local e, r, f, x, c, nm = string.match(s,
            '^(%d+):(%d+):(%d+):(%d+):([%w_-]*):?([%w_-]*)$')
        if e then
            return tonumber(e), tonumber(r), tonumber(f), tonumber(x), c, nm
        end
        e, r, f, c = string.match(s, '^(%d+):(%d+):(%d+):(%d+)$')
        if e then
            return tonumber(e), tonumber(r), tonumber(f), 0, c, ''
        end
    end
    return 0, 0, 0, 0, '', ''
end

local function dq_state_str(e, r, f, x, c, nm)
    if nm and nm ~= '' then
        return e .. ':' .. r .. ':' .. f .. ':' .. x .. ':' .. c .. ':' .. nm
    end
    return e .. ':' .. r .. ':' .. f .. ':' .. x .. ':' .. c
end

-- A lease (zset `lease`) is the member "id|claim" scored by its deadline:
-- only the holder of that claim id can name it, and a claim id is never
-- issued twice (the worker draws 128 random bits), so no rollback of
-- Redis data can make a stale holder's call match a newer lease.
local function dq_member(id, claim)
    return id .. '|' .. claim
end

local function dq_member_id(m)
    return string.match(m, '^(.*)|[^|]*$') or m
end

-- One wake token for a sleeping worker (the list never holds more than 8).
local function dq_wake(wake)
    if redis.call('LPUSH', wake, '1') > 8 then
        redis.call('LTRIM', wake, 0, 7)
    end
end

-- A lease slot was freed under max_concurrent: if a claim was held back by
-- it (conf "waiting", set by claim), wake one sleeping worker to take it.
local function dq_slot_freed(conf, wake)
    if redis.call('HDEL', conf, 'waiting') == 1 then dq_wake(wake) end
end

-- The error text retry and bury store: whole, except when Redis is at
-- maxmemory (both run there, allow-oom, so that no result is refused):
-- then cut to DQ_OOM_ERROR bytes, and the growth of one call is this and
-- a few bytes of state. INFO is read only by these two (failed attempts).
local DQ_OOM_ERROR = 64
local function dq_error_text(s)
    local info = redis.call('INFO', 'memory')
    local max = tonumber(string.match(info, '\nmaxmemory:(%d+)'))
    local used = tonumber(string.match(info, '\nused_memory:(%d+)'))
    if max and max > 0 and used and used >= max and #s > DQ_OOM_ERROR then
        return string.sub(s, 1, DQ_OOM_ERROR)
    end
    return s
end

-- App Engine's backoff before attempt retries + 1: the same arithmetic as
-- dq_backoff_ms (lib/dq_retry.c; t/unit/test_scripts.c checks that both
-- agree), used for expired leases, which no worker judges.
local function dq_backoff(min, max, dbl, retries)
    if min <= 0 then return 0 end
    if max < min then max = min end
    if dbl < 0 then dbl = 0 end
    local k = 0
    if retries > 1 then k = retries - 1 end
    local step = min
    local d = 0
    while d < k and d < dbl do
        if step > math.floor(max / 2) then return max end
        step = step * 2
        d = d + 1
    end
    if step >= max then return max end
    if k <= dbl then return step end
    if k - dbl >= math.floor(max / step) then return max end
    d = step * (1 + (k - dbl))
    if d < max then return d end
    return max
end

-- Give back leases (members ms of tasks ids) without charging an attempt:
-- due again at now + delay. A task that never ran (no failed attempt, no
-- run) forgets the first-run time this claim gave it. Returns how many
-- were given back (members not leased any more are skipped); got, if
-- given, gets got[member] = true for each.
local function dq_release(k_eta, k_lease, k_state, ids, ms, now, delay, got)
    if #ids == 0 then return 0 end
    local leased = redis.call('ZMSCORE', k_lease, unpack(ms))
    local rid, rm = {}, {}
    for i = 1, #ids do
        if leased[i] then
            rid[#rid + 1] = ids[i]
            rm[#rm + 1] = ms[i]
            if got then got[ms[i]] = true end
        end
    end
    if #rid == 0 then return 0 end
    local states = redis.call('HMGET', k_state, unpack(rid))
    local st, zs = {}, {}
    local at = now + delay
    for i = 1, #rid do
        local e, r, f, x = dq_state(states[i])
        if e == 0 and r == 0 then f = 0 end
        st[#st + 1] = rid[i]
        st[#st + 1] = dq_state_str(e, r, f, x, '')  -- the claim ended
        zs[#zs + 1] = at
        zs[#zs + 1] = rid[i]
    end
    redis.call('ZREM', k_lease, unpack(rm))
    redis.call('HSET', k_state, unpack(st))
    redis.call('ZADD', k_eta, unpack(zs))
    return #rid
end
