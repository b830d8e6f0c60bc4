# Lua scripts, real redis-server: enqueue (t/unit/test_scripts_enqueue.c)
use strict; use warnings; use lib 't/lib'; use DQTest;
DQTest::exec_unit('test_scripts_enqueue', redis => 1);
