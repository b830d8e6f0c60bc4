# A task library whose function segfaults on one argument, run with the
# default concurrency (64 per child, 4 threads, claims of 64): the crash
# kills only its child; the master hands back at once what that child
# held (issue 10, item 3): the tasks it had not started are released
# without an attempt charged, the started poison task is failed with
# "child killed by signal 11" (charged, with backoff). The innocent tasks
# all run, none is dead; the poison task is dead after its retry limit.
# The lease is long (20 s) so that nothing here waits for a lease expiry.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start;
my $rec = "$dir/p.rec";

# the crash must be a real SIGSEGV, not ASan's report-and-exit
my $w = DQWorker::start_master($r, $dir, name => 'poison', wait => 2,
    env => { ASAN_OPTIONS => 'handle_segv=0:detect_leaks=0' }, conf => <<"EOF2");
library "$lib";
processes 2;
lease 20s;
queue poison {
    retry_limit 2;
    min_backoff 100ms;
}
EOF2
my ($bad, %ids);
for my $n (1 .. 20) {
    my $id = DQWorker::defer($r, '-q', 'poison', 'ops.segv', $rec, $n);
    $ids{$id} = $n;
    $bad = $id if $n == 13;
}
my $dead;
my $t0 = time;
DQTest::wait_for(sub { $dead = DQWorker::dead($r, 'poison'); exists $dead->{$bad} }, 40, 0.1);
ok(time - $t0 < 20, 'the poison task is dead before a single lease expired');
diag(sprintf('poison task dead after %.1f s (lease 20 s)', time - $t0));
ok(exists $dead->{$bad}, 'the poison task is dead');
like($dead->{$bad} // '', qr/retry limit reached after 3 failed attempts/, '... after its retry limit (2 retries = 3 attempts)');
is(scalar(keys %$dead), 1, 'no other task is dead');

my @R = DQWorker::wait_lines($rec, 'R', 19, 20);
my %ran; $ran{ $_->[0] }++ for @R;
is(scalar(grep { $ids{$_} != 13 && $ran{$_} } keys %ids), 19, 'the 19 other tasks ran');
# a task running on another thread at the very moment of a crash is
# charged (it started); every other one must run on its first attempt
my $charged = grep { $_->[4] > 0 } @R;
cmp_ok($charged, '<=', 3 * 3, 'innocent tasks charged only for crashes they were running in');
diag("innocent runs with an attempt charged: $charged of " . scalar(@R));
ok(!$ran{$bad}, 'the poison task never completed');
my $log = DQTest::slurp($w->{log});
my $crashes = () = $log =~ /\(pid \d+\) killed by signal 11 \(Segmentation fault\)/g;
is($crashes, 3, 'three children were killed by SIGSEGV');
like($log, qr/killed by signal 11 \(Segmentation fault\), holding \d+ leased tasks: \d+ released at once[^\n]*, [1-9]\d* started and failed[^\n]*respawning in \d+ ms/,
     'the master logs the signal, what it handed back and the respawn');
like($log, qr/task failed: queue=poison id=\Q$bad\E error="child killed by signal 11/,
     'the poison task failed with "child killed by signal 11"');
like($log, qr/task dead: queue=poison id=\Q$bad\E .*function=ops\.segv .*reason="retry limit reached/,
     'one structured line for the dead task');
ok(DQWorker::alive($w), 'the master survived');
DQTest::wait_for(sub { scalar(DQWorker::live_children($w)) == 2 }, 10);
is(scalar(DQWorker::live_children($w)), 2, 'two children running again');
is($r->cmd('HGET', 'dq2:{poison}:stats', 'done'), 19, 'stats: 19 done');

# the worker is healthy afterwards
DQWorker::cli($r, 'defer', '-q', 'poison', '--count', 5, 'ops.run', "$dir/after.rec");
is(scalar(DQWorker::wait_lines("$dir/after.rec", 'R', 5, 10)), 5, 'new tasks run after the crashes');
is(DQTest::stop_pid($w->{pid}), 0, 'master exits 0');
DQTest::log_clean_ok($w->{log});
done_testing();
