-- prelude: lib/gen_scripts.sh puts this in front of every script, so its
-- helpers are locals of each script's chunk (Redis forbids globals).

-- Redis TIME in ms, never behind the last now of this queue (kept in the
-- stats hash `stats`: a failover to a replica whose clock lags) unless that
-- one was over 60 s ahead (a clock error since corrected: step back rather
-- than stall every countdown and lease). The clock is written only when
-- it changes.
local function dq_now(stats)
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local clock = tonumber(redis.call('HGET', stats, 'clock') or '0')
    if clock >= now and clock - now <= 60000 then return clock end
    -- written only when it moves (forward, or back after a clock error):
    -- several calls in one ms share the stored value
    redis.call('HSET', stats, 'clock', now)
    return now
end

-- A task's state "execs:retries:first_run_ms:claims" as four strings
-- (nothing if malformed); claims is the fencing token.
local function dq_state(s)
    return string.match(s, '^(%d+):(%d+):(%d+):(%d+)$')
end

