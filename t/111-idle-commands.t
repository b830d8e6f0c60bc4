# What an idle fleet sends Redis (docs/BENCHMARKS.md "8. idle cost": target
# <= 5 commands/s for 4 children). One master, 4 children, one empty queue;
# after every child's first heartbeat, INFO commandstats is reset and read
# again after 21 s: every command counted (script calls and the commands
# inside them, as Redis counts them), the test's own INFO/CONFIG left out.
# The bound is the target, 5/s; the window holds at least 4 live ticks of
# every child and none of the once-per-lease looks (lease 60 s) or BLPOP
# timeouts (30 s). Before the heartbeat was cut (one per child every 5 s,
# 8 commands each) the window counted >= 128; now ~60-80.
# Then a task enqueued into the quiet fleet still runs at once (the wake
# list), and the live list shows the 4 children.
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
my $window = 21;

my $w = DQWorker::start_master($r, $dir, name => 'idle', wait => 4, conf => <<"EOF");
library "$lib";
processes 4;
lease 60s;
queue quiet { }
EOF
ok(DQTest::wait_for(sub { $r->cmd('ZCARD', 'dq:workers') == 4 }, 20),
   'the 4 children beat') or diag DQTest::slurp($w->{log});
sleep 1;
$r->cmd('CONFIG', 'RESETSTAT');
sleep $window;
my $stats = $r->cmd('INFO', 'commandstats');
my (%calls, $n);
while ($stats =~ /^cmdstat_([^:]+):calls=(\d+)/mg) {
    next if $1 eq 'info' || $1 =~ /^config/;
    $calls{$1} = $2;
    $n += $2;
}
$n //= 0;
diag sprintf("%d commands in %d s (%.1f/s): %s", $n, $window, $n / $window,
             join ' ', map { "$_=$calls{$_}" } sort keys %calls);
cmp_ok($n, '<=', 5 * $window, 'an idle fleet of 4 children sends at most 5 commands/s');
cmp_ok($calls{hmget} // 0, '>=', 4 * 3,
       '... and still reads its queue conf every 5 s (>= 3 reads a child)');

my $rec = "$dir/q.rec";
my $t0 = time;
DQWorker::defer($r, '-q', 'quiet', 'ops.span', $rec, 1);
my @S = DQWorker::wait_lines($rec, 'S', 1, 10);
is(scalar(@S), 1, 'a task enqueued into the quiet fleet runs');
diag sprintf("started %.2f s after the enqueue", time - $t0);
ok(time - $t0 < 10, '... within 10 s (the wake list, not a 30 s BLPOP timeout or the 60 s look)');

is($r->cmd('ZCARD', 'dq:workers'), 4, 'the live list holds the 4 children');
DQWorker::stop_worker($w);
done_testing;
