-- requeue: run dead tasks again: dead -> due now, retry state reset (runs,
-- retries, first run), the name (kept in the prefix by bury) live again.
-- The last error stays readable until the task succeeds: the prefix keeps
-- failed_ms (the last failed attempt's time, or now if none was kept), so
-- the next claim reports the task with history and its ack deletes the
-- error with it (review R1, finding 1).
-- A task whose name another live task holds now (enqueued after the
-- tombstone window) stays dead: two live tasks never share a name.
-- KEYS: 1 tasks, 2 eta, 3 dead, 4 names, 5 stats, 6 wake, 7 errors
-- ARGV: 1 id ('' = bulk), then for bulk: 2 error text to match (plain
--       substring; '' = every dead task), 3 offset, 4 limit (at most
--       DQ_CHUNK dead tasks looked at per call, oldest first)
-- Reply, one id: 1 requeued | 0 not in the dead set (or its envelope is
--   gone) | 2 its name is held by a live task.
-- Reply, bulk: { next offset (-1: the end was reached), requeued,
--   name conflicts left dead }: call again with the offset to go on.
--   The offset is a rank in the dead set (oldest first): a bury that
--   trims the oldest dead tasks between two calls shifts the ranks, and
--   the walk skips as many tasks as were trimmed. Requeue is idempotent:
--   a second walk takes what the first skipped.
local match = ARGV[2] or ''
local offset = dq_num(ARGV[3] or '0')
local limit = dq_num(ARGV[4] or tostring(DQ_CHUNK))
if not ARGV[1] or not offset or not limit then
    return redis.error_reply('ERR requeue: bad arguments')
end
local now = dq_now(KEYS[5])

-- 0, 1 or 2 as above, for one id known to be in the dead set; it leaves
-- `dead` (and, its envelope gone, `errors`) by left()
local out, gone = {}, {}
local function requeue(id)
    local v = redis.call('HGET', KEYS[1], id)
    if not v then
        out[#out + 1] = id
        gone[#gone + 1] = id
        return 0
    end
    local _, _, _, x, _, name, env = dq_split(v)
    if name ~= '' then
        if redis.call('ZSCORE', KEYS[4], name) == 'inf' then return 2 end
        redis.call('ZADD', KEYS[4], 'inf', name)
    end
    out[#out + 1] = id
    if x == 0 then x = now end
    redis.call('HSET', KEYS[1], id, dq_join(0, 0, 0, x, '', '', env))
    redis.call('ZADD', KEYS[2], now, id)
    return 1
end

-- the call's tasks leave `dead` and `errors` by one variadic call per key.
-- One task after another touched them once per task: a drop that emptied
-- one (`errors`: the error of the only gone envelope) deleted it, and on
-- a MIGRATING slot Redis 7.0 stopped the script at the next touch of it,
-- the tasks before requeued and not counted, no wake (review RS, t/78)
local function left()
    if #out > 0 then redis.call('ZREM', KEYS[3], unpack(out)) end
    if #gone > 0 then redis.call('HDEL', KEYS[7], unpack(gone)) end
end

if ARGV[1] ~= '' then
    if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then return 0 end
    local r = requeue(ARGV[1])
    left()
    if r == 1 then
        redis.call('HINCRBY', KEYS[5], 'requeued', 1)
        dq_wake(KEYS[6])
    end
    return r
end

if offset < 0 then offset = 0 end
if limit < 1 or limit > DQ_CHUNK then limit = DQ_CHUNK end
local ids = redis.call('ZRANGE', KEYS[3], offset, offset + limit - 1)
local errs = {}
if match ~= '' and #ids > 0 then
    errs = redis.call('HMGET', KEYS[7], unpack(ids))
end
local done, taken, conflicts = 0, 0, 0
for i = 1, #ids do
    if match == '' or (errs[i] and string.find(errs[i], match, 1, true)) then
        local r = requeue(ids[i])
        if r == 1 then done = done + 1 end
        if r ~= 2 then taken = taken + 1 end
        if r == 2 then conflicts = conflicts + 1 end
    end
end
left()                                              -- limit <= DQ_CHUNK
if done > 0 then
    redis.call('HINCRBY', KEYS[5], 'requeued', done)
    dq_wake(KEYS[6])
end
local nxt = -1
if #ids == limit then nxt = offset + #ids - taken end
return { nxt, done, conflicts }
