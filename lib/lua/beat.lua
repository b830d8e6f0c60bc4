-- beat: a worker child's place in the live list on Redis' clock (not the
-- worker host's: hosts whose clocks disagree would expire each other).
-- Scores its member with Redis now + ttl, trims members whose score is
-- past when ARGV[3] is not "0" (a child trims once per ttl, not with every
-- beat: one command less per beat of an idle fleet), and replies Redis now
-- (ms), which the child writes as beat_ms in its heartbeat hash (PEXPIREd:
-- also Redis' clock).
-- KEYS: 1 the live list (DQ_WORKERS_KEY)
-- ARGV: 1 the child's id, 2 ttl_ms (> 0), 3 trim: "1" or "0" (absent: 1)
-- Reply: Redis now in ms.
local ttl = dq_num(ARGV[2])
if not ttl or ttl <= 0 or not ARGV[1] then
    return redis.error_reply('ERR beat: ttl_ms must be > 0')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if ARGV[3] ~= '0' then
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
end
return now
