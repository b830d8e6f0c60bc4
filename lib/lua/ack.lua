#!lua flags=allow-oom
-- ack: 1..n tasks done, each named by its lease (id, claim id,
-- first_run_ms) as the claim gave it (dq_ack in the prelude; claim.lua
-- runs the same acks in front of a claim: one call per worker cycle).
-- Frees memory only, so it runs at maxmemory too (allow-oom).
-- KEYS: 1 tasks, 2 eta, 3 leases, 4 stats, 5 wake, 6 errors, 7 conf,
--       8 names
-- ARGV: 1 tombstone_ms (<= 0: names are free again at once), 2 n, then
--       4 n values (the prelude's dq_ack_args_ok): n pairs "+inf", lease
--       member "id|claim id|first_run_ms"; the n ids; n flags: "1"
--       (history: the claim said retries, runs or failed_ms > 0) or "0",
--       then the name if any
-- Reply: { 1 acked | 0 fenced, ... } one per task
local tomb = dq_num(ARGV[1])
local n = dq_num(ARGV[2])
if not tomb or not n or n < 1 or n > DQ_CHUNK or n ~= math.floor(n)
   or #ARGV ~= 2 + n * 4 or not dq_ack_args_ok(ARGV, 3, n) then
    return redis.error_reply('ERR ack: bad arguments')
end
local now = dq_now(KEYS[4])
local K = { tasks = KEYS[1], eta = KEYS[2], leases = KEYS[3],
            stats = KEYS[4], errors = KEYS[6], names = KEYS[8] }
local reply, freed = dq_ack(K, now, tomb, ARGV, 3, n)
if freed > 0 then dq_slot_freed(KEYS[7], KEYS[5]) end
return reply
