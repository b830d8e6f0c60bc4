-- ack: 1..n tasks done. Only a task still leased under the given token.
-- KEYS: 1 tasks, 2 lease, 3 state, 4 names, 5 stats, 6 errors, 7 conf,
--       8 wake
-- ARGV: 1 tombstone_ms (<= 0: names are free again at once), 2 n, then
--       per task 3 values: id, token, name
-- Reply: { 1 acked | 0 fenced, ... } one per task
-- now: Redis TIME in ms, never behind the last now of this queue (a
-- failover to a replica whose clock lags) unless that one was over 60 s
-- ahead (a clock error since corrected: step back rather than stall)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local clock = tonumber(redis.call('HGET', KEYS[5], 'clock') or '0')
if clock > now and clock - now <= 60000 then now = clock else
    redis.call('HSET', KEYS[5], 'clock', now)
end

local tomb = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
if not tomb or not n or n < 1 or #ARGV ~= 2 + n * 3 then
    return redis.error_reply('ERR ack: bad arguments')
end
local reply = {}
local done = 0
for i = 0, n - 1 do
    local id = ARGV[3 + i * 3]
    local token = tonumber(ARGV[4 + i * 3])
    local name = ARGV[5 + i * 3]
    local ok = 0
    if redis.call('ZSCORE', KEYS[2], id) then
        local s = redis.call('HGET', KEYS[3], id)
        local c = s and tonumber(string.match(s, ':(%d+)$'))
        if c and c == token then
            redis.call('ZREM', KEYS[2], id)
            redis.call('HDEL', KEYS[1], id)
            redis.call('HDEL', KEYS[3], id)
            redis.call('HDEL', KEYS[6], id)
            if name ~= '' then
                if tomb > 0 then
                    redis.call('ZADD', KEYS[4], now + tomb, name)
                else
                    redis.call('ZREM', KEYS[4], name)   -- no window
                end
            end
            ok = 1
            done = done + 1
        end
    end
    reply[#reply + 1] = ok
end
if done > 0 then redis.call('HINCRBY', KEYS[5], 'done', done) end
-- A slot freed under max_concurrent: if a claim was held back by it (conf
-- "waiting", set by claim), wake one sleeping worker to take the slot.
if done > 0 and redis.call('HDEL', KEYS[7], 'waiting') == 1 then
    redis.call('LPUSH', KEYS[8], '1')
    redis.call('LTRIM', KEYS[8], 0, 7)
end
return reply
