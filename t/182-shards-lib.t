# Sharded queues, the contract's part: shard names, FNV-1a of a task name,
# limit shares, the stored N, a shard's keys (t/unit/test_shards.c).
use strict; use warnings; use lib 't/lib'; use DQTest;
DQTest::exec_unit('test_shards');
