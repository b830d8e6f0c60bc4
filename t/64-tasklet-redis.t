# Redis futures (t/unit/test_tasklet_redis.c) against a real redis-server.
use strict; use warnings; use lib 't/lib'; use DQTest;
DQTest::exec_unit('test_tasklet_redis', redis => 1);
