# The master's life cycle: SIGTERM during a busy run (exit within the
# grace period, nothing lost, nothing run twice), pid file and -s, SIGUSR1
# log reopening (master and children), a killed child respawned.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);

my $bin = DQWorker::worker_bin();
my $lib = DQWorker::ops_lib(1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start;

# ---- SIGTERM during a busy run
my $N = 200;
my $rec = "$dir/busy.rec";
my $w = DQWorker::start_master($r, $dir, name => 'busy', wait => 2, conf => <<"EOF2");
library "$lib";
processes 2;
threads 3;
concurrency 6;
claim_size 4;
grace 5s;
lease 30s;
pid_file $dir/busy.pid;
log_file $dir/busy.log;
queue busy;
EOF2
ok(-e "$dir/busy.pid", 'pid file written');
is(DQTest::slurp("$dir/busy.pid") + 0, $w->{pid}, 'pid file holds the master pid');
is((DQWorker::cli($r, 'defer', '-q', 'busy', '--count', $N, 'ops.span', $rec,
                  100))[0], 0, "$N tasks deferred");
cmp_ok(scalar(DQWorker::wait_lines($rec, 'E', 20, 20)), '>=', 20,
       'at least 20 running before the stop');
my $t0 = time;
kill 'TERM', $w->{pid};
my $st;
DQTest::wait_for(sub { defined($st = DQTest::reaped($w->{pid})) }, 15, 0.01);
my $took = time - $t0;
is($st, 0, 'master exits 0 after SIGTERM');
ok($took < 5, sprintf('... within the 5 s grace period (%.2f s)', $took));
ok(!-e "$dir/busy.pid", 'pid file removed at exit');
my @S = DQWorker::lines($rec, 'S');
my @E = DQWorker::lines($rec, 'E');
my %s; $s{ $_->[0] }++ for @S;
my %e; $e{ $_->[0] }++ for @E;
ok(@E > 0 && @E < $N, scalar(@E) . " of $N finished before the stop");
is(scalar(grep { !$e{$_} } keys %s), 0, 'every task that started also finished (none cut off)');
is(scalar(grep { $s{$_} > 1 } keys %s), 0, 'no task started twice');
is($r->cmd('ZCARD', 'dq2:{busy}:leases'), 0, 'no lease left behind');
is(DQWorker::waiting($r, 'busy'), $N - scalar(keys %e), 'every unfinished task is back in the queue at once');
like(DQTest::slurp("$dir/busy.log"), qr/SIGTERM|Terminated/, 'the stop is logged');

# a second worker finishes the rest: each ran exactly once
my $w2 = DQWorker::start_master($r, $dir, name => 'rest', wait => 1, conf => <<"EOF2");
library "$lib";
processes 1;
threads 8;
concurrency 8;
queue busy;
EOF2
@E = DQWorker::wait_lines($rec, 'E', $N, 60);
%e = (); $e{ $_->[0] }++ for @E;
is(scalar(keys %e), $N, "all $N tasks ran");
is(scalar(grep { $_ > 1 } values %e), 0, 'none ran twice');

# ---- a killed child is respawned; work goes on
my @kids = DQWorker::live_children($w2);
is(scalar(@kids), 1, 'one child');
kill 'KILL', $kids[0];
DQTest::wait_for(sub { DQTest::slurp($w2->{log}) =~ /killed by signal 9/ }, 10);
like(DQTest::slurp($w2->{log}), qr/child 1 \(pid $kids[0]\) killed by signal 9 \(Killed\), holding \d+ leased tasks/,
     'the master logs the signal and the held tasks');
DQTest::wait_for(sub { scalar(DQWorker::children($w2)) == 2 }, 10);
my @now = DQWorker::live_children($w2);
ok(@now == 1 && $now[0] != $kids[0], 'a new child was started');
DQTest::wait_for(sub { my $c = () = DQTest::slurp($w2->{log}) =~ /redis \(wake\): connected/g; $c >= 2 }, 10);
DQWorker::cli($r, 'defer', '-q', 'busy', '--count', 10, 'ops.run', "$dir/after.rec");
is(scalar(DQWorker::wait_lines("$dir/after.rec", 'R', 10, 20)), 10, 'the respawned child runs tasks');
is(DQTest::stop_pid($w2->{pid}), 0, 'stopped');
DQTest::log_clean_ok($w2->{log});

# ---- SIGUSR1 reopens the logs of master and children; -s reopen / stop
my $w3 = DQWorker::start_master($r, $dir, name => 'logs', wait => 0, conf => <<"EOF2");
library "$lib";
processes 2;
pid_file $dir/logs.pid;
log_file $dir/logs.out;
queue q3;
EOF2
DQTest::wait_for(sub { my $c = () = DQTest::slurp("$dir/logs.out") =~ /redis \(wake\): connected/g; $c >= 2 }, 20);
rename "$dir/logs.out", "$dir/logs.out.1" or die;
system($bin, '-c', $w3->{conf}, '-s', 'reopen');
is($? >> 8, 0, '-s reopen exits 0');
DQTest::wait_for(sub { -s "$dir/logs.out" && DQTest::slurp("$dir/logs.out") =~ /log reopened/ }, 10);
like(DQTest::slurp("$dir/logs.out"), qr/master: SIGUSR1: log reopened/, 'master writes to the new file');
system($bin, '-c', $w3->{conf}, '-s', 'stop');
is($? >> 8, 0, '-s stop exits 0');
my $st3;
DQTest::wait_for(sub { defined($st3 = DQTest::reaped($w3->{pid})) }, 15, 0.01);
is($st3, 0, 'master stopped by -s stop exits 0');
my $new = DQTest::slurp("$dir/logs.out");
like($new, qr/child 1: stopping/, 'child 1 logs to the reopened file');
like($new, qr/child 2: stopping/, 'child 2 logs to the reopened file');
unlike(DQTest::slurp("$dir/logs.out.1"), qr/stopping/, 'nothing more went to the old file');
my $err = `$bin -c $w3->{conf} -s stop 2>&1`;
isnt($? >> 8, 0, '-s with no running master fails');
like($err, qr/cannot read pid file ".*logs\.pid"/, '... and says why');

# ---- kill -9 of the master alone: its children stop gracefully
# (PR_SET_PDEATHSIG), handing unstarted tasks back at once
my $w4 = DQWorker::start_master($r, $dir, name => 'orphan', wait => 2, conf => <<"EOF2");
library "$lib";
processes 2;
threads 2;
concurrency 8;
claim_size 8;
lease 60s;
queue q4;
EOF2
my @k4 = DQWorker::children($w4);
is((DQWorker::cli($r, 'defer', '-q', 'q4', '--count', 100, 'ops.span',
                  "$dir/o.rec", 100))[0], 0, '100 tasks deferred');
cmp_ok(scalar(DQWorker::wait_lines("$dir/o.rec", 'E', 4, 20)), '>=', 4,
       'tasks running before the kill');
DQTest::stop_pid($w4->{pid}, 'KILL', 5);
# gone, or a zombie nobody reaps yet (PID 1 of a container may not)
sub running { my $s = DQTest::slurp("/proc/$_[0]/stat"); $s ne '' && $s !~ /^\d+ \(.*\) Z/ }
ok(DQTest::wait_for(sub { !grep { running($_) } @k4 }, 15, 0.05),
   'children of a master killed with -9 exit by themselves');
like(DQTest::slurp($w4->{log}), qr/child 1: stopped.*child 2: stopped|child 2: stopped.*child 1: stopped/s,
     '... through their graceful stop');
is($r->cmd('ZCARD', 'dq2:{q4}:leases'), 0, 'no lease left behind (lease is 60 s): unstarted tasks released');
my @o = DQWorker::lines("$dir/o.rec", 'E');
is(DQWorker::waiting($r, 'q4') + scalar(@o), 100, 'every task either ran or is back in the queue');
DQTest::log_clean_ok($w4->{log});

DQTest::log_clean_ok("$dir/logs.out");
DQTest::log_clean_ok("$dir/busy.log");
done_testing();
