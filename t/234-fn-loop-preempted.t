# A DQ_FN_LOOP function preempted on a busy host is not demoted; one that
# sleeps still is. The worker used to judge a loop call by its wall time
# alone, so a quick call that lost its CPU for more than 1 ms moved the
# function to the pool (t/131 failed that way on a loaded machine). Now a
# call past DQ_FN_LOOP_MAX_US moves it only if it was on the CPU that long
# or left the CPU to wait (docs/WORKER.md).
#
# The busy host, made certain: two busy-loop processes and the worker
# pinned to one CPU, the worker's loop thread at nice 19, so it gets a few
# per cent of that CPU and a call of 300 us spinning on the wall clock is
# preempted for tens of ms (the debug line "preempted, it stays there"
# shows it was). Before the fix: "ops.loop" was demoted, its later calls
# ran on the pool.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;

DQTest::need_tool(DQTest::in_path('taskset'), 'taskset');
my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start();
my $rec = "$dir/loop.rec";
my $w = DQWorker::start_worker($r, $dir, libs => [$lib],
                               args => [qw(--log_level debug)]);

DQWorker::defer($r, 'ops.loop', $rec, 0);
my @L = DQWorker::wait_lines($rec, 'L', 1, 10);
is($L[0][1] // '', 1, 'a quick call on the loop thread (quiet host)');

# the busy CPU: the last one this test may use
my ($cpu) = ((DQTest::capture('taskset', '-p', $$))[1] =~ /:\s*([0-9a-f]+)\s*$/);
my $mask = hex($cpu // 1);
my $n = 0;
$n++ while ($mask >> ($n + 1));
my @hogs = map {
    DQTest::spawn(name => "hog$_", log => "$dir/hog.log",
                  cmd => ['taskset', '-c', $n, $^X, '-e', '1 while 1'])
} 1 .. 2;
is((DQTest::capture('taskset', '-a', '-c', '-p', $n, $w->{pid}))[0], 0,
   "the worker pinned to CPU $n with the hogs");
ok(setpriority(0, $w->{pid}, 19), 'the loop thread at nice 19');

my $N = 40;
DQWorker::defer($r, 'ops.loop', $rec, 300) for 1 .. $N;
@L = DQWorker::wait_lines($rec, 'L', $N + 1, 60);
is(scalar(@L), $N + 1, "$N calls of 300 us ran beside the hogs");
my $log = DQWorker::log_text($w);
my $pre = () = $log =~ /function "ops\.loop" \(flagged DQ_FN_LOOP\) ran \d+ us on the loop thread, \d+ us of it on the CPU, no wait, switched out \d+ times: preempted, it stays there/g;
ok($pre >= 1, "calls were preempted past 1 ms ($pre of them)")
    or diag($log);
is(join('', map { $_->[1] } @L[1 .. $#L]), '1' x $N,
   'every call ran on the loop thread');
unlike($log, qr/"ops\.loop" \(flagged DQ_FN_LOOP\) ran \d+ us on the loop thread, more than/,
       'ops.loop was not moved to the pool');

# a sleeper still blocks the loop, busy host or not: 5 ms asleep, no CPU
DQWorker::defer($r, 'ops.hang', $rec, 5);
my @H = DQWorker::wait_lines($rec, 'H', 1, 30);
is($H[0][1] // '', 1, 'a 5 ms sleep ran on the loop thread');
ok(DQTest::wait_for(sub { DQWorker::log_text($w) =~ /function "ops\.hang" \(flagged DQ_FN_LOOP\) ran \d+ us on the loop thread, more than 1000 us: it runs on the pool from now on, in every child \(logged once; \d+ us of it on the CPU, off the CPU to wait [1-9]\d* times, switched out \d+ times\)/ }, 10),
   'and moved ops.hang to the pool (it waited)')
    or diag(DQWorker::log_text($w));

DQTest::stop_pid($_, 'KILL') for @hogs;
setpriority(0, $w->{pid}, 0);

DQWorker::defer($r, 'ops.hang', $rec, 0);
@H = DQWorker::wait_lines($rec, 'H', 2, 10);
is($H[1][1] // '', 0, 'the next ops.hang ran on the pool');

# a CPU-bound call (quiet host) still moves its function: 20 ms spinning
DQWorker::defer($r, 'ops.loop', $rec, 20000);
ok(DQTest::wait_for(sub { DQWorker::log_text($w) =~ /function "ops\.loop" \(flagged DQ_FN_LOOP\) ran \d+ us on the loop thread, more than 1000 us: it runs on the pool from now on/ }, 10),
   'a 20 ms spin moved ops.loop to the pool');
DQWorker::defer($r, 'ops.loop', $rec, 0);
@L = DQWorker::wait_lines($rec, 'L', $N + 3, 10);
is($L[$N + 2][1] // '', 0, 'its next call ran on the pool');
is(DQWorker::stop_worker($w), 0, 'worker exits 0');
done_testing();
