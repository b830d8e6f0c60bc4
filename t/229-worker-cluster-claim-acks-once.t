# Review RF8 finding 2: a claim that carries acks, sent on a Redis Cluster
# slot that stays MIGRATING (a reshard stopped half-way: every key moved,
# SETSLOT NODE never sent), held the concurrency it reserved and its
# queue's claiming flag for as long as the cluster layer retried it, so
# the child's other queues were starved: with concurrency 1, queue zz2's
# tasks did not run in 10-15 s (4 of 7 runs of the review's t/906). Now
# the claim half is sent once: its TRYAGAIN ends it (the reservation back,
# the queue claims again in 1 s on its own), and its acks are sent again
# at once, alone, to settle (every 50 ms until the slot settles).
# One child, concurrency 1 (T229_CONC), queues rq1 (its slot frozen
# MIGRATING after its task started) and zz2 (another slot, stable).
# Asserts: zz2's three tasks run while rq1's slot migrates (within 8 s,
# they run within ~1 s), rq1's ack then lands once the slot settles, and
# every task ran once. T229_KEEP: a path the log is copied to.
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
my ($q, $q2) = ('rq1', 'zz2');
my $conc = $ENV{T229_CONC} || 1;
my $w = DQWorker::cluster_master($c, $dir, conf =>
    "log_level debug;\nlibrary \"$lib\";\nthreads 1;\n"
    . "concurrency $conc;\nlease 2s;\n"
    . "queue $q { retry_limit 20; min_backoff 100ms; max_backoff 200ms; }\n"
    . "queue $q2 { retry_limit 20; }\n");
my $src = $c->owner($q);
my ($dst) = grep { $_->port != $src->port } @m;
my $slot = $src->cmd('CLUSTER', 'KEYSLOT', "{$q}");
isnt($src->cmd('CLUSTER', 'KEYSLOT', "{$q2}"), $slot, 'two slots');
my $rec = "$dir/t.rec";
my $id = DQWorker::defer($src, "-q", $q, "ops.span", $rec, 600);
DQWorker::wait_lines($rec, 'S', 1, 20);
$c->freeze($slot, $src, $dst);
DQWorker::wait_lines($rec, 'E', 1, 20);
sleep 0.3;
my $o2 = $c->owner($q2);
my @ids2 = map { scalar DQWorker::defer($o2, "-q", $q2, "ops.span", $rec,
                                       10) } 1 .. 3;
my $t0 = time;
my $ok = DQTest::wait_for(sub { DQWorker::lines($rec, 'E') >= 4 }, 8);
diag(sprintf("zz2's 3 tasks %s after %.1f s while rq1's slot migrated",
             $ok ? 'ran' : 'NOT run', time - $t0));
ok($ok, "zz2 served while rq1's slot migrates");
$c->settle($slot, $dst);
my $t1 = time;
ok(DQTest::wait_for(sub {
       ($dst->cmd('HGET', DQWorker::key($q, 'stats'), 'done') // 0) >= 1
   }, 10, 0.002), "rq1's ack lands once the slot settles");
diag(sprintf("rq1's ack landed %.0f ms after the slot settled",
             1000 * (time - $t1)));
DQTest::wait_for(sub { DQWorker::lines($rec, 'E') >= 4 }, 10);
my %runs = %{ DQWorker::count_by_id($rec, 'S') };
is(scalar(grep { ($runs{$_} // 0) != 1 } $id, @ids2), 0,
   'every task ran once');
DQWorker::stop_worker($w);
system("cp", $w->{log}, $ENV{T229_KEEP}) if $ENV{T229_KEEP};
done_testing();
