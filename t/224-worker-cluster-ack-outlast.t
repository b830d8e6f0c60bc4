# Review RV8 finding 2: acks that ride a claim on a Redis Cluster slot that
# stays MIGRATING longer than the lease. Their claim keeps the cluster
# layer's TRYAGAIN retry; once that retry's back-off reached 1 s a try (the
# same rhythm as an idle child's claim alone, "again in 1 s"), the race when
# the slot settled came down to timer phase: an idle child's claim landed
# first, took the expired lease back, claimed the task again and ran it a
# second time while the ack was still waiting ("lease lost: ack ... refused",
# 4 of 5 runs of t/223 with 3 children and a 2.5 s hold). Now a command that
# settles a lease (an ack, retry or bury; acks that rode a claim refused
# so are sent again at once alone: review RF8, t/229) is sent again on
# TRYAGAIN without a cap (one probe per queue every DQ_CCL_SETTLE_MS, the
# others right after it: t/231), so it lands within that step of the slot settling; a lease taken
# back meanwhile waits the queue's backoff (100 ms here) before a claim can
# take the task, and a late ack of the expired claim is still accepted
# until then.
# 4 children, concurrency 1, 2 tasks of 400 ms (2 children hold acks, 2 are
# idle), lease 500 ms, every key of the slot moved and the slot MIGRATING
# for 2.5 s (5 leases). Prints the TRYAGAIN answers the nodes gave while
# the slot migrated (the retry's load) and how soon the acks landed once it
# settled (measurements, not asserted). RF_PROCS, RF_N, RF_CONC, RF_HOLD
# change the scenario.
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
my $q = 'rq1';
my $procs = $ENV{RF_PROCS} || 4;
my $hold = $ENV{RF_HOLD} || 2.5;
my $n = $ENV{RF_N} || 2;
my $conc = $ENV{RF_CONC} || 1;
my $w = DQWorker::cluster_master($c, $dir, procs => $procs, conf =>
    "log_level debug;\nlibrary \"$lib\";\nthreads 1;\n"
    . "concurrency $conc;\nlease 500ms;\n"
    . "queue $q { retry_limit 20; min_backoff 100ms; max_backoff 200ms; }\n");
my $src = $c->owner($q);
my ($dst) = grep { $_->port != $src->port } @m;
my $slot = $src->cmd('CLUSTER', 'KEYSLOT', "{$q}");
my $rec = "$dir/t.rec";
my @ids = map { scalar DQWorker::defer($src, "-q", $q, "ops.span", $rec, 400) }
          1 .. $n;
DQWorker::wait_lines($rec, 'S', $n, 20);
# TRYAGAIN answers while the slot migrates (INFO errorstats): the load
my $e0 = $c->tryagains;
my $t0 = time;
$c->freeze($slot, $src, $dst);
# the tasks finish while the slot migrates: their acks are refused TRYAGAIN
DQWorker::wait_lines($rec, 'E', $n, 20);
sleep $hold - (time - $t0) if time - $t0 < $hold;
$c->settle($slot, $dst);
my $t1 = time;
diag(sprintf("MIGRATING for %.2f s: %d TRYAGAIN answers", $t1 - $t0,
             $c->tryagains - $e0));
# a measurement, not asserted: how soon the acks landed once it settled
DQTest::wait_for(sub {
    ($dst->cmd('HGET', DQWorker::key($q, 'stats'), 'done') // 0) >= $n }, 10,
    0.002);
diag(sprintf("the acks landed %.0f ms after the slot settled",
             1000 * (time - $t1)));
# every lease long expired: whichever call lands first takes them back
DQTest::wait_for(sub { !$dst->cmd('EXISTS', DQWorker::key($q, 'leases')) }, 10);
sleep 1.5;
my %runs = %{ DQWorker::count_by_id($rec, 'S') };
my $log = DQTest::slurp($w->{log});
diag("runs: " . join(' ', map { $runs{$_} // 0 } @ids));
diag("log: $_") for grep { /lease lost|finished|reclaim/ } split /\n/, $log;
my %st = @{ $dst->cmd('HGETALL', DQWorker::key($q, 'stats')) || [] };
diag(join ' ', map { "$_=" . ($st{$_} // 0) } qw(done acked_late reclaimed));
is(scalar(grep { ($runs{$_} // 0) != 1 } @ids), 0, 'each task ran once');
unlike($log, qr/lease lost/, 'no ack refused');
like($log, qr/answered TRYAGAIN/, 'the acks met TRYAGAIN');
is($dst->cmd('ZCARD', DQWorker::key($q, 'eta')) // 0, 0,
   'nothing waits to run again');
DQWorker::stop_worker($w);
done_testing();
