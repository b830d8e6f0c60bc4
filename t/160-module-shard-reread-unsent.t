# Review RF finding 2: a sharded queue whose N is KNOWN (4), then shard
# 0's slot loses its master (DELSLOTS; full coverage off). Once the count
# is DQ_SHARDS_TTL_MS old, every task of the queue in batch_prepare asks
# ngx_http_deferred_shards_count; the re-read cannot be sent. It used to
# be tried again by the NEXT task: one failed send, one ERR line ("slot S
# has no master in the map") and one map refresh per task (750 lines for
# 750 tasks). Now a failed re-read of a known N is stamped and tried
# again after DQ_SHARDS_RETRY_MS. Written by reviewer RF.
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQNginx; use DQCluster; use DQWorker;
use Time::HiRes qw(time sleep);

DQNginx::require_nginx();
my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir, plain => 1);
my @m = $c->masters;
my $q = 'kq';
my $own = $c->owner($q);
my $slot = $own->cmd('CLUSTER', 'KEYSLOT', "{$q}");
my ($rc, $out, $err) = DQTest::capture(bin('deferred-cli'), '-r', $c->address, 'queue', $q, '--shards', 4);
is($rc, 0, "$q: 4 shards") or diag $err;
# names of shards whose master is not shard 0's
my %okS = map { ($_ => 1) } grep { $c->owner("$q#$_")->port != $own->port } 1 .. 3;
my @names = grep { $okS{ DQTest::shard_of($_, 4) } } map { "nm$_" } 1 .. 3000;
diag(scalar(@names) . " names on served shards " . join(",", sort keys %okS));

mkdir "$dir/nginx";
my $n = DQNginx->start(dir => "$dir/nginx", workers => 1,
                       vars => { SEED => $m[0]->address }, http => q{
    deferred_redis cluster:%%SEED%% connect_timeout=500ms;
    deferred_max_batch 10000;
    client_max_body_size 8m;
    server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on; }
});
my $res = $n->request('POST', '/_ah/queue/deferred', json => qq({"func":"f","queue":"$q","name":"warm"}));
is($res->{status}, 201, 'N read (warm)');
$_->cmd('CONFIG', 'SET', 'cluster-require-full-coverage', 'no') for $c->nodes;
$_->cmd('CLUSTER', 'DELSLOTS', $slot) for @m;
ok(DQTest::wait_for(sub { !grep { $_->[0] <= $slot && $slot <= $_->[1] }
                          @{ $own->cmd('CLUSTER', 'SLOTS') } }, 10), "slot $slot served by no master");
# the module learns the map (its next command to that slot: CLUSTERDOWN -> refresh)
for (1 .. 6) { $n->request('POST', '/_ah/queue/deferred', json => qq({"func":"f","queue":"$q"})); sleep 0.5; }
sleep 2.2;                                      # N is 2 s old now
my $before = () = DQTest::slurp($n->error_log) =~ /has no master in the map/g;
my $t0 = time;
$res = $n->request('POST', '/_ah/queue/deferred',
    json => '[' . join(',', map { qq({"func":"f","queue":"$q","name":"$_"}) } @names) . ']');
my $dt = time - $t0;
my $after = () = DQTest::slurp($n->error_log) =~ /has no master in the map/g;
diag(sprintf("%d named tasks (served shards): %s in %.2f s; 'no master' log lines: %d -> %d",
             scalar(@names), $res->{status}, $dt, $before, $after));
cmp_ok($after - $before, '<=', 5, 'one failed re-read per request (or per 2 s), not one per task');
$n->stop;
done_testing();
