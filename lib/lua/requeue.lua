-- requeue: run a dead task again: dead -> due now, retry state reset
-- (execution count, retries, first run; the fencing token keeps growing),
-- its name live again. The last error stays readable until it succeeds.
-- The name is read from the envelope (element 7 of the msgpack array)
-- with Redis' cmsgpack; an envelope it cannot read requeues unnamed.
-- KEYS: 1 tasks, 2 eta, 3 dead, 4 state, 5 names, 6 stats, 7 wake
-- ARGV: 1 id
-- Reply: 1 requeued | 0 not in the dead set (or its envelope is gone)
local now = dq_now(KEYS[6])

local id = ARGV[1]
if not redis.call('ZSCORE', KEYS[3], id) then return 0 end
local env = redis.call('HGET', KEYS[1], id)
if not env then
    redis.call('ZREM', KEYS[3], id)
    return 0
end
local name = ''
local okp, arr = pcall(cmsgpack.unpack, env)
if okp and type(arr) == 'table' and type(arr[7]) == 'string' then
    name = arr[7]
end
local s = redis.call('HGET', KEYS[4], id)
local c = s and string.match(s, ':(%d+)$')
redis.call('ZREM', KEYS[3], id)
if c then
    redis.call('HSET', KEYS[4], id, '0:0:0:' .. c)
end
redis.call('ZADD', KEYS[2], now, id)
if name ~= '' then redis.call('ZADD', KEYS[5], 'inf', name) end
redis.call('HINCRBY', KEYS[6], 'requeued', 1)
redis.call('LPUSH', KEYS[7], '1')
redis.call('LTRIM', KEYS[7], 0, 7)
return 1
