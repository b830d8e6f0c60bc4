-- forget: drop an empty queue's leftovers (operator command: deferred-cli
-- forget, which takes it out of dq:queues first and puts it back when this
-- refuses: dq:queues is not a key of the queue's hash slot).
-- Refuses (reply 0) while the queue holds anything an operator or a task
-- needs: a task in any state (the cold tier included), a name still taken (live or tombstoned),
-- stored settings (conf: applied config, paused). Else deletes its
-- counters, clock, wake list, rate bucket and per-function unrunnable
-- counts; reply 1.
-- KEYS: 1 tasks, 2 eta, 3 leases, 4 dead, 5 errors, 6 names, 7 conf,
--       8 stats, 9 wake, 10 bucket, 11 unrunnable, 12 cold (the cold
--       tier's index)
-- ARGV: none
for i = 1, 7 do
    if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
if dq_cold_exists(KEYS[12]) then return 0 end
redis.call('DEL', KEYS[8], KEYS[9], KEYS[10], KEYS[11])
return 1
