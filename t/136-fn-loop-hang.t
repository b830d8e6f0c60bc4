# A DQ_FN_LOOP call that never returns (ops.hang: a loop function that
# blocks, breaking its promise). One claim holds it and three plain tasks:
# - the plain tasks go to the pool before the loop call starts (no
#   head-of-line blocking behind it), and finish OK while the loop is
#   stuck;
# - the master's stall check kills the child; the plain tasks that had
#   finished OK are acked (marked done from the pool thread), not charged
#   and run again;
# - the new child does not run the hanging function on its loop again:
#   the master demoted it for every child.
# (Found by the R2 review of contract v2.)
use strict; use warnings; use lib 't/lib';
use Test::More; use DQTest; use DQWorker; use Time::HiRes qw(time sleep);

my $ops = DQWorker::ops_lib(1, 1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start();
my $rec = "$dir/h.rec";

# the hang first: the claim (by ETA) gives it before the plain ones
my $h = DQWorker::defer($r, 'ops.hang', $rec, 30000);
sleep 0.01;
my @p;
for (1 .. 3) { push @p, scalar DQWorker::defer($r, 'ops.span', $rec, 300); sleep 0.01 }
my $w = DQWorker::start_master($r, $dir, name => 'h', conf => <<"EOF2");
library "$ops";
processes 1;
threads 4;
concurrency 8;
claim_size 8;
lease 120s;
queue default { retry_limit 2; min_backoff 100ms; max_backoff 100ms; }
EOF2
my @H = DQWorker::wait_lines($rec, 'H', 1, 10);
is($H[0][1] // '', 1, 'the hanging call runs on the loop thread');
my @S = DQWorker::wait_lines($rec, 'S', 3, 5);
is(scalar(@S), 3, 'the claim\'s plain tasks started on the pool while the '
                  . 'loop call blocks');
my @E = DQWorker::wait_lines($rec, 'E', 3, 5);
is(scalar(@E), 3, 'and finished OK');
ok(DQTest::wait_for(sub { DQWorker::log_text($w) =~ /its loop has not run/ },
                    40), 'the master killed the stalled child');
ok(DQTest::wait_for(sub { DQWorker::log_text($w) =~
       /died while function "ops\.hang" \(flagged DQ_FN_LOOP\) was running/ },
       10), 'the master demoted the function it died in');
@H = DQWorker::wait_lines($rec, 'H', 2, 15);
is($H[1][1] // '', 0, 'the new child runs it on the pool, not its loop');
sleep 1;                          # a charged plain task is back by now
@E = DQWorker::lines($rec, 'E');
my %n; $n{$_->[0]}++ for @E;
is(join(' ', map { $n{$_} // 0 } @p), '1 1 1',
   'each plain task that finished OK ran exactly once');
my $log = DQWorker::log_text($w);
unlike($log, qr/task failed: [^\n]*function=ops\.span/,
       'no plain task was charged for the child\'s death');
diag(join "\n", grep { /master|stall|DQ_FN_LOOP|held|acked/ } split /\n/, $log)
    if $ENV{DQ_DEBUG};
DQTest::stop_pid($w->{pid}, 'QUIT', 10);
done_testing();
