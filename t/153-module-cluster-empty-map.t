# Review R4 finding 1 (after R4-module-empty-map.t): the nginx module
# took a CLUSTER SLOTS answer that names no master (a cluster-enabled node
# out of the cluster, e.g. after CLUSTER RESET, listed as the first seed)
# as its map: every slot unserved, every request 503 after
# deferred_timeout, the same seed asked again forever. The worker (t/189)
# and the C client refused such an answer each on their own; now
# dq_cluster_map_parse refuses it for all three. Failed on main at
# e4e63bc (6 x 503 after 3.00 s each).
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
my $log = DQTest::slurp($n->error_log);
like($log, qr/names no master/, 'the empty answer refused, logged');
unlike($log, qr/slot map: 0 masters/, 'no map of 0 masters installed');
$n->stop;
done_testing();
