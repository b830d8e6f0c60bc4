# A CLUSTER SLOTS answer that names no master (review R1 finding 1, its
# second part): a node out of the cluster (cluster-enabled, never joined,
# like a node after CLUSTER RESET) answers with an empty list. Given as
# the first seed, its answer used to become the worker's map: every slot
# unserved, and as the map was asked again of the node connected (that
# one), the worker never served. Now such an answer is refused, the node
# dropped, the next seed asked, and the queue's task runs.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use DQCluster;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir, plain => 1);
my $lone = DQCluster::lone_node($dir);
is_deeply($lone->cmd('CLUSTER', 'SLOTS'), [], 'the lone node names no master')
    or diag explain $lone->cmd('CLUSTER', 'SLOTS');
my $seed = ($c->masters)[0]->port;
my $addr = 'cluster:127.0.0.1:' . $lone->port . ",127.0.0.1:$seed";
my $rec = "$dir/m.rec";
my ($rc, $out, $err) = DQTest::capture(bin('deferred-cli'), '-r', $c->address, 'defer',
                                       '-q', 'qm', 'ops.span', $rec, 0);
die $err if $rc;
my $w = DQWorker::start_master(undef, $dir, name => 'w', wait => 0, conf =>
    "redis \"$addr\";\nlibrary \"$lib\";\nprocesses 1;\nthreads 2;\nlease 30s;\nqueue qm { }\n");
ok(DQTest::wait_for(sub { scalar(DQWorker::lines($rec, 'E')) >= 1 }, 15),
   'the task ran (the empty answer refused, the next seed asked)')
    or diag(join "\n", grep { /cluster|CLUSTER/ } split /\n/, DQTest::slurp($w->{log}));
like(DQTest::slurp($w->{log}), qr/CLUSTER SLOTS on 127\.0\.0\.1:${\ $lone->port}: it names no master/,
     '  the refusal logged');
DQTest::stop_pid($w->{pid});
DQTest::log_clean_ok($w->{log}, 'the worker log (sanitizers)');
done_testing();
