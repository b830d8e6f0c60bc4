-- pause: pause or resume a queue for every worker (operator command).
-- KEYS: 1 conf, 2 wake
-- ARGV: 1 "1" pause | "0" resume
-- Reply: 1 if the state changed, 0 if it already was so.
-- A paused queue keeps accepting tasks; claim takes none from it. Resume
-- pushes a wake token: one sleeping worker wakes, and claim passes the
-- token on while due work remains.
local was = redis.call('HGET', KEYS[1], 'paused') == '1'
if ARGV[1] == '1' then
    redis.call('HSET', KEYS[1], 'paused', '1')
    if was then return 0 end
    return 1
end
redis.call('HDEL', KEYS[1], 'paused')
dq_wake(KEYS[2])
if was then return 1 end
return 0
