-- release: give back 1..n leases of tasks that never started (graceful
-- shutdown): due again now, the execution not counted (the fencing token,
-- "claims", still only grows).
-- KEYS: 1 eta, 2 lease, 3 state, 4 stats, 5 wake
-- ARGV: 1 n, then per task 2 values: id, token
-- Reply: { 1 released | 0 fenced, ... } one per task
local now = dq_now(KEYS[4])

local n = tonumber(ARGV[1])
if not n or n < 1 or #ARGV ~= 1 + n * 2 then
    return redis.error_reply('ERR release: bad arguments')
end
local reply = {}
local released = 0
for i = 0, n - 1 do
    local id = ARGV[2 + i * 2]
    local token = tonumber(ARGV[3 + i * 2])
    local ok = 0
    if redis.call('ZSCORE', KEYS[2], id) then
        local s = redis.call('HGET', KEYS[3], id)
        local e, r, f, c
        if s then e, r, f, c = dq_state(s) end
        if c and tonumber(c) == token then
            e = tonumber(e) - 1
            if e < 0 then e = 0 end
            redis.call('ZREM', KEYS[2], id)
            redis.call('HSET', KEYS[3], id, e .. ':' .. r .. ':' .. f .. ':' .. c)
            redis.call('ZADD', KEYS[1], now, id)
            ok = 1
            released = released + 1
        end
    end
    reply[#reply + 1] = ok
end
if released > 0 then
    redis.call('LPUSH', KEYS[5], '1')
    redis.call('LTRIM', KEYS[5], 0, 7)
end
return reply
