# review 9L: a DQ_FN_LOOP call's duration_ms (dispatch.c dq__run_on_loop) read
# uv_now at its start while the loop's clock moved only after a call of >= 1
# ms: the quick calls before it in the same claim (and the claim reply's own
# handling) were charged to the first call of >= 1 ms (25 ms for a 1.2 ms
# call after 30 of 0.8 ms). The clock is now read before each call.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start();
my $rec = "$dir/loop.rec";
my $N = 30;
DQWorker::defer($r, 'ops.loop', $rec, 800) for 1 .. $N;
DQWorker::defer($r, 'ops.loop', $rec, 1200);
my $w = DQWorker::start_worker($r, $dir, libs => [$lib],
                               args => [qw(--log_level debug)]);
my @L = DQWorker::wait_lines($rec, 'L', $N + 1, 30);
is(scalar(@L), $N + 1, 'all ran');
my $log = DQWorker::log_text($w);
my @d = $log =~ /task finished: queue=\S+ id=\S+ function=ops\.loop attempt=1 duration_ms=(\d+)/g;
diag("duration_ms: @d");
my ($last) = $log =~ /task finished: queue=\S+ id=\Q$L[-1][0]\E function=ops\.loop attempt=1 duration_ms=(\d+)/;
ok(defined $last && $last <= 3, "the 1.2 ms call logged ~1 ms (" . ($last // 'none') . ")");
is(DQWorker::stop_worker($w), 0, 'worker exits 0');
done_testing();
