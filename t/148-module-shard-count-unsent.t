# Review R4 finding 3: a request held for the whole deferred_timeout when
# its queue's shard-count read could not be sent. On a cluster whose map
# has no master for the queue's slot, ngx_http_deferred_shards_count'
# read (HGET {q}:conf shards) is refused at once, no answer ever comes,
# and every group of the queue was held until deferred_timeout (10 s
# here) and then got 503. Before sharding the same enqueue failed at
# once (t/173, t/196). A send that fails is a failed read: unnamed tasks
# fail fast on their own send, named ones get 503 "the queue's shard
# count could not be read" at once. Failed on main at e4e63bc (each
# request 503 after 10 s); once the slot is served again: 201.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQNginx;
use DQCluster;
use Time::HiRes qw(time sleep);

DQNginx::require_nginx();
my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir, plain => 1);
my @m = $c->masters;
my $q = 'uq';
my $own = $c->owner($q);
my $slot = $own->cmd('CLUSTER', 'KEYSLOT', "{$q}");
my ($ok) = grep { $c->owner($_)->port != $own->port } map { "ok$_" } 1 .. 100;
$_->cmd('CONFIG', 'SET', 'cluster-require-full-coverage', 'no') for $c->nodes;
$_->cmd('CLUSTER', 'DELSLOTS', $slot) for @m;
ok(DQTest::wait_for(sub { !grep { $_->[0] <= $slot && $slot <= $_->[1] }
                          @{ $own->cmd('CLUSTER', 'SLOTS') } }, 10),
   "slot $slot of $q served by no master");

mkdir "$dir/nginx";
my $n = DQNginx->start(dir => "$dir/nginx", workers => 1,
                       vars => { SEED => $m[0]->address }, http => q{
    deferred_redis cluster:%%SEED%% connect_timeout=500ms;
    deferred_timeout 10s;
    server { listen 127.0.0.1:%%PORT%%; deferred_endpoint on; }
});
sub post { my ($queue, $name) = @_;
    my $t0 = time;
    my $j = qq({"func":"f","queue":"$queue") . ($name ? qq(,"name":"$name"}) : '}');
    my $res = $n->request('POST', '/_ah/queue/deferred', json => $j);
    return ($res->{status}, time - $t0) }

my ($st, $dt) = post($ok);
is($st, 201, "$ok (a served slot): 201");
for my $round (1, 2) {
    for my $name (undef, "n$round") {
        ($st, $dt) = post($q, $name);
        my $what = $name ? "a named task" : "an unnamed task";
        is($st, 503, "round $round, $what for $q: 503");
        cmp_ok($dt, '<', 5, sprintf("... at once (%.2f s; deferred_timeout 10 s)", $dt));
    }
}
($st) = post($ok, 'x');
is($st, 201, "$ok meanwhile: 201");

$own->cmd('CLUSTER', 'ADDSLOTS', $slot);
ok($c->wait_ok(20), 'the slot served again');
ok(DQTest::wait_for(sub { (post($q))[0] == 201 }, 20, 0.5), "an unnamed task for $q: 201 again");
ok(DQTest::wait_for(sub { (post($q, 'again'))[0] == 201 }, 20, 0.5), "a named task for $q: 201 again");
my $log = DQTest::slurp($n->error_log);
like($log, qr/shard count of queue "$q" could not be read/, 'the failed read is logged');
$n->stop;
done_testing();
