-- extend: heartbeat 1..n leases to now + lease_ms.
-- KEYS: 1 lease, 2 state, 3 stats
-- ARGV: 1 lease_ms, 2 n, then per task 2 values: id, token
-- Reply: { 1 extended | 0 fenced, ... } one per task
local now = dq_now(KEYS[3])

local lease_ms = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
if not lease_ms or not n or n < 1 or #ARGV ~= 2 + n * 2 then
    return redis.error_reply('ERR extend: bad arguments')
end
local reply = {}
for i = 0, n - 1 do
    local id = ARGV[3 + i * 2]
    local token = tonumber(ARGV[4 + i * 2])
    local ok = 0
    if redis.call('ZSCORE', KEYS[1], id) then
        local s = redis.call('HGET', KEYS[2], id)
        local c = s and tonumber(string.match(s, ':(%d+)$'))
        if c and c == token then
            redis.call('ZADD', KEYS[1], now + lease_ms, id)
            ok = 1
        end
    end
    reply[#reply + 1] = ok
end
return reply
