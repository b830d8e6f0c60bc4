# The child's own pool (worker/pool.c, issue 12): a claim's plain tasks
# are handed over together and the threads take them one at a time, so a
# slow task holds up nothing behind it while another thread is free (no
# head-of-line blocking), and SIGTERM gives back the tasks no thread took
# (released, not charged) while the running ones finish.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start();
my $rec = "$dir/p.rec";

# one claim: a 1.5 s task first, then five quick ones; two threads
my $slow = DQWorker::defer($r, 'ops.span', $rec, 1500);
my @fast = map { DQWorker::defer($r, 'ops.run', $rec) } 1 .. 5;
my $w = DQWorker::start_worker($r, $dir, libs => [$lib],
    args => [qw(--threads 2 --concurrency 8 --claim-size 8)]);
my @R = DQWorker::wait_lines($rec, 'R', 5, 10);
my @E = DQWorker::wait_lines($rec, 'E', 1, 10);
is(scalar(@R), 5, 'the quick tasks ran');
is(scalar(@E), 1, 'the slow one ended');
my ($last_r) = sort { $b <=> $a } map { $_->[1] } @R;
cmp_ok($last_r, '<', $E[0][1], 'every quick task ended before the slow one')
    if @E && @R;
is(DQWorker::stop_worker($w), 0, 'worker exits 0');

# SIGTERM with both threads busy: the queued tasks are given back
$rec = "$dir/q.rec";
my @span = map { DQWorker::defer($r, 'ops.span', $rec, 800) } 1 .. 6;
$w = DQWorker::start_worker($r, $dir, name => 'w2', libs => [$lib],
    args => [qw(--threads 2 --concurrency 8 --claim-size 8)]);
ok(scalar(DQWorker::wait_lines($rec, 'S', 2, 10)) >= 2, 'two started');
kill 'TERM', $w->{pid};
is(DQTest::stop_pid($w->{pid}, 'TERM', 20), 0, 'worker exits 0');
is(scalar(DQWorker::lines($rec, 'E')), 2, 'the two running ones finished');
like(DQWorker::log_text($w), qr/releasing 4 never-started tasks of queue default/,
     'the four queued ones released');
my $s = DQWorker::stats($r);
is($s->{released}, 4, 'released 4');
is(DQWorker::zcard($r, 'default', 'eta'), 4, 'waiting again');
is($s->{retried} // 0, 0, 'none charged');
done_testing();
