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
local moved, gone = dq_due_back(KEYS[1], KEYS[2], KEYS[3])
if moved > 0 then dq_wake(KEYS[4]) end
return { moved, gone and 0 or redis.call('LLEN', KEYS[2]) }
