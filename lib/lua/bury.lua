#!lua flags=allow-oom
-- bury: one leased task is dead (retries exhausted, permanent failure,
-- undecodable envelope). It stays inspectable in the dead set with its
-- error (and its name, kept in its state prefix for requeue) until trimmed
-- or requeued. Runs at maxmemory too (allow-oom): it frees a lease, and
-- there the error text is cut to 64 bytes (dq_error_text) so one burial
-- grows the data by little more than its dead-set entry.
-- KEYS: 1 tasks, 2 leases, 3 dead, 4 errors, 5 names, 6 stats, 7 conf,
--       8 wake
-- ARGV: 1 id, 2 claim id, 3 first_run_ms (the lease member's), 4 error
--       text, 5 dead_max (<= 0: no limit), 6 dead_age_ms (<= 0: no
--       limit), 7 tombstone_ms (<= 0: the name is free again at once),
--       8 name ('' = none), 9 ran ("1": the run reached the function)
-- Reply: 1 buried | 0 fenced
-- Trimming (at most DQ_CHUNK tasks per call, every bury trims again):
-- tasks dead longer than dead_age_ms are deleted. dead_max deletes the
-- oldest beyond it only when there is no dead_age: a task dead for less
-- than dead_age is never deleted, so with both set the dead set may hold
-- more than dead_max (counted in stats "dead_over_max" per bury).
local id = ARGV[1]
local first_run = dq_num(ARGV[3])
local dead_max = dq_num(ARGV[5])
local dead_age = dq_num(ARGV[6])
local tomb = dq_num(ARGV[7])
local name = ARGV[8]
if not id or id == '' or not ARGV[2] or not first_run or not ARGV[4]
   or not dead_max or not dead_age or not tomb or not name
   or not string.match(name, '^[%w_-]*$') then
    return redis.error_reply('ERR bury: bad arguments')
end
local m = dq_member(id, ARGV[2], ARGV[3])
local now = dq_now(KEYS[6])
if not redis.call('ZSCORE', KEYS[2], m) then return 0 end
local v = redis.call('HGET', KEYS[1], id)
local e, r, f, x, _, _, env = dq_split(v)
if ARGV[9] == '1' then e = e + 1 end
if f == 0 then f = first_run end

redis.call('ZREM', KEYS[2], m)
redis.call('ZADD', KEYS[3], now, id)
redis.call('HSET', KEYS[4], id, dq_error_text(ARGV[4]))
if v then
    redis.call('HSET', KEYS[1], id, dq_join(e, r, f, x, ARGV[2], name, env))
end
if name ~= '' then
    if tomb and tomb > 0 then
        redis.call('ZADD', KEYS[5], now + tomb, name)
    else
        redis.call('ZREM', KEYS[5], name)       -- no window
    end
end
redis.call('HINCRBY', KEYS[6], 'dead', 1)

local function drop(ids)
    if #ids == 0 then return end
    redis.call('ZREM', KEYS[3], unpack(ids))
    redis.call('HDEL', KEYS[1], unpack(ids))
    redis.call('HDEL', KEYS[4], unpack(ids))
end
if dead_age > 0 then
    drop(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - dead_age),
                    'LIMIT', 0, DQ_CHUNK))
    if dead_max > 0 and redis.call('ZCARD', KEYS[3]) > dead_max then
        redis.call('HINCRBY', KEYS[6], 'dead_over_max', 1)
    end
elseif dead_max > 0 then
    local over = redis.call('ZCARD', KEYS[3]) - dead_max
    if over > DQ_CHUNK then over = DQ_CHUNK end
    if over > 0 then drop(redis.call('ZRANGE', KEYS[3], 0, over - 1)) end
end
dq_slot_freed(KEYS[7], KEYS[8])
return 1
