# DQ_FN_LOOP (issue 12): a function flagged as safe for the loop thread
# runs right there, no hand-off to the pool; a call that runs longer than
# DQ_FN_LOOP_MAX_US (1 ms) moves the function to the pool for the rest of
# the child's life, logged once. ops.loop(path, us) records whether it
# ran on the loop thread (the child's main thread) and then stays busy for
# us microseconds. Before: the flag did not exist, every plain function
# ran on the pool ("L <id> 0").
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
my $w = DQWorker::start_worker($r, $dir, libs => [$lib]);

my @fast = map { DQWorker::defer($r, 'ops.loop', $rec, 0) } 1 .. 3;
my @L = DQWorker::wait_lines($rec, 'L', 3, 10);
is(scalar(@L), 3, 'three quick calls ran');
is(join(',', map { $_->[1] } @L), '1,1,1', 'each on the loop thread');

my $slow = DQWorker::defer($r, 'ops.loop', $rec, 20000);     # 20 ms
@L = DQWorker::wait_lines($rec, 'L', 4, 10);
is($L[3][1], 1, 'the 20 ms call ran on the loop thread too') if @L > 3;
ok(DQTest::wait_for(sub { DQWorker::log_text($w) =~ /function "ops\.loop" \(flagged DQ_FN_LOOP\) ran \d+ us on the loop thread, more than 1000 us: it runs on the pool from now on/ }, 5),
   'and moved the function to the pool, logged');

my @after = map { DQWorker::defer($r, 'ops.loop', $rec, 0) } 1 .. 2;
@L = DQWorker::wait_lines($rec, 'L', 6, 10);
is(scalar(@L), 6, 'two more calls ran');
is(join(',', map { $_->[1] } @L[4, 5]), '0,0', 'on the pool now');
my $n = () = DQWorker::log_text($w) =~ /flagged DQ_FN_LOOP/g;
is($n, 1, 'logged once');
DQTest::wait_for(sub { (DQWorker::stats($r)->{done} // 0) >= 6 }, 5);
is(DQWorker::stats($r)->{done}, 6, 'all six done');
is(DQWorker::stop_worker($w), 0, 'worker exits 0');
done_testing();
