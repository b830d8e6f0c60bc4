#!lua flags=allow-oom
-- bury: one leased task is dead (retries exhausted, permanent failure,
-- undecodable envelope). It stays inspectable in the dead set with its
-- error (and its name, kept in its state for requeue) until trimmed or
-- requeued. Runs at maxmemory too (allow-oom): it frees a lease, and
-- there the error text is cut to 64 bytes (dq_error_text) so one burial
-- grows the data by little more than its dead-set entry.
-- KEYS: 1 tasks, 2 lease, 3 state, 4 dead, 5 errors, 6 names, 7 stats,
--       8 conf, 9 wake
-- ARGV: 1 id, 2 claim id, 3 error text, 4 dead_max (<= 0: no limit),
--       5 dead_age_ms (<= 0: no limit), 6 tombstone_ms (<= 0: the name is
--       free again at once), 7 name ('' = none), 8 ran ("1": the run
--       reached the function)
-- Reply: 1 buried | 0 fenced
-- Trimming (at most DQ_CHUNK tasks per call, every bury trims again):
-- tasks dead longer than dead_age_ms are deleted. dead_max deletes the
-- oldest beyond it only when there is no dead_age: a task dead for less
-- than dead_age is never deleted, so with both set the dead set may hold
-- more than dead_max (counted in stats "dead_over_max" per bury).
local id = ARGV[1]
local m = dq_member(id, ARGV[2])
local dead_max = dq_num(ARGV[4])
local dead_age = dq_num(ARGV[5])
local tomb = dq_num(ARGV[6])
local name = ARGV[7]
if not id or id == '' or not ARGV[3] or not dead_max or not dead_age
   or not tomb or not name then
    return redis.error_reply('ERR bury: bad arguments')
end
local now = dq_now(KEYS[7])
if not redis.call('ZSCORE', KEYS[2], m) then return 0 end
local e, r, f, x, c = dq_state(redis.call('HGET', KEYS[3], id))
if ARGV[8] == '1' then e = e + 1 end

redis.call('ZREM', KEYS[2], m)
redis.call('ZADD', KEYS[4], now, id)
redis.call('HSET', KEYS[5], id, dq_error_text(ARGV[3]))
redis.call('HSET', KEYS[3], id, dq_state_str(e, r, f, x, c, name))
if name ~= '' then
    if tomb and tomb > 0 then
        redis.call('ZADD', KEYS[6], now + tomb, name)
    else
        redis.call('ZREM', KEYS[6], name)       -- no window
    end
end
redis.call('HINCRBY', KEYS[7], 'dead', 1)

local function drop(ids)
    if #ids == 0 then return end
    redis.call('ZREM', KEYS[4], unpack(ids))
    redis.call('HDEL', KEYS[1], unpack(ids))
    redis.call('HDEL', KEYS[3], unpack(ids))
    redis.call('HDEL', KEYS[5], unpack(ids))
end
if dead_age > 0 then
    drop(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. (now - dead_age),
                    'LIMIT', 0, DQ_CHUNK))
    if dead_max > 0 and redis.call('ZCARD', KEYS[4]) > dead_max then
        redis.call('HINCRBY', KEYS[7], 'dead_over_max', 1)
    end
elseif dead_max > 0 then
    local over = redis.call('ZCARD', KEYS[4]) - dead_max
    if over > DQ_CHUNK then over = DQ_CHUNK end
    if over > 0 then drop(redis.call('ZRANGE', KEYS[4], 0, over - 1)) end
end
dq_slot_freed(KEYS[8], KEYS[9])
return 1
