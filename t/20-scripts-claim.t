# Lua scripts, real redis-server: claim (t/unit/test_scripts_claim.c)
use strict; use warnings; use lib 't/lib'; use DQTest;
DQTest::exec_unit('test_scripts_claim', redis => 1);
