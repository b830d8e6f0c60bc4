-- status: one queue's live state for the module's status, metrics and
-- dashboard (read only: nothing is written, not even the clock).
-- KEYS: 1 eta, 2 lease, 3 dead, 4 conf, 5 stats, 6 errors, 7 tasks
-- ARGV: 1 dead_limit (newest dead tasks listed, 0..100)
-- Reply: { now_ms, waiting, due, running, dead, oldest_due_age_ms (-1:
--          none due), conf (flat HGETALL), stats (flat HGETALL),
--          dead tasks: flat { id, died_ms, function, error } }
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local waiting = redis.call('ZCARD', KEYS[1])
local due = redis.call('ZCOUNT', KEYS[1], '-inf', now)
local oldest = -1
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] and tonumber(first[2]) <= now then
    oldest = now - tonumber(first[2])
end

local dead = {}
local limit = dq_num(ARGV[1])
if not limit then return redis.error_reply('ERR status: bad arguments') end
if limit > 0 then
    local ids = redis.call('ZREVRANGE', KEYS[3], 0, limit - 1, 'WITHSCORES')
    for i = 1, #ids, 2 do
        local id = ids[i]
        local func = ''
        local env = redis.call('HGET', KEYS[7], id)
        if env then
            local okp, arr = pcall(cmsgpack.unpack, env)
            if okp and type(arr) == 'table' and type(arr[3]) == 'string' then
                func = arr[3]
            end
        end
        dead[#dead + 1] = id
        dead[#dead + 1] = ids[i + 1]
        dead[#dead + 1] = func
        dead[#dead + 1] = redis.call('HGET', KEYS[6], id) or ''
    end
end

return { now, waiting, due, redis.call('ZCARD', KEYS[2]),
         redis.call('ZCARD', KEYS[3]), oldest,
         redis.call('HGETALL', KEYS[4]), redis.call('HGETALL', KEYS[5]),
         dead }
