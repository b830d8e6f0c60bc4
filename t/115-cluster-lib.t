# Redis Cluster pieces every client shares: key and command slots, CLUSTER
# SLOTS parsed, MOVED/ASK parsed (t/unit/test_cluster.c); the slots also
# checked against a cluster-enabled redis-server's CLUSTER KEYSLOT.
use strict; use warnings; use lib 't/lib'; use DQTest;
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start(dir => $dir, args => [
    '--cluster-enabled', 'yes', '--cluster-config-file', "$dir/nodes.conf"]);
my $b = DQTest::need_built(DQTest::build_dir() . '/t/test_cluster',
                           'unit test test_cluster');
$| = 1;
system($b, $r->port);
my $st = $?;
$r->stop;
exit($st == 0 ? 0 : ($st >> 8) || 1);
