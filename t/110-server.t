use strict; use warnings; use lib 't/lib'; use DQTest;
DQTest::exec_unit('test_server');
