-- unlist: turn the due list off and move its tasks back to the ETA set
-- (operator command: deferred-cli unlist, for a rollback to workers that
-- do not read the list; docs/OPERATIONS.md). Deletes stats "due_until"
-- (producers write the ETA set again, until a worker that reads the list
-- claims the queue: stop those first), then moves up to DQ_CHUNK listed
-- ids to the ETA set, each at its run's ETA (the same call takes them off
-- the list), and wakes a sleeping worker.
-- KEYS: 1 eta, 2 due, 3 stats, 4 wake
-- ARGV: none
-- Reply: { moved, left (elements still in the list: call again while > 0) }
redis.call('HDEL', KEYS[3], 'due_until')
local r = dq_due_read(KEYS[2], DQ_CHUNK)
if r.n > 0 then
    local z = {}
    for i = 1, r.n do
        z[2 * i - 1] = r.etas[i]
        z[2 * i] = r.ids[i]
    end
    redis.call('ZADD', KEYS[1], unpack(z))
    dq_wake(KEYS[4])
end
local gone = true
if r.n > 0 or r.len > 0 then gone = dq_due_cut(KEYS[2], r) end
if gone then
    redis.call('HDEL', KEYS[3], 'due_n')
    return { r.n, 0 }
end
if r.n > 0 then redis.call('HINCRBY', KEYS[3], 'due_n', -r.n) end
return { r.n, redis.call('LLEN', KEYS[2]) }
