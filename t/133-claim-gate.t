# Claims of a draining queue wait for half a claim of free slots (issue
# 12: a claim per finished task carried one or two tasks), but never for
# long: with long tasks holding most slots, the free ones are claimed
# after DQ_GATE_MAX_MS, not when a long task ends. Before: three 3-s tasks
# held 3 of 4 slots and the due quick tasks waited for them.
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
my $rec = "$dir/g.rec";
# in ETA order: three long tasks, then four quick ones
my @long = map { DQWorker::defer($r, 'ops.span', $rec, 3000) } 1 .. 3;
my @quick = map { DQWorker::defer($r, 'ops.run', $rec) } 1 .. 4;
my $t0 = time;
my $w = DQWorker::start_worker($r, $dir, libs => [$lib],
    args => [qw(--threads 4 --concurrency 4 --claim-size 4)]);
my @R = DQWorker::wait_lines($rec, 'R', 4, 10);
my $took = time - $t0;
is(scalar(@R), 4, 'the quick tasks ran');
my @E = DQWorker::lines($rec, 'E');
is(scalar(@E), 0, 'all of them while the long ones still ran');
diag(sprintf('the quick tasks were done %.2f s after the start (long tasks: 3 s)', $took));
DQWorker::wait_lines($rec, 'E', 3, 10);
is(DQWorker::stop_worker($w), 0, 'worker exits 0');
done_testing();
