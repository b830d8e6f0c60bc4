#!lua flags=allow-oom
-- extend: heartbeat 1..n leases to now + lease_ms. Runs at maxmemory too
-- (allow-oom): it only moves scores.
-- KEYS: 1 leases, 2 stats
-- ARGV: 1 lease_ms, 2 n, then per task 3 values: id, claim id,
--       first_run_ms (the lease member "id|claim|first_run_ms")
-- Reply: { 1 extended | 0 fenced, ... } one per task
local lease_ms = dq_num(ARGV[1])
local n = dq_num(ARGV[2])
if not lease_ms or not n or n < 1 or n > DQ_CHUNK or #ARGV ~= 2 + n * 3 then
    return redis.error_reply('ERR extend: bad arguments')
end
local now = dq_now(KEYS[2])
local ms = {}
for i = 1, n do
    local j = i * 3
    ms[i] = dq_member(ARGV[j], ARGV[j + 1], ARGV[j + 2])
end
local leased = redis.call('ZMSCORE', KEYS[1], unpack(ms))
local reply, zs = {}, {}
local deadline = now + lease_ms
for i = 1, n do
    if leased[i] then
        zs[#zs + 1] = deadline
        zs[#zs + 1] = ms[i]
        reply[i] = 1
    else
        reply[i] = 0
    end
end
if #zs > 0 then redis.call('ZADD', KEYS[1], 'XX', unpack(zs)) end
return reply
