# deferred-worker runs DQ_FN_TASKLET functions as coroutines on its loop:
# 1,000 tasks that each sleep 100 ms finish on ONE worker process far
# below the 100 s they would take one after the other; tasklet results
# map to ack / bury like plain ones; 100 concurrent Redis commands from one
# tasklet give the same sums as the plain sequential version.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $lib = DQTest::require_built(bin('examples/tasklet/libdq_tasklet_example.so'),
                                'tasklet example library');

my $dir = tmpdir();
my $r = DQTest::Redis->start(dir => $dir);
my $w = DQWorker::start_worker($r, $dir, libs => [$lib],
                               args => [qw(--tasklet_concurrency 1000)]);

# ---- 1,000 sleeping tasklets on one process
my $t0 = time;
DQWorker::defer($r, qw(--count 1000 example.sleep_tasklet 100 t:slept));
my $t1 = time;
my $ok = DQTest::wait_for(sub { ($r->cmd(qw(GET t:slept)) // 0) >= 1000 },
                          60, 0.01);
my $t2 = time;
ok($ok, '1000 tasklet tasks that sleep 100 ms each all ran');
is($r->cmd(qw(GET t:slept)), 1000, 'each exactly once');
my $took = $t2 - $t1;
diag(sprintf('1000 x sleep(100 ms) tasklets on one worker process: %.2f s '
             . 'after the enqueue (%.2f s to enqueue); sequentially: 100 s',
             $took, $t1 - $t0));
cmp_ok($took, '<', 30, 'well under the sequential 100 s');
DQTest::wait_for(sub { DQWorker::stats($r)->{done} >= 1000 }, 10);
is(DQWorker::stats($r)->{done}, 1000, 'all 1000 acked');

# ---- 100 concurrent commands, reduced, vs the plain version
DQWorker::defer($r, qw(--count 3 example.sum_tasklet tk));
DQWorker::defer($r, qw(--count 3 example.sum_plain pl));
DQTest::wait_for(sub { ($r->cmd(qw(LLEN ex:tk:results)) // 0) >= 3
                       && ($r->cmd(qw(LLEN ex:pl:results)) // 0) >= 3 }, 20);
my ($tk, $pl) = (0, 0);
$tk += (split /:/)[0] for @{ $r->cmd(qw(LRANGE ex:tk:results 0 -1)) };
$pl += (split /:/)[0] for @{ $r->cmd(qw(LRANGE ex:pl:results 0 -1)) };
# three tasks INCRBY key i by i: their replies are i, 2i, 3i in some order
is($tk, 6 * 4950, 'tasklet version: 100 concurrent INCRBY per task, '
   . 'reduced to the right sums');
is($pl, 6 * 4950, 'plain version: the same sums');
for my $k (qw(tk pl)) {
    my @us = map { (split /:/)[1] } @{ $r->cmd('LRANGE', "ex:$k:results", 0, -1) };
    diag("$k: microseconds per task: @us");
}

# ---- a tasklet's result code decides the task's fate
my $id = DQWorker::defer($r, qw(example.sum_tasklet bad 0));
DQTest::wait_for(sub { exists DQWorker::dead($r)->{$id} }, 10);
like(DQWorker::dead($r)->{$id} // '', qr/n must be 1\.\./,
     'DQ_TASK_PERMANENT from a tasklet buries it with its error');

# ---- a lone tasklet task on an idle worker is acked at once: its
# completion must not wait for an unrelated loop event (the next one here
# would be the heartbeat, 10 s away)
sleep 0.3;
my $before = DQWorker::stats($r)->{done};
my $ta = time;
DQWorker::defer($r, qw(example.sleep_tasklet 10 t:lone));
ok(DQTest::wait_for(sub { DQWorker::stats($r)->{done} > $before }, 5, 0.01),
   'a lone tasklet task is acked promptly');
diag(sprintf('lone tasklet task (10 ms sleep): acked %.0f ms after the '
             . 'enqueue', 1000 * (time - $ta)));

# ---- the tasklet API from a plain function (a pool thread): refused
my $mis = DQWorker::defer($r, qw(example.misuse_plain));
DQTest::wait_for(sub { exists DQWorker::dead($r)->{$mis} }, 10);
like(DQWorker::dead($r)->{$mis} // '', qr/only for DQ_FN_TASKLET/,
     'a plain function gets no tasklet runtime on its pool thread');

ok(DQWorker::alive($w), 'worker alive');
is(DQWorker::stop_worker($w), 0, 'SIGTERM: worker exits 0');
DQTest::log_clean_ok($w->{log}, 'worker log');
my @unhandled = grep { /unhandled exception/ } split /\n/, DQTest::slurp($w->{log});
ok(!@unhandled, 'no unhandled tasklet exception logged')
    or diag(join "\n", @unhandled[0 .. ($#unhandled < 5 ? $#unhandled : 5)]);

# ---- tasklet_concurrency bounds how many run at once; the rest wait
my $w2 = DQWorker::start_worker($r, $dir, name => 'w2', libs => [$lib],
                                args => [qw(--tasklet_concurrency 5 --tasklet_stack 32k)]);
DQWorker::defer($r, qw(--count 40 example.gauge_tasklet 50 t:g));
ok(DQTest::wait_for(sub { ($r->cmd(qw(ZCARD t:g:seen)) // 0) >= 5
                          && ($r->cmd(qw(GET t:g:now)) // 1) == 0
                          && DQWorker::stats($r)->{done} >= 1040 }, 30),
   '40 gauge tasklets done with tasklet_concurrency 5');
my $max = $r->cmd(qw(ZREVRANGE t:g:seen 0 0))->[0];
is($max, 5, 'never more than 5 tasklet tasks ran at once, and 5 did');
is(DQWorker::stop_worker($w2), 0, 'second worker exits 0');
DQTest::log_clean_ok($w2->{log}, 'second worker log');

# ---- SIGTERM: running tasklets finish, those waiting for a slot go back
my $w3 = DQWorker::start_worker($r, $dir, name => 'w3', libs => [$lib],
                                args => [qw(--tasklet_concurrency 2)]);
my $done0 = DQWorker::stats($r)->{done};
DQWorker::defer($r, qw(--count 6 example.gauge_tasklet 1500 t:s));
ok(DQTest::wait_for(sub { ($r->cmd(qw(GET t:s:now)) // 0) == 2
                          && DQWorker::stats($r)->{running} >= 6 }, 10),
   'two tasklets run, four more leased and waiting for a slot');
is(DQWorker::stop_worker($w3), 0, 'SIGTERM: exits 0 after the running ones');
my $st = DQWorker::stats($r);
is($st->{done} - $done0, 2, 'the two running tasklet tasks finished');
is($st->{waiting}, 4, 'the four waiting ones were handed back');
is($st->{running}, 0, 'nothing left leased');
DQTest::log_clean_ok($w3->{log}, 'third worker log');
# ---- run time limit: a tasklet task past its queue's timeout is canceled
# at its wait (the child keeps running) and counts as failed
my $conf = "$dir/w4.conf";
open my $cf, '>', $conf or die;
print $cf "queue default {\n    timeout 300ms;\n    retry_limit 0;\n}\n";
close $cf;
my $w4 = DQWorker::start_worker($r, $dir, name => 'w4', libs => [$lib],
                                args => ['-c', $conf]);
my $t4 = time;
my $slow = DQWorker::defer($r, qw(example.sleep_tasklet 20000 t:slow));
DQWorker::defer($r, qw(example.sleep_tasklet 50 t:fast));
ok(DQTest::wait_for(sub { exists DQWorker::dead($r)->{$slow} }, 15, 0.02),
   'a tasklet task sleeping 20 s in a queue with timeout 300ms is failed');
my $dt4 = time - $t4;
diag(sprintf('timed-out tasklet task buried %.2f s after the enqueue', $dt4));
cmp_ok($dt4, '<', 10, 'long before its sleep would have ended');
like(DQWorker::dead($r)->{$slow} // '', qr/timed out after 300 ms/,
     'the dead reason says it timed out');
is($r->cmd(qw(GET t:slow)), undef, 'its code after the wait did not run');
ok(DQTest::wait_for(sub { ($r->cmd(qw(GET t:fast)) // 0) == 1 }, 10),
   'a short tasklet task in the same queue ran');
ok(DQWorker::alive($w4), 'the worker process was not replaced or stopped');
is(DQWorker::stop_worker($w4), 0, 'fourth worker exits 0');
DQTest::log_clean_ok($w4->{log}, 'fourth worker log');
done_testing();
