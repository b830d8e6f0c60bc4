#!lua
-- ready: deferred_ready's probe (sent as EVALSHA: its source travels only
-- after a NOSCRIPT). A script with the "#!lua" line and neither "no-writes"
-- nor "allow-oom" is a writing script to Redis 7: it is refused before it
-- runs (-OOM over maxmemory with noeviction, -READONLY on a read-only
-- replica, -NOREPLICAS below min-replicas-to-write) exactly when an
-- enqueue's writes would be.
-- KEYS: none. ARGV: none. Reply: 1.
return 1
