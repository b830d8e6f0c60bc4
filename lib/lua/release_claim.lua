#!lua flags=allow-oom
-- release_claim: give back, without charge, every lease one claim call
-- still holds (its reply was lost with a dropped connection: the worker
-- never saw these tasks). Like release, due again now. Walks the lease set
-- with ZSCAN (at most about DQ_CHUNK members per call): call again with
-- the returned cursor until it is "0".
-- KEYS: 1 tasks, 2 eta, 3 leases, 4 stats, 5 wake, 6 conf
-- ARGV: 1 claim id, 2 cursor ("0" to start)
-- Reply: { next cursor ("0": done), released }
local cid = ARGV[1] or ''
if #cid > 32 or not string.match(cid, '^[%w_-]+$') then
    return redis.error_reply('ERR release_claim: bad claim id')
end
if not string.match(ARGV[2] or '0', '^%d+$') then
    return redis.error_reply('ERR release_claim: bad cursor')
end
local now = dq_now(KEYS[4])
local sc = redis.call('ZSCAN', KEYS[3], ARGV[2] or '0', 'MATCH',
                      '*|' .. cid .. '|*', 'COUNT', DQ_CHUNK)
local ids, ms = {}, {}
for i = 1, #sc[2], 2 do
    local id, c = dq_member_parse(sc[2][i])
    if id and c == cid then
        ms[#ms + 1] = sc[2][i]
        ids[#ids + 1] = id
    end
end
local released = dq_release(KEYS[1], KEYS[2], KEYS[3], ids, ms, now, 0)
if released > 0 then
    redis.call('HINCRBY', KEYS[4], 'released', released)
    dq_wake(KEYS[5])
    dq_slot_freed(KEYS[6], KEYS[5])
end
return { sc[1], released }
