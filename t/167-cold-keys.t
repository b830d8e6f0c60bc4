# The cold tier's index reaches enqueue, remove and forget in KEYS (one
# home for key names): t/unit/test_cold_keys.c.
use strict; use warnings; use lib 't/lib'; use DQTest;
DQTest::exec_unit('test_cold_keys', redis => 1);
