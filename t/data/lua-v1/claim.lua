-- claim: take back expired leases, then lease up to max_n due tasks.
-- KEYS: 1 tasks, 2 eta, 3 leases, 4 state, 5 stats, 6 wake, 7 errors,
--       8 conf, 9 bucket, 10 lease (the lease set of versions before claim
--       ids: bare ids; only its expired entries are taken back here, so an
--       old worker that died during a rolling upgrade loses nothing)
-- ARGV: 1 max_n, 2 lease_ms, 3 reclaim_delay_ms (least delay of an
--       expired lease), 4 rate (tasks/s across all workers, 0 =
--       unlimited), 5 bucket_size (burst, >= 1 when rate > 0),
--       6 max_concurrent (leases at once across all workers, 0 =
--       unlimited), 7 claim id (the caller's, [A-Za-z0-9_-]{1,32}, never
--       reused), 8 min_backoff_ms, 9 max_backoff_ms, 10 max_doublings (the
--       queue's backoff, applied to expired leases)
-- Reply: { now_ms, next_ms, claim id, then per task 7 values:
--          id, envelope (nil if missing), eta_ms, retries, first_run_ms,
--          runs, failed_ms }
--   next_ms: ms until the earliest ETA or lease deadline still pending
--   (0 if due work remains), -1 if the queue holds nothing.
--   When a limit held due work back: next_ms is the time until the token
--   bucket has a token (rate) or the earliest lease deadline (concurrency:
--   conf "waiting" is set, and the ack/retry/bury/release that frees a slot
--   pushes a wake token), and no wake token is passed on (the others are
--   limited too); when the queue is paused (conf "paused" = 1) nothing is
--   claimed and next_ms is -1: resuming pushes a wake token.
-- Bucket: hash "tokens" (float), "ts" (Redis ms of the last refill); it
-- starts full and refills at `rate` per second up to bucket_size.
-- A claimed task's lease is the member "id|claim id" (prelude).
-- Every argument is checked before the first write.
local max_n = dq_num(ARGV[1])
local lease_ms = dq_num(ARGV[2])
local reclaim_delay = dq_num(ARGV[3])
local rate = dq_num(ARGV[4] or '0')
local bucket = dq_num(ARGV[5] or '1')
local max_conc = dq_num(ARGV[6] or '0')
local cid = ARGV[7] or ''
local bo_min = dq_num(ARGV[8] or '0')
local bo_max = dq_num(ARGV[9] or '0')
local bo_dbl = dq_num(ARGV[10] or '0')
if not max_n or not lease_ms or lease_ms <= 0 or not reclaim_delay
   or not rate or not bucket or not max_conc or not bo_min or not bo_max
   or not bo_dbl or #cid > 32 or not string.match(cid, '^[%w_-]+$') then
    return redis.error_reply('ERR claim: bad arguments')
end
local old = KEYS[10]
local now = dq_now(KEYS[5])

-- A queue configuration applied to Redis (deferred-cli config apply: conf
-- field "cfg" set) is the fleet's one source of truth: its rate,
-- bucket_size (0 = auto: max(1, rate)), max_concurrent and backoff replace
-- the caller's own (its config file, the fallback for queues nothing was
-- applied to).
local cf = {}
if KEYS[8] then
    cf = redis.call('HMGET', KEYS[8], 'paused', 'cfg', 'rate', 'bucket_size',
                    'max_concurrent', 'min_backoff_ms', 'max_backoff_ms',
                    'max_doublings')
    if cf[2] then
        rate = dq_num(cf[3]) or rate
        bucket = dq_num(cf[4]) or bucket
        max_conc = dq_num(cf[5]) or max_conc
        if rate > 0 and bucket < 1 then
            bucket = math.max(1, math.floor(rate))
        end
        local v = dq_num(cf[6])
        if v and v >= 0 then bo_min = v end
        v = dq_num(cf[7])
        if v and v >= 0 then bo_max = v end
        v = dq_num(cf[8])
        if v and v >= 0 then bo_dbl = v end
    end
end

-- 1. expired leases (at most DQ_CHUNK per call, of both lease sets): a
-- failed attempt each, back in the ETA set after the queue's backoff
-- (never sooner than reclaim_delay). The last real error is kept (an
-- expiry only writes one if there was none). The state keeps the expired
-- claim id: a late ack of that claim is still accepted until someone
-- claims the task again.
-- A forward step of the Redis host's clock would expire every lease at
-- once: the last gap in the queue's clock (dq_now) longer than half a
-- lease period (a live holder heartbeats every third of one, and while
-- leases are held idle workers call at least as often: step 4) is taken
-- for one, and for one lease period after it only leases that had expired
-- before the gap are taken back (their holders, if alive, extend
-- meanwhile), whichever script call saw the gap first.
local upto = now
local guard_until = nil
local h = redis.call('HMGET', KEYS[5], 'gap_from', 'gap_to', 'jump_seen')
local gf, gt = dq_num(h[1]), dq_num(h[2])
if gf and gt and gt - gf > lease_ms / 2 and now < gt + lease_ms then
    upto = gf
    guard_until = gt + lease_ms
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', upto,
                           'LIMIT', 0, DQ_CHUNK)
local expired_old = {}
if old and #expired < DQ_CHUNK then
    expired_old = redis.call('ZRANGEBYSCORE', old, '-inf', upto,
                             'LIMIT', 0, DQ_CHUNK - #expired)
end
if guard_until and h[3] ~= h[2] then
    -- counted once per jump, when it first held something back
    local would = redis.call('ZCOUNT', KEYS[3], '(' .. upto, now)
    if old then would = would + redis.call('ZCOUNT', old, '(' .. upto, now) end
    if would > 0 then
        redis.call('HSET', KEYS[5], 'jump_seen', h[2])
        redis.call('HINCRBY', KEYS[5], 'clock_jumps', 1)
    end
end
if #expired + #expired_old > 0 then
    local ids = {}
    for i = 1, #expired do ids[i] = dq_member_id(expired[i]) end
    for i = 1, #expired_old do ids[#ids + 1] = expired_old[i] end
    local states = redis.call('HMGET', KEYS[4], unpack(ids))
    local errs = redis.call('HMGET', KEYS[7], unpack(ids))
    local st, zs, es = {}, {}, {}
    for i = 1, #ids do
        local e, r, f, x, c = dq_state(states[i])
        r = r + 1
        if f == 0 then f = now end
        local delay = dq_backoff(bo_min, bo_max, bo_dbl, r)
        if delay < reclaim_delay then delay = reclaim_delay end
        st[#st + 1] = ids[i]
        st[#st + 1] = dq_state_str(e, r, f, now, c)
        zs[#zs + 1] = now + delay
        zs[#zs + 1] = ids[i]
        if not errs[i] then
            es[#es + 1] = ids[i]
            es[#es + 1] = 'lease expired'
        end
    end
    if #expired > 0 then redis.call('ZREM', KEYS[3], unpack(expired)) end
    if #expired_old > 0 then redis.call('ZREM', old, unpack(expired_old)) end
    redis.call('HSET', KEYS[4], unpack(st))
    redis.call('ZADD', KEYS[2], unpack(zs))
    if #es > 0 then redis.call('HSET', KEYS[7], unpack(es)) end
    redis.call('HINCRBY', KEYS[5], 'reclaimed', #ids)
end

-- 2. limits: pause, concurrency, rate (all shared by every worker)
local want = max_n
if want > DQ_CHUNK then want = DQ_CHUNK end
local limited = false
local paused = cf[1] == '1'
local lease_wait = false
if paused then
    want = 0
    limited = true
end
if want > 0 and max_conc > 0 then
    local room = max_conc - redis.call('ZCARD', KEYS[3])
    if old then room = room - redis.call('ZCARD', old) end
    if room < want then
        if room < 0 then room = 0 end
        want = room
        limited = true
        lease_wait = true
    end
end
local tokens = 0
local bucket_ts = now
if rate > 0 then
    if bucket < 1 then bucket = 1 end
    local b = redis.call('HMGET', KEYS[9], 'tokens', 'ts')
    tokens = tonumber(b[1]) or bucket
    bucket_ts = tonumber(b[2]) or now
    if now > bucket_ts then
        tokens = tokens + (now - bucket_ts) * rate / 1000
        bucket_ts = now
    end
    if tokens > bucket then tokens = bucket end
    if want > 0 and math.floor(tokens) < want then
        want = math.floor(tokens)
        limited = true
    end
end

-- 3. due tasks into the lease set
local reply = { now, -1, cid }
local taken = 0
if want > 0 then
    local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now,
                           'WITHSCORES', 'LIMIT', 0, want)
    taken = #due / 2
    if taken > 0 then
        -- one call per batch for each structure, not one per task; the
        -- strings every task shares are formatted once
        local ids = {}
        for i = 1, taken do ids[i] = due[2 * i - 1] end
        local states = redis.call('HMGET', KEYS[4], unpack(ids))
        local envs = redis.call('HMGET', KEYS[1], unpack(ids))
        local deadline = tostring(now + lease_ms)
        local nows = tostring(now)
        local fresh = '0:0:' .. nows .. ':0:' .. cid  -- a task never claimed
        local leases, newstates = {}, {}
        for i = 1, taken do
            local id = ids[i]
            local e, r, f, x = 0, 0, 0, 0
            local st = states[i]
            if st then e, r, f, x = dq_state(st) end
            if f == 0 then f = now end
            leases[2 * i - 1] = deadline
            leases[2 * i] = dq_member(id, cid)
            newstates[2 * i - 1] = id
            if st then
                newstates[2 * i] = dq_state_str(e, r, f, x, cid)
            else
                newstates[2 * i] = fresh
            end
            local k = #reply
            reply[k + 1] = id
            reply[k + 2] = envs[i]
            reply[k + 3] = tonumber(due[2 * i])
            reply[k + 4] = r
            reply[k + 5] = f
            reply[k + 6] = e
            reply[k + 7] = x
        end
        redis.call('ZREM', KEYS[2], unpack(ids))
        redis.call('ZADD', KEYS[3], unpack(leases))
        redis.call('HSET', KEYS[4], unpack(newstates))
    end
end
if rate > 0 then
    tokens = tokens - taken
    redis.call('HSET', KEYS[9], 'tokens', string.format('%.6f', tokens),
               'ts', bucket_ts)
end

-- 4. when to look again; pass the wake token on if due work remains
-- The earliest lease deadline of both sets: while leases are held, look
-- again at least every third of a lease period (a dead holder's lease
-- comes back on time, and no gap in the queue's clock longer than half a
-- lease period appears but a clock jump or a fleet that was down); a lease
-- the jump guard holds back is looked at when the guard ends.
local function lease_next()
    local d = nil
    for _, k in ipairs({ KEYS[3], old }) do
        local l = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
        if l[2] then
            local x = tonumber(l[2]) - now
            if x <= 0 and guard_until then x = guard_until - now end
            if d == nil or x < d then d = x end
        end
    end
    if d == nil then return nil end
    local third = math.ceil(lease_ms / 3)
    if d > third then d = third end
    if d < 1 then d = 1 end
    return d
end
local nxt = -1
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local held_back = false
if first[2] then
    local d = tonumber(first[2]) - now
    if d <= 0 then
        d = 0
        if limited then
            held_back = true
        else
            dq_wake(KEYS[6])
        end
    end
    nxt = d
end
if held_back then
    -- due work waits for a limit: sleep until the limit can let one go
    if paused then
        nxt = -1
    else
        nxt = -1
        if rate > 0 and tokens < 1 then
            nxt = math.ceil((1 - tokens) * 1000 / rate)
            if nxt < 1 then nxt = 1 end
        end
        if lease_wait then
            -- the next ack/retry/bury frees a slot and wakes a sleeper
            redis.call('HSET', KEYS[8], 'waiting', '1')
            local d = lease_next()
            if d and (nxt < 0 or d < nxt) then nxt = d end
        end
        if nxt < 0 then nxt = 1 end
    end
    reply[2] = nxt
    return reply
end
local d = lease_next()
if d and (nxt < 0 or d < nxt) then nxt = d end
reply[2] = nxt
return reply
