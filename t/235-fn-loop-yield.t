# review 9Z, finding 1: a DQ_FN_LOOP function that holds the loop thread
# 5 ms while yielding the CPU to a thread of its own (sched_yield(): an
# involuntary switch, ru_nivcsw; no voluntary one, little CPU) was read as
# "preempted" and never moved to the pool. The worker is pinned to one CPU
# (a 1-CPU container: the helper and the loop thread share it), no hogs.
# Failed before the fix (10 of 10 calls stayed on the loop thread).
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
my $rec = "$dir/y.rec";
my $w = DQWorker::start_worker($r, $dir, libs => [$lib],
                               args => [qw(--log_level debug)]);
my ($cpu) = ((DQTest::capture('taskset', '-p', $$))[1] =~ /:\s*([0-9a-f]+)\s*$/);
my $mask = hex($cpu // 1);
my $n = 0;
$n++ while ($mask >> ($n + 1));
is((DQTest::capture('taskset', '-a', '-c', '-p', $n, $w->{pid}))[0], 0,
   "the worker pinned to CPU $n");

my $N = 10;
DQWorker::defer($r, 'ops.ywait', $rec, 5000) for 1 .. $N;
my @W = DQWorker::wait_lines($rec, 'W', $N, 60);
is(scalar(@W), $N, "$N yield-waits of 5 ms ran");
is($W[0][1], 1, 'the first ran on the loop thread');
my $log = DQWorker::log_text($w);
like($log, qr/function "ops\.ywait" \(flagged DQ_FN_LOOP\) ran \d+ us on the loop thread, more than 1000 us: it runs on the pool/,
     'demoted, with its reason logged')
    or diag(($log =~ /^.*ops\.ywait.*$/mg)[0 .. 2]);
is(join('', map { $_->[1] } @W[1 .. $#W]), '0' x ($N - 1),
   'the later calls ran on the pool');
# the loop call's log line says how long it held the loop (it said
# duration_ms=0 for every loop call: review 9Z, finding 4)
my ($d) = $log =~ /task finished: queue=\S+ id=\Q$W[0][0]\E function=ops\.ywait attempt=1 duration_ms=(\d+)/;
ok(defined $d && $d >= 3, 'the loop call logged its duration (' . ($d // 'none') . ' ms)');
is(DQWorker::stop_worker($w), 0, 'worker exits 0');
done_testing();
