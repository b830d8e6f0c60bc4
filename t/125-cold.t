# The cold tier of delayed tasks against a real redis-server
# (t/unit/test_cold.c).
use strict; use warnings; use lib 't/lib'; use DQTest;
DQTest::exec_unit('test_cold', redis => 1);
