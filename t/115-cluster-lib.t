# Redis Cluster pieces every client shares: key and command slots, CLUSTER
# SLOTS parsed, MOVED/ASK parsed (t/unit/test_cluster.c).
use strict; use warnings; use lib 't/lib'; use DQTest;
DQTest::exec_unit('test_cluster');
