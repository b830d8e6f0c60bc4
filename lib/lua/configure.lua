-- configure: store (or clear) a queue's applied configuration, the fleet's
-- one source of truth for it (deferred-cli config apply / clear). claim
-- reads rate, bucket_size, max_concurrent and the backoff from here when
-- "cfg" is set; workers read every field with their live tick (5 s).
-- KEYS: 1 conf, 2 wake
-- ARGV: 1 "set" then field, value pairs (written; the hash's other fields
--       stay: a caller that replaces the applied configuration gives
--       every field, as deferred-cli config apply does, the default for
--       what the file leaves out; "shards" or "paused" alone leave the
--       applied fields in place), or "clear" then the field names to
--       delete (t/69)
-- Reply: 1
-- The field "shards" (a sharded queue's N, docs/SCALING.md) only grows:
-- a value below the stored one is refused whole (nothing written), as a
-- shard above the new N could still hold tasks. Its value must be what
-- every reader (dq_shards_parse) reads as itself: 1 to DQ_MAX_SHARDS in
-- plain decimal, no sign, space, point, exponent or leading zero ("4.0",
-- " 8", "0x8" or "65" would read as 1 there); the stored value is read
-- the way readers read it. "shards" is never cleared (N back to 1 would
-- hide shards 1.. and their tasks). A worker that reads more in a shard
-- above 0 than in shard 0 writes it back here ("set", "shards", N: shard
-- 0's copy was lost; worker/live_conf.c dq__shards_heal): this rule makes
-- that write harmless when shard 0 says more by then.
-- lib/dq_contract.h DQ_MAX_SHARDS, the same number (t/unit/test_shards.c)
local DQ_MAX_SHARDS = 64
local function shards_of(s)
    if type(s) ~= 'string' or not s:match('^[0-9][0-9]?$') then return 1 end
    local n = tonumber(s)
    if n < 1 or n > DQ_MAX_SHARDS then return 1 end
    return n
end
-- A wake token follows either way: a sleeping worker claims again under
-- the new limits at once.
local fields = {}
if ARGV[1] == 'set' then
    for i = 2, #ARGV, 2 do fields[#fields + 1] = ARGV[i] end
elseif ARGV[1] ~= 'clear' then
    return redis.error_reply('ERR configure: set or clear')
end
if ARGV[1] == 'clear' then
    for i = 2, #ARGV do
        if ARGV[i] == 'shards' then
            return redis.error_reply('ERR configure: shards cannot be '
                                     .. 'cleared (it only grows)')
        end
        fields[#fields + 1] = ARGV[i]
    end
    if #fields > 0 then redis.call('HDEL', KEYS[1], unpack(fields)) end
else
    if #ARGV < 3 or #ARGV % 2 ~= 1 then
        return redis.error_reply('ERR configure: field value pairs')
    end
    for i = 2, #ARGV, 2 do
        if ARGV[i] == 'shards' then
            local v = ARGV[i + 1]
            local old = shards_of(redis.call('HGET', KEYS[1], 'shards'))
            if not v:match('^[1-9][0-9]?$')
               or tonumber(v) > DQ_MAX_SHARDS then
                return redis.error_reply('ERR configure: shards must be '
                                         .. 'an integer 1 to '
                                         .. DQ_MAX_SHARDS)
            end
            local n = tonumber(v)
            if n < old then
                return redis.error_reply('ERR configure: shards can only '
                                         .. 'grow (the queue has ' .. old
                                         .. ')')
            end
        end
    end
    redis.call('HSET', KEYS[1], unpack(ARGV, 2))
end
dq_wake(KEYS[2])
return 1
