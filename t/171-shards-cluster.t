# Sharded queues on a Redis Cluster (3 masters, 3 replicas; issue 15 item
# 3): shard keys are ordinary queue keys ({q#i}), so each shard lands on
# the master of its own slot and every client routes it there. A queue of
# 6 shards spread over the masters (printed); tasks enqueued through the
# CLI (the C client) and nginx run exactly once on a worker given the
# cluster address; named dedup holds; every master's share is seen in its
# own keys (no shard key on a node that does not serve its slot).
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use DQCluster;
use DQNginx;
use Test::More;
use Time::HiRes qw(sleep);

DQTest::need_tool(DQTest::in_path('redis-cli'), 'redis-cli');
my $dir = tmpdir();
my $c = DQCluster->start(dir => $dir);
sub cli { DQWorker::cli($c, @_) }
sub shard { my ($q, $i) = @_; $i ? "$q#$i" : $q }

my ($rc, $out, $err) = cli('queue', 'hot', '--shards', '6');
is($rc, 0, 'queue hot --shards 6 through the cluster') or diag $err;
my %by_master;
for my $i (0 .. 5) {
    push @{ $by_master{ $c->owner(shard('hot', $i))->port } }, $i;
}
diag('shards per master: ' . join('; ', map { "$_: @{ $by_master{$_} }" } sort keys %by_master));
ok(keys(%by_master) >= 2, 'the 6 shards live on ' . scalar(keys %by_master) . ' masters');

my $rec = "$dir/hot.rec";
($rc, $out, $err) = cli('defer', '-q', 'hot', '--count', '300', 'record', $rec);
is($rc, 0, '300 unnamed tasks through the CLI') or diag $err;
my $dup = 0;
for my $i (1 .. 12) {
    ($rc) = cli('defer', '-q', 'hot', '-n', "n$i", 'record', $rec, "n$i");
    is($rc, 0, "named n$i");
    ($rc) = cli('defer', '-q', 'hot', '-n', "n$i", 'record', $rec, 'again');
    $dup++ if $rc == 3;
}
is($dup, 12, 'each name a second time: refused (dedup on the name\'s shard)');
my $total = 0;
for my $i (0 .. 5) {
    my $n = $c->owner(shard('hot', $i))->cmd('ZCARD', 'dq2:{' . shard('hot', $i) . '}:eta');
    $total += $n;
    diag("shard $i on " . $c->owner(shard('hot', $i))->port . ": $n waiting");
}
is($total, 312, 'all 312 waiting, each on the master of its shard\'s slot');

SKIP: {
    skip 'nginx module not built', 3 unless -e DQNginx::module_path();
    my $n = DQNginx->start(dir => do { mkdir "$dir/nginx"; "$dir/nginx" },
                           redis => $c, workers => 1, http => q{
        deferred_redis %%REDIS%%;
        server {
            listen 127.0.0.1:%%PORT%%;
            deferred_endpoint on;
        }
    });
    my $warm = $n->request('POST', '/_ah/queue/deferred',
                           json => qq({"func":"record","queue":"hot","args":["$rec","w"]}));
    is($warm->{status}, 201, 'nginx on the cluster: a first enqueue (held until N is read)');
    sleep 0.3;
    my @res = $n->many([ map { DQNginx::build_request('POST', '/_ah/queue/deferred',
        json => qq({"func":"record","queue":"hot","args":["$rec",$_]})) } 1 .. 60 ], conns => 6);
    is(scalar(grep { $_->{status} == 201 } @res), 60, '60 more through nginx: 201');
    my $seen = 0;
    for my $i (1 .. 5) {
        $seen++ if $c->owner(shard('hot', $i))->cmd('HGET', 'dq2:{' . shard('hot', $i) . '}:stats', 'enqueued') > 50;
    }
    is($seen, 5, 'nginx spread them: every shard above 0 got more than the CLI\'s 50');
    $n->stop;
}
my $want = -e DQNginx::module_path() ? 373 : 312;
my $w = { name => 'w', log => "$dir/w.log" };
$w->{pid} = DQTest::spawn(name => 'w', log => $w->{log},
    cmd => [DQWorker::worker_bin(), '-r', $c->address, '--master_process', 'off',
            '-l', DQWorker::example_lib(), '-q', 'hot']);
my @R = DQWorker::wait_records($rec, $want, 60);
is(scalar(@R), $want, "a worker on the cluster ran all $want");
my %n;
$n{ $_->{id} }++ for @R;
is(scalar(grep { $_ != 1 } values %n), 0, '... each exactly once');
like(DQWorker::log_text($w), qr/queue hot: serving 6 shards/, 'the worker serves the 6 shards');
# the worker idle (its BLPOPs out, one per slot): new tasks in every shard
# are woken for, not left to the idle look (30 s with the default lease)
sleep 1.5;
($rc, $out, $err) = cli('defer', '-q', 'hot', '--count', '30', 'record', $rec);
@R = DQWorker::wait_records($rec, $want + 30, 10);
is(scalar(@R), $want + 30, '30 more while it idles: run at once (woken on every shard\'s slot)');
DQWorker::stop_worker($w);
DQTest::log_clean_ok($w->{log});
done_testing;
