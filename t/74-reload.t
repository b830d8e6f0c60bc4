# SIGHUP: the master re-reads its config and replaces its children one at
# a time (start a new one, stop an old one gracefully). With the config's
# library a symlink switched to new code, new tasks run the new code, and
# the tasks in flight during the reload each run exactly once. A broken
# config on SIGHUP is refused and the running children stay.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $bin = DQWorker::worker_bin();
my $v1 = DQWorker::ops_lib(1);
my $v2 = DQWorker::ops_lib(2);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start;
symlink($v1, "$dir/ops.so") or die "symlink: $!";

sub switch_lib {
    my ($to) = @_;
    unlink "$dir/ops.so.new";
    symlink($to, "$dir/ops.so.new") or die;
    rename("$dir/ops.so.new", "$dir/ops.so") or die;    # atomic
}

my $conf = <<"EOF2";
library $dir/ops.so;
processes 2;
threads 2;
concurrency 4;
claim_size 4;
grace 10s;
pid_file $dir/w.pid;
queue rl;
EOF2
my $w = DQWorker::start_master($r, $dir, name => 'w', wait => 2, conf => $conf);
my @first = DQWorker::children($w);
is(scalar(@first), 2, 'two children');

DQWorker::cli($r, 'defer', '-q', 'rl', '--count', 20, 'ops.version', "$dir/v.rec");
my @V = DQWorker::wait_lines("$dir/v.rec", 'V', 20, 20);
is(scalar(grep { $_->[2] eq 'v1' } @V), 20, 'before the reload: 20 tasks ran v1 code');

# load in flight during the reload
my $N = 400;
is((DQWorker::cli($r, 'defer', '-q', 'rl', '--count', $N, 'ops.span',
                  "$dir/s.rec", 20))[0], 0, "$N tasks deferred");
cmp_ok(scalar(DQWorker::wait_lines("$dir/s.rec", 'E', 10, 20)), '>=', 10,
       'tasks running before the reload');
switch_lib($v2);
system($bin, '-c', $w->{conf}, '-s', 'reload');
is($? >> 8, 0, '-s reload exits 0');

# the two old children leave one at a time, two new ones take over
DQTest::wait_for(sub {
    my $t = DQTest::slurp($w->{log});
    my $gone = grep { $t =~ /child \d+ \(pid $_\) exited with status 0/ } @first;
    $gone == 2 && scalar(DQWorker::live_children($w)) == 2;
}, 30, 0.05);
my $log = DQTest::slurp($w->{log});
like($log, qr/SIGHUP: reloading/, 'reload logged');
my @all = DQWorker::children($w);
is(scalar(@all), 4, 'two new children were started');
my @live = DQWorker::live_children($w);
is_deeply([sort @live], [sort @all[2, 3]], 'the new children are the live ones');
for my $p (@first) {
    like($log, qr/child \d+ \(pid $p\) exited with status 0/, "old child $p stopped gracefully");
}
# one at a time: the second old child was asked to stop after the first left
my @stops;
push @stops, $-[0] while $log =~ /reload: stopping old child/g;
is(scalar(@stops), 2, 'each old child was stopped by the reload');
my $exit1 = $log =~ /\(pid (?:$first[0]|$first[1])\) exited with status 0/ ? $-[0] : -1;
ok($exit1 > $stops[0] && $exit1 < ($stops[1] // -1),
   'the second old child was stopped only after the first one exited');

DQWorker::cli($r, 'defer', '-q', 'rl', '--count', 20, 'ops.version', "$dir/v2.rec");
@V = DQWorker::wait_lines("$dir/v2.rec", 'V', 20, 20);
is(scalar(grep { $_->[2] eq 'v2' } @V), 20, 'after the reload: 20 new tasks ran v2 code');

my @E = DQWorker::wait_lines("$dir/s.rec", 'E', $N, 60);
my @S = DQWorker::lines("$dir/s.rec", 'S');
my (%s, %e);
$s{ $_->[0] }++ for @S;
$e{ $_->[0] }++ for @E;
is(scalar(keys %e), $N, "all $N tasks in flight during the reload ran");
is(scalar(grep { $_ > 1 } values %s), 0, 'none started twice');
is(scalar(@S), $N, 'exactly one start per task');

# ---- a broken config on SIGHUP is refused
open my $fh, '>>', $w->{conf} or die;
print {$fh} "threads lots;\n";
close $fh;
kill 'HUP', $w->{pid};
DQTest::wait_for(sub { DQTest::slurp($w->{log}) =~ /reload failed/ }, 10);
$log = DQTest::slurp($w->{log});
like($log, qr/reload failed, keeping the running configuration: invalid value "lots" in "threads" directive.*w\.conf:\d+/,
     'a bad config on SIGHUP is logged with file and line');
sleep 0.3;
is_deeply([sort(DQWorker::live_children($w))], [sort @live], 'and the children keep running');
is(scalar(DQWorker::children($w)), 4, 'no child was started');

# ---- a reload that changes the number of processes
(my $three = $conf) =~ s/processes 2;/processes 3;/;
open $fh, '>', $w->{conf} or die;
print {$fh} "redis " . $r->address . ";\n$three";
close $fh;
kill 'HUP', $w->{pid};
DQTest::wait_for(sub { scalar(DQWorker::children($w)) == 7 && scalar(DQWorker::live_children($w)) == 3 }, 30, 0.05);
is(scalar(DQWorker::live_children($w)), 3, 'processes 2 -> 3 on reload: three children');
is(scalar(grep { my $p = $_; grep { $_ == $p } @live } DQWorker::live_children($w)), 0,
   'all of them new');
(my $one = $conf) =~ s/processes 2;/processes 1;/;
open $fh, '>', $w->{conf} or die;
print {$fh} "redis " . $r->address . ";\n$one";
close $fh;
kill 'HUP', $w->{pid};
DQTest::wait_for(sub { scalar(DQWorker::children($w)) == 8 && scalar(DQWorker::live_children($w)) == 1 }, 30, 0.05);
is(scalar(DQWorker::live_children($w)), 1, 'processes 3 -> 1 on reload: one child');
DQWorker::cli($r, 'defer', '-q', 'rl', '--count', 5, 'ops.version', "$dir/v3.rec");
is(scalar(DQWorker::wait_lines("$dir/v3.rec", 'V', 5, 10)), 5, 'and it runs tasks');

is(DQTest::stop_pid($w->{pid}), 0, 'master exits 0');
DQTest::log_clean_ok($w->{log});
done_testing();
