-- enqueue: store and schedule 1..n tasks of one queue, atomically.
-- KEYS: 1 tasks, 2 eta, 3 names, 4 stats, 5 wake, 6 contract v1's names
--       (dq:{q}:names: while a queue still has v1 data, a name or keyed id
--       taken there is taken here too; read only when the call has a named
--       or keyed task, and then one EXISTS unless the key exists), 7 cold
--       (the cold tier's index, lib/lua/cold.lua; its buckets' names are
--       built from it), 8 due (the due list: prelude.lua dq_due_read)
-- ARGV: 1 tombstone_ms, 2 n, or -n when every plain task's id is new
--       (made up for this call by its caller, dq_id_new, and never sent
--       before: a lost reply is never re-sent), so none can be stored
--       already and the HMGET that looks is skipped (docs/CONTRACT.md,
--       docs/BENCHMARKS.md: what it costs in a deep tasks hash; an id
--       stored all the same is counted in stats fresh_collisions), 3 m
--       (how many of the
--       tasks have a name or a client's id), then 2n values: id_i,
--       envelope_i (i = 1..n), then n values: when_i ('' due now; decimal
--       digits: the absolute ETA in ms; '+' and digits: a countdown in ms
--       from the queue's now; the n values are left out when every task
--       is due now, '': Redis makes a Lua string of each argument, ~1k
--       instructions), then 3m
--       values, by ascending task index: i, name ('' = none), keyed (0:
--       not; else the id came from the client (idempotent enqueue) and is
--       remembered in the names set as '#' .. id until this many ms after
--       the task's ETA, -1: tombstone_ms). A plain task costs 3 values,
--       2 in a call of tasks all due now.
-- Reply: { now_ms } when every task was stored now (status 0 below: the
--   caller knows each ETA: its eta_ms, now_ms + its countdown, or now_ms),
--   else { now_ms, status_1, eta_1, ..., status_n, eta_n }
--   status 0 stored, 1 same id already stored (eta = its current ETA, or 0
--   when it already ran), 2 name live (duplicate), 3 name tombstoned; eta
--   0 when not stored.

-- validate everything before the first write (dq_now writes the clock): a
-- script error does not roll back what the script already wrote; nan and
-- inf are refused (dq_num): they would fail a ZADD after tasks were stored.
-- '' (the usual when) is compared as a string (interned: no number
-- conversion).
local n = dq_num(ARGV[2])
local m = dq_num(ARGV[3])
local fresh = n and n < 0
if fresh then n = -n end
local tomb = dq_num(ARGV[1])
-- T0: when_i = ARGV[T0 + i]; nil: no when_i, every task due now
local T0 = false
if n and m and n == math.floor(n) and m == math.floor(m) then
    if #ARGV == 3 + 3 * n + 3 * m then
        T0 = 3 + 2 * n
    elseif #ARGV == 3 + 2 * n + 3 * m then
        T0 = nil
    end
end
if not n or n < 1 or not m or m < 0 or m > n or T0 == false
   or not tomb then
    return redis.error_reply('ERR enqueue: bad arguments')
end
local S0 = 3 + (T0 and 3 or 2) * n     -- the m named or keyed tasks

-- named or keyed tasks by index (nil: a plain task)
local names, kws = nil, nil
if m > 0 then
    names, kws = {}, {}
    local prev = 0
    for j = 0, m - 1 do
        local b = S0 + 3 * j
        local i, k = dq_num(ARGV[b + 1]), ARGV[b + 3]
        if k == '0' then k = 0 else k = dq_num(k) end
        if not i or i <= prev or i > n or i ~= math.floor(i) or not k
           or (k == 0 and ARGV[b + 2] == '') then
            return redis.error_reply('ERR enqueue: bad task ' .. (i or '?'))
        end
        names[i], kws[i], prev = ARGV[b + 2], k, i
    end
end

-- when_i: wv[i] the absolute ETA or the countdown (wc[i] true), nil for
-- due now; plain: the ids of the plain tasks (their dedup below)
local wv, wc = {}, {}
local plain = {}
local np = 0
local far = false       -- a task whose ETA may be past the cold horizon
for i = 1, n do
    local w = T0 and ARGV[T0 + i] or ''
    if w ~= '' then
        local v
        if string.byte(w, 1) == 43 then        -- '+'
            v = dq_num(string.sub(w, 2))
            wc[i] = true
        else
            v = dq_num(w)
        end
        if not v or v < 0 then
            return redis.error_reply('ERR enqueue: bad task ' .. i)
        end
        wv[i] = v
        if not wc[i] or v > DQ_COLD_AFTER_MS then far = true end
    end
    if ARGV[2 * i + 2] == '' then
        return redis.error_reply('ERR enqueue: bad task ' .. i)
    end
    if not names or not names[i] then
        np = np + 1
        if not fresh then plain[np] = ARGV[2 * i + 2] end
    end
end
local now, due_until = dq_now_field(KEYS[4], 'due_until')
local nows = dq_int(now)
-- the due list is on while a worker that reads it claims the queue (claim
-- keeps stats "due_until" DQ_DUE_HOLD_MS ahead): then the plain tasks of
-- the fast path below that are due now go to it, one RPUSH, instead of
-- the ETA set; else the ETA set as before it existed, and what is left
-- in the list moves back there (end of the script: lapsed)
-- A due_until further ahead than DQ_DUE_HOLD_MS was written on a clock
-- since stepped back (or is unlist's 1: past): not trusted, a lapse
-- (review RR2, findings 4 and 7)
local due_on = dq_num(due_until)
if due_on and (due_on <= now or due_on > now + DQ_DUE_HOLD_MS) then
    due_on = nil
end
local lapsed = due_until and not due_on
-- A call of one task writes the ETA set all the same: listing it cost
-- ~7.8k instructions a call more than the ZADD (callgrind, a one-task
-- call: 154.0k with the ETA set, 161.8k listed), which two tasks a call
-- already repay (docs/BENCHMARKS.md)
due_on = due_on ~= nil and due_on > now and n > 1

-- the ETA of task i when stored now (its score: the string given for an
-- absolute ETA)
local function eta_of(i)
    local v = wv[i]
    if v == nil then return now, nows end
    if wc[i] then
        if v == 0 then return now, nows end
        return now + v, dq_int(now + v)
    end
    return v, ARGV[T0 + i]
end

-- every bucket the call may write is read before its first write (only
-- the clock above is written: lib/lua/cold.lua dq_cold_preread): a stop
-- on a MIGRATING slot leaves no task half-stored. Over every plain task
-- past the horizon (a duplicate or a task stored before is counted too)
local lens = nil         -- the open buckets' lengths read there
if far then
    local cnt, any = {}, false
    for i = 1, n do
        if wv[i] and not (names and names[i]) then
            local eta = eta_of(i)
            local ws = eta > now + DQ_COLD_AFTER_MS
                       and dq_cold_window(eta, now)
            if ws then
                cnt[ws] = (cnt[ws] or 0) + 1
                any = true
            end
        end
    end
    if any then lens = dq_cold_preread(KEYS[7], cnt) end
end

-- names (and client ids) whose tombstone window has passed are forgotten,
-- a bounded number per call (never one unbounded ZREMRANGEBYSCORE: after
-- a quiet week that would be millions in one call); an expired entry not
-- yet removed counts as free below, so the bound costs no correctness
if np < n then
    local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. nows,
                           'LIMIT', 0, 2 * n + 100)
    -- in slices: unpack() of more than ~8,000 values fails (Lua's C stack)
    for k = 1, #old, DQ_CHUNK do
        redis.call('ZREM', KEYS[3], unpack(old, k, math.min(k + DQ_CHUNK - 1,
                                                          #old)))
    end
end

-- 'inf' (live) or a tombstone still in its window: taken
local function taken(s)
    return s and (s == 'inf' or tonumber(s) >= now)
end

-- contract v1's names while v1 data is left (review R1, finding 3): the
-- migration moves a live name only with its task, so a v1 task waiting or
-- running holds its name there; nil when v1 has no names key
local v1names = nil
if np < n and redis.call('EXISTS', KEYS[6]) == 1 then
    v1names = KEYS[6]
end
local function taken_v1(member)
    return v1names and taken(redis.call('ZSCORE', v1names, member))
end

-- the plain tasks' ids already stored: one HMGET per DQ_CHUNK ids (their
-- envelopes are then written with one variadic HSET after the loop,
-- instead of one HSETNX per task); exist stays nil when none is, or when
-- the ids are new (ARGV[2] -n: plain is empty)
local exist = nil
for k = 1, fresh and 0 or np, DQ_CHUNK do
    local last = math.min(k + DQ_CHUNK - 1, np)
    local got = redis.call('HMGET', KEYS[1], unpack(plain, k, last))
    for j = 1, #got do
        if got[j] then
            exist = exist or {}
            exist[plain[k + j - 1]] = true
        end
    end
end

-- the earliest ETA waiting before this call (the ETA set is written only
-- after the loop), read at most once and only when a stored task is not
-- due now and no wake is decided yet: false = not read, nil = empty set
local earliest = false
local wake = false
-- whether a task stored at eta (not cold) wakes a sleeping worker: due
-- now, or earlier than every task waiting before this call
-- the due list's head as read by dq_due_head (at most once a call)
local head = {}
local function wakes(eta)
    if eta <= now then return true end
    if earliest == false then
        local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
        earliest = first[2] and tonumber(first[2]) or nil
    end
    return earliest == nil or eta < earliest
end
local stored = 0
-- the full reply, made at the first task not stored now (until then
-- every task was: { now } will do)
local reply = nil

-- the ETA set gets ONE variadic ZADD after the loop (hs: the plain tasks'
-- envelopes, one HSET), the cold tier one HSET per bucket (byw: per
-- window; lib/lua/cold.lua). mine[id] = the ETA of a task stored by this
-- call (written after the loop: the checks below look here too)
local zs, hs, byw, mine = {}, {}, {}, {}
local nz, nh = 0, 0     -- lengths of zs, hs (no # per task)
local cold = false

-- the common call: plain tasks only, none stored before, none going cold.
-- Their envelopes go to one HSET straight from ARGV (ids and envelopes
-- alternate there), no per-task bookkeeping; the same id twice in the
-- call shows as fewer new fields than tasks, and is then put right (the
-- first one wins, as in the loop below). fast turns false (nothing
-- written yet) at the first task that goes cold.
local fast = m == 0 and not exist
local dl, nd = {}, 0    -- the ids for the due list, in call order
if fast then
    for i = 1, n do
        local v = wv[i]
        local id = ARGV[2 * i + 2]
        if v == nil or (v == 0 and wc[i]) then
            if due_on and string.byte(id, 1) ~= 64 then
                nd = nd + 1
                dl[nd] = id
            else
                zs[nz + 1] = nows
                zs[nz + 2] = id
                nz = nz + 2
            end
            wake = true
        else
            local eta, score = eta_of(i)
            if eta > now + DQ_COLD_AFTER_MS and dq_cold_window(eta, now) then
                fast = false
                break
            end
            zs[nz + 1] = score
            zs[nz + 2] = id
            nz = nz + 2
            if not wake then wake = wakes(eta) end
        end
    end
end
if fast then
    local new = 0
    for k = 4, 3 + 2 * n, 2 * DQ_CHUNK do
        new = new + redis.call('HSET', KEYS[1],
                               unpack(ARGV, k, math.min(k + 2 * DQ_CHUNK - 1,
                                                        3 + 2 * n)))
    end
    stored = n
    if new < n then
        -- the same id more than once: the first stays (its envelope
        -- written again, its ETA alone scheduled), the others answer 1
        -- (and the wake decided by the stored ones alone)
        local first, fix, z = {}, {}, {}
        -- whether task i goes to the due list (as in the loop above: due
        -- now, the list on, an id that cannot read as a marker, '@' = 64)
        local function listed(i)
            local v = wv[i]
            return due_on and (v == nil or (v == 0 and wc[i]))
                   and string.byte(ARGV[2 * i + 2], 1) ~= 64
        end
        reply = { now }
        stored = 0
        wake = false
        dl, nd = {}, 0
        for i = 1, n do
            local id = ARGV[2 * i + 2]
            local f = first[id]
            if f then
                reply[2 * i] = 1
                reply[2 * i + 1] = (eta_of(f))
            else
                local eta, score = eta_of(i)
                first[id] = i
                stored = stored + 1
                fix[#fix + 1] = id
                fix[#fix + 1] = ARGV[2 * i + 3]
                if listed(i) then
                    nd = nd + 1
                    dl[nd] = id
                else
                    z[#z + 1] = score
                    z[#z + 1] = id
                end
                reply[2 * i] = 0
                reply[2 * i + 1] = eta
                if not wake then wake = wakes(eta) end
            end
        end
        for k = 1, #fix, 2 * DQ_CHUNK do
            redis.call('HSET', KEYS[1],
                       unpack(fix, k, math.min(k + 2 * DQ_CHUNK - 1, #fix)))
        end
        zs, nz = z, #z
        if fresh and stored > new then
            -- ids sent as fresh (ARGV[2] -n) that were stored already: no
            -- caller of ours sends one (docs/CONTRACT.md), but if one did,
            -- its envelope was overwritten above and it is scheduled
            -- again (a running task can run twice): counted and logged,
            -- never silent (review 9X, finding 1)
            redis.call('HINCRBY', KEYS[4], 'fresh_collisions',
                       dq_int(stored - new))
            redis.log(redis.LOG_WARNING, 'deferred: enqueue: '
                      .. dq_int(stored - new) .. ' id(s) sent as fresh '
                      .. 'were stored already in ' .. KEYS[1])
        end
    end
else
    -- left at a task going cold: what the fast loop planned goes (the
    -- loop below stores every task; none is listed twice)
    zs, nz, wake = {}, 0, false
    dl, nd = {}, 0
end
for i = 1, fast and 0 or n do
    local id = ARGV[2 * i + 2]
    local env = ARGV[2 * i + 3]
    local name = ''
    local kw = 0
    if names and names[i] then name, kw = names[i], kws[i] end
    local keyed = kw ~= 0
    if kw < 0 then kw = tomb end
    local status = 0
    local at = 0
    local ws = nil
    if mine[id] then
        status = 1
    elseif not keyed and name == '' then
        if exist and exist[id] then status = 1 end
    elseif keyed and taken(redis.call('ZSCORE', KEYS[3], '#' .. id))
       and redis.call('HEXISTS', KEYS[1], id) == 0 then
        status = 1      -- ran already, within the window: not again
        keyed = false
    elseif keyed and taken_v1('#' .. id)
       and redis.call('HEXISTS', KEYS[1], id) == 0 then
        status = 1      -- stored (or ran) in contract v1: not again
        keyed = false
    elseif name == '' then
        if redis.call('HSETNX', KEYS[1], id, env) == 0 then status = 1 end
    elseif redis.call('HEXISTS', KEYS[1], id) == 1 then
        status = 1
    else
        local s = redis.call('ZSCORE', KEYS[3], name)
        if not taken(s) and v1names then
            s = redis.call('ZSCORE', v1names, name)
        end
        if taken(s) then
            if s == 'inf' then status = 2 else status = 3 end
        else
            redis.call('HSET', KEYS[1], id, env)
        end
    end
    if status == 1 then
        at = mine[id] or tonumber(redis.call('ZSCORE', KEYS[2], id) or '0')
        if at == 0 and not (names and names[i]) then
            -- a plain id (only those are listed: never a named or keyed
            -- one) stored, not on eta: waiting in the due list? Its run's
            -- ETA from the list's head (dq_due_head: one bounded read a
            -- call); past the head read, the call's now: a listed task is
            -- due (review RR2, finding 1: was one LPOS of the whole list
            -- a task)
            at = dq_due_head(KEYS[8], head, id, now, KEYS[2]) or 0
        end
    elseif status == 0 then
        local eta, score = eta_of(i)
        at = eta
        mine[id] = eta
        if not keyed and name == '' then
            -- (a task due within the horizon never goes cold: no call)
            if eta > now + DQ_COLD_AFTER_MS then
                ws = dq_cold_window(eta, now)
            end
            if ws then
                -- cold: never due soon, so it decides no wake here
                local w = byw[ws]
                if not w then w = {}; byw[ws] = w end
                w[#w + 1] = id
                w[#w + 1] = dq_cold_value(eta, ws, env)
                cold = true
            else
                hs[nh + 1] = id
                hs[nh + 2] = env
                nh = nh + 2
            end
        end
        if not ws then
            zs[nz + 1] = score
            zs[nz + 2] = id
            nz = nz + 2
        end
        if name ~= '' then redis.call('ZADD', KEYS[3], 'inf', name) end
        if keyed then
            redis.call('ZADD', KEYS[3], dq_int(math.max(eta, now) + kw),
                       '#' .. id)
        end
        stored = stored + 1
        if not wake and not ws then wake = wakes(eta) end
    end
    if status ~= 0 and not reply then
        -- the tasks before this one were all stored now
        reply = { now }
        for j = 1, i - 1 do
            reply[2 * j] = 0
            reply[2 * j + 1] = (eta_of(j))
        end
    end
    if reply then
        reply[2 * i] = status
        reply[2 * i + 1] = at
    end
end
-- in slices: unpack of one table of every pair fails above ~8,000 values
-- (Lua's C stack), after the envelopes above were written
local added = 0
for k = 1, nh, 2 * DQ_CHUNK do
    added = added + redis.call('HSET', KEYS[1],
                               unpack(hs, k, math.min(k + 2 * DQ_CHUNK - 1,
                                                      nh)))
end
if fresh and added < nh / 2 then
    -- the general loop's plain ids sent as fresh that were stored (the
    -- fast path's count above; a cold one is not seen: its bucket is
    -- not read): counted and logged (review 9Z, finding 2)
    redis.call('HINCRBY', KEYS[4], 'fresh_collisions', dq_int(nh / 2 - added))
    redis.log(redis.LOG_WARNING, 'deferred: enqueue: '
              .. dq_int(nh / 2 - added) .. ' id(s) sent as fresh were '
              .. 'stored already in ' .. KEYS[1])
end
for k = 1, nz, 2 * DQ_CHUNK do
    redis.call('ZADD', KEYS[2], unpack(zs, k, math.min(k + 2 * DQ_CHUNK - 1,
                                                       nz)))
end
-- the due list: one RPUSH per DQ_CHUNK ids, each headed by the marker of
-- this call's now (the ETA the claim reports); then its count
for k = 1, nd, DQ_CHUNK do
    redis.call('RPUSH', KEYS[8], '@' .. nows,
               unpack(dl, k, math.min(k + DQ_CHUNK - 1, nd)))
end
if cold then
    local _, w = dq_cold_store(KEYS[7], KEYS[4], byw, lens)
    if w then wake = true end
end
-- the list lapsed (stats due_until passed: no worker that reads it
-- claimed for DQ_DUE_HOLD_MS): up to DQ_CHUNK of its ids back to the ETA
-- set, each at its run's ETA, in the same call that takes them off the
-- list (neither write can stop on a MIGRATING slot: both keys existed
-- when the call began, Redis Cluster checks declared keys, and this call
-- deleted neither); the list emptied is deleted and not written again,
-- and due_until with it (the next calls skip this until a claim turns
-- the list on again)
if lapsed then
    local moved, gone = dq_due_back(KEYS[2], KEYS[8], KEYS[4])
    if moved > 0 then wake = true end
    if gone then redis.call('HDEL', KEYS[4], 'due_until') end
end

-- (one HSET of both counters from values read by dq_now's HMGET cost
-- ~8k instructions a call more than this HINCRBY: callgrind)
if nd > 0 then redis.call('HINCRBY', KEYS[4], 'due_n', dq_int(nd)) end
if stored > 0 then
    redis.call('HINCRBY', KEYS[4], 'enqueued', dq_int(stored))
end
if wake then dq_wake(KEYS[5]) end
return reply or { now }
