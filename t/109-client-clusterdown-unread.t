# The C client when a cluster node answers CLUSTERDOWN to one queue's
# shard-count read (review RM finding 4; t/unit/test_client_clusterdown_unread.c).
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQCluster;
use Test::More;

my $b = DQTest::need_built(DQTest::build_dir() . '/t/test_client_clusterdown_unread',
                           'unit test test_client_clusterdown_unread');
my $dir = tmpdir();
my $c = DQCluster::lone_node($dir);
$c->cmd('CONFIG', 'SET', 'cluster-require-full-coverage', 'no');
$c->cmd('CLUSTER', 'ADDSLOTSRANGE', 0, 8000);   # "good" 2195 served, "bad" 8498 not
DQTest::wait_for(sub { ($c->cmd('CLUSTER', 'INFO') // '') =~ /cluster_state:ok/ }, 10)
    or BAIL_OUT('the one-node cluster never became ok');
$| = 1;
system($b, $c->port);
my $st = $?;
$c->stop;
exit($st == 0 ? 0 : ($st >> 8) || 1);
