# Redis addresses: the one parser (t/unit/test_addr.c).
use strict; use warnings; use lib 't/lib'; use DQTest;
DQTest::exec_unit('test_addr');
