-- retry: one leased task failed; run it again after delay_ms.
-- KEYS: 1 eta, 2 lease, 3 state, 4 stats, 5 errors, 6 wake, 7 conf
-- ARGV: 1 id, 2 token, 3 delay_ms, 4 error text
-- Reply: 1 rescheduled | 0 fenced (lease lost or token stale)
local now = dq_now(KEYS[4])

local id = ARGV[1]
local token = tonumber(ARGV[2])
local delay = tonumber(ARGV[3])
if delay < 0 then delay = 0 end
if not redis.call('ZSCORE', KEYS[2], id) then return 0 end
local s = redis.call('HGET', KEYS[3], id)
local e, r, f, c
if s then e, r, f, c = dq_state(s) end
if not c or tonumber(c) ~= token then return 0 end

local eta = now + delay
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
redis.call('ZREM', KEYS[2], id)
redis.call('HSET', KEYS[3], id, e .. ':' .. (tonumber(r) + 1) .. ':' .. f .. ':' .. c)
redis.call('HSET', KEYS[5], id, ARGV[4])
redis.call('ZADD', KEYS[1], eta, id)
redis.call('HINCRBY', KEYS[4], 'retried', 1)
if eta <= now or not first[2] or eta < tonumber(first[2]) then
    redis.call('LPUSH', KEYS[6], '1')
    redis.call('LTRIM', KEYS[6], 0, 7)
end
-- A slot freed under max_concurrent: if a claim was held back by it (conf
-- "waiting", set by claim), wake one sleeping worker to take the slot.
if redis.call('HDEL', KEYS[7], 'waiting') == 1 then
    redis.call('LPUSH', KEYS[6], '1')
    redis.call('LTRIM', KEYS[6], 0, 7)
end
return 1
