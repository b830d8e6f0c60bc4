#!/usr/bin/perl
# Measure the tasklet example against its plain twin on this machine (run
# by hand from the repository root, after `make`):
#
#   perl examples/tasklet/measure.pl [N]
#
# Starts its own redis-server and one deferred-worker process (the normal
# build, not the sanitizer one) on free loopback ports, then for each of
# example.sum_tasklet and example.sum_plain (100 INCRBY + reduce per task):
#   latency     50 tasks one after the other: median time inside the task
#   throughput  N (default 1000) tasks enqueued at once: wall time until the
#               last one has stored its result
use strict;
use warnings;
use lib 't/lib';
use Test::More ();
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

$ENV{DQ_BUILD} //= DQTest::root() . '/build';
my $n = shift // 1000;
my $lib = bin('examples/tasklet/libdq_tasklet_example.so');
die "build first: make\n" unless -e $lib;
my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $w = DQWorker::start_worker($r, $dir, libs => [$lib],
                               args => [qw(--log_level warn)]);

sub median { my @s = sort { $a <=> $b } @_; return $s[int(@s / 2)] }

for my $fn (qw(sum_tasklet sum_plain)) {
    my $tag = "lat$fn";
    for my $i (1 .. 50) {
        DQWorker::defer($r, "example.$fn", $tag);
        DQTest::wait_for(sub { $r->cmd('LLEN', "ex:$tag:results") >= $i }, 10, 0.0005);
    }
    my @us = map { (split /:/)[1] } @{ $r->cmd('LRANGE', "ex:$tag:results", 0, -1) };
    printf "%-12s latency: median %6d us per task (100 commands), min %d, max %d\n",
        $fn, median(@us), (sort { $a <=> $b } @us)[0], (sort { $b <=> $a } @us)[0];
}
for my $fn (qw(sum_tasklet sum_plain)) {
    my $tag = "tp$fn";
    my $t0 = time;
    DQWorker::defer($r, '--count', $n, "example.$fn", $tag);
    DQTest::wait_for(sub { $r->cmd('LLEN', "ex:$tag:results") >= $n }, 300, 0.005)
        or die "$fn: not all $n tasks finished\n";
    my $dt = time - $t0;
    printf "%-12s throughput: %d tasks in %.2f s = %.0f tasks/s, %.0f commands/s\n",
        $fn, $n, $dt, $n / $dt, $n * 101 / $dt;
}
DQWorker::stop_worker($w);
