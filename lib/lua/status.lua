-- status: one queue's live state for the module's status, metrics and
-- dashboard (read only: nothing is written, not even the clock).
-- KEYS: 1 eta, 2 lease, 3 dead, 4 conf, 5 stats, 6 errors, 7 tasks, 8 due
--       (the due list), then contract v1's 9 eta, 10 leases, 11 lease
--       (bare ids), 12 dead
-- ARGV: 1 dead_limit (newest dead tasks listed, 0..100)
-- Reply: { now_ms, waiting (the cold tier included), due, running, dead,
--          oldest_due_age_ms (-1: none due), conf (flat HGETALL),
--          stats (flat HGETALL, and "v1_left" = tasks still in contract
--          v1's keys, when any: waiting, leased or dead there; the
--          migration moves them),
--          dead tasks: flat { id, died_ms, function, error } }
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- waiting counts the cold tier's tasks too (stats `cold`; never due: a
-- bucket is promoted before its window starts) and the due list's (stats
-- `due_n`: all due). The stats hash is read once (returned whole below).
local stats = redis.call('HGETALL', KEYS[5])
local cold, listed = 0, 0
for i = 1, #stats, 2 do
    local f = stats[i]
    if f == 'cold' then
        cold = tonumber(stats[i + 1]) or 0
    elseif f == 'due_n' then
        listed = tonumber(stats[i + 1]) or 0
    end
end
if listed < 0 then listed = 0 end
local waiting = redis.call('ZCARD', KEYS[1]) + cold + listed
local due = redis.call('ZCOUNT', KEYS[1], '-inf', now) + listed
local oldest = -1
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] and tonumber(first[2]) <= now then
    oldest = now - tonumber(first[2])
end
-- the list's oldest run that still has an id: the marker before its
-- first id in the list's first DQ_STATUS_LOOK elements (a marker alone,
-- its run's ids gone, is skipped: review RR1, finding 4); none among
-- them: the last marker read (every id further is as young or younger)
local DQ_STATUS_LOOK = 100
if listed > 0 then
    local els = redis.call('LRANGE', KEYS[8], 0, DQ_STATUS_LOOK - 1)
    local at, id = nil, false
    for i = 1, #els do
        local e = els[i]
        if string.byte(e, 1) ~= 64 then
            id = true
            break
        end
        at = tonumber(string.sub(e, 2))
    end
    if not id and #els < DQ_STATUS_LOOK then at = nil end
    if at and now - at > oldest then oldest = math.max(0, now - at) end
end

local dead = {}
local limit = dq_num(ARGV[1])
if not limit then return redis.error_reply('ERR status: bad arguments') end
if limit > 0 then
    local ids = redis.call('ZREVRANGE', KEYS[3], 0, limit - 1, 'WITHSCORES')
    for i = 1, #ids, 2 do
        local id = ids[i]
        local func = dq_env_func_name(redis.call('HGET', KEYS[7], id)) or ''

        dead[#dead + 1] = id
        dead[#dead + 1] = ids[i + 1]
        dead[#dead + 1] = func
        dead[#dead + 1] = redis.call('HGET', KEYS[6], id) or ''
    end
end

local v1 = 0
for i = 9, 12 do
    if KEYS[i] then v1 = v1 + redis.call('ZCARD', KEYS[i]) end
end
if v1 > 0 then
    stats[#stats + 1] = 'v1_left'
    stats[#stats + 1] = tostring(v1)
end

return { now, waiting, due, redis.call('ZCARD', KEYS[2]),
         redis.call('ZCARD', KEYS[3]), oldest,
         redis.call('HGETALL', KEYS[4]), stats, dead }
