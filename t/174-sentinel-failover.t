# Sentinel failover under load (issue 15, item 2).
#
# A primary and its replica (appendonly yes, appendfsync always on both)
# and three redis-sentinel processes; nginx enqueues through
# `deferred_redis sentinel:...  replicas=1` (each 201 only once the
# replica has the task: WAIT 1), a worker master with two children runs
# them (`redis sentinel:...`). HTTP POSTs go on while the primary is
# killed -9; the sentinels promote the replica; nginx and the worker must
# ask the sentinels again and follow. Then the old primary comes back (the
# sentinels make it a replica) and the new primary is killed: the same
# the other way round. Each round: every task nginx answered 201 for must
# run (lost = 0), including those acknowledged after the failover (they
# exist only on the new primary); failed requests are counted (503 while
# no primary is known) and printed, not asserted.
# Before the sentinel support this test could not even start: the
# address `sentinel:...` was refused by nginx -t and by the worker.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use DQNginx;
use DQSentinel;
use Time::HiRes qw(time sleep);

DQNginx::require_nginx();
my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $s = DQSentinel->start(dir => $dir, master => 'dqm');
my $addr = $s->address;
ok($s->primary, 'the sentinels name the primary');

mkdir "$dir/nginx";
my $n = DQNginx->start(dir => "$dir/nginx", vars => { SENT => $addr }, http => q{
    deferred_redis %%SENT%% replicas=1 replicas_timeout=2s connect_timeout=500ms;
    server {
        listen 127.0.0.1:%%PORT%%;
        keepalive_requests 100000;
        deferred_endpoint on;
    }
});
my $rec = "$dir/runs.rec";
my $w = DQWorker::start_master(undef, $dir, name => 'w', wait => 2, conf => <<"EOF");
redis "$addr";
library "$lib";
processes 2;
threads 2;
lease 3s;
queue f { retry_limit 20; min_backoff 100ms; max_backoff 500ms; }
EOF

my %acked;        # id => round
my $seq = 0;

sub post_batch {
    my ($round, $k) = @_;
    my @names = map { "r$round-" . ++$seq } 1 .. $k;
    my @res = $n->many([ map {
        DQNginx::build_request('POST', '/_ah/queue/deferred',
            json => qq({"func":"ops.run","queue":"f","name":"$_","args":["$rec"]}))
    } @names ], conns => $k, timeout => 10);
    my ($ok, $bad) = (0, 0);
    for my $x (@res) {
        my ($id) = ($x->{body} // '') =~ /"id":"([^"]+)"/;
        if ($x->{status} == 201 && $id) { $acked{$id} = $round; $ok++ } else { $bad++ }
    }
    return ($ok, $bad);
}

sub ran { DQWorker::count_by_id($rec) }

for my $round (1, 2) {
    my $old = $s->primary;
    my ($ok, $failed, $ok_after, $t_back) = (0, 0, 0);
    my $t0 = time;
    # 1.5 s of load (and at least 50 acknowledged, within 15 s)
    while (time - $t0 < 1.5 || ($ok < 50 && time - $t0 < 15)) {
        my ($a, $b) = post_batch($round, 10); $ok += $a; $failed += $b;
    }
    my $rate = ($ok + $failed) / (time - $t0);
    ok($ok > 0, "round $round: enqueues acknowledged before the kill ($ok)");
    $s->kill_primary;
    my $t_kill = time;
    # load during and after the failover, until 100 acknowledged after it
    while (time - $t_kill < 40 && $ok_after < 100) {
        my ($a, $b) = post_batch($round, 10);
        $ok += $a; $failed += $b;
        $ok_after += $a;
        $t_back //= time if $a;
        sleep 0.05 if $b && !$a;     # no primary known: 503 at once
    }
    ok($s->wait_failover($old, 30), "round $round: the sentinels promoted the replica");
    my $new = $s->primary;
    ok($new && $new->port != $old->port, "round $round: a new primary");
    ok($ok_after >= 100, "round $round: nginx followed: $ok_after enqueues acknowledged after the kill");

    # every acknowledged task runs (the worker followed too)
    my @mine = grep { $acked{$_} == $round } keys %acked;
    DQTest::wait_for(sub { my $r = ran(); !grep { !$r->{$_} } @mine }, 60, 0.1);
    my $runs = ran();
    my $lost = grep { !$runs->{$_} } @mine;
    my $twice = grep { ($runs->{$_} // 0) > 1 } @mine;
    is($lost, 0, "round $round: no acknowledged task lost (of " . scalar(@mine) . ")");
    diag(sprintf("round %d: %.0f req/s before the kill; %d acknowledged, %d lost, %d ran twice, "
                 . "%d failed requests; first 201 %.2f s after the kill",
                 $round, $rate, scalar(@mine), $lost, $twice, $failed, ($t_back // time) - $t_kill));
    if ($round == 1) {
        ok($s->rejoin($old), 'the old primary is back, a replica of the new one');
    }
}

my $wlog = DQTest::slurp($w->{log});
like($wlog, qr/names 127\.0\.0\.1:\d+ the primary "dqm" \(was 127\.0\.0\.1:\d+\)/,
     'the worker logged the move');
like(DQTest::slurp($n->error_log), qr/\[warn\].*the sentinels name 127\.0\.0\.1:\d+ the primary "dqm"/,
     'nginx logged the move');
unlike($wlog, qr/ack failed for task/, 'the worker dropped no result');
is(DQTest::stop_pid($w->{pid}), 0, 'the worker stops cleanly');
DQTest::log_clean_ok($w->{log}, 'the worker log');
$n->stop;
DQTest::log_clean_ok($n->error_log);
done_testing();
