# Review RF8 finding 3: a slot that stays MIGRATING (a reshard that
# stopped half-way: every key moved, SETSLOT NODE never sent) while 32
# tasks of its queue finish at staggered times on 2 children (concurrency
# 16). Every ack call met TRYAGAIN and each was sent again every 50 ms,
# no cap: ~640 TRYAGAIN answers a second on the nodes (535-638 measured)
# for as long as the slot stayed, and nothing said so at log_level info.
# Now one call per key (queue) and connection probes every 50 ms, the
# others wait behind it (sent again when it gets another answer, at most
# every 1 s), and the connection warns once after 10 s of TRYAGAIN and
# says when it ended.
# Asserts: the TRYAGAIN rate over the frozen window is under a third of
# one call per 50 ms per waiting call (prints the rate), the warning is
# logged at info level, then once the slot settles every task is acked,
# ran once, and the end is logged. T231_PROCS, T231_CONC, T231_N,
# T231_STUCK change the scenario; T231_KILL=1 drops every client
# connection before the slot settles; T231_LOG (a log level), T231_KEEP (a
# path the log is copied to) help debugging.
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
my $procs = $ENV{T231_PROCS} || 2;
my $conc = $ENV{T231_CONC} || 16;
my $n = $ENV{T231_N} || 32;
my $stuck = $ENV{T231_STUCK} || 11;
my $w = DQWorker::cluster_master($c, $dir, procs => $procs, conf =>
    "log_level " . ($ENV{T231_LOG} || "info") . ";\nlibrary \"$lib\";\n"
    . "threads 16;\nconcurrency $conc;\nlease 2s;\n"
    . "queue $q { retry_limit 20; min_backoff 100ms; max_backoff 200ms; }\n");
my $src = $c->owner($q);
my ($dst) = grep { $_->port != $src->port } @m;
my $slot = $src->cmd('CLUSTER', 'KEYSLOT', "{$q}");
my $rec = "$dir/t.rec";
my @ids = map { scalar DQWorker::defer($src, "-q", $q, "ops.span", $rec,
                                      400 + 25 * $_) } 1 .. $n;
DQWorker::wait_lines($rec, 'S', $n, 30);
$c->freeze($slot, $src, $dst);
DQWorker::wait_lines($rec, 'E', $n, 30);
sleep 1;
my $e0 = $c->tryagains;
my $t0 = time;
my $warned = DQTest::wait_for(sub {
    DQTest::slurp($w->{log}) =~ /\[warn\].*settle leases.*TRYAGAIN for \d+ s/
}, $stuck);
sleep 1 if $warned;
my $e1 = $c->tryagains;
my $dt = time - $t0;
my $rate = ($e1 - $e0) / $dt;
diag(sprintf("stuck %.1f s: %d TRYAGAIN answers = %.0f/s (%d procs x %d "
             . "conc, %d tasks finished)", $dt, $e1 - $e0, $rate, $procs,
             $conc, $n));
cmp_ok($rate, '<', $n * 20 / 3,
       'the waiting acks do not each retry every 50 ms');
ok($warned, 'a warning says the results wait on TRYAGAIN');
diag("  $_") for grep { /settle leases/ } split /\n/,
    DQTest::slurp($w->{log});
if ($ENV{T231_KILL}) {           # every connection dropped mid-retry
    $_->cmd('CLIENT', 'KILL', 'TYPE', 'normal') for @m;
    sleep 1;
}
$c->settle($slot, $dst);
my $t1 = time;
ok(DQTest::wait_for(sub {
       ($dst->cmd('HGET', DQWorker::key($q, 'stats'), 'done') // 0) >= $n
   }, 20, 0.005), 'every ack lands once the slot settles');
diag(sprintf("all %d acks landed %.0f ms after the slot settled", $n,
             1000 * (time - $t1)));
my %runs = %{ DQWorker::count_by_id($rec, 'S') };
is(scalar(grep { ($runs{$_} // 0) != 1 } @ids), 0, 'each task ran once');
ok(DQTest::wait_for(sub {
       DQTest::slurp($w->{log}) =~ /\[info\].*answered TRYAGAIN no more/
   }, 5), 'the end is logged');
DQWorker::stop_worker($w);
system("cp", $w->{log}, $ENV{T231_KEEP}) if $ENV{T231_KEEP};
done_testing();
