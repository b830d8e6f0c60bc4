# Lua scripts, real redis-server: admin (t/unit/test_scripts_admin.c)
use strict; use warnings; use lib 't/lib'; use DQTest;
DQTest::exec_unit('test_scripts_admin', redis => 1);
