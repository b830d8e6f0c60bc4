# Lua scripts, real redis-server: ack (t/unit/test_scripts_ack.c)
use strict; use warnings; use lib 't/lib'; use DQTest;
DQTest::exec_unit('test_scripts_ack', redis => 1);
