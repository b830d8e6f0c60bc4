#!lua flags=allow-oom
-- ack: 1..n tasks done, each named by id and the claim id it was leased
-- under. Accepted while that lease is held, or after it expired as long as
-- nobody claimed the task again (it waits in the ETA set and its state
-- still names this claim): running it again would be for nothing.
-- Frees memory only, so it runs at maxmemory too (allow-oom).
-- KEYS: 1 tasks, 2 lease, 3 state, 4 names, 5 stats, 6 errors, 7 conf,
--       8 wake, 9 eta
-- ARGV: 1 tombstone_ms (<= 0: names are free again at once), 2 n, then
--       per task 3 values: id, claim id, name
-- Reply: { 1 acked | 0 fenced, ... } one per task
local tomb = dq_num(ARGV[1])
local n = dq_num(ARGV[2])
if not tomb or not n or n < 1 or n > DQ_CHUNK or #ARGV ~= 2 + n * 3 then
    return redis.error_reply('ERR ack: bad arguments')
end
local now = dq_now(KEYS[5])
-- the held leases: one ZMSCORE over the members; only the misses (late
-- acks) read the state and the ETA set
local ids, ms = {}, {}
for i = 1, n do
    ids[i] = ARGV[3 + (i - 1) * 3]
    ms[i] = dq_member(ids[i], ARGV[4 + (i - 1) * 3])
end
local leased = redis.call('ZMSCORE', KEYS[2], unpack(ms))
local late = {}
for i = 1, n do
    if not leased[i] then late[#late + 1] = i end
end
local ok = {}
if #late > 0 then
    local lid = {}
    for j = 1, #late do lid[j] = ids[late[j]] end
    local states = redis.call('HMGET', KEYS[3], unpack(lid))
    local waiting = redis.call('ZMSCORE', KEYS[9], unpack(lid))
    for j = 1, #late do
        local i = late[j]
        if waiting[j] and states[j] then
            local _, _, _, _, c = dq_state(states[j])
            if c == ARGV[4 + (i - 1) * 3] then ok[i] = 'late' end
        end
    end
end
local reply = {}
local acked, held, gone, seen = {}, {}, {}, {}
local tombs = {}
for i = 1, n do
    local id = ids[i]
    local r = 0
    if (leased[i] or ok[i]) and not seen[id] then
        seen[id] = true
        acked[#acked + 1] = id
        if leased[i] then held[#held + 1] = ms[i] else gone[#gone + 1] = id end
        local name = ARGV[5 + (i - 1) * 3]
        if name ~= '' then
            if tomb > 0 then
                tombs[#tombs + 1] = now + tomb
                tombs[#tombs + 1] = name
            else
                redis.call('ZREM', KEYS[4], name)   -- no window
            end
        end
        r = 1
    end
    reply[i] = r
end
local done = #acked
if done > 0 then
    if #held > 0 then redis.call('ZREM', KEYS[2], unpack(held)) end
    if #gone > 0 then
        redis.call('ZREM', KEYS[9], unpack(gone))
        redis.call('HINCRBY', KEYS[5], 'acked_late', #gone)
    end
    redis.call('HDEL', KEYS[1], unpack(acked))
    redis.call('HDEL', KEYS[3], unpack(acked))
    redis.call('HDEL', KEYS[6], unpack(acked))
    if #tombs > 0 then redis.call('ZADD', KEYS[4], unpack(tombs)) end
    redis.call('HINCRBY', KEYS[5], 'done', done)
    if #held > 0 then dq_slot_freed(KEYS[7], KEYS[8]) end
end
return reply
