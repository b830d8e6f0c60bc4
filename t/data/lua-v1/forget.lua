-- forget: drop an empty queue's leftovers (operator command: deferred-cli
-- forget, which takes it out of dq:queues first and puts it back when this
-- refuses: dq:queues is not a key of the queue's hash slot).
-- Refuses (reply 0) while the queue holds anything an operator or a task
-- needs: a task in any state, a name still taken (live or tombstoned),
-- stored settings (conf: applied config, paused), a lease of a worker
-- before claim ids (the old lease set). Else deletes its counters, clock,
-- wake list, rate bucket and per-function unrunnable counts; reply 1.
-- KEYS: 1 tasks, 2 eta, 3 leases, 4 state, 5 dead, 6 errors, 7 names,
--       8 conf, 9 stats, 10 wake, 11 bucket, 12 lease (old), 13 unrunnable
-- ARGV: none
for i = 1, 8 do
    if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
if KEYS[12] and redis.call('EXISTS', KEYS[12]) == 1 then return 0 end
redis.call('DEL', KEYS[9], KEYS[10], KEYS[11])
if KEYS[13] then redis.call('DEL', KEYS[13]) end
return 1
