# Claims a cluster refuses unrun (review R1 finding 8): a master and its
# replica killed -9, so every node answers CLUSTERDOWN. Such a claim
# leased nothing and must not be filed as a LOST claim (one whose reply
# was lost and may have leased tasks): filed, each "up" (a map a second)
# sent a release_claim for each, and past DQ_LOST_CLAIMS (8) per shard
# they pushed real lost claims out ("too many lost claim replies").
# 16 shards; the worker log is read for 8 s of CLUSTERDOWN.
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
my @m = $c->masters;
my ($rc, $out, $err) = DQTest::capture(bin('deferred-cli'), '-r', $c->address,
                                       'queue', 'hot', '--shards', '16');
is($rc, 0, 'hot: 16 shards') or diag $err;
my $conf = "redis " . $c->address . ";\nlibrary \"$lib\";\nprocesses 1;\nthreads 4;\n"
         . "lease 60s;\nqueue hot { }\n";
my $w = DQWorker::start_master(undef, $dir, name => 'w', wait => 0, conf => $conf);
ok(DQTest::wait_for(sub { DQTest::slurp($w->{log}) =~ /serving 16 shards/ }, 20),
   'serving 16 shards') or diag(DQTest::slurp($w->{log}));
my $A = $m[1];
my ($R) = grep { my $i = eval { $_->cmd('INFO', 'replication') } // '';
                 $i =~ /role:slave/ && $i =~ /master_port:${\ $A->port }\b/ } $c->nodes;
ok($R, 'the replica of ' . $A->port);
$c->kill_node($A);
$c->kill_node($R);
my $down = sub { my $i = eval { $m[0]->cmd('CLUSTER', 'INFO') } // '';
                 $i =~ /cluster_state:fail/ };
ok(DQTest::wait_for($down, 20), 'cluster_state:fail (CLUSTERDOWN everywhere)')
    or diag(eval { $m[0]->cmd('CLUSTER', 'INFO') } // "CLUSTER INFO: $@");
sleep 1;
my $l0 = length DQTest::slurp($w->{log});
sleep 8;
my $log = substr(DQTest::slurp($w->{log}), $l0);
my $nrel = () = $log =~ /giving back claim/g;
my $ntoo = () = $log =~ /too many lost claim/g;
my $nref = () = $log =~ /claim on queue \S+ failed: (?:not run: )?\S+ answered: (?:CLUSTERDOWN|TRYAGAIN)/g;
diag("worker log in 8 s of CLUSTERDOWN: " . length($log) . " bytes; claims refused unrun "
     . "$nref; 'giving back claim ... failed' $nrel; 'too many lost claim replies' $ntoo");
ok($nref > 0, 'claims were refused (CLUSTERDOWN) meanwhile') or diag($log);
is($ntoo, 0, 'no refused claim filed as lost (none pushed out)');
DQTest::stop_pid($w->{pid});
DQTest::log_clean_ok($w->{log}, 'the worker log (sanitizers)');
done_testing();
