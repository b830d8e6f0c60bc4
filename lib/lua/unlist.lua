-- unlist: turn the due list off and move its tasks back to the ETA set
-- (operator command: deferred-cli unlist, for a rollback to workers that
-- do not read the list; docs/OPERATIONS.md). Sets stats "due_until" to 1
-- (past: producers write the ETA set again, until a worker that reads the
-- list claims the queue: stop those first), then moves up to DQ_CHUNK
-- listed ids to the ETA set, each at its run's ETA (the same call takes
-- them off the list), and wakes a sleeping worker. "due_until" is deleted
-- with the list's last id: an unlist stopped between calls leaves it past,
-- so the next enqueue goes on moving the list back (review RR2, finding 7).
-- KEYS: 1 eta, 2 due, 3 stats, 4 wake, 5 tasks (read by dq_due_back's
-- value check: declared so that on a Cluster slot migration the call is
-- refused with TRYAGAIN before it runs, review RDL finding 6)
-- ARGV: none
-- Reply: { moved, left (elements still in the list: call again while > 0) }
redis.call('HSET', KEYS[3], 'due_until', '1')
local moved, gone = dq_due_back(KEYS[1], KEYS[2], KEYS[3])
if moved > 0 then dq_wake(KEYS[4]) end
if gone then redis.call('HDEL', KEYS[3], 'due_until') end
return { moved, gone and 0 or redis.call('LLEN', KEYS[2]) }
