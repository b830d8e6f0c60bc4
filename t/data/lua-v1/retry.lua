#!lua flags=allow-oom
-- retry: one leased task failed; run it again after delay_ms. Runs at
-- maxmemory too (allow-oom), like bury: a failed attempt is never refused
-- (the worker would otherwise resend it until the lease expired and the
-- error text were lost); there the error text is cut to 64 bytes.
-- KEYS: 1 eta, 2 lease, 3 state, 4 stats, 5 errors, 6 wake, 7 conf
-- ARGV: 1 id, 2 claim id, 3 delay_ms, 4 error text, 5 ran ("1": the run
--       reached the function, counted in runs; "0": it did not)
-- Reply: 1 rescheduled | 0 fenced (not leased under this claim id)
local id = ARGV[1]
local m = dq_member(id, ARGV[2])
local delay = dq_num(ARGV[3])
if not delay or not id or id == '' or not ARGV[4] then
    return redis.error_reply('ERR retry: bad arguments')
end
if delay < 0 then delay = 0 end
local now = dq_now(KEYS[4])
if not redis.call('ZSCORE', KEYS[2], m) then return 0 end
local e, r, f = dq_state(redis.call('HGET', KEYS[3], id))
if ARGV[5] == '1' then e = e + 1 end
if f == 0 then f = now end

local eta = now + delay
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
redis.call('ZREM', KEYS[2], m)
-- the claim ended here: no late ack of it (the state names no claim)
redis.call('HSET', KEYS[3], id, dq_state_str(e, r + 1, f, now, ''))
redis.call('HSET', KEYS[5], id, dq_error_text(ARGV[4]))
redis.call('ZADD', KEYS[1], eta, id)
redis.call('HINCRBY', KEYS[4], 'retried', 1)
if eta <= now or not first[2] or eta < tonumber(first[2]) then
    dq_wake(KEYS[6])
end
dq_slot_freed(KEYS[7], KEYS[6])
return 1
