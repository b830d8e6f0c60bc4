-- bury: one leased task is dead (retries exhausted, permanent failure,
-- unknown function, undecodable envelope). It stays inspectable in the
-- dead set with its error until trimmed or requeued.
-- KEYS: 1 tasks, 2 lease, 3 state, 4 dead, 5 errors, 6 names, 7 stats,
--       8 conf, 9 wake
-- ARGV: 1 id, 2 token, 3 error text, 4 dead_max (<= 0: no limit),
--       5 dead_age_ms (<= 0: no limit), 6 tombstone_ms (<= 0: the name is
--       free again at once), 7 name ('' = none)
-- Reply: 1 buried | 0 fenced
local now = dq_now(KEYS[7])

local id = ARGV[1]
local token = tonumber(ARGV[2])
local dead_max = tonumber(ARGV[4])
local dead_age = tonumber(ARGV[5])
local tomb = tonumber(ARGV[6])
local name = ARGV[7]
if not redis.call('ZSCORE', KEYS[2], id) then return 0 end
local s = redis.call('HGET', KEYS[3], id)
local c = s and tonumber(string.match(s, ':(%d+)$'))
if not c or c ~= token then return 0 end

redis.call('ZREM', KEYS[2], id)
redis.call('ZADD', KEYS[4], now, id)
redis.call('HSET', KEYS[5], id, ARGV[3])
if name ~= '' then
    if tomb and tomb > 0 then
        redis.call('ZADD', KEYS[6], now + tomb, name)
    else
        redis.call('ZREM', KEYS[6], name)       -- no window
    end
end
redis.call('HINCRBY', KEYS[7], 'dead', 1)

-- trim the dead set (at most 1000 per call; every bury trims again)
local function drop(ids)
    for _, d in ipairs(ids) do
        redis.call('ZREM', KEYS[4], d)
        redis.call('HDEL', KEYS[1], d)
        redis.call('HDEL', KEYS[3], d)
        redis.call('HDEL', KEYS[5], d)
    end
end
if dead_age > 0 then
    drop(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. (now - dead_age),
                    'LIMIT', 0, 1000))
end
if dead_max > 0 then
    local over = redis.call('ZCARD', KEYS[4]) - dead_max
    if over > 1000 then over = 1000 end
    if over > 0 then drop(redis.call('ZRANGE', KEYS[4], 0, over - 1)) end
end
-- A slot freed under max_concurrent: if a claim was held back by it (conf
-- "waiting", set by claim), wake one sleeping worker to take the slot.
if redis.call('HDEL', KEYS[8], 'waiting') == 1 then
    redis.call('LPUSH', KEYS[9], '1')
    redis.call('LTRIM', KEYS[9], 0, 7)
end
return 1
