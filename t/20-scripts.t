# The Lua scripts against a real redis-server (t/unit/test_scripts.c).
use strict; use warnings; use lib 't/lib'; use DQTest;
DQTest::exec_unit('test_scripts', redis => 1);
