# Review RW finding 2: a child killed -9 (a crash, the OOM killer) lost
# the lateness counts of every task it ran since its last heartbeat (up to
# 10 s of them since 56f7902): deferred_task_lateness_seconds_count stayed
# below deferred_tasks_done_total for good. Now every 5 s tick flushes a
# non-empty histogram (an idle child has nothing to flush: no command), so
# a crash loses at most one tick's counts. Here: tasks run right after a
# heartbeat, the child is killed 7.5 s after it (past the next tick, before
# the next heartbeat): before the fix, late_count 0 of 20.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $r = DQTest::Redis->start;
my $dir = DQTest::tmpdir();
my $w = DQWorker::start_master($r, $dir, name => 'w', conf => <<"EOF");
library "$lib";
processes 1;
queue q { }
EOF
my ($kid) = DQWorker::live_children($w);
my $hash;
ok(DQTest::wait_for(sub {
    ($hash) = grep { /:$kid$/ } @{ $r->cmd('ZRANGE', 'dq:workers', 0, -1) };
    $hash && $r->cmd('HGET', "dq:worker:$hash", 'beat_ms');
}, 20), 'the child beats');
# the moment of a heartbeat: its beat_ms changes
my $b0 = $r->cmd('HGET', "dq:worker:$hash", 'beat_ms');
ok(DQTest::wait_for(sub {
    ($r->cmd('HGET', "dq:worker:$hash", 'beat_ms') // $b0) ne $b0 }, 15, 0.05),
   'a heartbeat seen');
my $tb = time;
my $rec = "$dir/q.rec";
my ($rc, $out, $err) = DQWorker::cli($r, 'defer', '-q', 'q', '--count', '20',
                                     'ops.span', $rec, 0);
is($rc, 0, '20 tasks') or diag $err;
is(scalar DQWorker::wait_lines($rec, 'E', 20, 5), 20, '20 ran');
my $left = $tb + 7.5 - time;
diag sprintf('ran %.1f s after the heartbeat', 7.5 - $left);
SKIP: {
    skip 'the machine is too loaded: the tasks ran after the next tick', 1
        if $left < 1;
    sleep $left;
    kill 'KILL', $kid;
    DQTest::wait_for(sub { DQWorker::log_text($w) =~ /killed by signal 9/ }, 10);
    is($r->cmd('HGET', DQTest::dq_key('q', 'stats'), 'late_count') // 0, 20,
       'killed -9 past a tick after the tasks: their 20 lateness counts kept');
}
DQWorker::stop_worker($w);
done_testing;
