# Rounds of 1,000 concurrent tasklet tasks on one child (the push library's
# load): stacks are unmapped and mapped again, often at the same address.
# Under ASan (build/san) a new mapping used to inherit the redzones of the
# dead frames of the stack unmapped there (munmap does not clear ASan's
# shadow): "stack-buffer-overflow" in __asan_handle_no_return at a
# tasklet's exit, the child aborted in the third round. tasklet/coro.c
# unpoisons new stacks too.
use strict;
use warnings;
use lib 't/lib';
use DQTest;
use DQWorker;
use Test::More;

my $lib = bin('examples/tasklet/libdq_tasklet_example.so');
DQTest::require_built($lib, 'the tasklet example library');
my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $w = DQWorker::start_worker($r, $dir, libs => [$lib],
                               args => [qw(--tasklet_concurrency 1000 --claim_size 1000)]);
for my $round (1 .. 3) {
    DQWorker::defer($r, qw(--count 1000 example.sleep_tasklet 100 t:slept));
    ok(wait_for(sub { ($r->cmd(qw(GET t:slept)) // 0) >= 1000 * $round }, 30, 0.05),
       "round $round: 1,000 tasklets slept and ended");
}
is(DQWorker::stop_worker($w), 0, 'the worker exits 0');
log_clean_ok($w->{log}, 'worker log');
done_testing();
