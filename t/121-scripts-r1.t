# Contract v2 scripts against review R1 of issue #12 (t/unit/test_scripts_r1.c).
use strict; use warnings; use lib 't/lib'; use DQTest;
DQTest::exec_unit('test_scripts_r1', redis => 1);
