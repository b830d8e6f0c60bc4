# An expired lease is a failed attempt and comes back after the queue's
# backoff, like any failure: a task that kills its child (SIGSEGV) is not
# retried every lease period but after its lease and min_backoff, then
# 2 x min_backoff; it is dead after its retry limit, judged at the moment
# its last attempt failed. (Before: reclaim_delay 0, the crashes came one
# lease period apart.)
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);
use POSIX qw(floor);

my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start;
my $rec = "$dir/p.rec";

my $w = DQWorker::start_master($r, $dir, name => 'crash', wait => 1,
    env => { ASAN_OPTIONS => 'handle_segv=0:detect_leaks=0' }, conf => <<"EOF2");
library "$lib";
processes 1;
threads 1;
concurrency 1;
claim_size 1;
lease 1s;
queue crash {
    retry_limit 2;
    min_backoff 1500ms;
}
EOF2
my $bad = DQWorker::defer($r, '-q', 'crash', 'ops.segv', $rec, 13);
my $dead;
DQTest::wait_for(sub { $dead = DQWorker::dead($r, 'crash'); exists $dead->{$bad} }, 40, 0.1);
like($dead->{$bad} // '', qr/retry limit reached after 3 failed attempts/,
     'dead after its retry limit (2 retries = 3 attempts)');
my @t;
for (split /\n/, DQTest::slurp($w->{log})) {
    next unless /\(pid \d+\) killed by signal 11/;   # not the failed-task line
    my ($h, $m, $s) = /T(\d\d):(\d\d):(\d\d\.\d+)Z/ or next;
    push @t, $h * 3600 + $m * 60 + $s;
}
is(scalar @t, 3, 'three crashes');
my @gap = map { $t[$_] - $t[$_ - 1] } 1 .. $#t;
diag(sprintf 'gaps between crashes: %s s', join(', ', map { sprintf '%.2f', $_ } @gap));
# at least the backoff (the master may fail a crashed child's task at once
# instead of waiting for its lease)
ok(@gap == 2 && $gap[0] >= 1.5 - 0.1,
   'the second attempt came after min_backoff (1.5 s) at least');
ok(@gap == 2 && $gap[1] >= 3 - 0.1,
   'the third after 2 x min_backoff (3 s) at least');
is(DQTest::stop_pid($w->{pid}), 0, 'master exits 0');
DQTest::log_clean_ok($w->{log});
done_testing();
