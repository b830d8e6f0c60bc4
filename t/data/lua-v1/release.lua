#!lua flags=allow-oom
-- release: give back 1..n leases of tasks that never reached their
-- function (graceful stop, a function this worker cannot run) WITHOUT
-- charging an attempt: due again at now + delay_ms, retries and runs
-- unchanged, and a task that never ran forgets the first-run time its
-- claim gave it. Runs at maxmemory too (allow-oom).
-- KEYS: 1 eta, 2 leases, 3 state, 4 stats, 5 wake, 6 conf, 7 unrunnable
-- ARGV: 1 n, 2 delay_ms, 3 why ("stop" | "unrunnable" |
--       "unrunnable:<function>": the stats counter "released" or
--       "unrunnable" counts them; with a function, the hash `unrunnable`
--       keeps "count:last_ms" per function, at most 64 functions, the
--       rest counted under "(others)"), then per task 2 values: id,
--       claim id
-- Reply: { 1 released | 0 fenced, ... } one per task
local n = dq_num(ARGV[1])
local delay = dq_num(ARGV[2])
if not n or n < 1 or n > DQ_CHUNK or not delay or #ARGV ~= 3 + n * 2 then
    return redis.error_reply('ERR release: bad arguments')
end
local now = dq_now(KEYS[4])
if delay < 0 then delay = 0 end
local ids, ms, seen = {}, {}, {}
for i = 1, n do
    local m = dq_member(ARGV[2 + i * 2], ARGV[3 + i * 2])
    if not seen[m] then
        seen[m] = true
        ids[#ids + 1] = ARGV[2 + i * 2]
        ms[#ms + 1] = m
    end
end
local first = false
if delay > 0 then first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES') end
local got = {}
local released = dq_release(KEYS[1], KEYS[2], KEYS[3], ids, ms, now, delay,
                            got)
local reply = {}
for i = 1, n do
    local m = dq_member(ARGV[2 + i * 2], ARGV[3 + i * 2])
    if got[m] then reply[i] = 1 else reply[i] = 0 end
    got[m] = nil
end
if released > 0 then
    local fn = string.match(ARGV[3], '^unrunnable:(.+)$')
    if fn and KEYS[7] then
        local f = fn
        local had = redis.call('HGET', KEYS[7], f)
        if not had and redis.call('HLEN', KEYS[7]) >= 64 then
            f = '(others)'
            had = redis.call('HGET', KEYS[7], f)
        end
        local cnt = tonumber(string.match(had or '', '^(%d+):')) or 0
        redis.call('HSET', KEYS[7], f, (cnt + released) .. ':' .. now)
    end
    if fn or ARGV[3] == 'unrunnable' then
        redis.call('HINCRBY', KEYS[4], 'unrunnable', released)
    else
        redis.call('HINCRBY', KEYS[4], 'released', released)
    end
    -- due now, or earlier than everything that waited: a sleeper must know
    if not first or not first[2] or now + delay < tonumber(first[2]) then
        dq_wake(KEYS[5])
    end
    dq_slot_freed(KEYS[6], KEYS[5])
end
return reply
