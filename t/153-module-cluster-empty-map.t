# Review R4 finding 1 (after R4-module-empty-map.t): the nginx module
# took a CLUSTER SLOTS answer that names no master (a cluster-enabled node
# out of the cluster, e.g. after CLUSTER RESET, listed as the first seed)
# as its map: every slot unserved, every request 503 after
# deferred_timeout, the same seed asked again forever. The worker (t/189)
# and the C client refused such an answer each on their own; now
# dq_cluster_map_parse refuses it for all three. Failed on main at
# e4e63bc (6 x 503 after 3.00 s each). The map's refresh then started at
# that seed every time (finding 9d): 8 refreshes asked it 8 more times on
# main at 73b72bd; now it rotates from the node that answered last.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQCluster;
use DQNginx;
use Time::HiRes qw(time sleep);

DQNginx::require_nginx();
my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir, plain => 1);
my $lone = DQCluster::lone_node($dir);
my $seed = ($c->masters)[0]->port;
my $addr = 'cluster:127.0.0.1:' . $lone->port . ",127.0.0.1:$seed";
mkdir "$dir/nginx";
my $n = DQNginx->start(dir => "$dir/nginx", workers => 1, vars => { ADDR => $addr }, http => q{
    deferred_redis %%ADDR%%;
    server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on; }
});
my %st;
for my $i (1 .. 6) {
    my $t0 = time;
    my $res = $n->request("POST", "/_ah/queue/deferred",
                          json => qq({"func":"f","queue":"q$i","name":"t$i"}));
    diag(sprintf("request %d: %d after %.2f s", $i, $res->{status}, time - $t0))
        if $res->{status} != 201;
    $st{$res->{status}}++;
}
is($st{201} // 0, 6, 'every request 201: the first seed\'s empty map refused, the second seed\'s used')
    or diag(join ' ', map { "$_ x$st{$_}" } sort keys %st);

# Review R4 finding 9d: each refresh of the map started again at seed 0,
# asking the node out of the cluster first every time. A queue whose
# slot no master serves makes each request ask for the map again
# (at most every 100 ms): the lone seed is asked no more after the first
# round (the refresh goes on from the node that answered last).
sub cluster_calls { my ($r) = @_;
    my ($n) = ($r->cmd('INFO', 'commandstats') =~ /cmdstat_cluster\|slots:calls=(\d+)/);
    $n // 0 }
my @m = $c->masters;
my $uq = 'uq';
my $slot = $m[0]->cmd('CLUSTER', 'KEYSLOT', "{$uq}");
$_->cmd('CONFIG', 'SET', 'cluster-require-full-coverage', 'no') for $c->nodes;
$_->cmd('CLUSTER', 'DELSLOTS', $slot) for @m;
ok(DQTest::wait_for(sub { !grep { $_->[0] <= $slot && $slot <= $_->[1] }
                          @{ $m[0]->cmd('CLUSTER', 'SLOTS') } }, 10),
   "slot $slot of $uq served by no master");
my ($seedn) = grep { $_->port == $seed } $c->nodes;
my $before = cluster_calls($lone);
my $before_seed = cluster_calls($seedn);
my $fails = 0;
for my $i (1 .. 8) {
    my $res = $n->request("POST", "/_ah/queue/deferred", json => qq({"func":"f","queue":"$uq"}));
    $fails++ if $res->{status} == 503;
    sleep 0.25;
}
is($fails, 8, "8 requests for $uq (no master): 503, each asking for the map again");
my $asked = cluster_calls($lone) - $before;
cmp_ok(cluster_calls($seedn) - $before_seed, '>=', 2, 'the map asked again (of the second seed)');
is($asked, 0, "the lone seed not asked again by those refreshes ($asked CLUSTER SLOTS)");
my $log = DQTest::slurp($n->error_log);
like($log, qr/names no master/, 'the empty answer refused, logged');
unlike($log, qr/slot map: 0 masters/, 'no map of 0 masters installed');
$n->stop;
done_testing();
