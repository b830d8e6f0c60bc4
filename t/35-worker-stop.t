# deferred-worker: the heartbeat keeps a long task's lease (a second worker
# does not run it again); SIGTERM lets the running task finish, hands the
# never-started ones back at once (release) and exits 0; a task running
# past the grace period makes the worker leave with status 1 (its lease
# then expires and it runs again elsewhere); a claim in flight at SIGTERM
# does not hold the stop up.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);

# ---- heartbeat: a 2.5 s task under a 1 s lease, two workers
my @hb = map { DQWorker::start_worker($r, $dir, name => "hb$_", args => [qw(--lease 1s)]) } 1, 2;
my $id = DQWorker::defer($r, 'sleep_ms', 2500, "$dir/long");
my @rec = DQWorker::wait_records("$dir/long", 1, 10);
DQTest::wait_for(sub { DQWorker::stats($r)->{done} >= 1 }, 5);
sleep 0.3;
is(scalar DQWorker::records("$dir/long"), 1, 'long task ran once');
is($rec[0]{execs}, 0, 'in its first execution: the lease was extended');
ok(!grep({ DQWorker::log_text($_) =~ /lease lost/ } @hb), 'no lease lost');
is(DQWorker::stop_worker($_), 0, "$_->{name} exits 0") for @hb;
log_clean_ok($_->{log}, "$_->{name} log") for @hb;

# ---- graceful stop: one thread, four leased tasks
my $w = DQWorker::start_worker($r, $dir, name => 'grace',
    args => [qw(--threads 1 --concurrency 4 --claim-size 4 --lease 30s --grace 10s)]);
my %ids = map { scalar(DQWorker::defer($r, 'sleep_ms', 700, "$dir/stop")) => 1 } 1 .. 4;
DQTest::wait_for(sub { DQWorker::stats($r)->{running} == 4 }, 10);
is(DQWorker::stats($r)->{running}, 4, 'four tasks leased');
sleep 0.2;                                   # the first one is running
my $t0 = time;
my $st = DQWorker::stop_worker($w);
my $took = time - $t0;
is($st, 0, 'SIGTERM: exit 0');
cmp_ok($took, '<', 5, 'without waiting for the queued ones');
my @done = DQWorker::records("$dir/stop");
is(scalar @done, 1, 'the running task finished');
my $s = DQWorker::stats($r);
is($s->{running}, 0, 'no lease left behind');
is($s->{waiting}, 3, 'three handed back (released)');
like(DQWorker::log_text($w), qr/releasing 3 never-started tasks/, 'release logged');
log_clean_ok($w->{log}, 'grace log');

my $t1 = time;
my $n = DQWorker::start_worker($r, $dir, name => 'next');
@done = DQWorker::wait_records("$dir/stop", 4, 10);
is_deeply({ map { $_->{id} => 1 } @done }, \%ids, 'a new worker runs them at once');
cmp_ok(time - $t1, '<', 5, 'not after a 30 s lease');
ok(!grep({ $_->{execs} != 0 } @done), 'a release does not count an execution');

is(DQWorker::stop_worker($n), 0, 'next worker exits 0');
log_clean_ok($n->{log}, 'next log');

# ---- grace period over
my $g = DQWorker::start_worker($r, $dir, name => 'short', args => [qw(--grace 200ms)]);
DQWorker::defer($r, 'sleep_ms', 3000);
DQTest::wait_for(sub { DQWorker::stats($r)->{running} == 1 }, 10);
sleep 0.1;
$st = DQWorker::stop_worker($g);
is($st >> 8, 1, 'grace period over: exit status 1');
like(DQWorker::log_text($g), qr/\[warn\].*grace period of 200 ms over with 1 tasks unfinished/,
     'and says so');

# ---- SIGTERM while a claim is in flight that then takes nothing: the stop
# has nothing left to wait for once that reply is in, not the grace period
my $c = DQWorker::start_worker($r, $dir, name => 'inflight', args => [qw(--grace 20s)]);
my $t2 = time;
my $cid = DQWorker::defer($r, '--countdown', 1500, 'noop');
sleep 0.3;                                   # its timer is armed for the ETA
$r->cmd('ZREM', 'dq2:{default}:eta', $cid);   # so the claim will find nothing
sleep(($t2 + 1.2) - time);
is($r->cmd(qw(CLIENT PAUSE 1500 ALL)), 'OK', 'Redis paused over the ETA');
sleep(($t2 + 1.9) - time);                   # the claim is waiting on Redis
my $t3 = time;
$st = DQWorker::stop_worker($c);
is($st, 0, 'SIGTERM with a claim in flight: exit 0');
cmp_ok(time - $t3, '<', 5, 'as soon as the claim is answered, not after the 20 s grace');
log_clean_ok($c->{log}, 'inflight log');
done_testing();
