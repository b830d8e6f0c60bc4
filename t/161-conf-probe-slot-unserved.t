# Review RF finding 3: a queue with a file limit, not sharded (N = 1): the
# worker probes {q#1}:conf. On a cluster running with
# cluster-require-full-coverage no, that slot may have no master. The
# probe's send used to report the whole cluster lost (dq_ccl_send: no
# route -> dq__ccl_lost: "down", CLUSTER SLOTS, "up" -> conf read + probe
# again): a map re-read, a conf re-read and a resend once a second. Now
# the worker checks the route first (dq_conn_routable) and skips the
# probe quietly. RF_OTHER=1: an unrelated slot unserved (the baseline).
# Written by reviewer RF.
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQWorker; use DQCluster;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir, plain => 1);
my @m = $c->masters;
my $q = 'fq';
my $own = $c->owner($q);
my $p = $c->owner("$q#1");
my $slot = $p->cmd("CLUSTER", "KEYSLOT", $ENV{RF_OTHER} ? "{unrelated}" : "{$q#1}");
$p = $c->owner($ENV{RF_OTHER} ? "unrelated" : "$q#1");
$_->cmd('CONFIG', 'SET', 'cluster-require-full-coverage', 'no') for $c->nodes;
$_->cmd('CLUSTER', 'DELSLOTS', $slot) for @m;
ok(DQTest::wait_for(sub { !grep { $_->[0] <= $slot && $slot <= $_->[1] }
                          @{ $own->cmd('CLUSTER', 'SLOTS') } }, 10), "slot $slot ({$q#1}) served by no master");
my $rec = "$dir/p.rec";
my ($rc, $out, $err) = DQTest::capture(bin('deferred-cli'), '-r', $c->address, 'defer', '-q', $q,
                                    '--count', 4, 'ops.span', $rec, 100);
is($rc, 0, '4 tasks') or diag $err;
my $w = DQWorker::start_master(undef, $dir, name => 'w', wait => 0, conf =>
    "redis cluster:" . $m[0]->address . ";\nlibrary \"$lib\";\nprocesses 1;\nthreads 2;\nconcurrency 2;\nlease 30s;\n"
  . "queue $q { max_concurrent 2; }\n");
ok(DQTest::wait_for(sub { scalar(DQWorker::lines($rec, 'E')) >= 4 }, 20, 0.25), 'the 4 tasks ran');
sub slots_calls { my $s = 0; for my $n ($c->nodes) { my $i = $n->cmd("INFO", "commandstats"); $s += $1 while $i =~ /cmdstat_cluster\|slots:calls=(\d+)/g; } $s }
my $s0 = slots_calls(); sleep 10; my $s1 = slots_calls();
diag("CLUSTER SLOTS calls in 10 s: " . ($s1 - $s0));
cmp_ok($s1 - $s0, "<", 5, "CLUSTER SLOTS not asked once a second");
my $log = DQTest::slurp($w->{log});
my $maps = () = $log =~ /cluster map from/g;
my $downs = () = $log =~ /down|not sent|no master|lost/gi;
diag("worker log: " . length($log) . " bytes; 'cluster map from' x$maps; down/not sent/no master/lost x$downs");

cmp_ok($maps, '<', 5, 'the map is not asked again and again');
DQTest::stop_pid($w->{pid});
done_testing();
