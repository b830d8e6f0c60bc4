-- ack: 1..n tasks done. Only a task still leased under the given token.
-- KEYS: 1 tasks, 2 lease, 3 state, 4 names, 5 stats, 6 errors, 7 conf,
--       8 wake
-- ARGV: 1 tombstone_ms (<= 0: names are free again at once), 2 n, then
--       per task 3 values: id, token, name
-- Reply: { 1 acked | 0 fenced, ... } one per task
local now = dq_now(KEYS[5])

local tomb = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
if not tomb or not n or n < 1 or #ARGV ~= 2 + n * 3 then
    return redis.error_reply('ERR ack: bad arguments')
end
-- one call per batch for each structure (ZMSCORE, HMGET, then variadic
-- ZREM/HDEL over the acked ids), not one per task
local ids = {}
for i = 1, n do ids[i] = ARGV[3 + (i - 1) * 3] end
local leased = redis.call('ZMSCORE', KEYS[2], unpack(ids))
local states = redis.call('HMGET', KEYS[3], unpack(ids))
local reply = {}
local acked, seen = {}, {}
local tombs = {}
for i = 1, n do
    local id = ids[i]
    local ok = 0
    if leased[i] and not seen[id] then
        local s = states[i]
        local c = s and tonumber(string.match(s, ':(%d+)$'))
        if c and c == tonumber(ARGV[4 + (i - 1) * 3]) then
            seen[id] = true
            acked[#acked + 1] = id
            local name = ARGV[5 + (i - 1) * 3]
            if name ~= '' then
                if tomb > 0 then
                    tombs[#tombs + 1] = now + tomb
                    tombs[#tombs + 1] = name
                else
                    redis.call('ZREM', KEYS[4], name)   -- no window
                end
            end
            ok = 1
        end
    end
    reply[i] = ok
end
local done = #acked
if done > 0 then
    redis.call('ZREM', KEYS[2], unpack(acked))
    redis.call('HDEL', KEYS[1], unpack(acked))
    redis.call('HDEL', KEYS[3], unpack(acked))
    redis.call('HDEL', KEYS[6], unpack(acked))
    if #tombs > 0 then redis.call('ZADD', KEYS[4], unpack(tombs)) end
end
if done > 0 then redis.call('HINCRBY', KEYS[5], 'done', done) end
-- A slot freed under max_concurrent: if a claim was held back by it (conf
-- "waiting", set by claim), wake one sleeping worker to take the slot.
if done > 0 and redis.call('HDEL', KEYS[7], 'waiting') == 1 then
    redis.call('LPUSH', KEYS[8], '1')
    redis.call('LTRIM', KEYS[8], 0, 7)
end
return reply
