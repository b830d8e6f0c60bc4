# R5 review (ae08941 conf_wait): shard 0's count read LOW (lost in a
# failover / a grow whose last write, shard 0's, did not land; simulated
# by HDEL) while the probe of shard 1's conf goes to another master
# (it is, often, with no help: another connection): conf_wait ends on shard 0's reply alone, shard 0 claims
# with the WHOLE file limit, then the probe's N splits it: more than the
# file's max_concurrent run at once (failed so before the fix: 7 at once
# with max_concurrent 4). Fixed in worker/live.c: conf_wait counts shard
# 0's conf and the probe's replies, and a shard count grown re-splits the
# file's limits of the shards already served. (199: 130-139 and 180-189
# are all taken.)
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQWorker; use DQCluster;
use Time::HiRes qw(time sleep);
my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $c = DQCluster->start(dir => $dir, plain => 1);
my $q;
for my $i (1 .. 500) { my $n = "h$i"; if ($c->owner($n)->port != $c->owner("$n#1")->port) { $q = $n; last } }
my ($rc, $out, $err) = DQTest::capture(bin('deferred-cli'), '-r', $c->address, 'queue', $q, '--shards', 4);
is($rc, 0, "$q: 4 shards") or diag $err;
my $rec = "$dir/s.rec";
($rc, $out, $err) = DQTest::capture(bin('deferred-cli'), '-r', $c->address, 'defer', '-q', $q,
                                    '--count', 40, 'ops.span', $rec, 2000);
die $err if $rc;
my $A = $c->owner($q);
$A->cmd("HDEL", DQTest::dq_key($q, "conf"), "shards") unless $ENV{R5_NOHDEL};   # shard 0's count lost
my $S1 = $c->owner("$q#1");
my $M = 4;
my $w = DQWorker::start_master(undef, $dir, name => 'w', wait => 0, conf =>
    "redis " . $c->address . ";\nlibrary \"$lib\";\nprocesses 1;\nthreads 16;\nconcurrency 16;\nlease 30s;\n"
  . "queue $q { max_concurrent $M; }\n");
DQWorker::wait_lines($rec, 'E', 12, 30);
DQTest::stop_pid($w->{pid});
my $max = DQWorker::spans_at_once($rec);
diag('started: ' . scalar(DQWorker::lines($rec, 'S'))
     . "; most running at once: $max (file max_concurrent $M)");
ok($max <= $M, "at most $M at once");
done_testing();
