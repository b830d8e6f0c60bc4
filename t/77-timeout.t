# A queue's `timeout`: a plain function that runs past it counts as failed
# at once (retry with backoff, then dead after the retry limit) and the
# child running it is replaced: it stops claiming, lets its other tasks
# finish, hands unstarted ones back and exits; the master starts a new one
# at once. No other task is lost or run twice.
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
my $rec = "$dir/t.rec";

my $w = DQWorker::start_master($r, $dir, name => 'to', wait => 1, conf => <<"EOF2");
library "$lib";
processes 1;
threads 4;
concurrency 4;
lease 30s;
grace 10s;
queue slow {
    timeout 500ms;
    retry_limit 1;
    min_backoff 100ms;
}
EOF2
my $stuck = DQWorker::defer($r, '-q', 'slow', 'ops.span', $rec, 20000);
my %short;
$short{ DQWorker::defer($r, '-q', 'slow', 'ops.span', $rec, 200) } = 1 for 1 .. 12;

my $dead;
my $t0 = time;
DQTest::wait_for(sub { $dead = DQWorker::dead($r, 'slow'); exists $dead->{$stuck} }, 30, 0.05);
my $took = time - $t0;
ok(exists $dead->{$stuck}, sprintf('the stuck task is dead after %.1f s (lease is 30 s: the timeout did it)', $took));
like($dead->{$stuck} // '', qr/retry limit reached after 2 failed attempts: timed out after \d+ ms \(timeout 500 ms\)/,
     '... with the timeout as its reason');
ok($took < 10, 'long before its 20 s run or its 30 s lease');

my @E = DQWorker::wait_lines($rec, 'E', 12, 20);
my @S = DQWorker::lines($rec, 'S');
my (%s, %e);
$s{ $_->[0] }++ for @S;
$e{ $_->[0] }++ for @E;
is(scalar(grep { $e{$_} } keys %short), 12, 'the 12 other tasks ran');
is(scalar(grep { ($s{$_} // 0) != 1 || ($e{$_} // 0) != 1 } keys %short), 0, '... each exactly once');
is($s{$stuck}, 2, 'the stuck task started twice (first run + 1 retry)');
ok(!$e{$stuck}, 'and never finished: its threads died with their children');

DQTest::wait_for(sub { my $n = () = DQTest::slurp($w->{log}) =~ /asked to be replaced/g; $n >= 2 }, 10);
my $log = DQTest::slurp($w->{log});
like($log, qr/task failed: queue=slow id=\Q$stuck\E name=- function=ops\.span attempt=1 error="timed out after \d+ ms \(timeout 500 ms\); its child is replaced" retry_in_ms=100/,
     'one structured line for the timed-out attempt');
like($log, qr/task dead: queue=slow id=\Q$stuck\E .*attempt=2 reason="retry limit reached/,
     'and one for its death');
my $repl = () = $log =~ /asked to be replaced \(a task ran past its timeout\)/g;
is($repl, 2, 'two children were replaced');
DQTest::wait_for(sub { scalar(DQWorker::live_children($w)) == 1 }, 10);
is(scalar(DQWorker::live_children($w)), 1, 'one child running');
DQWorker::cli($r, 'defer', '-q', 'slow', '--count', 5, 'ops.run', "$dir/after.rec");
is(scalar(DQWorker::wait_lines("$dir/after.rec", 'R', 5, 10)), 5, 'the new child runs tasks');
is($r->cmd('ZCARD', 'dq2:{slow}:leases'), 0, 'no lease left');
is(DQTest::stop_pid($w->{pid}, 'TERM', 30), 0, 'master exits 0');   # 30 s: 10 s was missed once under CI-like load
DQTest::log_clean_ok($w->{log});

# ---- function_timeout: one function's limit, on a queue without one
my $f = DQWorker::start_master($r, $dir, name => 'fn', wait => 1, conf => <<"EOF2");
library "$lib";
processes 1;
threads 2;
lease 30s;
function_timeout ops.span 300ms;
queue fq {
    retry_limit 0;
}
EOF2
my $slow = DQWorker::defer($r, '-q', 'fq', 'ops.span', "$dir/f.rec", 20000);
DQWorker::cli($r, 'defer', '-q', 'fq', '--count', 3, 'ops.run', "$dir/f.rec");
DQTest::wait_for(sub { $dead = DQWorker::dead($r, 'fq'); exists $dead->{$slow} }, 20, 0.05);
like($dead->{$slow} // '', qr/timed out after \d+ ms \(timeout 300 ms\)/,
     'function_timeout: ops.span is dead after 300 ms (retry_limit 0)');
is(scalar(DQWorker::wait_lines("$dir/f.rec", 'R', 3, 10)), 3, 'the other function is not limited');
is(DQTest::stop_pid($f->{pid}, 'TERM', 30), 0, 'master exits 0');
DQTest::log_clean_ok($f->{log});
done_testing();
