# The C client's shard-count cache over 17 and 64 queues, LRU (review R4
# finding 4; t/unit/test_client_shard_cache.c).
use strict; use warnings; use lib 't/lib'; use DQTest;
DQTest::exec_unit('test_client_shard_cache', redis => 1);
