# Horizontal scale: 3 worker masters x 2 children on one queue run 50,000
# tasks, each exactly once, the work shared by all six children; then a
# whole worker (master and children) killed with -9 mid-run loses nothing:
# its leased tasks run later on the others.
# Long runs use the normal build (DQWorker::fast_bin) unless DQ_BUILD says.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use DQTest;
use DQWorker;
use Time::HiRes qw(time sleep);

my $lib = DQWorker::ops_lib(1, 1);
my $dir = DQTest::tmpdir();
my $r = DQTest::Redis->start;
my $N = $ENV{DQ_SCALE_N} || 50000;

my $conf = <<"EOF2";
library "$lib";
processes 2;
threads 4;
concurrency 16;
claim_size 16;
lease 3s;
queue scale;
EOF2
my @w = map { DQWorker::start_master($r, $dir, name => "w$_", wait => 2, fast => 1,
                                   conf => $conf) } 1 .. 3;
my $rec = "$dir/scale.rec";
my $t0 = time;
DQWorker::cli($r, 'defer', '-q', 'scale', '--count', $N, 'ops.run', $rec);
my $t_enq = time - $t0;
DQTest::wait_for(sub { ($r->cmd('HGET', 'dq2:{scale}:stats', 'done') // 0) >= $N }, 120, 0.05);
my $took = time - $t0;
my @R = DQWorker::lines($rec, 'R');
my (%ran, %by);
$ran{ $_->[0] }++ for @R;
$by{ $_->[2] }++ for @R;
diag(sprintf('%d tasks, 3 masters x 2 children: enqueued in %.2f s, all done %.2f s after the first enqueue (%.0f tasks/s)',
             $N, $t_enq, $took, $N / $took));
is(scalar(keys %ran), $N, "all $N tasks ran");
is(scalar(grep { $_ > 1 } values %ran), 0, 'none ran twice');
is(scalar(@R), $N, "exactly $N executions");
is($r->cmd('HGET', 'dq2:{scale}:stats', 'done'), $N, "stats: $N done");
my @kids = map { DQWorker::children($_) } @w;
is(scalar(@kids), 6, 'six children');
note('tasks per child: ' . join(' ', map { "$_=" . ($by{$_} // 0) } @kids));
is(scalar(grep { ($by{$_} // 0) >= $N / 6 / 10 } @kids), 6,
   'every child ran a share (>= 10% of an even split)');

# ---- kill -9 of a whole worker mid-run
my $M = 3000;
my $rec2 = "$dir/kill.rec";
is((DQWorker::cli($r, 'defer', '-q', 'scale', '--count', $M, 'ops.span',
                  $rec2, 5))[0], 0, "$M tasks deferred");
cmp_ok(scalar(DQWorker::wait_lines($rec2, 'E', 200, 30)), '>=', 200,
       '200 finished before the kill');
my @victims = (DQWorker::children($w[0]), $w[0]{pid});
my $held = $r->cmd('ZCARD', 'dq2:{scale}:leases');
kill 'KILL', @victims;                # children and master at once: no release
DQTest::stop_pid($w[0]{pid}, 'KILL', 5);
ok($held > 0, "tasks were leased when the worker was killed ($held leases in the queue)");
my @E = DQWorker::wait_lines($rec2, 'E', $M, 60);
DQTest::wait_for(sub { ($r->cmd('HGET', 'dq2:{scale}:stats', 'done') // 0) >= $N + $M }, 30, 0.05);
my %e; $e{ $_->[0] }++ for @E;
is(scalar(keys %e), $M, "all $M tasks ran despite the kill -9");
is($r->cmd('HGET', 'dq2:{scale}:stats', 'done'), $N + $M, 'every task acked once');
is($r->cmd('ZCARD', 'dq2:{scale}:eta') + $r->cmd('ZCARD', 'dq2:{scale}:leases'), 0, 'queue empty');
ok(($r->cmd('HGET', 'dq2:{scale}:stats', 'reclaimed') // 0) > 0,
   'the killed worker\'s leases expired and were reclaimed');

for my $w (@w[1, 2]) {
    is(DQTest::stop_pid($w->{pid}), 0, "$w->{name} exits 0");
    DQTest::log_clean_ok($w->{log});
}
done_testing();
