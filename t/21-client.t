# The C client end to end against a real redis-server (t/unit/test_client.c).
use strict; use warnings; use lib 't/lib'; use DQTest;
DQTest::exec_unit('test_client', redis => 1);
