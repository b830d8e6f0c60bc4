-- prelude: lib/gen_scripts.sh puts this in front of every script (after
-- the script's own "#!lua" line, if it has one), so its helpers are locals
-- of each script's chunk (Redis forbids globals). This is the one home of
-- the state layout, the lease member layout, the wake push and the
-- "slot freed" wake; no script parses or builds them itself.

-- Most ids handed to one variadic Redis call: Lua's unpack() is limited by
-- the C stack (LUAI_MAXCSTACK 8000 in Redis' Lua), and a script's work per
-- call is bounded by this too (every loop takes at most DQ_CHUNK items).
local DQ_CHUNK = 1000

-- A numeric argument: the number, or nil when it is absent, not a number
-- or not finite (Lua's tonumber takes "nan", "inf" and "1e999"; any of
-- them would pass a comparison and fail a ZADD after earlier writes).
-- Every script checks all its numeric arguments with it before its first
-- write (dq_now writes: the checks come before it).
local function dq_num(s)
    local v = tonumber(s)
    if v == nil or v ~= v or v == math.huge or v == -math.huge then
        return nil
    end
    return v
end

-- An integer as text without printf's floating-point path: a number
-- handed to redis.call is formatted with %.17g, and tostring() or a
-- concatenation uses %.14g, ~4,000 instructions each in glibc (callgrind:
-- ~30,000 of a claim call's fixed ~300,000 went there); '%d' costs a tenth.
-- Hot paths pass strings ('0', dq_int(now)); a non-integer (or a number
-- beyond 2^53) keeps tostring().
local function dq_int(x)
    if x == math.floor(x) and x > -9007199254740992
       and x < 9007199254740992 then
        return string.format('%d', x)
    end
    return tostring(x)
end

-- Redis TIME in ms, never behind the last now of this queue (kept in the
-- stats hash `stats`: a failover to a replica whose clock lags) unless that
-- one was over 60 s ahead (a clock error since corrected: step back rather
-- than stall every countdown and lease; the gap records below are cleared
-- then, they belong to the wrong time line). The clock is written only
-- when it changes; a field that is not a number (hand edit, corruption)
-- counts as absent and is overwritten. A forward move of more than a
-- second (a quiet queue, or the host's clock stepped forward) is
-- remembered, whichever script saw it first: claim uses it to tell a clock
-- jump from expired leases. Two gaps are kept, "gap_from"/"gap_to" and
-- "gap2_from"/"gap2_to", each until twice its length has passed after it
-- (claim guards a jump for at most one lease period, and takes a gap for a
-- jump only when it is longer than half a lease period): a new gap takes a
-- slot whose window has passed, else the smaller of the two when it is
-- larger than that one, else it is not recorded (smaller than both open
-- ones): a later small gap cannot hide a jump whose window is still open,
-- and a second jump soon after a larger first one is guarded too (review
-- R1, finding 5).
-- Returns now and the gap records as claim needs them: { clock, gap_from,
-- gap_to, jump_seen, gap2_from, gap2_to } as stored after this call, then
-- the values of the further stats fields named after `stats`, as read
-- (one HMGET reads them all; each field more costs ~1.9k instructions a
-- call, callgrind: only enqueue and claim name some).
local function dq_now(stats, ...)
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local g = redis.call('HMGET', stats, 'clock', 'gap_from', 'gap_to',
                         'jump_seen', 'gap2_from', 'gap2_to', ...)
    local clock = dq_num(g[1]) or 0
    if clock >= now and clock - now <= 60000 then return clock, g end
    -- written only when it moves (forward, or back after a clock error):
    -- several calls in one ms share the stored value
    if clock > now then
        redis.call('HSET', stats, 'clock', now)
        redis.call('HDEL', stats, 'gap_from', 'gap_to', 'gap2_from',
                   'gap2_to')
        g[2], g[3], g[5], g[6] = false, false, false, false
    elseif clock > 0 and now - clock > 1000 then
        -- the length of slot i's gap (2: gap_from/gap_to, 5: gap2_*), nil
        -- when it is absent or its window has passed
        local function open(i)
            local gf, gt = dq_num(g[i]), dq_num(g[i + 1])
            if gf and gt and gt > gf and now < gt + 2 * (gt - gf) then
                return gt - gf
            end
            return nil
        end
        local a, b = open(2), open(5)
        local slot = nil
        if not a then
            slot = 2
        elseif not b then
            slot = 5
        elseif a <= b then
            if now - clock > a then slot = 2 end
        elseif now - clock > b then
            slot = 5
        end
        if slot == 2 then
            redis.call('HSET', stats, 'clock', now, 'gap_from', clock,
                       'gap_to', now)
        elseif slot == 5 then
            redis.call('HSET', stats, 'clock', now, 'gap2_from', clock,
                       'gap2_to', now)
        else
            redis.call('HSET', stats, 'clock', dq_int(now))  -- open ones stay
        end
        if slot then
            g[slot] = tostring(clock)
            g[slot + 1] = tostring(now)
        end
    else
        redis.call('HSET', stats, 'clock', dq_int(now))
    end
    return now, g
end

-- dq_now for a script that needs no gap record, only one further stats
-- field (enqueue): returns now and that field's value. One HMGET of two
-- fields; only when the clock must be set back or moved forward by more
-- than a second does it take dq_now's whole path (which reads the gap
-- records and writes them as dq_now always does), so the clock and the
-- gaps stay exactly as dq_now keeps them. Each field dq_now's HMGET reads
-- costs ~1.9k instructions a call (callgrind): a call of enqueue saves the
-- five gap fields' read.
local function dq_now_field(stats, field)
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local g = redis.call('HMGET', stats, 'clock', field)
    local clock = dq_num(g[1]) or 0
    if clock >= now and clock - now <= 60000 then return clock, g[2] end
    if clock < now and (clock <= 0 or now - clock <= 1000) then
        redis.call('HSET', stats, 'clock', dq_int(now))
        return now, g[2]
    end
    local n, all = dq_now(stats, field)
    return n, all[7]
end

-- A task's value (hash `tasks`) is its envelope, after a state prefix
-- when the task has history (contract v2: there is no `state` hash):
--   "S<runs>:<retries>:<first_run_ms>:<failed_ms>:<claim>[:<name>]\n"
-- runs: runs that reached the function (X-AppEngine-TaskExecutionCount);
-- retries: failed attempts, lease expiries included (TaskRetryCount; what
-- retry_limit and the backoff count); first_run_ms: the first claim that
-- was not given back; failed_ms: when the last failed attempt was judged
-- (0 none; the age limit is checked at that moment); claim: the claim id
-- whose lease expired ('' after a retry or release: the claim ended
-- there), which a late ack may still name; name: kept by bury for
-- requeue. An envelope is a msgpack array (first byte 0x9_ or 0xdc/0xdd),
-- never 'S'. Only the rare paths write a prefix (lease expiry, retry,
-- bury, a release that has counters to keep); claim reads it from the
-- value it reads anyway and ack deletes it with the value.
-- Returns runs, retries, first_run_ms, failed_ms, claim, name, envelope
-- (the value itself when it has no prefix; an unreadable prefix reads as
-- no history).
local function dq_split(v)
    if v and string.byte(v, 1) == 83 then                  -- 'S'
        local nl = string.find(v, '\n', 2, true)
        if nl then
            local e, r, f, x, c, nm = string.match(string.sub(v, 2, nl - 1),
                '^(%d+):(%d+):(%d+):(%d+):([%w_-]*):?([%w_-]*)$')
            local env = string.sub(v, nl + 1)
            if e then
                return tonumber(e), tonumber(r), tonumber(f), tonumber(x),
                       c, nm, env
            end
            return 0, 0, 0, 0, '', '', env
        end
    end
    return 0, 0, 0, 0, '', '', v
end

-- The stored value of an envelope with that state (no prefix when there
-- is nothing to keep: no run, no retry, no failure, no name).
local function dq_join(e, r, f, x, c, nm, env)
    if e == 0 and r == 0 and x == 0 and (nm == nil or nm == '') then
        return env
    end
    local s = 'S' .. e .. ':' .. r .. ':' .. f .. ':' .. x .. ':' .. c
    if nm and nm ~= '' then s = s .. ':' .. nm end
    return s .. '\n' .. env
end

-- The function and the name of a stored value (prefix skipped; envelope
-- version 2 [2, func, args, kwargs, name, ...] or version 1 [1, id, func,
-- args, kwargs, queue, name, ...]): nil, nil when it does not decode.
local function dq_env_func_name(v)
    if not v then return nil, nil end
    local _, _, _, _, _, _, env = dq_split(v)
    local okp, arr = pcall(cmsgpack.unpack, env)
    if not okp or type(arr) ~= 'table' then return nil, nil end
    local fn, nm
    if arr[1] == 1 then fn, nm = arr[3], arr[7] else fn, nm = arr[2], arr[5] end
    if type(fn) ~= 'string' then fn = nil end
    if type(nm) ~= 'string' or nm == '' then nm = nil end
    return fn, nm
end

-- A lease (zset `leases`) is the member "id|claim|first_run_ms" scored by
-- its deadline: only the holder of that claim id can name it, and a claim
-- id is never issued twice (the worker draws 128 random bits), so no
-- rollback of Redis data can make a stale holder's call match a newer
-- lease. first_run_ms rides along so that the success path needs no state
-- of its own (the worker echoes it back).
local function dq_member(id, claim, first)
    return id .. '|' .. claim .. '|' .. first
end

-- A member longer than Redis' zset-max-listpack-value (64 bytes by
-- default): claim adds it with the leases to a lease set it creates, or to
-- one it finds not a skiplist (OBJECT ENCODING), and removes it in the same
-- call, so Redis makes that set a skiplist. Redis 7.0 never turns a live
-- skiplist back into a listpack, but it builds one again when it loads a
-- set of <= 128 members of <= 64 bytes from an RDB or a RESTORE (a
-- replica's full sync, then a failover; a restart; a reshard's MIGRATE),
-- and a busy queue's lease set never empties: the next claim that adds a
-- lease re-pads it (review R2, finding 1). A listpack of up to 128 leases
-- is scanned end to end, scores parsed, by every ZADD, ZREM and lookup:
-- ~8,000 Redis instructions per task of a worker cycle (callgrind,
-- docs/BENCHMARKS.md). A zset-max-listpack-value raised to 65 or more
-- turns the pad off (the set stays a listpack; claim then checks and pads
-- in vain on every call). Never a real member: an id is at most 64
-- characters of [A-Za-z0-9_-].
-- (written out: string.rep made it at every call of every script, ~3.2k
-- instructions)
local DQ_LEASE_PAD =
    '-----------------------------------------------------------------'

-- id, claim, first_run_ms (a number) of a member; nil if malformed
local function dq_member_parse(m)
    local id, c, f = string.match(m, '^(.*)|([%w_-]*)|(%d+)$')
    if not id then return nil end
    return id, c, tonumber(f)
end

-- One wake token for a sleeping worker. The list holds at most 16: past
-- that it is cut back to 8, so a list nobody pops (no worker sleeping: a
-- busy fleet, or producers running before any worker) costs one LTRIM
-- every 9 pushes, not one a push (~5.5k instructions a call)
local function dq_wake(wake)
    if redis.call('LPUSH', wake, '1') > 16 then
        redis.call('LTRIM', wake, 0, 7)
    end
end

-- Claim passing the token on (due work remains): one token is enough, the
-- worker it wakes claims and passes one on in turn; while one waits (no
-- worker sleeping: every cycle of a busy queue) this is a single LLEN
-- instead of an LPUSH and an LTRIM.
local function dq_wake_on(wake)
    if redis.call('LLEN', wake) == 0 then redis.call('LPUSH', wake, '1') end
end

-- A redis.pcall reply read for what a MIGRATING slot may have moved: nil
-- when it is a cluster routing refusal (the key is not on this node: a
-- read Redis 7.0 refuses as "non local key", or ASK, TRYAGAIN, MOVED,
-- CLUSTERDOWN) so the caller looks again later; any other error
-- (WRONGTYPE, ...) is raised as redis.call raises it, never a silent
-- stall (review RZ, finding 2); else the reply itself.
-- Redis 7.0 (the version this runs on) refuses a read inside a script
-- always as "non local key"; the ASK, MOVED, TRYAGAIN and CLUSTERDOWN
-- patterns are a precaution for other versions (review RY, finding 3).
local function dq_routed(r)
    if type(r) ~= 'table' or not r.err then return r end
    local e = r.err
    if string.find(e, 'non local key', 1, true)
       or string.find(e, '^ASK ') or string.find(e, '^TRYAGAIN')
       or string.find(e, '^MOVED ') or string.find(e, '^CLUSTERDOWN') then
        return nil
    end
    error(r)
end

-- A lease slot was freed under max_concurrent: if a claim was held back by
-- it (conf "waiting", set by claim), wake one sleeping worker to take it.
local function dq_slot_freed(conf, wake)
    if redis.call('HDEL', conf, 'waiting') == 1 then dq_wake(wake) end
end

-- The error text retry and bury store: whole, except when Redis is at
-- maxmemory (both run there, allow-oom, so that no result is refused):
-- then cut to DQ_OOM_ERROR bytes, and the growth of one call is this and
-- a few bytes of state. INFO is read only by these two (failed attempts).
local DQ_OOM_ERROR = 64
local function dq_error_text(s)
    local info = redis.call('INFO', 'memory')
    local max = tonumber(string.match(info, '\nmaxmemory:(%d+)'))
    local used = tonumber(string.match(info, '\nused_memory:(%d+)'))
    if max and max > 0 and used and used >= max and #s > DQ_OOM_ERROR then
        return string.sub(s, 1, DQ_OOM_ERROR)
    end
    return s
end

-- App Engine's backoff before attempt retries + 1: the same arithmetic as
-- dq_backoff_ms (lib/dq_retry.c; t/unit/test_scripts_claim.c checks that
-- both agree), used for expired leases, which no worker judges.
local function dq_backoff(min, max, dbl, retries)
    if min <= 0 then return 0 end
    if max < min then max = min end
    if dbl < 0 then dbl = 0 end
    local k = 0
    if retries > 1 then k = retries - 1 end
    local step = min
    local d = 0
    while d < k and d < dbl do
        if step > math.floor(max / 2) then return max end
        step = step * 2
        d = d + 1
    end
    if step >= max then return max end
    if k <= dbl then return step end
    if k - dbl >= math.floor(max / step) then return max end
    d = step * (1 + (k - dbl))
    if d < max then return d end
    return max
end

-- Give back leases (members ms of tasks ids) without charging an attempt:
-- due again at now + delay. A task that never ran (no failed attempt, no
-- run) forgets the first-run time this claim gave it: a task without
-- history keeps no prefix, one with history keeps its counters (the claim
-- ended: no late ack of it). Returns how many were given back (members not
-- leased any more are skipped); got, if given, gets got[member] = true for
-- each.
local function dq_release(k_tasks, k_eta, k_lease, ids, ms, now, delay, got)
    if #ids == 0 then return 0 end
    local leased = redis.call('ZMSCORE', k_lease, unpack(ms))
    local rid, rm = {}, {}
    for i = 1, #ids do
        if leased[i] then
            rid[#rid + 1] = ids[i]
            rm[#rm + 1] = ms[i]
            if got then got[ms[i]] = true end
        end
    end
    if #rid == 0 then return 0 end
    local vals = redis.call('HMGET', k_tasks, unpack(rid))
    local st, zs = {}, {}
    local at = now + delay
    for i = 1, #rid do
        local v = vals[i]
        if v and string.byte(v, 1) == 83 then
            local e, r, f, x, _, nm, env = dq_split(v)
            if e == 0 and r == 0 then f = 0 end
            st[#st + 1] = rid[i]
            st[#st + 1] = dq_join(e, r, f, x, '', nm, env)
        end
        zs[#zs + 1] = at
        zs[#zs + 1] = rid[i]
    end
    redis.call('ZREM', k_lease, unpack(rm))
    if #st > 0 then redis.call('HSET', k_tasks, unpack(st)) end
    redis.call('ZADD', k_eta, unpack(zs))
    return #rid
end

-- The acks' arguments (lib/dq_cmd.c dq__arg_acks builds them), from
-- args[base], for n tasks: n pairs "+inf", lease member
-- ("id|claim|first_run_ms", as claim gave it), then the n ids, then n
-- flags: "1" (history: the claim said retries, runs or failed_ms > 0: it
-- may have an `errors` entry) or "0", followed directly by the task's name
-- if it has one. The pairs go to one ZADD and the ids to one HDEL as they
-- are (unpack of the arguments: no member built, no table filled per
-- task). True when well formed (every script checks before its first
-- write): each score "+inf", each flag starting with 0 or 1. That member
-- i is id i's is not checked (a string.find per task cost ~3,800
-- instructions a task, more than building the member did: callgrind,
-- docs/BENCHMARKS.md): dq__arg_acks builds both from one item, and a
-- caller that can run this script can as well delete any key.
local function dq_ack_args_ok(args, base, n)
    local fb = base + 3 * n
    for i = 0, n - 1 do
        if args[base + 2 * i] ~= '+inf' then return false end
        local fl = args[fb + i]
        if fl ~= '0' and fl ~= '1' then
            local b = string.byte(fl, 1)        -- a name follows
            if b ~= 48 and b ~= 49 then return false end
        end
    end
    return true
end

-- Ack n finished tasks (arguments from args[base]: dq_ack_args_ok). K:
-- { tasks, eta, leases, stats, errors, names }. Accepted while the lease
-- "id|claim|first_run_ms" is held, or after it expired as long as nobody
-- claimed the task again (it waits in the ETA set and its state prefix
-- still names this claim: running it again would be for nothing; stats
-- "acked_late"). Deletes the value (and its prefix), the error of a task
-- with history, tombstones names until now + tomb (tomb <= 0: free at
-- once), counts "done". Returns the per-task replies (1 acked, 0 fenced),
-- how many leases it freed and how many late acks it took out of `eta`
-- (which may have emptied it: deleted).
-- Which leases are held, in two calls whatever n: every member still in
-- `leases` gets the score +inf (ZADD XX GT: a lease deadline is finite,
-- every script that writes one checks it with dq_num; CH counts them),
-- then ZREMRANGEBYSCORE +inf +inf removes them (no lookup by member: the
-- ZADD found them). All n held (the success path) means n different
-- tasks (a task holds at most one lease: claim takes it out of `eta`, and
-- every path that puts it back removes the lease first). Fewer: the held
-- ones are those scored +inf (one ZRANGEBYSCORE), the others are checked
-- as late acks. Was one ZREM call per task, its reply saying held or not
-- (ZMSCORE formats every score with %.17g): ~1,800 instructions a task
-- more (docs/BENCHMARKS.md). Success path: 2 element operations a task on
-- `leases`, one variadic HDEL on `tasks`, one HINCRBY.
local function dq_ack(K, now, tomb, args, base, n)
    local ib, fb = base + 2 * n, base + 3 * n     -- ids, flags
    local nh = redis.call('ZADD', K.leases, 'XX', 'GT', 'CH',
                          unpack(args, base, ib - 1))
    local leased = nil                  -- nil: every one held
    if nh < n then
        leased = {}
        local got = {}
        local inf = redis.call('ZRANGEBYSCORE', K.leases, '+inf', '+inf')
        for i = 1, #inf do got[inf[i]] = true end
        for i = 1, n do
            -- a member named twice is held the first time only
            local m = args[base + 2 * i - 1]
            leased[i] = got[m] == true
            got[m] = nil
        end
    end
    -- removed now: a held lease ends with this ack whatever else happens
    if nh > 0 then
        redis.call('ZREMRANGEBYSCORE', K.leases, '+inf', '+inf')
    end
    local reply = {}
    local acked, errs, tombs = nil, {}, {}      -- acked nil: all the ids
    local frees = {}            -- names free at once (tomb <= 0)
    local na = n
    local gone = {}
    if leased then
        -- some not held: only the misses (late acks) read the values and
        -- the ETA set
        local late, lid = {}, {}
        for i = 1, n do
            if not leased[i] then
                late[#late + 1] = i
                lid[#lid + 1] = args[ib + i - 1]
            end
        end
        local vals = redis.call('HMGET', K.tasks, unpack(lid))
        local waiting = redis.call('ZMSCORE', K.eta, unpack(lid))
        local ok = {}
        for k = 1, #late do
            local i = late[k]
            if waiting[k] and vals[k] then
                local _, _, _, _, c = dq_split(vals[k])
                local _, mc = dq_member_parse(args[base + 2 * i - 1])
                if c ~= '' and c == mc then ok[i] = true end
            end
        end
        acked, na = {}, 0
        local seen = {}
        for i = 1, n do
            local id = args[ib + i - 1]
            if (leased[i] or ok[i]) and not seen[id] then
                seen[id] = true
                na = na + 1
                acked[na] = id
                if not leased[i] then gone[#gone + 1] = id end
            else
                reply[i] = 0
            end
        end
    end
    for i = 1, n do
        if reply[i] == nil then
            reply[i] = 1
            local fl = args[fb + i - 1]
            -- a late ack: the expiry gave it history
            if string.byte(fl, 1) == 49 or (leased and not leased[i]) then
                errs[#errs + 1] = args[ib + i - 1]
            end
            if #fl > 1 then
                local name = string.sub(fl, 2)
                if tomb > 0 then
                    tombs[#tombs + 1] = now + tomb
                    tombs[#tombs + 1] = name
                else
                    frees[#frees + 1] = name            -- no window
                end
            end
        end
    end
    if na > 0 then
        if #gone > 0 then
            redis.call('ZREM', K.eta, unpack(gone))
            redis.call('HINCRBY', K.stats, 'acked_late', #gone)
        end
        if acked then
            redis.call('HDEL', K.tasks, unpack(acked, 1, na))
        else
            redis.call('HDEL', K.tasks, unpack(args, ib, fb - 1))
        end
        if #errs > 0 then redis.call('HDEL', K.errors, unpack(errs)) end
        if #tombs > 0 then redis.call('ZADD', K.names, unpack(tombs)) end
        -- one ZREM for all: a ZREM per name, one that emptied `names`
        -- deleted it, and on a MIGRATING slot Redis 7.0 stopped the script
        -- at the next, the leases removed and the tasks' values not: in
        -- no set, kept for good (review RS, t/02)
        if #frees > 0 then redis.call('ZREM', K.names, unpack(frees)) end
        redis.call('HINCRBY', K.stats, 'done', dq_int(na))
    end
    return reply, nh, #gone
end

-- The due list (key "due", lib/dq_contract.h DQ_KEY_DUE): ids of plain
-- tasks enqueued due now, oldest first, in runs each headed by a marker
-- "@<eta ms>" (the queue's now at that enqueue: the run's ETA). A plain id
-- is [A-Za-z0-9_-] (an id starting with '@' is never listed: enqueue keeps
-- it on eta), so a marker never reads as an id. Every listed id has a
-- marker before it; a marker may be followed by another or end the list
-- (its run's ids removed by id by a build before review RR2: remove by id
-- now takes a run's marker with its last id, dq_due_remove): readers skip
-- those, and claim cuts the ones it read (dq_due_cut). The stats field
-- "due_n" counts the listed ids (status); "due_until" (claim, every 30 s)
-- says until when a worker that reads the list claims the queue: enqueue
-- lists tasks only while now < due_until <= now + DQ_DUE_HOLD_MS.
local DQ_DUE_HOLD_MS = 60000

-- Up to want ids from the list's head. Read in rounds, each an LRANGE of
-- the ids still wanted + 2 elements (one marker and one id past them: a
-- list of long runs, the usual, takes one round; a list of runs of one
-- task, a marker per id, about half as many ids a round), at most
-- DQ_DUE_ROUNDS rounds (then fewer ids are taken). Each element read
-- costs Redis and Lua ~1.5k instructions: reading 2 want + 1 in one round
-- cost 4.7k a claimed task more (callgrind, docs/BENCHMARKS.md). Returns
-- r = { ids, etas (each id's marker text without '@'), n (#ids), plus
-- what dq_due_cut needs } and whether listed ids may remain after these.
local DQ_DUE_ROUNDS = 6
local function dq_due_read(key, want)
    local ids, etas = {}, {}
    -- q: index of the last id taken; cur: the run's ETA ('0' for an id
    -- without a marker, which no script writes: taken first); rest: index
    -- of the first id not taken; len: elements read; full: the last read
    -- got all it asked for (the list may go on)
    local n, q, cur, rest, len, full = 0, 0, '0', nil, 0, true
    for _ = 1, DQ_DUE_ROUNDS do
        local cnt = want - n + 2
        local els = redis.call('LRANGE', key, len, len + cnt - 1)
        for i = 1, #els do
            local e = els[i]
            if string.byte(e, 1) == 64 then              -- '@'
                if n < want then cur = string.sub(e, 2) end
            elseif n < want then
                n = n + 1
                ids[n] = e
                etas[n] = cur
                q = len + i
            else
                rest = len + i
                break
            end
        end
        if rest then
            len = rest
            break
        end
        len = len + #els
        if #els < cnt then
            full = false
            break
        end
        if n >= want then break end
    end
    local r = { ids = ids, etas = etas, n = n, q = q, rest = rest,
                cur = cur, len = len, full = full and not rest }
    return r, rest ~= nil or r.full
end

-- Take what dq_due_read read (r.n ids) off the list, a marker kept in
-- front of the first id left: LTRIM (and LSET 0 when the first id left is
-- in the run of the last id taken, or may be: the read ended on it). The
-- list emptied is deleted (a script must not write it again afterwards:
-- on a MIGRATING slot Redis 7.0 stops it there). Returns true when the
-- list is gone.
local function dq_due_cut(key, r)
    if r.rest then
        if r.rest - 1 > r.q then
            -- a marker heads the rest already
            if r.rest - 2 > 0 then
                redis.call('LTRIM', key, r.rest - 2, -1)
            end
        else
            redis.call('LTRIM', key, r.q - 1, -1)
            redis.call('LSET', key, 0, '@' .. r.cur)
        end
        return false
    end
    if not r.full then
        -- no listed id left: the list (and trailing markers) goes
        if r.len > 0 then redis.call('DEL', key) end
        return true
    end
    -- the read ended before the list did: keep from its last element,
    -- made a marker when it is a taken id (what follows may be its run)
    if r.q == r.len then
        redis.call('LTRIM', key, r.q - 1, -1)
        redis.call('LSET', key, 0, '@' .. r.cur)
    elseif r.len - 1 > 0 then
        redis.call('LTRIM', key, r.len - 1, -1)
    end
    return false
end

-- dq_due_cut, then the list's count: less the ids taken, or deleted with
-- the list (a count that drifted is reset there). True when the list is
-- gone.
local function dq_due_drop(key, stats, r)
    if dq_due_cut(key, r) then
        redis.call('HDEL', stats, 'due_n')
        return true
    end
    if r.n > 0 then redis.call('HINCRBY', stats, 'due_n', -r.n) end
    return false
end

-- The ETA of a listed id (an enqueue that finds it stored, not on eta):
-- the list's first DQ_DUE_LOOK elements are read once a call into h
-- (h.at: id -> its run's ETA; h.more: the list goes on past them).
-- Returns the run's ETA, the call's now when the id may be listed past
-- them (a listed task is due), nil when it is not listed (running, dead).
-- Past them, an id dead (one ZSCORE) is not listed; a running one is not
-- looked up (its lease set is not read: O(leases) an enqueue, review RDL
-- finding 3) and answers now too, as does one a MIGRATING slot keeps
-- from being looked up. k_eta: "dq2:{q}:eta" (the dead set is its
-- sibling: the same hash tag).
local DQ_DUE_LOOK = 1000
local function dq_due_head(key, h, id, now, k_eta)
    if string.byte(id, 1) == 64 then return nil end     -- never listed
    if not h.at then
        h.at = {}
        local els = redis.call('LRANGE', key, 0, DQ_DUE_LOOK - 1)
        local cur = 0
        for j = 1, #els do
            local e = els[j]
            if string.byte(e, 1) == 64 then
                cur = tonumber(string.sub(e, 2)) or 0
            else
                h.at[e] = cur
            end
        end
        h.more = #els == DQ_DUE_LOOK
    end
    local at = h.at[id]
    if at then return at end
    if not h.more then return nil end
    if dq_routed(redis.pcall('ZSCORE', string.sub(k_eta, 1, -4) .. 'dead',
                             id)) then
        return nil
    end
    return now
end

-- One listed id off the list (remove by id; the caller knows the id is
-- stored: a listed task always has its value, so an id that is not pays
-- no scan). Its run's marker goes with it when the id was the run's last
-- (no marker is left without ids: review RR2, finding 2): LPOS, the two
-- neighbours, then one LREM (of the id, or of the id twice after the
-- marker before it was overwritten with it). O(position in the list).
-- Returns true when the id was listed.
local function dq_due_remove(key, id)
    if string.byte(id, 1) == 64 then return false end   -- never listed
    local p = redis.call('LPOS', key, id)
    if not p then return false end
    local nb = redis.call('LRANGE', key, math.max(p - 1, 0), p + 1)
    local before, after = nil, nb[#nb]
    if p > 0 then before = nb[1] end
    if #nb == (p > 0 and 2 or 1) then after = nil end
    if before and string.byte(before, 1) == 64
       and (not after or string.byte(after, 1) == 64) then
        -- the run's last id: its marker goes too (the id is listed once,
        -- at p: LPOS found its first place, so both are the first two)
        redis.call('LSET', key, p - 1, id)
        redis.call('LREM', key, 2, id)
    else
        redis.call('LREM', key, 1, id)
    end
    return true
end

-- Up to DQ_CHUNK listed ids back to the ETA set (k_eta), each at its
-- run's ETA, taken off the list by the same call (enqueue of a lapsed
-- list, unlist). A listed id whose value is gone (a build before the
-- list deleted it by id: it took the value and counted the delete in
-- stats "deleted") is dropped, not counted again (review RDL finding 7),
-- and not moved (a claim would lease it and the worker bury it as
-- "missing envelope": a dead task that never was). Every read comes
-- before the first write; one a MIGRATING slot refuses moves nothing (the
-- next call does). Returns how many moved and whether the list is gone.
local function dq_due_back(k_eta, key, stats)
    local r = dq_due_read(key, DQ_CHUNK)
    local nz = 0
    if r.n > 0 then
        local vals = dq_routed(redis.pcall('HMGET',
                                           string.sub(k_eta, 1, -4) .. 'tasks',
                                           unpack(r.ids, 1, r.n)))
        if not vals then return 0, false end
        local z = {}
        for i = 1, r.n do
            if vals[i] then
                z[nz + 1] = r.etas[i]
                z[nz + 2] = r.ids[i]
                nz = nz + 2
            end
        end
        if nz > 0 then redis.call('ZADD', k_eta, unpack(z)) end
    end
    return nz / 2, dq_due_drop(key, stats, r)
end
